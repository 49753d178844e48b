"""From a citizen's message to a decision: answer one item, clarify among a few, or say unknown.

Pure: a catalog goes in, an index is built once, `match(text)` comes out. No database, no I/O.

1. read the message (reading.py): normalized, typos corrected, synonyms found as *concepts*, the rest
   split into weighted words;
2. retrieve candidates with BM25 over words and characters, plus every item a concept or a name hits;
3. score each candidate by how much of the message it explains (query coverage, IDF-weighted) and
   how much of its own name the message mentions (name coverage). Both are fractions in [0, 1], so
   one set of thresholds holds for a catalog of 20 items and of 100,000;
4. add the support of the item's example asks (asks.py): messages citizens send about it, however
   far from its name (想开个小饭馆 → 食品经营许可). Asks about what the center does not handle
   (小车驾照, 公积金) decline the message, naming the thing, when no item is as near;
5. decide (decisions.py): answer, clarify or unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import bm25s
import numpy as np
from rapidfuzz.distance import LCSseq

from guidebot.knowledge.ages import AgeSiblings
from guidebot.knowledge.asks import ASK_MIN, SHORT_MESSAGE, AskIndex
from guidebot.knowledge.catalog import Catalog, Item
from guidebot.knowledge.decisions import (
    MAX_CHOICES,
    MIN_QUERY_COVERAGE,
    MIN_SCORE,
    Decider,
    Decision,
    MatchResult,
    Scored,
)
from guidebot.knowledge.fields import Field
from guidebot.knowledge.kinds import conflicts, kinds_in
from guidebot.knowledge.lexicon import Lexicon, bundled_lexicon
from guidebot.knowledge.normalize import name_variants, normalize
from guidebot.knowledge.places import Elsewhere
from guidebot.knowledge.query import Query, Unit
from guidebot.knowledge.reading import MessageReader, base_tokenizer, cut_words, search_words
from guidebot.knowledge.situations import for_other_situation, marked_situations
from guidebot.knowledge.typos import HAN, TypoCorrector

__all__ = ["CatalogIndex", "Decision", "MatchResult", "Scored"]


# Scoring (fractions, see the module docstring); the decision thresholds are in decisions.py.
CANDIDATES = 25
MAX_CONCEPT_ITEMS = 60
UNMATCHED_CAP = 1.0
MIN_EVIDENCE = 0.45
QUERY_SHARE = 0.7
NAME_SHARE = 0.3
EXACT_NAME_BONUS = 0.15
EXACT_FULL_LENGTH = 20
SYNONYM_NAME_FACTOR = 0.85
UNASKED_SITUATION_PENALTY = 0.06
ASKED_SITUATION_BONUS = 0.08
# Example asks (asks.py): an item's support is the similarity of its nearest asks, summed by rank.
ASK_CANDIDATES = 10
# A candidate among the best few whose name differs from a near rival's (within CONTRADICTION_RANGE) only
# by words the message does not say, while it says one of the rival's, loses CONTRADICTION_PENALTY.
CONTRADICTION_WINDOW = 6
CONTRADICTION_RANGE = 0.3
CONTRADICTION_PENALTY = 0.1
ASK_SCALE = 0.6
ASK_CLEAR_LEAD = 0.3  # support by which an item's asks are nearer than any other item's to lead clearly
ASK_SCALE_SHORT = 0.4  # a short message is contained in many asks: their support is surer evidence in a longer one


class CatalogIndex:
    """An index over one catalog; build once, then call `match` as often as needed."""

    def __init__(self, catalog: Catalog, lexicon: Lexicon | None = None) -> None:
        self.catalog = catalog
        self.lexicon = lexicon or bundled_lexicon()
        self.items = list(catalog.items)
        self._tokenizer = base_tokenizer()
        self._user_words = self._build_user_dictionary()
        # Per item: the compact strings its name, main item and aliases are matched in.
        self._texts: list[tuple[str, ...]] = []
        self._name_texts: list[tuple[str, ...]] = []
        corpus: list[list[str]] = []
        word_df: dict[str, int] = defaultdict(int)
        self._exact: dict[str, list[int]] = defaultdict(list)
        for position, item in enumerate(self.items):
            names = list(name_variants(item.name))
            aliases = [a for a in (normalize(a).replace(" ", "") for a in item.aliases) if a]
            main = list(name_variants(item.main_item)) if item.main_item else []
            self._name_texts.append(tuple(dict.fromkeys(names + aliases)))
            self._texts.append(tuple(dict.fromkeys(names + aliases + main)))
            for text in dict.fromkeys(names[:2] + aliases):
                if len(text) >= 2:
                    self._exact[text].append(position)
            tokens = self._doc_tokens(names[:1] + aliases + main[:1])
            corpus.append(tokens)
            for token in set(tokens):
                word_df[token] += 1
        self._word_df = dict(word_df)
        self._joined = ["|".join(texts) for texts in self._texts]
        self._situations = [marked_situations(names[0]) for names in self._name_texts]
        self._kinds = [kinds_in("|".join(names)) for names in self._name_texts]
        self._age_siblings = AgeSiblings([names[0] for names in self._name_texts])
        self._situations_of = {item.code: kinds for item, kinds in zip(self.items, self._situations, strict=True)}
        self._bm25 = bm25s.BM25()
        self._bm25.index(corpus, show_progress=False)
        # Name lengths by their first two characters: the exact-name scan only tries lengths that can fit.
        self._exact_lengths: dict[str, tuple[int, ...]] = {}
        for name in self._exact:
            self._exact_lengths[name[:2]] = (*self._exact_lengths.get(name[:2], ()), len(name))
        self._concept_items = self._build_concept_items()
        self.typos = TypoCorrector(self._user_words, self._word_df, self.lexicon.stopwords, self._tokenizer)
        self._reader = MessageReader(self.lexicon, self._texts, self._user_words, self._word_df, self.typos,
                                     self._tokenizer)
        self.elsewhere = Elsewhere(catalog.center.name + catalog.center.address)
        self._whole_names = {text for texts in self._texts for text in texts}
        self._asks = AskIndex([item.name for item in self.items], self.lexicon.item_asks, self.lexicon.outside)
        self._codes_with_asks = {self.items[position].code for position in self._asks.items_with_asks}
        self._decider = Decider(self)
        self._name_word_cache: dict[str, frozenset[str]] = {}

    # ------------------------------------------------------------------ building

    def _build_user_dictionary(self) -> set[str]:
        words = {w for w in self.lexicon.phrases if 2 <= len(w) <= 12}
        for item in self.catalog.items:
            words.update(a for a in (normalize(a).replace(" ", "") for a in item.aliases) if 2 <= len(a) <= 12)
        return words

    def _doc_tokens(self, texts: Sequence[str]) -> list[str]:
        tokens: list[str] = []
        for text in dict.fromkeys(texts):
            tokens.extend(w for w in cut_words(self._user_words, text) if w not in self.lexicon.stopwords)
            tokens.extend("#" + ch for ch in text if HAN.match(ch))
        return tokens

    def _build_concept_items(self) -> dict[str, list[int]]:
        """For every official phrase of the synonym table, the items whose text contains it."""
        phrases = {m for synonym in self.lexicon.synonyms for m in synonym.means}
        found: dict[str, list[int]] = {}
        by_char: dict[str, set[int]] = defaultdict(set)
        for position, texts in enumerate(self._texts):
            for text in texts:
                for ch in text:
                    by_char[ch].add(position)
        for phrase in phrases:
            if not phrase:
                continue
            candidates = set.intersection(*(by_char.get(ch, set()) for ch in set(phrase)))
            hits = [p for p in sorted(candidates) if any(phrase in t for t in self._texts[p])]
            # A phrase in very many names (登记, 许可) picks nothing out; BM25 ranks those instead.
            if hits and len(hits) <= MAX_CONCEPT_ITEMS:
                found[phrase] = hits
        return found

    # ------------------------------------------------------------------ reading a message

    # ------------------------------------------------------------------ scoring

    def _candidates(self, query: Query) -> set[int]:
        candidates: set[int] = set()
        if query.tokens:
            scores = self._bm25.get_scores(query.tokens)
            if len(scores):
                k = min(CANDIDATES, len(scores))
                top = np.argpartition(-scores, k - 1)[:k]
                candidates.update(int(i) for i in top if scores[i] > 0)
        for unit in query.units:
            if unit.is_concept:
                for phrase in unit.alternatives:
                    candidates.update(self._concept_items.get(phrase, ()))
        text = query.text
        for start in range(len(text) - 1):
            for length in self._exact_lengths.get(text[start : start + 2], ()):
                candidates.update(self._exact.get(text[start : start + length], ()))
        return candidates

    def score(self, position: int, query: Query) -> Scored:
        joined = self._joined[position]
        matched = unmatched = foreign = 0.0
        # What the message says about this item: its own words plus the official phrases of the
        # concepts this item matched (not those of every concept, or all siblings would look named).
        evidence = [query.text]
        for unit in query.units:
            found, phrase = _unit_match(unit, joined)
            if unit.soft and not found:
                continue
            matched += unit.weight * found
            if unit.foreign:
                foreign += unit.weight * (1.0 - found)
            else:
                unmatched += unit.weight * (1.0 - found)
            if unit.is_concept and found == 1.0:
                evidence.append(phrase)
        item_evidence = "|".join(evidence)
        # Unexplained words count against an item only up to a cap: a long message full of
        # background (我是协兴镇的，今年67了…) must not drown the few words that name the item.
        explained = matched + min(unmatched, UNMATCHED_CAP) + foreign
        query_coverage = matched / explained if matched >= MIN_EVIDENCE else 0.0
        # The citizen's own words name an item more surely than a synonym's official phrase does.
        name_coverage = 0.0
        for name in self._name_texts[position]:
            if name:
                literal = LCSseq.similarity(name, query.text) / len(name)
                via_synonym = SYNONYM_NAME_FACTOR * LCSseq.similarity(name, item_evidence) / len(name)
                name_coverage = max(name_coverage, literal, via_synonym)
        # 注销, 作废, 变更 … in a name the message never asked for: a sibling situation, not this one.
        # "new" is what a message naming no situation means; once another is asked, it is a sibling too.
        situations = self._situations[position]
        other_situation = for_other_situation(situations, query.situations)
        exact = not other_situation and any(
            name in query.text for name in self._name_texts[position] if len(name) >= 2
        )
        bonus = EXACT_NAME_BONUS * min(1.0, EXACT_FULL_LENGTH / max(len(query.text), 1)) if exact else 0.0
        score = QUERY_SHARE * query_coverage + NAME_SHARE * name_coverage + bonus
        exempt = {"new"} if not query.situations else set()
        score -= UNASKED_SITUATION_PENALTY * len(situations - query.situations - exempt)
        if situations & query.situations:
            score += ASKED_SITUATION_BONUS
        # Asks like this message were asked of this item: evidence beyond the words of its name.
        ask = query.asked.get(position)
        support = ask.similarity if ask is not None else 0.0
        # An item whose name marks no situation (电子社会保障卡签发) is a new one: 申领 asks for it too.
        # Only for the situation the message asks (补交: not 参保登记), or for a new one when it asks
        # none (残疾人证: not 换领): asks about one topic share its words whatever situation they ask —
        # unless this item's asks are the nearest by far: then they hear a situation the words do not
        # name (钱包遭摸了，身份证也在里头 → 挂失).
        asked_for = ((situations or {"new"}) & query.situations if query.situations
                     else not situations - {"new"} or position == query.clear_leader)
        scale = ASK_SCALE_SHORT if len(query.text) < SHORT_MESSAGE else ASK_SCALE
        support_bonus = scale * (support - ASK_MIN) if support >= ASK_MIN and asked_for else 0.0
        if support_bonus:
            score += support_bonus
            query_coverage = max(query_coverage, support)
        if self.other_kind(position, query):
            # 拖拉机驾驶证 for 汽车驾驶证: another kind of the same thing, never the answer.
            return Scored(self.items[position], 0.0, 0.0, name_coverage, support, 0.0)
        return Scored(self.items[position], max(score, 0.0), query_coverage, name_coverage, support, support_bonus)

    def rank(self, message: str, top: int = 10) -> tuple[Query, list[Scored]]:
        query = self._reader.read(message)
        if not query.units:
            return query, []
        if query.text not in self._whole_names:
            # A message that is just a name (食品经营许可) says nothing the asks could add to.
            found = self._asks.search(query.text)
            query.asked, query.outside_ask = found.items, found.outside
            nearest, next_nearest = query.nearest_supports()
            if found.items and nearest - next_nearest >= ASK_CLEAR_LEAD and query.field is Field.ALL:
                query.clear_leader = next(iter(found.items))
        candidates = self._candidates(query)
        candidates.update(p for p in list(query.asked)[:ASK_CANDIDATES] if query.asked[p].similarity >= ASK_MIN)
        scored = [self.score(p, query) for p in candidates]
        scored.sort(key=_rank_key)
        return query, self._demote_contradicted(query, scored)[:top]

    def _demote_contradicted(self, query: Query, scored: list[Scored]) -> list[Scored]:
        """Among the best candidates, one whose name differs from a rival's only by words the message
        does not say, while it says one of the rival's, yields to the rival: 结婚登记咋个在网上预约 is not
        离婚登记预约, however near that item's asks are."""
        best = scored[:CONTRADICTION_WINDOW]
        names = [name_variants(s.item.name)[0] for s in best]
        said = [self._said_words(name, query) for name in names]
        demoted = {
            i for i, loser in enumerate(best) for j, rival in enumerate(best)
            if i != j and rival.score >= max(loser.score - CONTRADICTION_RANGE, MIN_SCORE)
            and rival.query_coverage >= MIN_QUERY_COVERAGE
            and _told_apart(names[j], said[j], names[i], said[i])
        }
        if not demoted:
            return scored
        adjusted = [replace(s, score=s.score - CONTRADICTION_PENALTY) if i in demoted else s
                    for i, s in enumerate(best)]
        return sorted(adjusted, key=_rank_key) + scored[CONTRADICTION_WINDOW:]

    def told_apart(self, name: str, rival: str, query: Query, *, rival_said: bool = False) -> bool:
        """The message says a word of `name` that `rival` lacks, and none of `rival`'s that `name` lacks
        (with `rival_said`, it must say one of `rival`'s): 结婚登记咋个在网上预约 tells 结婚登记预约 from
        离婚登记预约."""
        name, rival = name_variants(name)[0], name_variants(rival)[0]
        of_rival = self._said_words(rival, query)
        return (bool(of_rival) or not rival_said) and _told_apart(name, self._said_words(name, query), rival, of_rival)

    def _said_words(self, name: str, query: Query) -> list[str]:
        words = self._name_word_cache.get(name)
        if words is None:
            words = self._name_word_cache[name] = frozenset(
                w for w in search_words(name)
                if len(w) >= 2 and w not in self.lexicon.stopwords and all(HAN.match(c) for c in w))
        return [w for w in words if w in query.text]

    def has_asks(self, item: Item) -> bool:
        return item.code in self._codes_with_asks

    def situations_of(self, item: Item) -> frozenset[str]:
        return self._situations_of[item.code]

    def other_kind(self, position: int, query: Query) -> bool:
        """The message names another kind of the thing this item is for (kinds.py), or gives ages only
        a sibling of this item is for (ages.py)."""
        return ((bool(query.kinds) and conflicts(self._kinds[position], query.kinds))
                or self._age_siblings.too_young_or_old(position, query.ages))

    def match(self, message: str, top: int = MAX_CHOICES) -> MatchResult:
        query, ranked = self.rank(message, top=max(top, 20))
        return self._decider.decide(query, ranked, top)


def _told_apart(name: str, of_name: Sequence[str], rival: str, of_rival: Sequence[str]) -> bool:
    """Of the words said, one of `name`'s is not in `rival`, and every one of `rival`'s is in `name`."""
    return all(w in name for w in of_rival) and any(w not in rival for w in of_name)


def _rank_key(scored: Scored) -> tuple[float, float, bool, int]:
    return -scored.score, -scored.name_coverage, not scored.item.has_guide, len(scored.item.name)


def _unit_match(unit: Unit, joined: str) -> tuple[float, str]:
    """How well one piece of evidence is found in an item's texts (1 found, partial for long words),
    and which of its phrasings was found. `joined` holds the texts separated by "|", which no
    phrase contains, so a phrase found in it lies within one text."""
    best, best_phrase = 0.0, ""
    for alternative in unit.alternatives:
        if alternative in joined:
            return 1.0, alternative
        if len(alternative) >= 3:
            partial = _partial_match(alternative, joined)
            if partial > best:
                best, best_phrase = partial, alternative
    return best, best_phrase


@lru_cache(maxsize=262144)
def _partial_match(word: str, text: str) -> float:
    """Credit for a long word partly in a name (个体户 in 个体工商户): its longest common run, scaled."""
    for length in range(min(len(word), len(text)), 1, -1):
        for start in range(0, len(word) - length + 1):
            if word[start : start + length] in text:
                return 0.8 * length / len(word)
    return 0.0
