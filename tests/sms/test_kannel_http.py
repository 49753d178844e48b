"""Kannel's endpoints and KannelSender without Kannel: every request shape Kannel can send, the
access rules, bad input, delivery reports and the sendsms outcomes (a fake sendsms on httpx)."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from guidebot.dialog.engine import DialogEngine, MemoryStore
from guidebot.dialog.replies import Reply
from guidebot.handlers.sms.kannel import DLR_MASK, KannelChannel, KannelSender, RateLimiter, report_outcome
from guidebot.handlers.sms.service import DeliveryReport, SmsConversations, StopList
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.knowledge.matching import CatalogIndex
from guidebot.outbox.sender import SendOutcome
from tests.sms.asgi import AsgiClient

SECRET = "unit-secret-0123456789"
PHONE = "13800138000"


class Sink:
    def __init__(self, known: bool = True) -> None:
        self.reports: list[DeliveryReport] = []
        self.known = known

    def __call__(self, report: DeliveryReport) -> bool:
        self.reports.append(report)
        return self.known


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def settings() -> SmsSettings:
    return SmsSettings.from_env({"GUIDEBOT_SMS_SECRET": SECRET, "GUIDEBOT_KANNEL_USER": "bot",
                                 "GUIDEBOT_KANNEL_PASSWORD": "pw", "GUIDEBOT_SMS_RATE": "1000",
                                 "GUIDEBOT_KANNEL_DLR_URL": "http://127.0.0.1:8080/sms/kannel/dlr"})


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def channel(small_index: CatalogIndex, store: MemoryStore, settings: SmsSettings, sink: Sink) -> KannelChannel:
    return KannelChannel(SmsConversations(DialogEngine(small_index, store), store), settings, sink)


@pytest.fixture
def client(channel: KannelChannel) -> AsgiClient:
    return AsgiClient(Starlette(routes=channel.routes()))


def get(client: AsgiClient, query: str) -> httpx.Response:
    return client.get(f"/sms/kannel?secret={SECRET}&{query}")


def utf8(text: str) -> str:
    return quote(text.encode("utf-8"), safe="")


# -- inbound -----------------------------------------------------------------------------------


def test_get_url_utf8_answer_keeps_chinese_with_coding_2(client: AsgiClient) -> None:
    response = get(client, f"from={PHONE}&to=12345&text={utf8('办身份证要带什么')}&charset=UTF-8&coding=0&id=a1&ts=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-kannel-coding"] == "2"
    assert "居民身份证" in response.content.decode("utf-8")


def test_get_url_raw_ucs2_without_mo_recode(client: AsgiClient) -> None:
    text = quote("结婚登记收费吗".encode("utf-16-be"), safe="")
    response = get(client, f"from={PHONE}&text={text}&charset=UTF-16BE&coding=2")
    assert response.status_code == 200 and "抱歉" not in response.text


def test_post_url_text_plain_ucs2_with_kannel_headers(client: AsgiClient) -> None:
    response = client.post(f"/sms/kannel?secret={SECRET}&id=p1", content="办身份证要带什么".encode("utf-16-be"),
                           headers={"Content-Type": 'text/plain; charset="UTF-16BE"', "X-Kannel-From": PHONE,
                                    "X-Kannel-To": "12345", "X-Kannel-Coding": "2",
                                    "X-Kannel-Time": "2026-11-26 04:25:29"})
    assert response.status_code == 200 and "居民身份证" in response.text


def test_post_form(client: AsgiClient) -> None:
    response = client.post(f"/sms/kannel?secret={SECRET}", data={"from": PHONE, "text": "办身份证要带什么"})
    assert response.status_code == 200 and "居民身份证" in response.text


def test_plain_ascii_answer_is_sent_as_gsm(client: AsgiClient, channel: KannelChannel) -> None:
    channel.conversations.engine = type("E", (), {"handle": lambda self, inbound: [Reply.text("OK, thanks")]})()
    response = get(client, f"from={PHONE}&text=hi")
    assert response.text == "OK, thanks" and response.headers["x-kannel-coding"] == "0"


BAD = [
    pytest.param(f"text={utf8('你好')}", 400, "missing sender", id="missing-sender"),
    pytest.param(f"from=&text={utf8('你好')}", 400, "missing sender", id="empty-sender"),
    pytest.param("from=not-a-phone&text=hi", 400, "not a phone number", id="sender-not-a-number"),
    pytest.param(f"from={PHONE}&text=hi&charset=KLINGON-8", 400, "unsupported charset", id="unknown-charset"),
    pytest.param(f"from={PHONE}&text=hi&charset=rot13", 400, "unsupported charset", id="charset-not-text"),
    pytest.param(f"from={PHONE}&text=%FF%FE%FD&charset=UTF-8", 200, "未能识别", id="undecodable-utf8"),
    pytest.param(f"from={PHONE}&text=%D8%00&charset=UTF-16BE&coding=2", 200, "未能识别", id="broken-ucs2"),
    pytest.param(f"from={PHONE}&text=%00%01%02&coding=1", 200, "未能识别", id="binary-coding-1"),
    pytest.param(f"from={PHONE}&text=", 200, "请", id="empty-text"),
    pytest.param(f"from={PHONE}", 200, "请", id="no-text-param"),
    pytest.param(f"from={PHONE}&text={utf8('问' * 5000)}", 200, "较长", id="5000-chars"),
    pytest.param(f"from={PHONE}&text={utf8(chr(0) * 50)}", 200, "请", id="control-chars"),
]


@pytest.mark.parametrize(("query", "status", "says"), BAD)
def test_bad_input_is_a_clear_4xx_or_a_polite_reply(client: AsgiClient, query: str, status: int,
                                                    says: str) -> None:
    response = get(client, query)
    assert response.status_code == status
    assert says in response.text
    if status == 200:
        assert response.headers.get("x-kannel-coding") == "2"


def test_a_body_too_large_is_413(client: AsgiClient) -> None:
    response = client.post(f"/sms/kannel?secret={SECRET}", content=b"x" * 70_000,
                           headers={"X-Kannel-From": PHONE, "Content-Type": "text/plain"})
    assert response.status_code == 413


def test_an_error_inside_is_a_polite_reply_not_a_500(client: AsgiClient, channel: KannelChannel) -> None:
    class Broken:
        def handle(self, inbound: object) -> list[Reply]:
            raise RuntimeError("database is down")

    channel.conversations.engine = Broken()
    response = get(client, f"from={PHONE}&text=hi")
    assert response.status_code == 200 and "稍后" in response.text


@pytest.mark.parametrize(("query", "client_host", "allow"), [
    pytest.param(f"from={PHONE}&text=hi", "127.0.0.1", "127.0.0.1", id="no-secret"),
    pytest.param(f"secret=wrong-wrong-wrong&from={PHONE}&text=hi", "127.0.0.1", "127.0.0.1", id="wrong-secret"),
    pytest.param(f"secret={SECRET}&from={PHONE}&text=hi", "10.1.2.3", "127.0.0.1", id="address-not-allowed"),
])
def test_only_the_gateway_may_call(small_index: CatalogIndex, query: str, client_host: str, allow: str) -> None:
    settings = SmsSettings.from_env({"GUIDEBOT_SMS_SECRET": SECRET, "GUIDEBOT_SMS_ALLOW": allow})
    store = MemoryStore()
    channel = KannelChannel(SmsConversations(DialogEngine(small_index, store), store), settings)
    test_client = AsgiClient(Starlette(routes=channel.routes()), client=(client_host, 5000))
    assert test_client.get(f"/sms/kannel?{query}").status_code == 403
    assert test_client.get(f"/sms/kannel/dlr?{query}&id=x&type=1").status_code == 403


def test_phone_numbers_and_secret_never_reach_the_log(client: AsgiClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    get(client, f"from={PHONE}&text={utf8('我的手机13912345678')}")
    get(client, "from=bad&text=x")
    client.get(f"/sms/kannel?secret=wrong-wrong-wrong&from={PHONE}&text=x")
    client.get(f"/sms/kannel/dlr?secret={SECRET}&id=r1&type=16&reply=NACK%2F0x0000000b%2FInvalid&to={PHONE}")
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("guidebot"))
    assert "138****8000" in logged
    assert PHONE not in logged and "13912345678" not in logged and SECRET not in logged


# -- delivery reports --------------------------------------------------------------------------


@pytest.mark.parametrize(("dlr_type", "reply", "outcome"), [
    pytest.param(1, "", SendOutcome.DELIVERED, id="1-delivered"),
    pytest.param(2, "id:1 stat:UNDELIV err:000", SendOutcome.FAILED, id="2-failed"),
    pytest.param(16, "NACK/0x00000045/Submit failed", SendOutcome.FAILED, id="16-rejected"),
    pytest.param(16, "NACK/0x0000000b/Invalid Destination Address", SendOutcome.STOPPED, id="16-invalid-number"),
    pytest.param(2, "id:1 stat:UNDELIV err:001 text:空号", SendOutcome.STOPPED, id="2-empty-number"),
    pytest.param(8, "ACK/", SendOutcome.SENT, id="8-smsc-accepted"),
    pytest.param(4, "", SendOutcome.SENT, id="4-buffered"),
])
def test_report_outcome(dlr_type: int, reply: str, outcome: SendOutcome) -> None:
    assert report_outcome(dlr_type, reply) is outcome


def test_a_delivery_report_reaches_the_sink(client: AsgiClient, sink: Sink) -> None:
    response = client.get(f"/sms/kannel/dlr?secret={SECRET}&id=row-42&type=1&reply=&to={PHONE}&ts=1")
    assert response.status_code == 200
    [report] = sink.reports
    assert (report.provider_id, report.outcome, report.recipient) == ("row-42", SendOutcome.DELIVERED,
                                                                      "+8613800138000")


def test_a_number_rejected_as_invalid_is_stopped(client: AsgiClient, sink: Sink, store: MemoryStore) -> None:
    reply = quote("NACK/0x0000000b/Invalid Destination Address")
    client.get(f"/sms/kannel/dlr?secret={SECRET}&id=row-7&type=16&reply={reply}&to={PHONE}")
    assert sink.reports[-1].outcome is SendOutcome.STOPPED
    assert (StopList(store).reason("+8613800138000") or "").startswith("invalid number")


@pytest.mark.parametrize("query", ["type=1", "id=x", "id=x&type=abc", "id=x&type=32", f"id={'x' * 200}&type=1"])
def test_bad_delivery_reports_are_400(client: AsgiClient, query: str) -> None:
    assert client.get(f"/sms/kannel/dlr?secret={SECRET}&{query}").status_code == 400


def test_a_report_ahead_of_its_row_is_offered_again(channel: KannelChannel) -> None:
    calls: list[float] = []

    def late_sink(report: DeliveryReport) -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 3  # the dispatcher records the id a moment later

    channel.sink = late_sink
    test_client = AsgiClient(Starlette(routes=channel.routes()))
    assert test_client.get(f"/sms/kannel/dlr?secret={SECRET}&id=r&type=1").status_code == 200
    assert len(calls) == 3


# -- KannelSender ------------------------------------------------------------------------------


class FakeSendsms:
    """httpx transport answering like Kannel's /cgi-bin/sendsms."""

    def __init__(self, status: int = 202, body: str = "0: Accepted for delivery") -> None:
        self.status, self.body = status, body
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = {k.lower().removeprefix("x-kannel-"): v for k, v in request.headers.items()}
        sent["text"] = request.content.decode("utf-8")
        sent["url"] = str(request.url)
        self.requests.append(sent)
        return httpx.Response(self.status, text=self.body)


def sender_with(settings: SmsSettings, fake: FakeSendsms, store: MemoryStore | None = None) -> KannelSender:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return KannelSender(settings, stops=StopList(store) if store is not None else None, client=client,
                        limiter=RateLimiter(10_000))


def test_sendsms_parameters(settings: SmsSettings) -> None:
    fake = FakeSendsms()
    result = asyncio.run(sender_with(settings, fake).send("+86 138 0013 8000", "您的办件已办结", reference="row-1"))
    assert result.outcome is SendOutcome.SENT and result.provider_id == "row-1"
    [sent] = fake.requests
    assert sent["to"] == "13800138000" and sent["text"] == "您的办件已办结"
    assert (sent["content-type"], sent["coding"]) == ("text/plain; charset=UTF-8", "2")
    assert (sent["username"], sent["password"]) == ("bot", "pw")
    assert sent["url"] == "http://127.0.0.1:13013/cgi-bin/sendsms"  # nothing secret in the URL
    assert sent["dlr-mask"] == str(DLR_MASK)
    dlr = sent["dlr-url"]
    assert dlr.startswith("http://127.0.0.1:8080/sms/kannel/dlr?id=row-1&secret=")
    assert "type=%d" in dlr and "reply=%A" in dlr and "to=%p" in dlr


def test_plain_ascii_goes_as_gsm_and_a_fresh_id_is_made(settings: SmsSettings) -> None:
    fake = FakeSendsms()
    result = asyncio.run(sender_with(settings, fake).send(PHONE, "Hello"))
    assert fake.requests[0]["coding"] == "0" and len(result.provider_id) == 32


def test_signature_is_put_in_front_once(settings: SmsSettings) -> None:
    from dataclasses import replace

    fake = FakeSendsms()
    sender = sender_with(replace(settings, signature="【区政务服务中心】"), fake)
    asyncio.run(sender.send(PHONE, "通知：周六照常办公"))
    asyncio.run(sender.send(PHONE, "【区政务服务中心】通知：周六照常办公"))
    assert [r["text"] for r in fake.requests] == ["【区政务服务中心】通知：周六照常办公"] * 2


@pytest.mark.parametrize(("recipient", "error"), [("12345", "invalid"), ("abc", "invalid"), ("02888888888", "invalid")])
def test_invalid_numbers_are_stopped_without_asking_the_gateway(settings: SmsSettings, recipient: str,
                                                                 error: str) -> None:
    fake = FakeSendsms()
    result = asyncio.run(sender_with(settings, fake).send(recipient, "测试"))
    assert result.outcome is SendOutcome.STOPPED and error in result.error and fake.requests == []


def test_stopped_numbers_are_not_sent_to(settings: SmsSettings, store: MemoryStore) -> None:
    StopList(store).stop("+8613800138000", "optout")
    fake = FakeSendsms()
    result = asyncio.run(sender_with(settings, fake, store).send(PHONE, "测试"))
    assert result.outcome is SendOutcome.STOPPED and "optout" in result.error and fake.requests == []


@pytest.mark.parametrize(("status", "body", "outcome"), [
    pytest.param(202, "0: Accepted for delivery", SendOutcome.SENT, id="202-accepted"),
    pytest.param(202, "3: Queued for later delivery", SendOutcome.SENT, id="202-queued"),
    pytest.param(403, "Authorization failed for sendsms", SendOutcome.RETRY, id="403-account"),
    pytest.param(400, "Number(s) has/have been denied by white- and/or black-lists.", SendOutcome.STOPPED,
                 id="400-number-denied"),
    pytest.param(400, "Charset or body misformed, rejected", SendOutcome.FAILED, id="400-body"),
    pytest.param(400, "Sender missing and no global set, rejected", SendOutcome.RETRY, id="400-no-sender"),
    pytest.param(503, "Message queue full", SendOutcome.THROTTLED, id="503-busy"),
    pytest.param(500, "internal", SendOutcome.RETRY, id="500"),
])
def test_sendsms_answers_map_to_outcomes(settings: SmsSettings, status: int, body: str,
                                         outcome: SendOutcome) -> None:
    result = asyncio.run(sender_with(settings, FakeSendsms(status, body)).send(PHONE, "测试"))
    assert result.outcome is outcome


def test_an_unreachable_gateway_is_retried(settings: SmsSettings) -> None:
    from dataclasses import replace

    sender = KannelSender(replace(settings, kannel_sendsms_url="http://127.0.0.1:9/cgi-bin/sendsms"),
                          limiter=RateLimiter(1000))
    result = asyncio.run(sender.send(PHONE, "测试"))
    asyncio.run(sender.aclose())
    assert result.outcome is SendOutcome.RETRY and "unreachable" in result.error


def test_too_long_is_refused(settings: SmsSettings) -> None:
    result = asyncio.run(sender_with(settings, FakeSendsms()).send(PHONE, "字" * 1000))
    assert result.outcome is SendOutcome.FAILED and "too long" in result.error


def test_rate_limit_counts_parts() -> None:
    limiter = RateLimiter(50)

    async def run() -> float:
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire(2) for _ in range(10)))
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert 18 / 50 - 0.02 <= elapsed < 1.0  # 20 parts at 50 a second: the last starts after 0.36 s


def test_senders_of_one_gateway_share_its_limiter(settings: SmsSettings) -> None:
    assert KannelSender(settings).limiter is KannelSender(settings).limiter
