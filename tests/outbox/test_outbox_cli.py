"""Broadcast planning, SMS segments, scheduling, the staff commands, stats and the wiring."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from guidebot.cli import main
from guidebot.dialog.replies import Inbound
from guidebot.outbox.broadcast import (
    OPT_OUT_FOOTER,
    broadcast_report,
    create_broadcast,
    dry_run,
    release_due_broadcasts,
    sms_segments,
)
from guidebot.outbox.models import OutboxMessage, RecipientStop
from guidebot.outbox.ratings import record_rating
from guidebot.outbox.stats import collect_stats, render_stats
from guidebot.store.db import Store, now, open_store
from tests.outbox.fakes_outbox import add_notice_subscribers
from tests.store_fixtures import postgres_schema_url, store, store_url  # noqa: F401


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("闭" * 70, "UCS-2", 1), ("闭" * 71, "UCS-2", 2), ("闭" * 134, "UCS-2", 2), ("闭" * 135, "UCS-2", 3),
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("[" * 80, "GSM-7", 1), ("[" * 81, "GSM-7", 2), ("a" * 69 + "😀", "UCS-2", 2),
], ids=["ucs2-70", "ucs2-71", "ucs2-134", "ucs2-135", "gsm-160", "gsm-161", "gsm-306", "gsm-307",
        "gsm-ext-80", "gsm-ext-81", "surrogate-pair"])
def test_sms_segments(text: str, encoding: str, segments: int) -> None:
    cost = sms_segments(text)
    assert (cost.encoding, cost.segments) == (encoding, segments)


def test_dry_run_counts_recipients_per_channel_and_sms_segments(store: Store) -> None:  # noqa: F811
    add_notice_subscribers(store, [f"{i}" for i in range(7)], channel="telegram")
    add_notice_subscribers(store, [f"+86138000000{i:02d}" for i in range(3)], channel="sms")
    add_notice_subscribers(store, ["+8613900000000"], channel="sms", scope="dept:公安局", department="公安局")
    with store.session() as session:
        session.add(RecipientStop(channel="sms", recipient="+8613800000000", reason="invalid", stopped_at=now()))
    text = "本周五下午三点起大厅闭厅，请合理安排时间。" * 3
    plan = dry_run(store, text, sms_signature="【广安区政务中心】")
    assert plan.recipients == {"telegram": 7, "sms": 3}  # the stopped number is left out
    assert plan.sms is not None and plan.sms.segments == 2
    assert plan.sms_segments_total == 6
    assert plan.text.endswith(OPT_OUT_FOOTER)
    assert dry_run(store, text, department="公安局").recipients == {"telegram": 7, "sms": 3}
    assert dry_run(store, text, department="民政局").recipients == {"telegram": 7, "sms": 2}
    with store.session() as session:
        assert session.scalar(select(OutboxMessage)) is None  # nothing written


def test_a_scheduled_broadcast_lives_in_the_database(store_url: str) -> None:  # noqa: F811
    first = open_store(store_url)
    add_notice_subscribers(first, ["1", "2"])
    at = now() + dt.timedelta(hours=2)
    plan = create_broadcast(first, "周六延时服务", at=at)
    assert plan.scheduled and plan.broadcast_id
    assert release_due_broadcasts(first) == 0
    first.close()
    restarted = open_store(store_url)  # a restart
    try:
        add_notice_subscribers(restarted, ["3"])  # subscribed meanwhile: gets it too
        assert release_due_broadcasts(restarted, at=at) == 1
        assert release_due_broadcasts(restarted, at=at) == 0  # once
        [report] = broadcast_report(restarted)
        assert report.status == "queued" and report.recipients == 3 and report.by_status == {"queued": 3}
    finally:
        restarted.close()


def test_a_broadcast_twice_to_the_same_person_is_two_messages_but_one_row_each(store: Store) -> None:  # noqa: F811
    add_notice_subscribers(store, ["1"])
    add_notice_subscribers(store, ["1"], scope="dept:公安局", department="公安局")  # two scopes, one person
    create_broadcast(store, "通知一")
    create_broadcast(store, "通知二")
    with store.session() as session:
        assert sorted(session.scalars(select(OutboxMessage.text)).all()) == [
            "通知一" + OPT_OUT_FOOTER, "通知二" + OPT_OUT_FOOTER]


def test_empty_text_is_refused(store: Store) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="不能为空"):
        create_broadcast(store, "  ")


def test_staff_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("GUIDEBOT_DATABASE_URL", url)
    opened = open_store(url)
    add_notice_subscribers(opened, ["1", "2"])
    add_notice_subscribers(opened, ["+8613800000001"], channel="sms")
    opened.close()
    assert main(["broadcast", "--text", "本周五下午3点闭厅", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "试运行" in out and "telegram: 2 人" in out and "sms: 1 人" in out and "1 段" in out
    assert main(["broadcast", "--text", "本周五下午3点闭厅"]) == 0
    assert "群发 #1" in capsys.readouterr().out
    assert main(["broadcast", "--text", "元旦放假通知", "--at", "2099-12-30 09:00"]) == 0
    assert "定时 2099-12-30 09:00" in capsys.readouterr().out
    assert main(["outbox", "status"]) == 0
    out = capsys.readouterr().out
    assert "queued 3" in out and "#1" in out and "#2" in out and "定时" in out
    assert main(["stats"]) == 0
    assert "承诺件按时办结率" in capsys.readouterr().out


def test_stats(store: Store) -> None:  # noqa: F811
    store.log_query("telegram", "a", "办身份证要带什么", "answer", "511A")
    store.log_query("telegram", "b", "身份证", "answer", "511A")
    store.log_query("telegram", "b", "火星移民怎么办", "unknown")
    store.log_query("telegram", "c", "火星移民怎么办", "unknown")
    record_rating(store, "telegram", "a", 5, subject="answer", item_code="511A")
    record_rating(store, "telegram", "b", 1, subject="answer", item_code="511A")
    stats = collect_stats(store)
    assert sum(n for _, n in stats.questions_per_day) == 4
    assert stats.unanswered[0].text == "火星移民怎么办" and stats.unanswered[0].count == 2
    assert stats.top_items == [("511A", 2)]
    assert stats.ratings == {5: 1, 1: 1} and len(stats.flagged) == 1
    text = "\n".join(render_stats(stats))
    assert "非常不满意：1" in text and "满意率（基本满意及以上）：50.0%" in text


def test_stats_on_time_rate_and_working_days(store: Store, tmp_path: Path) -> None:  # noqa: F811
    from guidebot.cases.importer import import_cases
    from tests.store_fixtures import new_case_row, update_row, write_case_csv

    rows = [new_case_row("SX2025092600001", accepted="2025-09-26 10:00"),  # Fri; 5 days → 10-10
            update_row("SX2025092600001", "已办结", "2025-10-10 16:00"),
            new_case_row("SX2025092600002", accepted="2025-09-26 10:00"),
            update_row("SX2025092600002", "准予许可", "2025-10-13 09:00"),
            new_case_row("SX2025092600003", accepted="2025-09-26 10:00")]
    assert import_cases(store, write_case_csv(tmp_path / "c.csv", rows)).ok
    stats = collect_stats(store, promised_days=lambda code: 5, today=dt.date(2025, 11, 1))
    assert (stats.finished_on_time, stats.finished_late, stats.open_overdue) == (1, 1, 1)
    assert stats.on_time_rate == 0.5
    assert stats.average_working_days == 6.0  # 5 and 7 working days (Sat 10-11 was a 调休 working day)


def test_build_wires_subscriptions_and_the_rating_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from guidebot.app import build
    from guidebot.settings import Settings

    monkeypatch.setenv("GUIDEBOT_RATING_PROMPT", "on")
    bot = build(Settings.load(environ={"GUIDEBOT_DATA_DIR": str(tmp_path)}))
    try:
        def say(text: str) -> str:
            replies = bot.engine.handle(Inbound(channel="telegram", sender="77", text=text))
            return "\n".join(reply.plain() for reply in replies)

        assert "已订阅中心的全部通知" in say("订阅通知")
        assert "这个回答有帮助吗" in say("结婚登记要带什么")
        assert "已为您退订全部通知" in say("TD")
    finally:
        bot.store.close()
