"""Reading a citizen's message: from its text to the evidence the matcher scores items by (a Query).

1. normalize it (width, traditional → simplified, emoji, markup …) and detect the field asked;
2. read chat-app pinyin the synonym table lists (sfz → 身份证) and correct homophone typos against the
   catalog's vocabulary by pinyin (身份正 → 身份证);
3. find the documents and fees the catalog never names (银行卡, 物业费): evidence against every item;
4. find the domain synonyms it uses (开饭馆 → 食品经营许可), each a *concept*, and the citizen's words
   for a situation (想关掉, 要改);
5. split the rest into jieba words, dropping filler words, each weighted by how rare it is in the catalog.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Container, Sequence
from functools import lru_cache

import jieba

from guidebot.knowledge.ages import ages_said
from guidebot.knowledge.fields import FIELD_WORDS as field_words
from guidebot.knowledge.fields import detect_field
from guidebot.knowledge.kinds import kinds_in
from guidebot.knowledge.lexicon import Lexicon, Synonym
from guidebot.knowledge.normalize import MAX_MATCH_CHARS, normalize
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

# Weights of the kinds of evidence in a message.
CONCEPT_WEIGHT = 1.0
UNSEEN_WORD_WEIGHT = 0.5
FOREIGN_THING_WEIGHT = 1.5  # 银行卡, 签证: counted in full against every item, beyond UNMATCHED_CAP
SITUATION_WORD_WEIGHT = 0.4  # 想关掉, 要改: a citizen's word for a situation the catalog does not use
SINGLE_CHAR_FACTOR = 0.25
# A synonym phrase of this many characters or more is also found with up to GAP_CHARS others put
# between its parts (看不见学按摩 in 看不见，想学个按摩); a shorter one only as written.
GAPPED_MIN_LENGTH = 4
GAP_CHARS = 4
# Words for documents, cards and fees: one the catalog never names (银行卡, 签证, 房产证) says the message is
# about something else, however well the rest of it fits an item.
_THING_ENDINGS = ("证", "照", "卡", "费")
# 办证, 领证, 交费: a verb and its object name no document, whatever jieba's dictionary says.
_THING_VERBS = frozenset("办领拿发考换补开上取交缴收退续要查验持")
_CASE_NUMBER = re.compile(r"[a-z0-9-]{8,}")
_DIGITS = re.compile(r"\d+")
_LATIN_WORD = re.compile(r"[a-z]{2,14}")


class MessageReader:
    """Reads messages against one catalog's vocabulary and the synonym table; built once per index."""

    def __init__(self, lexicon: Lexicon, item_texts: Sequence[Sequence[str]], user_words: set[str],
                 word_df: dict[str, int], typos: TypoCorrector, tokenizer: jieba.Tokenizer) -> None:
        self.lexicon = lexicon
        self.typos = typos
        self._tokenizer = tokenizer
        self._user_words = user_words
        self._word_df = word_df
        self._n = max(len(item_texts), 1)
        # Every run of up to five characters ending in 证/照/卡/费 inside a name: the documents and
        # fees the catalog itself names (养蜂证 in 养蜂证换证), whatever jieba makes of the name.
        self._named_things = {
            text[max(0, end - length) : end + 1]
            for texts in item_texts
            for text in texts
            for end, ch in enumerate(text)
            if ch in _THING_ENDINGS
            for length in range(1, 5)
        }
        self.synonym_index = self._build_synonym_index()
        self._spelled_out = self._build_spelled_out()
        self._say_lengths = sorted({len(say) for say in self.synonym_index}, reverse=True)
        # By first character, longest first, each with its characters: a phrase whose characters are not
        # all in the message cannot be spread through it.
        self._gapped_says: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        for say in sorted(self.synonym_index, key=len, reverse=True):
            if len(say) >= GAPPED_MIN_LENGTH:
                self._gapped_says[say[0]].append((say, frozenset(say)))
        self._stem_cache: dict[tuple[str, ...], tuple[str, ...]] = {}

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

    # ------------------------------------------------------------------ reading

    def read(self, message: str) -> Query:
        """The message as evidence: its compact text, field, situations, kinds, ages and units."""
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
        query.tokens = [w for w in cut_words(self._user_words, compact_text) if w not in self.lexicon.stopwords]
        query.tokens += ["#" + ch for ch in compact_text if HAN.match(ch)]
        for phrase in concept_texts:
            query.tokens.extend(cut_words(self._user_words, phrase))
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
            known = (thing in self._named_things or thing in self.typos.vocabulary or thing in self.synonym_index
                     or field_words.search(thing) or (len(thing) == 2 and thing[0] in _THING_VERBS))
            end = begin + len(thing)
            inside_phrase = any(b < end and begin < e and (b < begin or e > end) for b, e, _ in phrases)
            if not known and not inside_phrase and self._tokenizer.FREQ.get(word, 0) >= EVERYDAY_WORD_FREQ:
                spans.append((begin, end))
        return spans

    def _find_synonyms(self, text: str) -> list[tuple[int, int, list[Synonym]]]:
        """Longest-first, non-overlapping synonym phrases in the message."""
        taken = [False] * len(text)
        found = [(start, end, self.synonym_index[text[start:end]])
                 for start, end in _phrase_spans(text, self.synonym_index, self._say_lengths, taken)]
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
                    found.append((start, end, self.synonym_index[say]))
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


def cut_words(user_words: Container[str], text: str) -> list[str]:
    """jieba search-mode words plus user-dictionary words found verbatim (no global jieba state)."""
    words = list(search_words(text))
    for length in range(2, min(12, len(text)) + 1):
        for start in range(0, len(text) - length + 1):
            piece = text[start : start + length]
            if piece in user_words:
                words.append(piece)
    return words



@lru_cache(maxsize=65536)
def search_words(text: str) -> tuple[str, ...]:
    """jieba's search-mode words; cached, since main items and names repeat across items and builds."""
    return tuple(w for w in base_tokenizer().cut_for_search(text) if w.strip())


@lru_cache(maxsize=1)
def base_tokenizer() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


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
