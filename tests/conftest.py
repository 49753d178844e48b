"""Shared fixtures: small catalogs, a built index, an engine with in-memory state.

Every test runs with GUIDEBOT_DATA_DIR in a temporary folder, so nothing touches the user's real
data directory or database.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from guidebot.app import load_item_list
from guidebot.dialog.engine import DialogEngine, MemoryStore
from guidebot.dialog.replies import Inbound, Reply
from guidebot.knowledge.catalog import Catalog
from guidebot.knowledge.importer import load_bundled_catalog, load_catalog
from guidebot.knowledge.lexicon import Lexicon, bundled_lexicon
from guidebot.knowledge.matching import CatalogIndex

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDEBOT_DATA_DIR", str(tmp_path_factory.mktemp("guidebot-data")))
    monkeypatch.delenv("GUIDEBOT_CATALOG", raising=False)
    monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def small_catalog() -> Catalog:
    return load_catalog(DATA / "small.yaml")


@pytest.fixture(scope="session")
def small_index(small_catalog: Catalog) -> CatalogIndex:
    return CatalogIndex(small_catalog)


@pytest.fixture(scope="session")
def bundled_catalog() -> Catalog:
    return load_bundled_catalog()


@pytest.fixture(scope="session")
def bundled_index(bundled_catalog: Catalog) -> CatalogIndex:
    return CatalogIndex(bundled_catalog)


@pytest.fixture(scope="session")
def guangan_index() -> CatalogIndex:
    return CatalogIndex(load_item_list(REPO / "guidebot" / "data" / "guangan-items.csv"))


def _words_only() -> Lexicon:
    """The bundled lexicon without example asks: for tests of a rule about words, which the asks
    would often get right their own way and so hide the rule's absence."""
    return replace(bundled_lexicon(), item_asks=(), outside=())


@pytest.fixture(scope="session")
def bundled_words_index(bundled_catalog: Catalog) -> CatalogIndex:
    return CatalogIndex(bundled_catalog, _words_only())


@pytest.fixture(scope="session")
def guangan_words_index() -> CatalogIndex:
    return CatalogIndex(load_item_list(REPO / "guidebot" / "data" / "guangan-items.csv"), _words_only())


class Conversation:
    """Push a citizen's message in, get the replies out as plain text (errbot's text backend idea)."""

    def __init__(self, engine: DialogEngine, channel: str = "test", sender: str = "citizen-1") -> None:
        self.engine = engine
        self.channel = channel
        self.sender = sender

    def say(self, text: str) -> str:
        replies = self.engine.handle(Inbound(channel=self.channel, sender=self.sender, text=text))
        assert replies, f"no reply to {text!r}"
        return "\n".join(reply.plain() for reply in replies)

    def replies(self, text: str) -> list[Reply]:
        return self.engine.handle(Inbound(channel=self.channel, sender=self.sender, text=text))


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def small_chat(small_index: CatalogIndex, memory_store: MemoryStore) -> Conversation:
    return Conversation(DialogEngine(small_index, memory_store))


@pytest.fixture
def bundled_chat(bundled_index: CatalogIndex, memory_store: MemoryStore) -> Conversation:
    return Conversation(DialogEngine(bundled_index, memory_store))
