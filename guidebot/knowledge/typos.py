"""Homophone typos (身份正 → 身份证, 户口薄 → 户口簿): citizens type pinyin and pick the wrong character.

A window of the message is replaced by a word of the catalog's own vocabulary that sounds the same
(or nearly: one character differs by a confusion input methods forgive — zh/z, l/n, ing/in …), but only
where no known word covers it."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

import jieba
from pypinyin import lazy_pinyin

from guidebot.knowledge.fields import FIELD_WORDS as field_words

EVERYDAY_WORD_FREQ = 5  # jieba dictionary frequency above which a word is taken as meant, not mistyped
NEAR_HOMOPHONE_MAX = 4  # longer near-homophones are rare and costly to look for
# The sound confusions of fuzzy-pinyin input and of Sichuanese speech (湖南 said 福南): a syllable is
# "near" another when these make them equal. Anything looser turns 把户口 into 报户口, 想给他 into 想告他.
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("h", "f"))
_FUZZY_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"))
HAN = re.compile(r"[\u4e00-\u9fff]")


class TypoCorrector:
    """Corrects typos towards one vocabulary: the words of the catalog's names and the phrases of its
    synonym table and aliases."""

    def __init__(self, phrases: Iterable[str], name_words: Iterable[str], stopwords: frozenset[str],
                 tokenizer: jieba.Tokenizer) -> None:
        self._stopwords = stopwords
        self._tokenizer = tokenizer
        self._name_words = set(name_words)
        self.vocabulary = set(phrases) | {
            word for word in self._name_words if 2 <= len(word) <= 8 and all(HAN.match(ch) for ch in word)
        }
        by_sound: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for word in sorted(self.vocabulary):
            if all(HAN.match(ch) for ch in word):
                by_sound[tuple(syllable(ch) for ch in word)].append(word)
        self._exact: dict[tuple[str, ...], str] = {}
        near: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for syllables, words in by_sound.items():
            preferred = max(words, key=self._standing)
            self._exact[syllables] = preferred
            # A synonym phrase that is itself a typo (结昏 beside 结婚) is read as the word it mistypes,
            # so the asks and the words after it see one spelling.
            if self._is_real(preferred):
                self.vocabulary -= {word for word in words if not self._is_real(word)}
            if 3 <= len(syllables) <= NEAR_HOMOPHONE_MAX:
                near[tuple(fuzzy_syllable(s) for s in syllables)].append(preferred)
        self._near = dict(near)

    def _standing(self, word: str) -> tuple[bool, int]:
        return word in self._name_words, self._tokenizer.FREQ.get(word, 0)

    def _is_real(self, word: str) -> bool:
        """A word of the catalog's names or of everyday speech, not a spelling only the synonym table has."""
        return word in self._name_words or self._tokenizer.FREQ.get(word, 0) >= EVERYDAY_WORD_FREQ

    def correct(self, text: str) -> str:
        """Replace homophone or near-homophone windows with catalog words (户口薄 → 户口簿).

        Only a window holding a character that no known word of the message covers is a typo
        candidate: 经营许可 is made of known words and stays as it is; in 身份正, 正 is uncovered.
        """
        if not self._exact or not HAN.search(text):
            return text
        covered = self._known_coverage(text)
        if all(covered):
            return text
        syllables = [syllable(ch) for ch in text]
        # Characters inside an everyday word (老板, 水表, 教室) are only changed towards a long word
        # of the catalog's own names: 教室资格认定 → 教师资格认定, but never 老板走了 → 老爸走了.
        in_word: list[bool] = []  # computed on the first candidate only: most messages have none
        # For each position: the next uncovered character, and where its run of Chinese characters ends.
        size = len(text)
        next_uncovered = [size] * (size + 1)
        han_end = list(range(size + 1))
        for i in range(size - 1, -1, -1):
            next_uncovered[i] = i if not covered[i] else next_uncovered[i + 1]
            if HAN.match(text[i]):
                han_end[i] = han_end[i + 1] if i + 1 < size and HAN.match(text[i + 1]) else i + 1
        replaced: list[tuple[int, int, str]] = []
        start = 0
        while start < len(text):
            found: tuple[int, str] | None = None
            longest = min(6, han_end[start] - start)
            for length in range(longest, 1, -1):
                if next_uncovered[start] >= start + length:
                    break  # shorter windows from here are covered too
                window = text[start : start + length]
                if self._tokenizer.FREQ.get(window, 0) >= EVERYDAY_WORD_FREQ:
                    continue  # a real word (火车 is no typo of 货车); rare dictionary entries (注消) may be
                key = tuple(syllables[start : start + length])
                term = self._exact.get(key)
                if term is None and 3 <= length <= NEAR_HOMOPHONE_MAX:
                    term = self._near_homophone(window, key)
                if term is None:
                    continue
                if not in_word:
                    in_word = self._everyday_words(text)
                changes_word = any(
                    in_word[start + i] for i, (a, b) in enumerate(zip(term, window, strict=False)) if a != b
                )
                if changes_word and not (term and len(term) >= 4 and term in self._name_words):
                    continue
                if term and term != window and _fixes_uncovered(term, window, covered[start : start + length]):
                    found = (length, term)
                    break
            if found:
                replaced.append((start, start + found[0], found[1]))
                start += found[0]
            else:
                start += 1
        for begin, end, term in reversed(replaced):
            text = text[:begin] + term + text[end:]
        return text

    def _everyday_words(self, text: str) -> list[bool]:
        """Which characters jieba reads as part of an everyday word of two or more characters."""
        in_word = [False] * len(text)
        position = 0
        for word in self._tokenizer.cut(text, HMM=False):
            if len(word) >= 2 and self._tokenizer.FREQ.get(word, 0) >= EVERYDAY_WORD_FREQ:
                for i in range(position, position + len(word)):
                    in_word[i] = True
            position += len(word)
        return in_word

    def _known_coverage(self, text: str) -> list[bool]:
        """Which characters belong to a known word, a filler word (怎么, 在哪) or a field word (多久)."""
        covered = [False] * len(text)
        for length in range(1, 9):
            for start in range(0, len(text) - length + 1):
                piece = text[start : start + length]
                if (length > 1 and piece in self.vocabulary) or piece in self._stopwords:
                    for i in range(start, start + length):
                        covered[i] = True
        for match in field_words.finditer(text):
            for i in range(match.start(), match.end()):
                covered[i] = True
        return covered

    def _near_homophone(self, window: str, key: tuple[str, ...]) -> str | None:
        """The first catalog word that sounds like the window up to the fuzzy confusions, with all
        but one of its characters the window's own (高林津贴 → 高龄津贴)."""
        for word in self._near.get(tuple(fuzzy_syllable(s) for s in key), ()):
            if sum(a != b for a, b in zip(word, window, strict=True)) <= 1:
                return word
        return None


@lru_cache(maxsize=65536)
def syllable(ch: str) -> str:
    return lazy_pinyin(ch)[0] if HAN.match(ch) else ch


@lru_cache(maxsize=65536)
def fuzzy_syllable(pinyin: str) -> str:
    """The syllable with the confusable sounds merged: zhang → zan, ling → nin."""
    for sound, merged in _FUZZY_INITIALS:
        if pinyin.startswith(sound):
            pinyin = merged + pinyin[len(sound):]
            break
    for sound, merged in _FUZZY_FINALS:
        if pinyin.endswith(sound):
            pinyin = pinyin[: -len(sound)] + merged
            break
    return pinyin


def _fixes_uncovered(term: str, window: str, covered: list[bool]) -> bool:
    """The correction keeps at least one character and changes only characters no known word covers."""
    kept = sum(a == b for a, b in zip(term, window, strict=True))
    changes_covered = any(a != b and known for a, b, known in zip(term, window, covered, strict=True))
    return kept >= 1 and not changes_covered
