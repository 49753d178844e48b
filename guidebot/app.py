"""The one wiring point: everything guidebot runs is built here from one Settings object."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from guidebot.dialog.engine import DialogEngine, MemoryStore, StateStore
from guidebot.dialog.replies import Inbound, Reply
from guidebot.knowledge.catalog import Catalog, Item
from guidebot.knowledge.export import catalog_to_yaml
from guidebot.knowledge.importer import load_bundled_catalog, load_catalog
from guidebot.knowledge.lexicon import CenterWords, Lexicon, bundled_lexicon, load_synonym_file
from guidebot.knowledge.matching import CatalogIndex
from guidebot.settings import Settings, SettingsError


def load_configured_catalog(settings: Settings) -> Catalog:
    """The catalog staff imported (or GUIDEBOT_CATALOG names), else the bundled one."""
    if settings.catalog_path is None:
        return load_bundled_catalog()
    return load_item_list(settings.catalog_path)


def load_item_list(path: Path) -> Catalog:
    """A catalog file as the bot uses it: an item list without a center block (a system's CSV export)
    keeps the bundled center's details — its name, place, hours and phone."""
    catalog = load_catalog(path)
    if not catalog.center.phone:
        catalog = replace(catalog, center=load_bundled_catalog().center)
    return catalog


def install_catalog(source: Path, settings: Settings) -> tuple[Catalog, Path]:
    """Validate `source` completely, then replace the catalog in use in one atomic rename."""
    catalog = load_item_list(source)
    target = _replace_data_file(settings, "catalog.yaml", catalog_to_yaml(catalog))
    return catalog, target


def load_configured_lexicon(settings: Settings) -> Lexicon:
    """The bundled synonym table, plus the center's own entries when it has any."""
    if settings.synonyms_path is None:
        return bundled_lexicon()
    return bundled_lexicon().extended(load_synonym_file(settings.synonyms_path))


def configured_index(settings: Settings, catalog: Catalog | None = None) -> CatalogIndex:
    """The matcher over `catalog` (default: the one in use) with the synonyms in use."""
    return CatalogIndex(catalog or load_configured_catalog(settings), load_configured_lexicon(settings))


def install_synonyms(source: Path, settings: Settings) -> tuple[CenterWords, Path]:
    """Check the center's synonym file against the catalog in use, then make it the one in use."""
    words = load_synonym_file(source, load_configured_catalog(settings))
    target = _replace_data_file(settings, "synonyms.yaml", source.read_text(encoding="utf-8"))
    return words, target


def _replace_data_file(settings: Settings, name: str, text: str) -> Path:
    """Write `text` to the data directory in one atomic rename: readers see the old file or the new one."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    target = settings.data_dir / name
    handle, temp_name = tempfile.mkstemp(dir=settings.data_dir, prefix=f".{target.stem}-", suffix=target.suffix)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


@dataclass
class Guidebot:
    settings: Settings
    catalog: Catalog
    index: CatalogIndex
    engine: DialogEngine
    store: StateStore


def build(settings: Settings | None = None, *, persistent: bool = True) -> Guidebot:
    """Catalog, index, store and dialog engine, wired. `persistent=False` keeps state in memory."""
    settings = settings or Settings.load()
    catalog = load_configured_catalog(settings)
    index = configured_index(settings, catalog)
    store: StateStore
    sub_dialogs = []
    on_answer = None
    if persistent:
        from guidebot.store.db import open_store

        store = open_store(settings.database_url)
        sub_dialogs = _case_dialogs(store, catalog)
        outbox_dialogs, on_answer = _outbox_dialogs(store, index)
        sub_dialogs += outbox_dialogs
    else:
        store = MemoryStore()
    engine = DialogEngine(index, store, sub_dialogs=sub_dialogs, on_answer=on_answer)
    return Guidebot(settings, catalog, index, engine, store)


def _case_dialogs(store: object, catalog: Catalog) -> list:
    """The case-lookup sub-dialog (imported here: it needs the database layer)."""
    from guidebot.dialog.case_flow import CaseFlow

    return [CaseFlow.build(store, catalog)]


RATING_PROMPT_ENV = "GUIDEBOT_RATING_PROMPT"
CHANNELS = frozenset({"telegram", "sms", "console"})
# "这个回答有帮助吗？" after answers, by default only where it costs nothing and reads naturally:
# - telegram: one tap on an inline button, free;
# - sms: off — the prompt is one more billed segment on every answer;
# - console (`guidebot chat`): off — that is a clerk trying answers out, and their taps would be
#   counted among citizens' 好差评 in /stats.
DEFAULT_RATING_PROMPT = frozenset({"telegram"})
_ALL = ("on", "all", "1", "true", "yes")
_NONE = ("off", "none", "0", "false", "no")


def rating_prompt_channels(value: str | None) -> frozenset[str]:
    """The channels that ask "这个回答有帮助吗？" after an answer, from GUIDEBOT_RATING_PROMPT:
    unset → telegram; ``on``/``all`` → every channel; ``off``/``none`` → none; else a list such as
    ``telegram,console``. A name that is no channel is a SettingsError (a typo must not silently
    turn the prompt off)."""
    text = (value or "").strip().lower()
    if not text:
        return DEFAULT_RATING_PROMPT
    if text in _ALL:
        return CHANNELS
    if text in _NONE:
        return frozenset()
    names = frozenset(name for name in re.split(r"[\s,，;；]+", text) if name)
    unknown = sorted(names - CHANNELS)
    if unknown:
        raise SettingsError(f"{RATING_PROMPT_ENV}: unknown channel {', '.join(unknown)} (use on, off or a list of "
                            f"{', '.join(sorted(CHANNELS))}, e.g. telegram,console)")
    return names


def _outbox_dialogs(store: Any, index: CatalogIndex) -> tuple[list, Callable | None]:
    """Subscriptions (订阅 / 退订) and 好差评 ratings, and the answer hook that asks "这个回答有帮助吗？"
    on the channels GUIDEBOT_RATING_PROMPT names (ratings at case completion are always invited)."""
    from guidebot.outbox.ratings import RatingFlow
    from guidebot.outbox.subscriptions import SubscriptionFlow, item_finder

    ratings = RatingFlow(store)
    channels = rating_prompt_channels(os.environ.get(RATING_PROMPT_ENV))

    def ask_after_answer(inbound: Inbound, item: Item) -> list[Reply]:
        return ratings.on_answer(inbound, item) if inbound.channel in channels else []

    dialogs = [SubscriptionFlow(store, index.catalog, item_finder(index)), ratings]
    return dialogs, ask_after_answer if channels else None
