"""From a citizen's message to a decision: answer one item, clarify among a few, or say unknown.

Pure: a catalog goes in, an index is built once, `match(text)` comes out. No database, no I/O.

How a message is read:
1. normalize it (width, traditional → simplified, emoji, markup …) and detect the field asked;
2. correct homophone typos against the catalog's vocabulary by pinyin (身份正 → 身份证);
3. find the domain synonyms it uses (开饭馆 → 食品经营许可) — each becomes a *concept*;
4. split the rest into jieba words, dropping filler words;
5. retrieve candidates with BM25 over words and characters, plus every item a concept or a name hits;
6. score each candidate by how much of the message it explains (query coverage, IDF-weighted) and
   how much of its own name the message mentions (name coverage). Both are fractions in [0, 1], so
   one set of thresholds holds for a catalog of 20 items and of 100,000;
7. add the support of the item's example asks (asks.py): messages citizens send about it, however
   far from its name (想开个小饭馆 → 食品经营许可). Asks about what the center does not handle
   (小车驾照, 公积金) decline the message, naming the thing, when no item is as near.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Container, Sequence
from dataclasses import replace
from functools import lru_cache

import bm25s
import jieba
import numpy as np
from rapidfuzz.distance import LCSseq

from guidebot.knowledge.ages import AgeSiblings, ages_said
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
from guidebot.knowledge.fields import FIELD_WORDS as field_words
from guidebot.knowledge.fields import Field, detect_field
from guidebot.knowledge.kinds import conflicts, kinds_in
from guidebot.knowledge.lexicon import Lexicon, Synonym, bundled_lexicon
from guidebot.knowledge.normalize import MAX_MATCH_CHARS, name_variants, normalize
from guidebot.knowledge.places import Elsewhere
from guidebot.knowledge.query import Query, Unit
from guidebot.knowledge.situations import (
    SITUATION_MARKS,
    SITUATION_SAY_LENGTHS,
    SITUATION_SAYS,
    asked_situations,
    marked_situations,
)
from guidebot.knowledge.typos import EVERYDAY_WORD_FREQ, HAN, TypoCorrector

jieba.setLogLevel(60)

__all__ = ["CatalogIndex", "Decision", "MatchResult", "Scored"]


# Scoring (fractions, see the module docstring); the decision thresholds are in decisions.py.
CANDIDATES = 25
MAX_CONCEPT_ITEMS = 60

# Weights of the kinds of evidence in a message.
CONCEPT_WEIGHT = 1.0
UNSEEN_WORD_WEIGHT = 0.5
FOREIGN_THING_WEIGHT = 1.5  # 银行卡, 签证: counted in full against every item, beyond UNMATCHED_CAP
SITUATION_WORD_WEIGHT = 0.4  # 想关掉, 要改: a citizen's word for a situation the catalog does not use
# A synonym phrase of this many characters or more is also found with up to GAP_CHARS others put
# between its parts (看不见学按摩 in 看不见，想学个按摩); a shorter one only as written.
GAPPED_MIN_LENGTH = 4
GAP_CHARS = 4
SINGLE_CHAR_FACTOR = 0.25
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
# Words for documents, cards and fees: one the catalog never names (银行卡, 签证, 房产证) says the message is
# about something else, however well the rest of it fits an item.
_THING_ENDINGS = ("证", "照", "卡", "费")
# 办证, 领证, 交费: a verb and its object name no document, whatever jieba's dictionary says.
_THING_VERBS = frozenset("办领拿发考换补开上取交缴收退续要查验")
_CASE_NUMBER = re.compile(r"[a-z0-9-]{8,}")
_DIGITS = re.compile(r"\d+")
_LATIN_WORD = re.compile(r"[a-z]{2,14}")


@lru_cache(maxsize=65536)
def _search_words(text: str) -> tuple[str, ...]:
    """jieba's search-mode words; cached, since main items and names repeat across items and builds."""
    return tuple(w for w in _base_tokenizer().cut_for_search(text) if w.strip())


@lru_cache(maxsize=1)
def _base_tokenizer() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


class CatalogIndex:
    """An index over one catalog; build once, then call `match` as often as needed."""

    def __init__(self, catalog: Catalog, lexicon: Lexicon | None = None) -> None:
        self.catalog = catalog
        self.lexicon = lexicon or bundled_lexicon()
        self.items = list(catalog.items)
        self._tokenizer = _base_tokenizer()
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
        # Every run of up to five characters ending in 证/照/卡/费 inside a name: the documents and
        # fees the catalog itself names (养蜂证 in 养蜂证换证), whatever jieba makes of the name.
        self._named_things = {
            text[max(0, end - length) : end + 1]
            for texts in self._texts
            for text in texts
            for end, ch in enumerate(text)
            if ch in _THING_ENDINGS
            for length in range(1, 5)
        }
        self._situations = [marked_situations(names[0]) for names in self._name_texts]
        self._kinds = [kinds_in("|".join(names)) for names in self._name_texts]
        self._age_siblings = AgeSiblings([names[0] for names in self._name_texts])
        self._situations_of = {item.code: kinds for item, kinds in zip(self.items, self._situations, strict=True)}
        self._n = max(len(self.items), 1)
        self._bm25 = bm25s.BM25()
        self._bm25.index(corpus, show_progress=False)
        # Name lengths by their first two characters: the exact-name scan only tries lengths that can fit.
        self._exact_lengths: dict[str, tuple[int, ...]] = {}
        for name in self._exact:
            self._exact_lengths[name[:2]] = (*self._exact_lengths.get(name[:2], ()), len(name))
        self._synonym_index = self._build_synonym_index()
        self._spelled_out = self._build_spelled_out()
        self._say_lengths = sorted({len(say) for say in self._synonym_index}, reverse=True)
        # By first character, longest first, each with its characters: a phrase whose characters are not
        # all in the message cannot be spread through it.
        self._gapped_says: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        for say in sorted(self._synonym_index, key=len, reverse=True):
            if len(say) >= GAPPED_MIN_LENGTH:
                self._gapped_says[say[0]].append((say, frozenset(say)))
        self._stem_cache: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._concept_items = self._build_concept_items()
        self.typos = TypoCorrector(self._user_words, self._word_df, self.lexicon.stopwords, self._tokenizer)
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

    def _cut(self, text: str) -> list[str]:
        """jieba search-mode words plus user-dictionary words found verbatim (no global jieba state)."""
        words = list(_search_words(text))
        for length in range(2, min(12, len(text)) + 1):
            for start in range(0, len(text) - length + 1):
                piece = text[start : start + length]
                if piece in self._user_words:
                    words.append(piece)
        return words

    def _doc_tokens(self, texts: Sequence[str]) -> list[str]:
        tokens: list[str] = []
        for text in dict.fromkeys(texts):
            tokens.extend(w for w in self._cut(text) if w not in self.lexicon.stopwords)
            tokens.extend("#" + ch for ch in text if HAN.match(ch))
        return tokens

    def _build_synonym_index(self) -> dict[str, list[Synonym]]:
        index: dict[str, list[Synonym]] = defaultdict(list)
        for synonym in self.lexicon.synonyms:
            for say in synonym.say:
                index[say].append(synonym)
        return dict(index)

    def _build_spelled_out(self) -> dict[str, str]:
        """Pinyin a synonym entry lists (sfz, shebaoka) → its first Chinese phrase (身份证, 社保卡): read
        in Chinese, a message is also near the asks, which are compared by Chinese characters."""
        spelled: dict[str, str] = {}
        for synonym in self.lexicon.synonyms:
            head = next((say for say in synonym.say if all(HAN.match(ch) for ch in say)), None)
            if head is None:
                continue
            for say in synonym.say:
                if _LATIN_WORD.fullmatch(say):
                    spelled.setdefault(say, head)
        return spelled

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

    def _read(self, message: str) -> Query:
        text = normalize(message)[:MAX_MATCH_CHARS]
        field_asked = detect_field(text)
        compact_text = _LATIN_WORD.sub(lambda m: self._spelled_out.get(m.group(0), m.group(0)), text.replace(" ", ""))
        compact_text = self.typos.correct(compact_text)
        query = Query(text=compact_text, field=field_asked, situations=asked_situations(compact_text),
                      kinds=kinds_in(compact_text), ages=ages_said(compact_text))
        # Case numbers are never fuzzy-matched: they leave the message here; other digits only count
        # inside a synonym phrase (满60岁, 4050人员) and leave after those are found.
        residual = _CASE_NUMBER.sub(" ", compact_text)
        phrases = self._find_synonyms(residual)
        things = self._foreign_things(residual, phrases)
        for begin, end in things:
            thing = residual[begin:end]
            query.units.append(Unit(alternatives=(thing,), weight=FOREIGN_THING_WEIGHT, text=thing, foreign=True))
            residual = residual[:begin] + " " * (end - begin) + residual[end:]
        concept_texts: list[str] = []
        implied: frozenset[str] = frozenset()
        for begin, end, synonyms in phrases:
            if any(b <= begin and end <= e for b, e in things):
                continue  # 物业 inside 物业费: the fee is meant, not the phrase
            say = residual[begin:end]
            for synonym in synonyms:
                alternatives = (*synonym.means, *self._stems(synonym), say)
                query.units.append(Unit(alternatives=alternatives, weight=CONCEPT_WEIGHT, is_concept=True, text=say))
                concept_texts.extend(synonym.means)
                implied |= self._implied_situations(synonym)
            residual = residual[:begin] + " " * (end - begin) + residual[end:]
        # 残疾证烂了 → 残疾人证换领: an entry whose every phrase names one situation asks for it.
        query.situations = query.situations | implied
        residual = _DIGITS.sub(" ", residual)
        # 想关掉, 要改, 转过来: the citizen's word for a situation is evidence for the items that
        # name it (注销, 变更, 转移).
        for begin, end in _phrase_spans(residual, SITUATION_SAYS, SITUATION_SAY_LENGTHS):
            say = residual[begin:end]
            weight = self._word_weight(say) if say in self._word_df else SITUATION_WORD_WEIGHT
            query.units.append(Unit(alternatives=(say, *SITUATION_SAYS[say]), weight=weight, text=say))
            residual = residual[:begin] + " " * (end - begin) + residual[end:]
        words = []
        # One jieba pass over the whole residual: it splits at the spaces left by synonyms itself.
        for word in self._tokenizer.cut(" ".join(residual.split())):
            word = word.strip()
            if word and word not in self.lexicon.stopwords and not _is_stray_symbol(word):
                words.append(word)
        seen: set[str] = set()
        for word in words:
            if word in seen:
                continue
            seen.add(word)
            soft = bool(field_words.search(word))
            query.units.append(Unit(alternatives=(word,), weight=self._word_weight(word), text=word, soft=soft))
        query.tokens = [w for w in self._cut(compact_text) if w not in self.lexicon.stopwords]
        query.tokens += ["#" + ch for ch in compact_text if HAN.match(ch)]
        for phrase in concept_texts:
            query.tokens.extend(self._cut(phrase))
        return query

    def _foreign_things(self, text: str, phrases: Sequence[tuple[int, int, object]]) -> list[tuple[int, int]]:
        """Spans of documents, cards and fees the catalog and the synonym table never name: 银行卡, 签证,
        物业费, 天然气费 (a word and the 费 after it). A synonym phrase reaching beyond such a word
        is what the citizen meant (个体执照 ⊃ 执照)."""
        spans: list[tuple[int, int]] = []
        position = 0
        words = list(self._tokenizer.cut(text, HMM=False))
        for index, word in enumerate(words):
            begin, position = position, position + len(word)
            following = words[index + 1] if index + 1 < len(words) else ""
            if following == "费" and len(word) >= 2 and all(HAN.match(ch) for ch in word):
                thing = word + following
            elif len(word) >= 2 and word.endswith(_THING_ENDINGS):
                thing = word
            else:
                continue
            known = (thing in self._named_things or thing in self.typos.vocabulary or thing in self._synonym_index
                     or field_words.search(thing) or (len(thing) == 2 and thing[0] in _THING_VERBS))
            end = begin + len(thing)
            inside_phrase = any(b < end and begin < e and (b < begin or e > end) for b, e, _ in phrases)
            if not known and not inside_phrase and self._tokenizer.FREQ.get(word, 0) >= EVERYDAY_WORD_FREQ:
                spans.append((begin, end))
        return spans

    def _find_synonyms(self, text: str) -> list[tuple[int, int, list[Synonym]]]:
        """Longest-first, non-overlapping synonym phrases in the message."""
        taken = [False] * len(text)
        found = [(start, end, self._synonym_index[text[start:end]])
                 for start, end in _phrase_spans(text, self._synonym_index, self._say_lengths, taken)]
        # 看不见学按摩 in 眼睛看不见，想学个按摩: a long phrase with a few words put between its parts.
        present = set(text)
        for start, ch in enumerate(text):
            if taken[start]:
                continue
            for say, chars in self._gapped_says.get(ch, ()):
                if not chars <= present:
                    continue
                end = _spread_match(say, text, start, len(say) + GAP_CHARS)
                if end and not any(taken[start:end]):
                    found.append((start, end, self._synonym_index[say]))
                    for i in range(start, end):
                        taken[i] = True
                    break
        return sorted(found, key=lambda f: f[0])

    def _implied_situations(self, synonym: Synonym) -> frozenset[str]:
        """The situations (other than new) that every official phrase of a synonym entry names."""
        shared: set[str] | None = None
        for phrase in synonym.means:
            kinds = set(marked_situations(phrase))
            shared = kinds if shared is None else shared & kinds
        return frozenset((shared or set()) - {"new"})

    def _stems(self, synonym: Synonym) -> tuple[str, ...]:
        """Each official phrase cut before its situation word: 个体工商户设立登记 → 个体工商户.

        A table entry may name one situation (个体户 → 个体工商户设立登记); when the message asks
        another (个体户要注销), the stem still finds the sibling, and the situation rules pick it.
        """
        stems = self._stem_cache.get(synonym.means)
        if stems is None:
            found = []
            for phrase in synonym.means:
                cut = min((phrase.find(m) for m in SITUATION_MARKS if phrase.find(m) > 0), default=-1)
                if cut >= 3 and phrase[:cut] not in synonym.means:
                    found.append(phrase[:cut])
            stems = self._stem_cache[synonym.means] = tuple(dict.fromkeys(found))
        return stems

    def _word_weight(self, word: str) -> float:
        df = self._word_df.get(word)
        factor = SINGLE_CHAR_FACTOR if len(word) == 1 else 1.0
        if df is None:
            # A word the catalog never uses: probably noise in a long message, unless it is all there is.
            return UNSEEN_WORD_WEIGHT * factor
        return max(math.log(1 + self._n / df) / math.log(1 + self._n), 0.1) * factor

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
        other_situation = bool(query.situations and situations and not situations & query.situations)
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
        # Only for the situation the message asks (补交: not 参保登记), or for a new one when it asks
        # none (残疾人证: not 换领): asks about one topic share its words whatever situation they ask —
        # unless this item's asks are the nearest by far: then they hear a situation the words do not
        # name (钱包遭摸了，身份证也在里头 → 挂失).
        asked_for = (situations & query.situations if query.situations
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
        query = self._read(message)
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
                w for w in _search_words(name)
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


def _spread_match(phrase: str, text: str, start: int, max_span: int) -> int:
    """The end of `phrase` read in order from text[start] within max_span characters, else 0."""
    position = start
    limit = min(len(text), start + max_span)
    for ch in phrase:
        position = text.find(ch, position, limit)
        if position < 0:
            return 0
        position += 1
    return position


def _phrase_spans(text: str, phrases: Container[str], lengths: Sequence[int],
                  taken: list[bool] | None = None) -> list[tuple[int, int]]:
    """Spans of known phrases in the text: longest first, then leftmost, never overlapping one
    another or a position already `taken` (updated in place). `lengths`: the phrase lengths, longest first."""
    taken = taken if taken is not None else [False] * len(text)
    spans: list[tuple[int, int]] = []
    for length in lengths:
        for start in range(0, len(text) - length + 1):
            end = start + length
            if text[start:end] in phrases and not any(taken[start:end]):
                spans.append((start, end))
                for i in range(start, end):
                    taken[i] = True
    return sorted(spans)


def _is_stray_symbol(word: str) -> bool:
    """A single character that is no Chinese character (a leftover letter or mark): no evidence."""
    return len(word) == 1 and not HAN.match(word)


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
