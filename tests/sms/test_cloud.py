"""The second gateway shape: Aliyun-style approved templates out, JSON callbacks in — against a local
fake of the provider's HTTP API on 127.0.0.1 (no account needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from guidebot.dialog.engine import DialogEngine, MemoryStore
from guidebot.handlers.sms.cloud import (
    TEMPLATES,
    AliyunChannel,
    AliyunSender,
    TemplateError,
    match_template,
    percent_encode,
    render_template,
    sign_request,
)
from guidebot.handlers.sms.kannel import RateLimiter
from guidebot.handlers.sms.service import DeliveryReport, SmsConversations, StopList
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.knowledge.matching import CatalogIndex
from guidebot.outbox.sender import SendOutcome, SendResult
from tests.sms import fake_aliyun
from tests.sms.fake_aliyun import FakeAliyun
from tests.sms.kannel_harness import AppServer, free_ports

SECRET = "cloud-secret-0123456789"
PHONE = "13800138000"


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[FakeAliyun, str]]:
    fake = FakeAliyun()
    (port,) = free_ports(1)
    server = AppServer(fake.app(), port).start()
    try:
        yield fake, server.url + "/"
    finally:
        server.stop()


@pytest.fixture
def fake(provider: tuple[FakeAliyun, str]) -> FakeAliyun:
    provider[0].sent.clear()
    provider[0].failures.clear()
    provider[0].stall_after_accept, provider[0].queries = 0.0, 0
    return provider[0]


@pytest.fixture
def settings(provider: tuple[FakeAliyun, str]) -> SmsSettings:
    return SmsSettings.from_env({
        "GUIDEBOT_SMS_GATEWAY": "aliyun",
        "GUIDEBOT_SMS_SECRET": SECRET,
        "GUIDEBOT_ALIYUN_SMS_URL": provider[1],
        "GUIDEBOT_ALIYUN_ACCESS_KEY_ID": fake_aliyun.KEY_ID,
        "GUIDEBOT_ALIYUN_ACCESS_KEY_SECRET": fake_aliyun.KEY_SECRET,
        "GUIDEBOT_ALIYUN_SIGN_NAME": fake_aliyun.SIGN_NAME,
        "GUIDEBOT_ALIYUN_TEMPLATES": fake_aliyun.TEMPLATE_SETTING,
        "GUIDEBOT_SMS_SIGNATURE": "【区政务服务中心】",
        "GUIDEBOT_SMS_RATE": "1000",
    })


def send(settings: SmsSettings, recipient: str, text: str, store: MemoryStore | None = None,
         reference: str = "", attempt: int = 1) -> SendResult:
    async def run() -> SendResult:
        async with AliyunSender(settings, stops=StopList(store) if store else None,
                                limiter=RateLimiter(1000)) as sender:
            return await sender.send(recipient, text, reference=reference, attempt=attempt)
    return asyncio.run(run())


# -- templates ---------------------------------------------------------------------------------


def test_every_template_round_trips() -> None:
    for template in TEMPLATES:
        params = {name: f"值{i}" for i, name in enumerate(template.params)}
        text = render_template(template.name, **params)
        assert "${" not in text
        assert match_template(text) == (template, params)


def test_case_status_text() -> None:
    text = render_template("case_status", case_no="SX2025092600001", status="已办结", next_step="请到3号窗口领取。")
    assert text == "您的办件SX2025092600001状态已更新为：已办结。请到3号窗口领取。"


@pytest.mark.parametrize(("name", "params", "says"), [
    pytest.param("nope", {}, "unknown SMS template", id="unknown"),
    pytest.param("case_done", {"case_no": "SX1"}, "missing window", id="missing"),
    pytest.param("notice", {"center": "区政务服务中心", "content": "字" * 36}, "longer than 35", id="too-long"),
])
def test_template_errors(name: str, params: dict[str, str], says: str) -> None:
    with pytest.raises(TemplateError, match=says):
        render_template(name, **params)


def test_free_text_matches_no_template() -> None:
    assert match_template("您好，请携带身份证到3号窗口。") is None


def test_signature_follows_the_documented_recipe() -> None:
    assert percent_encode("a b*~+/中") == "a%20b%2A~%2B%2F%E4%B8%AD"
    params = {"AccessKeyId": "id", "Action": "SendSms", "TemplateParam": '{"a":"中 文"}'}
    assert sign_request(params, "secret") == fake_aliyun.expected_signature(params, "secret", "POST")


# -- sending -----------------------------------------------------------------------------------


def test_a_case_status_goes_as_its_template(settings: SmsSettings, fake: FakeAliyun) -> None:
    text = render_template("case_status", case_no="SX2025092600001", status="已办结", next_step="请到3号窗口领取。")
    result = send(settings, "+86 138 0013 8000", "【区政务服务中心】" + text, reference="row-9")
    assert result.outcome is SendOutcome.SENT and result.provider_id == "row-9"
    [sent] = fake.sent
    assert (sent.phone, sent.template_code, sent.out_id) == ("13800138000", "SMS_1001", "row-9")
    assert sent.params == {"case_no": "SX2025092600001", "status": "已办结", "next_step": "请到3号窗口领取。"}


def test_a_notice_goes_as_the_notice_template(settings: SmsSettings, fake: FakeAliyun) -> None:
    result = send(settings, PHONE, render_template("notice", center="区政务服务中心", content="本周六上午照常办公。"))
    assert result.outcome is SendOutcome.SENT
    assert fake.sent[0].template_code == "SMS_1004"


def test_a_second_attempt_the_provider_already_accepted_is_not_sent_again(settings: SmsSettings,
                                                                         fake: FakeAliyun) -> None:
    text = render_template("case_done", case_no="SX1", window="3号窗口")
    assert send(settings, PHONE, text, reference="41").outcome is SendOutcome.SENT
    assert fake.queries == 0  # a first attempt asks nothing
    again = send(settings, PHONE, text, reference="41", attempt=2)  # its outcome was lost
    assert again.outcome is SendOutcome.SENT and again.provider_id == "41"
    assert [s.out_id for s in fake.sent] == ["41"] and fake.queries == 1
    other = send(settings, PHONE, text, reference="42", attempt=2)  # an earlier try that never arrived
    assert other.outcome is SendOutcome.SENT
    assert [s.out_id for s in fake.sent] == ["41", "42"] and fake.queries == 3  # today, then yesterday


def test_when_the_records_cannot_be_read_it_is_sent_again(settings: SmsSettings, fake: FakeAliyun) -> None:
    text = render_template("case_done", case_no="SX1", window="3号窗口")
    send(settings, PHONE, text, reference="41")
    result = send(replace(settings, aliyun_key_secret="wrong"), PHONE, text, reference="41", attempt=2)
    assert result.outcome is SendOutcome.RETRY  # the query was refused, so it tried to send (and was refused)
    assert fake.queries == 0 and len(fake.sent) == 1


def test_free_text_is_refused_not_sent(settings: SmsSettings, fake: FakeAliyun) -> None:
    result = send(settings, PHONE, "您好，这是一条未经报备的自由文本。")
    assert result.outcome is SendOutcome.FAILED and "template" in result.error
    assert fake.sent == []


def test_a_template_without_a_code_is_refused(settings: SmsSettings, fake: FakeAliyun) -> None:
    result = send(replace(settings, aliyun_templates={}), PHONE, render_template("case_done", case_no="SX1",
                                                                                 window="3号窗口"))
    assert result.outcome is SendOutcome.FAILED and "GUIDEBOT_ALIYUN_TEMPLATES" in result.error


def test_invalid_and_stopped_numbers_are_not_sent(settings: SmsSettings, fake: FakeAliyun) -> None:
    text = render_template("case_done", case_no="SX1", window="3号窗口")
    assert send(settings, "12345", text).outcome is SendOutcome.STOPPED
    store = MemoryStore()
    StopList(store).stop("+8613800138000", "optout")
    assert send(settings, PHONE, text, store).outcome is SendOutcome.STOPPED
    assert fake.sent == []


def test_a_wrong_key_secret_is_an_account_problem(settings: SmsSettings, fake: FakeAliyun) -> None:
    result = send(replace(settings, aliyun_key_secret="wrong"), PHONE,
                  render_template("case_done", case_no="SX1", window="3号窗口"))
    assert result.outcome is SendOutcome.RETRY and "SignatureDoesNotMatch" in result.error


@pytest.mark.parametrize(("code", "outcome"), [
    pytest.param("isv.MOBILE_NUMBER_ILLEGAL", SendOutcome.STOPPED, id="invalid-number"),
    pytest.param("isv.BUSINESS_LIMIT_CONTROL", SendOutcome.THROTTLED, id="flow-control"),
    pytest.param("isv.DAY_LIMIT_CONTROL", SendOutcome.THROTTLED, id="day-limit"),
    pytest.param("isp.SYSTEM_ERROR", SendOutcome.RETRY, id="system-error"),
    pytest.param("isv.AMOUNT_NOT_ENOUGH", SendOutcome.RETRY, id="no-balance"),
    pytest.param("isv.BLACK_KEY_CONTROL_LIMIT", SendOutcome.FAILED, id="forbidden-words"),
    pytest.param("isv.TEMPLATE_MISSING_PARAMETERS", SendOutcome.FAILED, id="missing-parameters"),
])
def test_provider_errors_map_to_outcomes(settings: SmsSettings, fake: FakeAliyun, code: str,
                                         outcome: SendOutcome) -> None:
    fake.fail_next(code)
    result = send(settings, PHONE, render_template("case_done", case_no="SX1", window="3号窗口"))
    assert result.outcome is outcome and code in result.error


def test_an_unreachable_provider_is_retried(settings: SmsSettings) -> None:
    (port,) = free_ports(1)
    result = send(replace(settings, aliyun_url=f"http://127.0.0.1:{port}/"), PHONE,
                  render_template("case_done", case_no="SX1", window="3号窗口"))
    assert result.outcome is SendOutcome.RETRY


# -- callbacks ---------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []

    def __call__(self, report: DeliveryReport) -> bool:
        self.reports.append(report)
        return True


@pytest.fixture
def guidebot_url(settings: SmsSettings, small_index: CatalogIndex) -> Iterator[tuple[str, MemoryStore, Sink]]:
    store = MemoryStore()
    sink = Sink()
    conversations = SmsConversations(DialogEngine(small_index, store), store)
    channel = AliyunChannel(conversations, settings, AliyunSender(settings), sink,
                            reply_params={"phone": "010-12345678", "hours": "周一至周五9:00-17:00"})
    (port,) = free_ports(1)
    server = AppServer(Starlette(routes=channel.routes()), port).start()
    try:
        yield server.url, store, sink
    finally:
        server.stop()


def push(url: str, path: str, payload: object, secret: str = SECRET) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return httpx.post(f"{url}{path}?secret={secret}", content=body, headers={"Content-Type": "application/json"},
                      timeout=10, trust_env=False)


def test_an_inbound_sms_is_acknowledged_and_answered_with_a_template(
        guidebot_url: tuple[str, MemoryStore, Sink], fake: FakeAliyun) -> None:
    url, _store, _sink = guidebot_url
    item = {"phone_number": PHONE, "send_time": "2026-11-26 10:00:00", "content": "办身份证要带什么",
            "sign_name": "区政务服务中心", "dest_code": "1234", "sequence_id": 1234567890}
    response = push(url, "/sms/aliyun/inbound", [item])
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "接收成功"}
    [sent] = fake.sent
    assert (sent.phone, sent.template_code) == (PHONE, "SMS_1005")
    assert sent.params == {"phone": "010-12345678", "hours": "周一至周五9:00-17:00"}
    again = push(url, "/sms/aliyun/inbound", [item])  # the provider pushes again: answered once
    assert again.json()["code"] == 0 and len(fake.sent) == 1


def test_td_through_the_cloud_stops_the_number(guidebot_url: tuple[str, MemoryStore, Sink],
                                               fake: FakeAliyun) -> None:
    url, store, _sink = guidebot_url
    push(url, "/sms/aliyun/inbound", [{"phone_number": PHONE, "content": "TD", "sequence_id": 7,
                                       "send_time": "2026-11-26 10:00:00"}])
    assert StopList(store).reason("+8613800138000") == "optout"


def test_delivery_reports_reach_the_sink_and_invalid_numbers_are_stopped(
        guidebot_url: tuple[str, MemoryStore, Sink]) -> None:
    url, store, sink = guidebot_url
    reports = [
        {"phone_number": PHONE, "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功",
         "biz_id": "1^0", "out_id": "row-1", "send_time": "2026-11-26 10:00:00", "report_time": "2026-11-26 10:00:03"},
        {"phone_number": "13900000001", "success": False, "err_code": "MOBILE_NUMBER_ILLEGAL", "err_msg": "空号",
         "biz_id": "2^0", "out_id": "row-2"},
        {"phone_number": "13900000002", "success": False, "err_code": "EXPIRED", "biz_id": "3^0", "out_id": ""},
        {"phone_number": "1390000****", "success": False, "err_code": "MOBILE_NUMBER_ILLEGAL", "biz_id": "4^0"},
    ]
    response = push(url, "/sms/aliyun/report", reports)
    assert response.status_code == 200 and response.json()["code"] == 0
    outcomes = {r.provider_id: r.outcome for r in sink.reports}
    assert outcomes == {"row-1": SendOutcome.DELIVERED, "row-2": SendOutcome.STOPPED, "3^0": SendOutcome.FAILED,
                        "4^0": SendOutcome.STOPPED}
    assert (StopList(store).reason("+8613900000001") or "").startswith("invalid number")
    assert StopList(store).reason("+8613900000002") is None


@pytest.mark.parametrize(("body", "status"), [
    pytest.param(b"not json", 400, id="not-json"),
    pytest.param(b"\xff\xfe", 400, id="not-utf8"),
    pytest.param(b"[1, 2]", 400, id="not-objects"),
    pytest.param(b"[]", 200, id="empty-array"),
    pytest.param(json.dumps([{"content": "no phone"}]).encode(), 200, id="item-without-phone-skipped"),
])
def test_bad_pushes(guidebot_url: tuple[str, MemoryStore, Sink], body: bytes, status: int) -> None:
    url, _store, _sink = guidebot_url
    assert push(url, "/sms/aliyun/inbound", body).status_code == status
    assert push(url, "/sms/aliyun/report", body).status_code == status


def test_pushes_without_the_secret_are_refused(guidebot_url: tuple[str, MemoryStore, Sink]) -> None:
    url, _store, _sink = guidebot_url
    assert push(url, "/sms/aliyun/inbound", [], secret="wrong-secret-000").status_code == 403
    assert push(url, "/sms/aliyun/report", [], secret="wrong-secret-000").status_code == 403
