"""Phone numbers: one E.164 spelling inside guidebot, the gateway's spelling outside, masked in logs."""

from __future__ import annotations

import pytest

from guidebot.handlers.sms.phones import for_gateway, masked, normalize, normalize_recipient


@pytest.mark.parametrize(("raw", "e164"), [
    pytest.param("13800138000", "+8613800138000", id="national"),
    pytest.param("+8613800138000", "+8613800138000", id="e164"),
    pytest.param("8613800138000", "+8613800138000", id="country-code-no-plus"),
    pytest.param("008613800138000", "+8613800138000", id="00-prefix"),
    pytest.param("138 0013 8000", "+8613800138000", id="spaces"),
    pytest.param("138-0013-8000", "+8613800138000", id="hyphens"),
    pytest.param("１３８００１３８０００", "+8613800138000", id="fullwidth-digits"),
    pytest.param("+14155552671", "+14155552671", id="foreign"),
    pytest.param("10086", "+8610086", id="short-code-kept"),
    pytest.param("abc", None, id="letters"),
    pytest.param("", None, id="empty"),
    pytest.param("1381111****", None, id="masked-number"),
    pytest.param("1" * 40, None, id="too-long"),
])
def test_normalize(raw: str, e164: str | None) -> None:
    assert normalize(raw) == e164


@pytest.mark.parametrize(("raw", "ok"), [
    ("13800138000", True), ("+14155552671", True), ("10086", False), ("12345", False),
    ("02888888888", False), ("1380013800", False), ("abc", False),
])
def test_only_valid_mobile_numbers_are_recipients(raw: str, ok: bool) -> None:
    assert (normalize_recipient(raw) is not None) is ok


def test_gateway_spelling() -> None:
    assert for_gateway("+8613800138000") == "13800138000"
    assert for_gateway("+8613800138000", "e164") == "+8613800138000"
    assert for_gateway("+14155552671") == "+14155552671"


def test_masked_for_logs() -> None:
    assert masked("+8613800138000") == "138****8000"
    assert masked("13800138000") == "138****8000"
    assert masked("") == "(none)"
