"""Text normalization shared by the catalog index and the citizen's message.

Both sides go through the same function, so that 身份證, ｓｈｅｎ, 身份证​ (with a zero-width space)
and 身份证!! meet 身份证 in the index.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")

# Characters that carry no meaning for matching: zero-width, bidi controls, variation selectors.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ufe00-\ufe0f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MARKUP = re.compile(r"<[^<>]{0,200}>|&[a-z]{2,8};|&#\d{1,6};")
_SPACES = re.compile(r"\s+")

MAX_MATCH_CHARS = 300


def normalize(text: str) -> str:
    """Full→half width, traditional→simplified, lower case; markup, emoji, invisible and control
    characters removed; punctuation and symbols turned into single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _MARKUP.sub(" ", text)
    text = _T2S.convert(text).lower()
    kept = "".join(ch if ch.isalnum() or ch == "-" else " " for ch in text)
    return _SPACES.sub(" ", kept).strip()


def compact(text: str) -> str:
    """Normalized text without spaces: the form names are compared in."""
    return normalize(text).replace(" ", "")


_BRACKETS = re.compile(r"[（(][^（）()]{0,40}[）)]")


@lru_cache(maxsize=8192)
def name_variants(name: str) -> tuple[str, ...]:
    """The compact forms an item name is matched in: as written, and without its parentheses.

    食品（含保健食品）经营许可（新办） → 食品含保健食品经营许可新办, 食品经营许可
    """
    full = compact(name)
    bare = compact(_BRACKETS.sub("", name))
    inner_kept = compact(_BRACKETS.sub(lambda m: m.group(0) if len(m.group(0)) <= 6 else "", name))
    variants = [full]
    for variant in (bare, inner_kept):
        if variant and variant not in variants:
            variants.append(variant)
    return tuple(variants)


def has_meaningful_text(text: str) -> bool:
    """False for messages of only emoji, punctuation, markup or whitespace."""
    return bool(normalize(text))
