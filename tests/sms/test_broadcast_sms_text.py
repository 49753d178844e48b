"""Staff broadcasts with their own SMS text; through the template-only cloud gateway (a local fake
of the provider's API) SMS subscribers get the approved notice template, Telegram the full text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from guidebot.cli import main
from guidebot.handlers.sms.cloud import AliyunSender, match_template
from guidebot.handlers.sms.kannel import RateLimiter
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.outbox.broadcast import OPT_OUT_FOOTER, create_broadcast, dry_run, release_due_broadcasts
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import Broadcast, OutboxMessage
from guidebot.store.db import Store, now, open_store
from tests.outbox.fakes_outbox import FakeChannel, add_notice_subscribers
from tests.sms.fake_aliyun import FakeAliyun
from tests.sms.test_cloud import fake, provider, settings  # noqa: F401
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401

FULL = ("本周五（12月5日）下午3点起中心大厅因设备检修暂停对外服务，当天下午的预约顺延至下周一上午办理，"
        "急办事项请拨打中心电话咨询，给您带来不便敬请谅解。")
SHORT = "本周五下午3点起大厅检修暂停服务，预约顺延至下周一。"
TOO_LONG = "本周五下午3点起中心大厅因设备检修暂停对外服务，当天下午的预约顺延至下周一上午办理。"
CENTER = "广安区政务服务中心"  # the bundled center.yaml's name
PHONES = ["+8613800138001", "+8613800138002", "+8613800138003"]


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDEBOT_SMS_GATEWAY", "aliyun")


def counts(store: Store) -> tuple[int, int]:  # noqa: F811
    with store.session() as session:
        return (session.scalar(select(func.count()).select_from(Broadcast)) or 0,
                session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def rows(store: Store) -> dict[str, str]:  # noqa: F811
    with store.session() as session:
        return dict(session.execute(select(OutboxMessage.recipient, OutboxMessage.text)).all())


def test_the_sms_text_fits_the_template_parameter_and_the_others_do_not() -> None:
    assert len(SHORT) <= 35 < len(TOO_LONG) < len(FULL)


@pytest.mark.asyncio
async def test_sms_subscribers_get_the_notice_template_and_telegram_the_full_text(
        store: Store, settings: SmsSettings, fake: FakeAliyun, cloud: None) -> None:  # noqa: F811
    add_notice_subscribers(store, PHONES, channel="sms")
    add_notice_subscribers(store, ["2001", "2002"], channel="telegram")
    plan = create_broadcast(store, FULL, sms_text=SHORT)
    assert plan.recipients == {"sms": 3, "telegram": 2} and plan.warnings == ()
    telegram = FakeChannel("telegram")
    async with AliyunSender(settings, limiter=RateLimiter(1000)) as sms:
        stats = await Dispatcher(store, {"sms": sms, "telegram": telegram}, quiet_hours=None).run(until_idle=True)
    assert stats.by_status == {"sent": 5}
    assert sorted(sent.phone for sent in fake.sent) == [phone.removeprefix("+86") for phone in PHONES]
    assert {sent.template_code for sent in fake.sent} == {"SMS_1004"}  # the notice template's code
    assert all(sent.params == {"center": CENTER, "content": SHORT} for sent in fake.sent)
    assert sorted(telegram.delivered) == [("2001", FULL + OPT_OUT_FOOTER), ("2002", FULL + OPT_OUT_FOOTER)]


def test_an_sms_text_too_long_for_the_template_is_refused_and_nothing_queued(
        store: Store, cloud: None) -> None:  # noqa: F811
    add_notice_subscribers(store, PHONES, channel="sms")
    add_notice_subscribers(store, ["2001"], channel="telegram")
    with pytest.raises(ValueError, match=f"最多 35 字，现为 {len(TOO_LONG)} 字"):
        create_broadcast(store, FULL, sms_text=TOO_LONG)
    with pytest.raises(ValueError, match="--sms-text"):  # no SMS text: the main text must fit
        create_broadcast(store, FULL)
    assert counts(store) == (0, 0)


def test_the_dry_run_warns_with_the_counts_and_segments(store: Store, cloud: None) -> None:  # noqa: F811
    add_notice_subscribers(store, PHONES, channel="sms")
    add_notice_subscribers(store, ["2001"], channel="telegram")
    plan = dry_run(store, FULL, sms_text=TOO_LONG)
    lines = plan.describe()
    assert lines[0].startswith("⚠ 短信网关只能发送已备案的模板短信") and "35" in lines[0]
    assert "收件人：共 4 人" in lines and "  telegram: 1 人" in lines
    assert any(line.startswith("  sms: 3 人，每条 ") for line in lines)
    fits = dry_run(store, FULL, sms_text=SHORT, sms_signature="【广安区政务中心】")
    assert fits.warnings == () and fits.sms is not None and fits.sms.segments == 1
    assert f"短信内容：{CENTER}通知：{SHORT}" in fits.describe()
    assert counts(store) == (0, 0)


def test_without_sms_subscribers_a_long_text_is_fine(store: Store, cloud: None) -> None:  # noqa: F811
    add_notice_subscribers(store, ["2001"], channel="telegram")
    assert create_broadcast(store, FULL).recipients == {"telegram": 1}
    with pytest.raises(ValueError, match="最多 35 字"):  # a later one reaches whoever subscribes by then
        create_broadcast(store, FULL, at=now() + dt.timedelta(hours=1))


def test_a_short_main_text_goes_as_the_template_without_an_sms_text(store: Store, cloud: None) -> None:  # noqa: F811
    add_notice_subscribers(store, PHONES[:1], channel="sms")
    add_notice_subscribers(store, ["2001"], channel="telegram")
    create_broadcast(store, SHORT)
    texts = rows(store)
    template, params = match_template(texts[PHONES[0]]) or (None, {})
    assert template is not None and template.name == "notice" and params["content"] == SHORT
    assert texts["2001"] == SHORT + OPT_OUT_FOOTER


def test_a_scheduled_broadcast_keeps_its_sms_text(store: Store, cloud: None) -> None:  # noqa: F811
    add_notice_subscribers(store, PHONES[:1], channel="sms")
    at = now() + dt.timedelta(hours=1)
    assert create_broadcast(store, FULL, sms_text=SHORT, at=at).scheduled
    add_notice_subscribers(store, ["2001"], channel="telegram")
    assert release_due_broadcasts(store, at=at) == 1
    assert rows(store) == {PHONES[0]: f"{CENTER}通知：{SHORT}", "2001": FULL + OPT_OUT_FOOTER}


def test_through_kannel_the_sms_text_is_sent_as_it_is(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("GUIDEBOT_SMS_GATEWAY", "kannel")
    add_notice_subscribers(store, PHONES[:1], channel="sms")
    add_notice_subscribers(store, ["2001"], channel="telegram")
    plan = create_broadcast(store, FULL, sms_text=TOO_LONG)  # free text: any length
    assert plan.sms is not None and plan.sms.segments == 1
    assert rows(store) == {PHONES[0]: TOO_LONG + OPT_OUT_FOOTER, "2001": FULL + OPT_OUT_FOOTER}
    create_broadcast(store, "第二条通知")
    with store.session() as session:
        assert session.scalar(select(Broadcast.sms_text).order_by(Broadcast.id.desc()).limit(1)) is None


def test_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                     cloud: None) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("GUIDEBOT_DATABASE_URL", url)
    opened = open_store(url)
    add_notice_subscribers(opened, PHONES[:1], channel="sms")
    add_notice_subscribers(opened, ["2001"], channel="telegram")
    opened.close()
    assert main(["broadcast", "--text", FULL, "--sms-text", TOO_LONG, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "试运行" in out and "⚠ 短信网关只能发送已备案的模板短信" in out and "sms: 1 人" in out and "段" in out
    assert main(["broadcast", "--text", FULL, "--sms-text", TOO_LONG]) == 1
    assert "未发送：短信网关只能发送已备案的模板短信" in capsys.readouterr().out
    assert main(["broadcast", "--text", FULL, "--sms-text", SHORT]) == 0
    out = capsys.readouterr().out
    assert "群发 #1" in out and f"短信内容：{CENTER}通知：{SHORT}" in out
    check = open_store(url)
    try:
        assert counts(check) == (1, 2)
    finally:
        check.close()
