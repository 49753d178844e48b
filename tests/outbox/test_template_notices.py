"""Case notices through a template-only cloud gateway: every notice is an approved template's text."""

from __future__ import annotations

import datetime as dt

import pytest

from guidebot.handlers.sms.cloud import match_template
from guidebot.outbox.notify import _notice_for, template_notice_text
from guidebot.store.models import Case


def case(status: str, note: str | None = None, window: str | None = "综合窗口3号") -> Case:
    return Case(case_no="SX2025092600001", status=status, status_note=note, service_window=window,
                status_at=dt.datetime(2025, 10, 9, 10, 30))


@pytest.mark.parametrize(
    ("status", "note", "template", "expected"),
    [
        ("审查中", None, "case_status", {"case_no": "SX2025092600001", "status": "审查中"}),
        ("待补正", "营业执照复印件、租房合同" * 3, "case_correction", {"window": "综合窗口3号"}),
        ("准予许可", None, "case_done", {"window": "综合窗口3号"}),
        ("已办结", None, "case_done", {"case_no": "SX2025092600001"}),
        ("不予受理", "材料不齐" * 20, "case_status", {"status": "不予受理"}),
    ],
)
def test_every_status_renders_an_approved_template(status: str, note: str | None, template: str,
                                                   expected: dict[str, str]) -> None:
    text = template_notice_text(case(status, note))
    matched = match_template(text)
    assert matched is not None, text
    assert matched[0].name == template
    assert expected.items() <= matched[1].items()
    assert all(len(value) <= 35 for value in matched[1].values())


def test_only_sms_through_the_cloud_gateway_gets_template_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDEBOT_SMS_GATEWAY", "aliyun")
    assert match_template(_notice_for("sms", case("审查中"), "居民身份证办理")) is not None
    telegram = _notice_for("telegram", case("审查中"), "居民身份证办理")
    assert "居民身份证办理" in telegram and match_template(telegram) is None
    monkeypatch.setenv("GUIDEBOT_SMS_GATEWAY", "kannel")
    assert "居民身份证办理" in _notice_for("sms", case("审查中"), "居民身份证办理")
