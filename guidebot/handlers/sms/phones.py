"""Phone numbers for the SMS channel: one spelling (E.164) everywhere inside guidebot.

``13800138000``, ``+86 138 0013 8000``, ``8613800138000`` and ``008613800138000`` are the same
number, ``+8613800138000``: the conversation state, the stop list and the outbox all key on that.
Gateways get the spelling they want back from :func:`for_gateway`. Logs get :func:`masked`.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from guidebot.privacy import mask_phone

__all__ = ["for_gateway", "masked", "normalize", "normalize_recipient"]

_PHONE_CHARS = re.compile(r"\+?[0-9 ()-]+")
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text or len(text) > 32 or not _PHONE_CHARS.fullmatch(text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def normalize(raw: str, region: str = "CN") -> str | None:
    """The E.164 spelling of a sender's number, or None when it is not a phone number at all.

    Possible but not valid numbers (a short code such as 10086) are kept: a citizen's reply must
    reach whoever wrote, and the gateway knows best where that is.
    """
    number = _parse(raw, region)
    if number is None:
        return None
    if not phonenumbers.is_valid_number(number):
        digits = re.sub(r"\D", "", raw or "")
        # 8613800138000 without a plus: the country code is already there.
        if digits and not (raw or "").strip().startswith("+"):
            with_plus = _parse("+" + digits, region)
            if with_plus is not None and phonenumbers.is_valid_number(with_plus):
                number = with_plus
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalize_recipient(raw: str, region: str = "CN") -> str | None:
    """The E.164 spelling of a number guidebot may send an SMS to: a valid mobile number, or None."""
    e164 = normalize(raw, region)
    if e164 is None:
        return None
    number = phonenumbers.parse(e164)
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return e164


def for_gateway(e164: str, number_format: str = "national", region: str = "CN") -> str:
    """How a gateway wants the number: ``national`` gives 13800138000 for numbers of ``region``
    (and E.164 for any other country); ``e164`` gives +8613800138000."""
    if number_format == "e164":
        return e164
    number = phonenumbers.parse(e164)
    if phonenumbers.region_code_for_number(number) == region.upper():
        return re.sub(r"\D", "", phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))
    return e164


def masked(raw: str) -> str:
    """The number as it may appear in a log line: 138****8000."""
    return mask_phone(raw or "") or "(none)"
