"""Masking of names, phone numbers, ID numbers and secrets — guidebot/privacy.py."""

from __future__ import annotations

import logging

import pytest

from guidebot.privacy import MaskingFilter, mask_id, mask_name, mask_phone, mask_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("１３８１２３４５６７８", "138****5678"),  # full-width digits
        ("12345", "****5"),  # too short to keep a head: never shown in full
    ],
    ids=["plain", "hyphens", "country-code", "full-width", "short"],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("110101199001011234", "110***********1234"),
        ("11010119900101123x", "110***********123X"),
        ("110101900101123", "110********1123"),  # old 15-digit number
    ],
    ids=["18-digit", "x-check-digit", "15-digit"],
)
def test_mask_id(raw: str, masked: str) -> None:
    assert mask_id(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [("张三", "张*"), ("欧阳娜娜", "欧***"), ("李", "*"), (" 王小明 ", "王**"), ("", "")],
    ids=["two", "four", "one", "padded", "empty"],
)
def test_mask_name(raw: str, masked: str) -> None:
    assert mask_name(raw) == masked


def test_mask_text_masks_every_number_and_keeps_the_rest() -> None:
    text = "手机13812345678和13900001111，身份证11010119900101123X，办件SC2024-0511-0001"
    masked = mask_text(text)
    assert masked == "手机138****5678和139****1111，身份证110***********123X，办件SC2024-0511-0001"


@pytest.mark.parametrize(
    "text",
    ["订单号 20240511000123456789 已受理", "共 1234 人", "2024-05-11 09:30"],
    ids=["long-number", "small-number", "datetime"],
)
def test_mask_text_leaves_non_personal_numbers(text: str) -> None:
    assert mask_text(text) == text


def test_mask_text_redacts_telegram_token() -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
    masked = mask_text(f"POST https://api.telegram.org/bot{token}/sendMessage")
    assert token not in masked
    assert "AAHdqTcv" not in masked
    assert "[REDACTED-TOKEN]" in masked


def test_masking_filter_masks_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("guidebot.test_privacy")
    caplog.handler.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("sms from %s: id %s", "13812345678", "110101199001011234")
            try:
                raise ValueError("bad phone 13900001111")
            except ValueError:
                logger.exception("failed for %s", "13700002222")
    finally:
        caplog.handler.removeFilter(caplog.handler.filters[-1])
    output = caplog.text
    for raw in ("13812345678", "110101199001011234", "13900001111", "13700002222"):
        assert raw not in output
    assert "sms from 138****5678: id 110***********1234" in output
    assert "bad phone 139****1111" in output  # the traceback text is masked too
