"""Example asks: how citizens ask for an item, and for what the center does not handle.

The synonym table maps a phrase to words of official names; it only helps when a message holds
that phrase. Asks are whole messages (想开个小饭馆要办啥证 → 食品经营许可), compared with a new
message by the characters and character pairs they share, each weighted by how rare it is among
all asks. A message close to an ask of one item is evidence for that item even when it shares no
word with the item's name; a message close to an ask about something the center does not do
(小车驾驶证到期了) is evidence that it should be declined, naming that thing.

The data is keyed by item names, not codes, so the same files serve any catalog whose items carry
those names; an out-of-scope topic switches itself off when the catalog names one of its `unless`
words (a center that does issue 护照 imports items that say so).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from guidebot.knowledge.importer import CatalogError, RowError
from guidebot.knowledge.normalize import compact

# Characters that carry the sentence, not its subject: never a feature on their own.
_FILLER = frozenset("的了吗呢吧啊呀嘛么哦我你您他她它们这那个一是有在和与及或就都也还又要想能会可以去来到给把被让用对")
# An ask longer than the message, or a message much longer than its nearest ask, is compared on
# the shorter side's weight: a long story contains an ask as a part, it does not equal it.
LONG_MESSAGE_FACTOR = 2.0
NEAREST_ROWS = 2000  # asks looked at per message, nearest first (measured: no change at 500 up)
KEPT_ITEMS = 50  # items reported by a search, best supported first
# An item's support: its nearest asks' similarities, the nearest counting most. Several asks like
# the message make an item surer than one lucky ask (measured: nearest alone picks the right item
# for 64 % of held-out questions, the five nearest so weighted for 82 %).
SUPPORT_WEIGHTS = (1.0, 0.8, 0.6, 0.4, 0.2)
ASK_MIN = 0.5  # support below this is the noise of shared everyday words
SHORT_MESSAGE = 10  # a shorter message is contained in too many asks for them to tell more than its words


@dataclass(frozen=True)
class ItemAsks:
    item: str  # an item name as the catalog writes it
    asks: tuple[str, ...]


@dataclass(frozen=True)
class OutsideTopic:
    topic: str  # the thing, as the reply names it: 机动车驾驶证
    unless: tuple[str, ...]  # name fragments: a catalog naming one of them does handle the topic
    asks: tuple[str, ...]
    # About this center itself (its staff, its phone line, the bot), not a service: no item answers
    # it, yet it is no other office's business either — it is feedback for the center's staff.
    about_center: bool = False


def read_item_asks(doc: object, source: str, item_names: set[str] | None = None) -> tuple[ItemAsks, ...]:
    """The entries of one asks document; with `item_names` (compact), each item must be one of them."""
    found: list[ItemAsks] = []
    errors: list[RowError] = []
    for where, name, entry in _named_entries(doc, source, "item", "缺少事项名称", errors):
        asks = _asks(entry.get("asks"))
        if not asks:
            errors.append(RowError(where, "asks", "缺少问法示例"))
            continue
        if item_names is not None and compact(name) not in item_names:
            errors.append(RowError(where, "item", f"“{entry['item']}”不是目录中的事项名称"))
            continue
        found.append(ItemAsks(name, asks))
    _raise_if_any(errors, source)
    return tuple(found)


def read_outside_topics(doc: object, source: str) -> tuple[OutsideTopic, ...]:
    found: list[OutsideTopic] = []
    errors: list[RowError] = []
    for where, name, entry in _named_entries(doc, source, "topic", "缺少事情的名称", errors):
        asks = _asks(entry.get("asks"))
        unless = entry.get("unless") or []
        about_center = entry.get("center", False)
        if not asks:
            errors.append(RowError(where, "asks", "缺少问法示例"))
        if not isinstance(unless, list):
            errors.append(RowError(where, "unless", "应为事项名称用词的列表"))
        if not isinstance(about_center, bool):
            errors.append(RowError(where, "center", "应为 true 或 false"))
        if asks and isinstance(unless, list) and isinstance(about_center, bool):
            words = tuple(w for w in (compact(str(u)) for u in unless) if w)
            found.append(OutsideTopic(name, words, asks, about_center))
    _raise_if_any(errors, source)
    return tuple(found)


def _named_entries(doc: object, source: str, key: str, missing: str,
                   errors: list[RowError]) -> Iterator[tuple[str, str, dict[str, object]]]:
    """Each entry of an asks document that has a name under `key`, with where it stands; an entry
    without one is reported in `errors` and skipped."""
    for index, entry in enumerate(_entry_list(doc, source), 1):
        where = f"第 {index} 条"
        name = str(entry.get(key) or "").strip() if isinstance(entry, dict) else ""
        if not name:
            errors.append(RowError(where, key, missing))
            continue
        yield where, name, entry


def _raise_if_any(errors: list[RowError], source: str) -> None:
    if errors:
        raise CatalogError(source, errors, what="问法示例")


def _entry_list(doc: object, source: str) -> list[object]:
    if not isinstance(doc, list):
        raise CatalogError(source, [RowError("文件", "", "应为条目列表的 YAML")], what="问法示例")
    return doc


def _asks(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(dict.fromkeys(a for a in (compact(str(r)) for r in raw if r is not None) if len(a) >= 2))


def features(text: str) -> set[str]:
    """Characters and adjacent character pairs of a compact text, filler characters left out alone."""
    found = {ch for ch in text if ch not in _FILLER and not ch.isascii()}
    found.update(text[i : i + 2] for i in range(len(text) - 1) if not (text[i] in _FILLER and text[i + 1] in _FILLER))
    return found


@dataclass(frozen=True)
class AskMatch:
    similarity: float  # the support: nearest asks' similarities, weighted by rank and summed
    ask: str  # the nearest ask


@dataclass(frozen=True)
class AskSearch:
    items: dict[int, AskMatch]  # by item position, best supported first (at most KEPT_ITEMS)
    outside: tuple[OutsideTopic, AskMatch] | None  # the best supported topic the center does not handle


NOTHING = AskSearch({}, None)


class AskIndex:
    """Every ask of the items in one catalog and of the topics it does not handle, searchable."""

    def __init__(self, item_names: Sequence[str], item_asks: Iterable[ItemAsks],
                 outside: Iterable[OutsideTopic] = ()) -> None:
        positions: dict[str, list[int]] = defaultdict(list)
        for position, name in enumerate(item_names):
            positions[compact(name)].append(position)
        names_text = "|".join(compact(n) for n in item_names)
        self._items = len(item_names)
        # One row per ask and item: its key (an item position, or items + topic number for a topic
        # the center does not handle) and its text. Names are no rows: the matcher reads names.
        keys: list[int] = []
        self._texts: list[str] = []
        for entry in item_asks:
            for position in positions.get(compact(entry.item), ()):
                for ask in entry.asks:
                    keys.append(position)
                    self._texts.append(ask)
        self._topics: list[OutsideTopic] = []
        for topic in outside:
            if any(word in names_text for word in topic.unless):
                continue
            for ask in topic.asks:
                keys.append(self._items + len(self._topics))
                self._texts.append(ask)
            self._topics.append(topic)
        self._keys = np.asarray(keys, dtype=np.int64)
        self.items_with_asks = frozenset(k for k in keys if k < self._items)
        # Features as numbers: one flat (row, feature) pair per occurrence, postings sorted by feature.
        self._feature_ids: dict[str, int] = {}
        row_of: list[int] = []
        feature_of: list[int] = []
        for number, text in enumerate(self._texts):
            ids = [self._feature_ids.setdefault(f, len(self._feature_ids)) for f in features(text)]
            feature_of += ids
            row_of += [number] * len(ids)
        rows = np.asarray(row_of, dtype=np.int64)
        feature_ids = np.asarray(feature_of, dtype=np.int64)
        df = np.bincount(feature_ids, minlength=len(self._feature_ids))
        self._idf = np.log1p(max(len(self._texts), 1) / np.maximum(df, 1))
        order = np.argsort(feature_ids, kind="stable")
        self._posting_rows = rows[order]
        self._posting_starts = np.concatenate(([0], np.cumsum(df)))
        self._weights = np.bincount(rows, weights=self._idf[feature_ids], minlength=max(len(self._texts), 1))

    def __len__(self) -> int:
        return len(self._texts)

    def search(self, text: str) -> AskSearch:
        """The items (and the topic the center does not handle) whose asks are nearest the message."""
        query = np.asarray([i for i in (self._feature_ids.get(f) for f in features(text)) if i is not None],
                           dtype=np.int64)
        if not len(query):
            return NOTHING
        starts, ends = self._posting_starts[query], self._posting_starts[query + 1]
        lengths = ends - starts
        # Every posting of every feature of the message, gathered in one index array.
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        postings = self._posting_rows[np.arange(lengths.sum()) + offsets]
        overlap = np.bincount(postings, weights=np.repeat(self._idf[query], lengths), minlength=len(self._texts))
        message_weight = float(self._idf[query].sum())
        hit = np.flatnonzero(overlap)
        ask_weight = self._weights[hit]
        compared = np.maximum(np.minimum(message_weight, LONG_MESSAGE_FACTOR * ask_weight), 1e-9)
        similarity = np.minimum(overlap[hit] / np.sqrt(np.maximum(ask_weight, 1e-9) * compared), 1.0)
        if len(hit) > NEAREST_ROWS:
            # Only the nearest asks can be among any item's few nearest that count.
            kept = np.argpartition(-similarity, NEAREST_ROWS - 1)[:NEAREST_ROWS]
            hit, similarity = hit[kept], similarity[kept]
        keys = self._keys[hit]
        # Per key, nearest first; rank = place within the key's run.
        order = np.lexsort((-similarity, keys))
        hit, similarity, keys = hit[order], similarity[order], keys[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        rank = np.arange(len(keys)) - np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
        counted = rank < len(SUPPORT_WEIGHTS)
        size = self._items + len(self._topics)
        totals = np.bincount(keys[counted], weights=np.asarray(SUPPORT_WEIGHTS)[rank[counted]] * similarity[counted],
                             minlength=size)
        nearest = np.empty(size, dtype=np.int64)
        nearest[keys[starts]] = hit[starts]
        item_totals = totals[: self._items]
        supported = np.flatnonzero(item_totals)
        if len(supported) > KEPT_ITEMS:
            supported = supported[np.argpartition(-item_totals[supported], KEPT_ITEMS - 1)[:KEPT_ITEMS]]
        # Best supported first; equal supports by position, as a stable sort of all would give.
        supported = supported[np.lexsort((supported, -item_totals[supported]))]
        items = {key: AskMatch(float(totals[key]), self._texts[nearest[key]]) for key in supported.tolist()}
        outside: tuple[OutsideTopic, AskMatch] | None = None
        if len(totals) > self._items and totals[self._items :].max() > 0:
            key = self._items + int(np.argmax(totals[self._items :]))
            outside = (self._topics[key - self._items], AskMatch(float(totals[key]), self._texts[nearest[key]]))
        return AskSearch(items, outside)
