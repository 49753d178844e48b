"""End to end with the real Kannel (Debian's kannel + kannel-extras): fakesmsc → bearerbox → smsbox
→ guidebot serve → the answer back to fakesmsc; KannelSender → sendsms → fakesmsc, with delivery
reports back to guidebot serve. Everything listens on 127.0.0.1 on ports picked at test time.

Without the Kannel binaries these tests skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from guidebot.app import Guidebot, _case_dialogs, _outbox_dialogs
from guidebot.cases.importer import import_cases
from guidebot.dialog.engine import DialogEngine, MemoryStore
from guidebot.dialog.replies import Inbound
from guidebot.handlers.sms import routes as sms_routes
from guidebot.handlers.sms.kannel import DLR_PATH, INBOUND_PATH, KannelSender
from guidebot.handlers.sms.render import UCS2_PART, UCS2_SINGLE, count_segments, paginate, render_replies
from guidebot.handlers.sms.service import DeliveryReport, ReportSink, StopList
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.knowledge.matching import CatalogIndex
from guidebot.outbox.broadcast import OPT_OUT_FOOTER, BroadcastPlan, create_broadcast
from guidebot.outbox.dispatcher import Dispatcher
from guidebot.outbox.models import OutboxMessage
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.outbox.subscriptions import subscribe_notices
from guidebot.settings import Settings
from guidebot.store.db import Store, open_store
from guidebot.web import build_web_app
from tests.sms.kannel_harness import AppServer, Kannel, free_ports, require_kannel, running_kannel, wait_until
from tests.store_fixtures import new_case_row, write_case_csv

SECRET = "e2e-secret-0123456789"
CASE = "SX2025092600001"
NOTICE = ("本中心定于本周六上午照常办公，可办理居民身份证、社保卡、医保、户籍等业务，"
          "请携带本人身份证原件，提前在自助机取号，谢谢配合。")


class Reports:
    """Records every delivery report guidebot serve receives, then hands it to the real sink (the
    outbox), whose answer it passes back."""

    def __init__(self, sink: ReportSink) -> None:
        self.items: list[DeliveryReport] = []
        self.lock = threading.Lock()
        self.sink = sink

    async def __call__(self, report: DeliveryReport) -> bool:
        with self.lock:
            self.items.append(report)
        result = self.sink(report)
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    def by_id(self) -> dict[str, list[DeliveryReport]]:
        with self.lock:
            found: dict[str, list[DeliveryReport]] = {}
            for report in self.items:
                found.setdefault(report.provider_id, []).append(report)
            return found


@dataclass
class Stack:
    kannel: Kannel
    app: AppServer
    store: Store
    index: CatalogIndex
    reports: Reports
    settings: SmsSettings

    @property
    def inbound_url(self) -> str:
        return self.app.url + INBOUND_PATH

    def sender(self, **changes: object) -> KannelSender:
        return KannelSender(replace(self.settings, **changes), stops=StopList(self.store))  # type: ignore[arg-type]

    def broadcast_through_outbox(self, text: str, **changes: object) -> tuple[BroadcastPlan, dict[int, str]]:
        """A staff broadcast to the notice subscribers (the outbox's create_broadcast), drained through
        KannelSender by the outbox's dispatcher; returns the plan and {row id: status}."""
        plan = create_broadcast(self.store, text, sms_signature=self.settings.signature)
        with self.store.session() as session:
            ids = set(session.scalars(select(OutboxMessage.id).where(OutboxMessage.broadcast_id == plan.broadcast_id)))

        async def run() -> None:
            async with self.sender(**changes) as sender:
                dispatcher = Dispatcher(self.store, {"sms": sender}, quiet_hours=None, poll_interval=0.05)
                while await dispatcher.drain_once("sms"):
                    pass

        asyncio.run(run())
        return plan, self.statuses(ids)

    def statuses(self, ids: set[int]) -> dict[int, str]:
        with self.store.session() as session:
            rows = session.execute(select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(ids)))
            return {row_id: status for row_id, status in rows}

    def broadcast(self, numbers: list[str], text: str, batch: str, **changes: object) -> list[SendResult]:
        """KannelSender on its own, without the outbox."""
        async def run() -> list[SendResult]:
            async with self.sender(**changes) as sender:
                return list(await asyncio.gather(
                    *(sender.send(number, text, reference=f"{batch}-{i}") for i, number in enumerate(numbers))))
        return asyncio.run(run())


def _stack(tmp: Path, index: CatalogIndex, *, post: bool) -> Iterator[Stack]:
    require_kannel()
    (app_port,) = free_ports(1)
    app_url = f"http://127.0.0.1:{app_port}"
    store = open_store(f"sqlite:///{tmp / 'guidebot.sqlite3'}")
    imported = import_cases(store, write_case_csv(tmp / "cases.csv", [new_case_row(CASE)]))
    assert imported.ok, imported
    # The sub-dialogs guidebot.app.build() wires: case lookup, subscriptions (订阅/退订), ratings.
    outbox_dialogs, _rating_prompt = _outbox_dialogs(store, index)
    engine = DialogEngine(index, store, sub_dialogs=_case_dialogs(store, index.catalog) + outbox_dialogs)
    bot = Guidebot(Settings.load(environ={"GUIDEBOT_DATA_DIR": str(tmp)}), index.catalog, index, engine, store)
    reports = Reports(sms_routes.default_report_sink(bot))
    assert StopList(store).in_outbox  # the database has the outbox: reports and stops go there
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GUIDEBOT_SMS_SECRET", SECRET)
        patch.setenv("GUIDEBOT_SMS_ALLOW", "127.0.0.1")
        patch.setenv("GUIDEBOT_SMS_MAX_SEGMENTS", "3")
        patch.setattr(sms_routes, "default_report_sink", lambda _bot: reports)
        app = AppServer(build_web_app(bot), app_port).start()  # guidebot serve's app, as ROUTE_MODULES builds it
        try:
            with running_kannel(tmp / "kannel", app_url, secret=SECRET, post=post) as kannel:
                settings = SmsSettings.from_env({
                    "GUIDEBOT_SMS_SECRET": SECRET,
                    "GUIDEBOT_KANNEL_SENDSMS_URL": kannel.sendsms_url,
                    "GUIDEBOT_KANNEL_USER": kannel.user,
                    "GUIDEBOT_KANNEL_PASSWORD": kannel.password,
                    "GUIDEBOT_KANNEL_FROM": "12345",
                    "GUIDEBOT_KANNEL_DLR_URL": app_url + DLR_PATH,
                    "GUIDEBOT_SMS_SIGNATURE": "【区政务服务中心】",
                    "GUIDEBOT_SMS_RATE": "400",
                })
                yield Stack(kannel, app, store, index, reports, settings)
        finally:
            app.stop()
            store.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, bundled_index: CatalogIndex) -> Iterator[Stack]:
    (tmp := tmp_path_factory.mktemp("sms-e2e")).joinpath("kannel").mkdir()
    yield from _stack(tmp, bundled_index, post=False)


def expected_pages(index: CatalogIndex, *questions: str) -> list[str]:
    """What the SMS channel should send for the last question, from a fresh engine's replies."""
    engine = DialogEngine(index, MemoryStore())
    replies = []
    for question in questions:
        replies = engine.handle(Inbound(channel="sms", sender="+8613000000000", text=question))
    return paginate(render_replies(replies), 3)


# -- a citizen's conversation ------------------------------------------------------------------


def test_chinese_question_comes_back_as_a_chinese_answer_in_concatenated_parts(stack: Stack) -> None:
    phone = "13800138001"
    started = time.monotonic()
    answer = stack.kannel.ask(phone, "办身份证要带什么材料")
    elapsed = time.monotonic() - started
    pages = expected_pages(stack.index, "办身份证要带什么材料")
    assert len(pages) > 1, "the bundled guide for 居民身份证 is longer than 3 segments"
    assert answer.text == pages[0]
    assert "居民身份证" in answer.text and "户口簿" in answer.text
    assert answer.text.endswith("回复 更多 看后续")
    # Proper concatenation: one reference, parts numbered 1..n of n, each at most 67 UCS-2 characters.
    concat = [part.concat for part in answer.parts]
    assert None not in concat
    assert len({c[0] for c in concat if c}) == 1
    assert [c[1:] for c in concat if c] == [(len(concat), i) for i in range(1, len(concat) + 1)]
    assert 2 <= len(answer.parts) <= 3
    assert all(len(part.text) <= UCS2_PART for part in answer.parts)
    assert elapsed < 10

    second = stack.kannel.ask(phone, "更多")
    assert second.text == pages[1]


def test_a_choice_by_number_answers_the_chosen_item(stack: Stack) -> None:
    phone = "13800138002"
    menu = stack.kannel.ask(phone, "营业执照变更")
    assert "回复1 " in menu.text and "回复2 " in menu.text
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in menu.text.splitlines() if line.startswith("回复")}
    chosen = lines["回复2"]
    answer = stack.kannel.ask(phone, "2")
    assert chosen.split("（")[0][:4] in answer.text
    assert answer.text == expected_pages(stack.index, "营业执照变更", "2")[0]
    # Typed the way the menu reads ("回复1"), it works the same.
    stack.kannel.ask(phone, "营业执照变更")
    literal = stack.kannel.ask(phone, "回复1")
    assert literal.text == expected_pages(stack.index, "营业执照变更", "1")[0]


def test_case_lookup_with_its_second_factor(stack: Stack) -> None:
    phone = "13800138003"
    asked = stack.kannel.ask(phone, f"查件 {CASE}")
    assert "后 4 位" in asked.text
    shown = stack.kannel.ask(phone, "5678")
    assert CASE in shown.text and "张*" in shown.text and "张三" not in shown.text
    assert "已受理" in shown.text
    assert "延缓入学" in shown.text  # the item's name
    other = "13800138004"
    stack.kannel.ask(other, f"查件 {CASE}")
    refused = stack.kannel.ask(other, "0000")
    assert "张" not in refused.text and "没有查到" in refused.text


def test_td_is_confirmed_and_stops_the_next_broadcast(stack: Stack) -> None:
    quitter, stayer = "13800138005", "13800138006"
    for phone in (quitter, stayer):
        assert "已订阅" in stack.kannel.ask(phone, "订阅通知").text
    confirmation = stack.kannel.ask(quitter, "TD")
    assert "退订" in confirmation.text  # the subscription dialog's confirmation, with how many ended
    assert StopList(stack.store).reason("+8613800138005") == "optout"
    stack.kannel.listen()
    before = len(stack.kannel.messages(quitter))
    # The next broadcast, through the outbox: the quitter gets no row, the other number its message.
    plan, statuses = stack.broadcast_through_outbox(NOTICE)
    assert plan.recipients.get("sms") == 1
    assert len(statuses) == 1 and set(statuses.values()) <= {"sent", "delivered"}
    received = stack.kannel.wait_messages(stayer, 1)
    assert received[-1].text == "【区政务服务中心】" + NOTICE + OPT_OUT_FOOTER
    # KannelSender refuses the number on its own too (a message queued before the TD).
    results = stack.broadcast([quitter], NOTICE, batch="td")
    assert results[0].outcome is SendOutcome.STOPPED and "optout" in results[0].error
    time.sleep(0.5)
    assert len(stack.kannel.messages(quitter)) == before


# -- broadcasts and delivery reports -----------------------------------------------------------


def test_broadcast_to_100_subscribers_arrives_intact_each_once_and_reports_update_the_rows(stack: Stack) -> None:
    numbers = [f"1390000{i:04d}" for i in range(100)]
    for number in numbers:
        subscribe_notices(stack.store, "sms", f"+86{number}")
    stack.kannel.listen()
    started = time.monotonic()
    plan, statuses = stack.broadcast_through_outbox(NOTICE)
    assert plan.recipients["sms"] == len(statuses) >= 100 and set(statuses.values()) <= {"sent", "delivered"}
    wait_until(lambda: len([m for m in stack.kannel.messages() if m.receiver in set(numbers)]) >= 100, 30,
               "100 broadcast messages at fakesmsc")
    elapsed = time.monotonic() - started
    received = [m for m in stack.kannel.messages() if m.receiver in set(numbers)]
    assert sorted(m.receiver for m in received) == sorted(numbers)  # each number once
    expected = "【区政务服务中心】" + NOTICE + OPT_OUT_FOOTER
    assert all(m.text == expected for m in received)  # intact, every one
    segments = count_segments(expected)
    assert segments.parts == 2 and all(len(m.parts) == 2 for m in received)
    # Every message's delivery report came back to guidebot serve and marked its outbox row delivered.
    ids = set(statuses)
    wait_until(lambda: set(stack.statuses(ids).values()) == {"delivered"}, 30, "100 rows delivered")
    reports = stack.reports.by_id()
    assert {f"+86{n}" for n in numbers} <= {reports[str(i)][-1].recipient for i in ids}
    assert all(reports[str(i)][-1].outcome is SendOutcome.DELIVERED for i in ids)
    assert elapsed < 30


def test_kannel_sender_alone_sends_100_each_once(stack: Stack) -> None:
    numbers = [f"1390002{i:04d}" for i in range(100)]
    stack.kannel.listen()
    results = stack.broadcast(numbers, NOTICE, batch="b100")
    assert [r.outcome for r in results] == [SendOutcome.SENT] * 100
    assert [r.provider_id for r in results] == [f"b100-{i}" for i in range(100)]
    wait_until(lambda: len([m for m in stack.kannel.messages() if m.receiver in set(numbers)]) >= 100, 30,
               "100 messages at fakesmsc")
    received = [m for m in stack.kannel.messages() if m.receiver in set(numbers)]
    assert sorted(m.receiver for m in received) == sorted(numbers)
    assert all(m.text == "【区政务服务中心】" + NOTICE for m in received)
    wait_until(lambda: all(f"b100-{i}" in stack.reports.by_id() for i in range(100)), 30, "100 delivery reports")


def test_the_rate_limit_spaces_sends(stack: Stack) -> None:
    numbers = [f"1390001{i:04d}" for i in range(10)]
    stack.kannel.listen()
    started = time.monotonic()
    results = stack.broadcast(numbers, "【区政务服务中心】测试", batch="rate", rate=20.0)
    elapsed = time.monotonic() - started
    assert all(r.outcome is SendOutcome.SENT for r in results)
    assert elapsed >= 9 / 20 - 0.02  # 10 single-part messages at 20 parts a second


def test_a_wrong_sendsms_password_is_retried_later_not_lost(stack: Stack) -> None:
    [result] = stack.broadcast(["13800138007"], "测试", batch="pw", kannel_password="wrong")
    assert result.outcome is SendOutcome.RETRY and "GUIDEBOT_KANNEL_USER" in result.error
    [invalid] = stack.broadcast(["12345"], "测试", batch="inv")
    assert invalid.outcome is SendOutcome.STOPPED


# -- bad input from the gateway ----------------------------------------------------------------


def _get(stack: Stack, **params: str) -> httpx.Response:
    return httpx.get(stack.inbound_url, params={"secret": SECRET, **params}, timeout=10, trust_env=False)


BAD_INPUT = [
    pytest.param(dict(text="你好"), 400, "missing sender", id="missing-sender"),
    pytest.param(dict(**{"from": "abc"}, text="你好"), 400, "not a phone number", id="sender-not-a-number"),
    pytest.param(dict(**{"from": "13800138010"}, text="你好", charset="KLINGON-8"), 400, "unsupported charset",
                 id="invalid-charset"),
]


@pytest.mark.parametrize(("params", "status", "says"), BAD_INPUT)
def test_bad_input_gets_a_clear_4xx(stack: Stack, params: dict[str, str], status: int, says: str) -> None:
    response = _get(stack, **params)
    assert response.status_code == status
    assert says in response.text


def test_bad_input_from_a_citizen_gets_a_polite_reply_and_never_a_500(stack: Stack) -> None:
    empty = _get(stack, **{"from": "13800138011"}, text="", id="e-1")
    assert empty.status_code == 200 and "请" in empty.text
    assert empty.headers["X-Kannel-Coding"] == "2"
    long_text = "我想问一下办理身份证的事情" * 385  # 5,005 characters
    huge = _get(stack, **{"from": "13800138012"}, text=long_text, id="e-2")
    assert huge.status_code == 200 and count_segments(huge.text).parts <= 3
    posted = httpx.post(stack.inbound_url, params={"secret": SECRET, "id": "e-3"},
                        content=long_text.encode("utf-16-be"),
                        headers={"Content-Type": 'text/plain; charset="UTF-16BE"', "X-Kannel-From": "13800138012"},
                        timeout=10, trust_env=False)
    assert posted.status_code == 200 and posted.text
    garbage = httpx.get(f"{stack.inbound_url}?secret={SECRET}&from=13800138013&text=%FF%FE%FA&charset=UTF-8",
                        timeout=10, trust_env=False)
    assert garbage.status_code == 200 and "未能识别" in garbage.text
    too_big = httpx.post(stack.inbound_url, params={"secret": SECRET, "from": "13800138014"},
                         content=b"x" * 200_000, timeout=10, trust_env=False)
    assert too_big.status_code == 413
    for refused in (httpx.get(stack.inbound_url, params={"from": "13800138015", "text": "hi"}, trust_env=False),
                    _get(stack, secret="wrong-secret-0000", **{"from": "13800138015"}, text="hi")):
        assert refused.status_code == 403
    # The server is still up and answers normally.
    assert httpx.get(stack.app.url + "/healthz", trust_env=False).status_code == 200
    assert "身份证" in _get(stack, **{"from": "13800138016"}, text="办身份证要带什么", id="e-4").text


def test_5000_characters_typed_into_fakesmsc_get_a_polite_reply(stack: Stack) -> None:
    phone = "13800138017"
    answer = stack.kannel.ask(phone, "请问" * 2500, timeout=30)
    # guidebot's own polite answer (not Kannel's "Could not fetch content" / "Request failed"), within the cap.
    assert "抱歉" in answer.text or "请" in answer.text
    assert "Could not fetch" not in answer.text and "Request" not in answer.text
    assert len(answer.parts) <= 3
    assert all(len(part.text) <= UCS2_PART if len(answer.parts) > 1 else len(part.text) <= UCS2_SINGLE
               for part in answer.parts)


def test_a_repeated_delivery_is_answered_once(stack: Stack) -> None:
    first = _get(stack, **{"from": "13800138018"}, text="结婚登记收费吗", id="dup-1")
    again = _get(stack, **{"from": "13800138018"}, text="结婚登记收费吗", id="dup-1")
    assert first.status_code == again.status_code == 200
    assert "不收费" in first.text
    assert again.text == ""  # omit-empty = true: Kannel sends nothing


def test_delivery_report_endpoint_refuses_strangers(stack: Stack) -> None:
    url = stack.app.url + DLR_PATH
    assert httpx.get(url, params={"id": "x", "type": "1"}, trust_env=False).status_code == 403
    assert httpx.get(url, params={"secret": SECRET, "type": "1"}, trust_env=False).status_code == 400
    assert httpx.get(url, params={"secret": SECRET, "id": "x", "type": "abc"}, trust_env=False).status_code == 400


# -- post-url ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def post_stack(tmp_path_factory: pytest.TempPathFactory, bundled_index: CatalogIndex) -> Iterator[Stack]:
    (tmp := tmp_path_factory.mktemp("sms-e2e-post")).joinpath("kannel").mkdir()
    yield from _stack(tmp, bundled_index, post=True)


def test_post_url_with_raw_ucs2_keeps_chinese_intact(post_stack: Stack) -> None:
    answer = post_stack.kannel.ask("13800138020", "结婚登记收费吗")
    assert answer.text == expected_pages(post_stack.index, "结婚登记收费吗")[0]
    assert "不收费" in answer.text
