"""What a case number (办件编号) looks like, and finding one inside a citizen's message.

Accepted format (docs/cases.md), after normalising full-width characters to ASCII and letters
to upper case:

- 8 to 32 characters of digits, upper-case letters and hyphens, not starting or ending with a
  hyphen, containing at least 8 digits;
- standing alone: not part of a longer run of letters, digits or hyphens;
- not shaped like something else a citizen types: a mobile number (13812345678,
  138-1234-5678), a resident ID number (18 characters with a birth date inside), a date
  (20240511, 2024-05-11) or a landline (0826-2345678).

Matching is exact: the normalised number must equal a stored one character for character.
Nothing is ever corrected, completed or matched approximately — a near miss must not reveal
someone else's case.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

__all__ = ["find_case_number", "is_case_number", "normalize_case_number"]

_CANDIDATE_RE = re.compile(r"(?<![0-9A-Z-])[0-9A-Z][0-9A-Z-]{6,30}[0-9A-Z](?![0-9A-Z-])")
_MIN_DIGITS = 8
_MOBILE_RE = re.compile(r"1[3-9]\d{9}")
_ID_RE = re.compile(r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dX]")
_DATE_RE = re.compile(r"(\d{4})-?(\d{1,2})-?(\d{1,2})")
_LANDLINE_RE = re.compile(r"0\d{2,3}-\d{7,8}")
_DROP_DIGITS = str.maketrans("", "", "0123456789")


def normalize_case_number(text: str) -> str:
    """Full-width to ASCII, letters upper-cased, surrounding spaces dropped."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def _looks_like_something_else(token: str) -> bool:
    digits_and_hyphens_only = re.fullmatch(r"[\d-]+", token) is not None
    if digits_and_hyphens_only and _MOBILE_RE.fullmatch(token.replace("-", "")):
        return True
    if _ID_RE.fullmatch(token) or _LANDLINE_RE.fullmatch(token):
        return True
    date_match = _DATE_RE.fullmatch(token)
    if date_match:
        year, month, day = (int(part) for part in date_match.groups())
        try:
            dt.date(year, month, day)
        except ValueError:
            return False
        return True
    return False


def _is_candidate(token: str) -> bool:
    digits = len(token) - len(token.translate(_DROP_DIGITS))
    return digits >= _MIN_DIGITS and not _looks_like_something_else(token)


def is_case_number(text: str) -> bool:
    """True when ``text`` as a whole (after normalising) has the accepted case-number format."""
    token = normalize_case_number(text)
    return _CANDIDATE_RE.fullmatch(token) is not None and _is_candidate(token)


def find_case_number(text: str) -> str | None:
    """The first case number inside ``text`` (normalised), or None.

    ``"帮我查下办件ＳＣ２０２４０５１１０００１２的进度"`` → ``"SC2024051100012"``.
    """
    for match in _CANDIDATE_RE.finditer(unicodedata.normalize("NFKC", text).upper()):
        if _is_candidate(match.group()):
            return match.group()
    return None
