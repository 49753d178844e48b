"""The one wiring point: everything guidebot runs is built here from one Settings object."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from guidebot.dialog.engine import DialogEngine, MemoryStore, StateStore
from guidebot.knowledge.catalog import Catalog
from guidebot.knowledge.export import catalog_to_yaml
from guidebot.knowledge.importer import load_bundled_catalog, load_catalog
from guidebot.knowledge.lexicon import Lexicon, bundled_lexicon, load_synonym_file
from guidebot.knowledge.matching import CatalogIndex
from guidebot.settings import Settings


def load_configured_catalog(settings: Settings) -> Catalog:
    """The catalog staff imported (or GUIDEBOT_CATALOG names), else the bundled one."""
    if settings.catalog_path is None:
        return load_bundled_catalog()
    catalog = load_catalog(settings.catalog_path)
    if not catalog.center.phone:
        # An imported item list without a center block keeps the bundled center's details.
        catalog = replace(catalog, center=load_bundled_catalog().center)
    return catalog


def install_catalog(source: Path, settings: Settings) -> tuple[Catalog, Path]:
    """Validate `source` completely, then replace the catalog in use in one atomic rename."""
    catalog = load_catalog(source)
    if not catalog.center.phone:
        catalog = replace(catalog, center=load_bundled_catalog().center)
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


def install_synonyms(source: Path, settings: Settings) -> tuple[int, Path]:
    """Check the center's synonym file against the catalog in use, then make it the one in use."""
    entries = load_synonym_file(source, load_configured_catalog(settings))
    target = _replace_data_file(settings, "synonyms.yaml", source.read_text(encoding="utf-8"))
    return len(entries), target


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


def _outbox_dialogs(store: Any, index: CatalogIndex) -> tuple[list, Callable | None]:
    """Subscriptions (订阅 / 退订) and 好差评 ratings; "这个回答有帮助吗？" after each answer only with
    GUIDEBOT_RATING_PROMPT=on (it adds a message to every answer; ratings at case completion always)."""
    from guidebot.outbox.ratings import RatingFlow
    from guidebot.outbox.subscriptions import SubscriptionFlow, item_finder

    ratings = RatingFlow(store)
    ask = os.environ.get("GUIDEBOT_RATING_PROMPT", "off").strip().lower() in ("1", "on", "true", "yes")
    return [SubscriptionFlow(store, index.catalog, item_finder(index)), ratings], ratings.on_answer if ask else None
