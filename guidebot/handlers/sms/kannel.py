"""Kannel: citizens' SMS in through an sms-service, answers in the HTTP response, notices out
through sendsms with delivery reports back.

Endpoints (mounted on ``guidebot serve``):

- ``GET|POST /sms/kannel`` — Kannel's sms-service ``get-url`` or ``post-url``. Parameters:
  ``from`` (%p), ``to`` (%P), ``text`` (%a), ``charset`` (%C), ``coding`` (%c), ``id`` (%I),
  ``ts`` (%T), plus ``secret``. With ``post-url`` the text is the body and the numbers come in
  ``X-Kannel-*`` headers (``send-sender = true``). The answer is the response body, UTF-8, with
  ``X-Kannel-Coding: 2`` whenever it is not plain GSM-7 text — without that header Kannel turns
  every Chinese character into "?". An empty body (a duplicate) needs ``omit-empty = true``.
- ``GET|POST /sms/kannel/dlr`` — the ``dlr-url`` :class:`KannelSender` asks for: ``id`` (ours),
  ``type`` (%d), ``reply`` (%A), ``to`` (%p), ``secret``.

Bad input gets a 4xx with a one-line reason (no sender, unknown charset, body too large) or,
when a citizen is behind it, a polite SMS (empty text, unreadable bytes, an error inside); never
a 500.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from guidebot.handlers.sms.access import BadRequest, check_access, query_bytes, read_body, text_param
from guidebot.handlers.sms.phones import for_gateway, masked, normalize, normalize_recipient
from guidebot.handlers.sms.render import count_segments, is_gsm7, sanitize
from guidebot.handlers.sms.service import (
    UNREADABLE_TEXT,
    DeliveryReport,
    ReportSink,
    SmsConversations,
    StopList,
    deliver_report,
    message_key,
)
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.outbox.sender import SendOutcome, SendResult
from guidebot.privacy import mask_text
from guidebot.settings import SettingsError

log = logging.getLogger(__name__)

__all__ = [
    "DLR_MASK",
    "DLR_PATH",
    "INBOUND_PATH",
    "KannelChannel",
    "KannelMessage",
    "KannelSender",
    "RateLimiter",
    "parse_inbound",
    "report_outcome",
]

INBOUND_PATH = "/sms/kannel"
DLR_PATH = "/sms/kannel/dlr"
# Delivery reports asked for: 1 delivered, 2 failed, 16 rejected by the SMSC (8 "accepted by the
# SMSC" and 4 "buffered" add nothing the outbox needs).
DLR_MASK = 1 | 2 | 16
# The most parts one outbound message may have; kannel.conf's sendsms-user max-messages must allow it.
MAX_OUTBOUND_SEGMENTS = 10
SEND_TIMEOUT = 10.0
# Operator answers meaning "this number does not exist": SMPP ESME_RINVDSTADR / RINVDSTTON /
# RINVDSTNPI as Kannel writes them ("NACK/0x0000000b/Invalid Destination Address"), and the words
# operators use in delivery receipts.
INVALID_NUMBER_ERRORS = re.compile(
    r"0x0000000b\b|0x00000050\b|0x00000051\b|invalid dest|unknown subscriber|absent subscriber|空号|号码不存在",
    re.IGNORECASE,
)

_CHARSET_ALIASES = {"ucs-2": "utf-16-be", "ucs2": "utf-16-be", "iso-10646-ucs-2": "utf-16-be", "utf-16be": "utf-16-be"}
_ALLOWED_CODECS = frozenset({"utf-8", "utf-16-be", "utf-16", "utf-16-le", "iso8859-1", "cp1252", "ascii", "gbk",
                             "gb2312", "gb18030", "big5"})
_CONTENT_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_.:+-]+)\"?", re.IGNORECASE)


# -- inbound -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KannelMessage:
    """One MO message as Kannel delivered it. ``text`` is None when its bytes were unreadable."""

    sender: str
    to: str
    text: str | None
    message_id: str = ""
    timestamp: str = ""
    coding: str = ""


def _codec(charset: str, coding: str) -> str:
    name = charset.strip().strip('"').lower()
    if not name:
        return "utf-16-be" if coding == "2" else "utf-8"
    name = _CHARSET_ALIASES.get(name, name)
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise BadRequest(f"unsupported charset {charset[:40]!r}") from None
    if canonical not in _ALLOWED_CODECS:
        raise BadRequest(f"unsupported charset {charset[:40]!r}")
    return canonical


def _decode(data: bytes, codec: str, coding: str) -> str | None:
    if coding == "1":  # 8-bit binary data (ringtones, WAP push): not text
        return None
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def parse_inbound(method: str, query: bytes, headers: dict[str, str], body: bytes) -> KannelMessage:
    """A Kannel sms-service request (get-url, or post-url with text/plain or a form) as a message."""
    params = query_bytes(query)
    content_type = headers.get("content-type", "")
    if method == "POST" and content_type.lower().startswith("application/x-www-form-urlencoded"):
        params = {**query_bytes(body), **params}
        body_text: bytes | None = None
    else:
        body_text = body if method == "POST" else None
    sender = text_param(params, "from") or headers.get("x-kannel-from", "").strip()
    if not sender:
        raise BadRequest("missing sender: put from=%p in the get-url, or send-sender = true with post-url")
    to = text_param(params, "to") or headers.get("x-kannel-to", "").strip()
    coding = text_param(params, "coding") or headers.get("x-kannel-coding", "").strip()
    if body_text is not None and "text" not in params:
        match = _CONTENT_CHARSET.search(content_type)
        codec = _codec(match.group(1) if match else "", coding)
        raw = body_text
    else:
        codec = _codec(text_param(params, "charset"), coding)
        raw = params.get("text", b"")
    timestamp = text_param(params, "ts") or text_param(params, "time") or headers.get("x-kannel-time", "").strip()
    return KannelMessage(sender=sender, to=to, text=_decode(raw, codec, coding),
                         message_id=text_param(params, "id")[:100], timestamp=timestamp[:40], coding=coding)


def _received_at(timestamp: str) -> dt.datetime | None:
    if timestamp.isdigit():
        try:
            return dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def sms_response(text: str | None) -> Response:
    """The answer as Kannel wants it: UTF-8 body, and X-Kannel-Coding 2 unless it is GSM-7 text."""
    if not text:
        return Response(b"", status_code=200, media_type="text/plain; charset=utf-8")
    return Response(text.encode("utf-8"), status_code=200, media_type="text/plain; charset=utf-8",
                    headers={"X-Kannel-Coding": "0" if is_gsm7(text) else "2"})


# -- delivery reports --------------------------------------------------------------------------


def report_outcome(dlr_type: int, reply: str) -> SendOutcome:
    """Kannel's %d (1 delivered, 2 failed, 4 buffered, 8 SMSC accepted, 16 SMSC rejected) as an outcome."""
    if dlr_type & 1:
        return SendOutcome.DELIVERED
    if dlr_type & (2 | 16):
        return SendOutcome.STOPPED if INVALID_NUMBER_ERRORS.search(reply or "") else SendOutcome.FAILED
    if dlr_type & (4 | 8):
        return SendOutcome.SENT
    raise BadRequest(f"unknown delivery report type {dlr_type}")


class KannelChannel:
    """The two HTTP endpoints Kannel calls: the sms-service and the delivery reports."""

    def __init__(self, conversations: SmsConversations, settings: SmsSettings,
                 sink: ReportSink | None = None) -> None:
        self.conversations = conversations
        self.settings = settings
        self.sink = sink

    def routes(self) -> list[BaseRoute]:
        return [
            Route(INBOUND_PATH, self.inbound, methods=["GET", "POST"], name="sms-kannel"),
            Route(DLR_PATH, self.report, methods=["GET", "POST"], name="sms-kannel-dlr"),
        ]

    async def inbound(self, request: Request) -> Response:
        """Kannel's sms-service: a citizen's SMS in, the answer out in the response body."""
        refused = check_access(request, self.settings)
        if refused is not None:
            return refused
        try:
            body = await read_body(request) if request.method == "POST" else b""
            message = parse_inbound(request.method, request.scope.get("query_string", b""),
                                    {k.lower(): v for k, v in request.headers.items()}, body)
            sender = normalize(message.sender, self.settings.region)
            if sender is None:
                raise BadRequest("sender is not a phone number")
        except BadRequest as error:
            log.warning("sms: bad request from Kannel: %s (%d)", mask_text(error.message), error.status)
            return error.response()
        if message.text is None:
            log.info("sms: unreadable message from %s (coding %s)", masked(sender), message.coding or "?")
            return sms_response(UNREADABLE_TEXT)
        key = message_key(message.message_id, sender, message.text, message.timestamp)
        log.info("sms: in from %s, %d chars", masked(sender), len(message.text))
        try:
            answer = await asyncio.to_thread(self.conversations.answer, sender, message.text, key=key,
                                             received_at=_received_at(message.timestamp),
                                             message_id=message.message_id)
        except Exception:
            log.exception("sms: answering %s failed", masked(sender))
            return sms_response(sanitize("抱歉，系统暂时繁忙，请稍后再发一次。"))
        return sms_response(answer.text)

    async def report(self, request: Request) -> Response:
        """Kannel's dlr-url: what became of a message KannelSender sent."""
        refused = check_access(request, self.settings)
        if refused is not None:
            return refused
        try:
            body = await read_body(request, 8 * 1024) if request.method == "POST" else b""
            params = {**query_bytes(body), **query_bytes(request.scope.get("query_string", b""))}
            provider_id = text_param(params, "id")
            if not provider_id or len(provider_id) > 100:
                raise BadRequest("missing or malformed id")
            raw_type = text_param(params, "type")
            if not raw_type.isdigit():
                raise BadRequest("missing or malformed type (Kannel's %d)")
            reply = text_param(params, "reply")
            outcome = report_outcome(int(raw_type), reply)
        except BadRequest as error:
            log.warning("sms: bad delivery report: %s", error.message)
            return error.response()
        recipient = normalize(text_param(params, "to"), self.settings.region) or ""
        report = DeliveryReport(provider_id=provider_id, outcome=outcome, recipient=recipient,
                                error=mask_text(reply)[:160], gateway="kannel")
        try:
            await deliver_report(report, self.sink, self.conversations.stops)
        except Exception:
            log.exception("sms: recording delivery report %s failed", provider_id[:40])
            return PlainTextResponse("error recording report\n", status_code=503)
        return PlainTextResponse("ok\n")


# -- outbound ----------------------------------------------------------------------------------


class RateLimiter:
    """Evenly spaced sending: at most ``rate`` units (SMS parts) a second, shared by every caller
    in the process, whatever thread or event loop it runs on."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self, units: float = 1.0) -> float:
        """Book the next slot; the seconds to wait before using it."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + units / self.rate
            return start - now

    async def acquire(self, units: float = 1.0) -> None:
        delay = self.reserve(units)
        if delay > 0:
            await asyncio.sleep(delay)


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def gateway_limiter(gateway: str, rate: float) -> RateLimiter:
    """The one limiter of a gateway (its URL and account), so every sender to it shares the rate."""
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(gateway)
        if limiter is None:
            limiter = _LIMITERS[gateway] = RateLimiter(rate)
        limiter.rate = rate
        return limiter


def with_signature(text: str, signature: str) -> str:
    """Mainland operators require the sender's 【签名】 in front of every notice."""
    if signature and not text.startswith(signature):
        return signature + text
    return text


class KannelSender:
    """The outbox's SMS sender through Kannel's sendsms interface (implements outbox.sender.Sender).

    Chinese text goes as UTF-8 with coding 2 (UCS-2), which is the only combination that arrives
    intact; plain GSM-7 text goes with coding 0. Delivery reports are asked for when
    ``GUIDEBOT_KANNEL_DLR_URL`` is set. Sends are spaced by the gateway's rate limit, counted in
    SMS parts.
    """

    channel = "sms"
    per_recipient_interval = 1.0

    def __init__(self, settings: SmsSettings, *, stops: StopList | None = None,
                 client: httpx.AsyncClient | None = None, limiter: RateLimiter | None = None,
                 new_id: Callable[[], str] | None = None) -> None:
        if not settings.kannel_user:
            raise SettingsError("sending SMS through Kannel needs GUIDEBOT_KANNEL_USER and GUIDEBOT_KANNEL_PASSWORD "
                                "(a sendsms-user of kannel.conf)")
        self.settings = settings
        self.stops = stops
        self.max_per_second = settings.rate
        self._client = client
        self._own_client = client is None
        self.limiter = limiter or gateway_limiter(f"kannel:{settings.kannel_sendsms_url}:{settings.kannel_user}",
                                                  settings.rate)
        self._new_id = new_id or (lambda: uuid.uuid4().hex)

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> KannelSender:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _dlr_url(self, provider_id: str) -> str:
        base = self.settings.kannel_dlr_url
        ours = {"id": provider_id}
        if self.settings.secret:
            ours["secret"] = self.settings.secret
        separator = "&" if "?" in base else "?"
        # Kannel fills in %d (type), %A (the SMSC's answer), %p (the recipient), %T (time).
        return f"{base}{separator}{urlencode(ours)}&type=%d&reply=%A&to=%p&ts=%T"

    async def send(self, recipient: str, text: str, *, reference: str = "") -> SendResult:
        """Send ``text`` to ``recipient``. ``reference`` (the outbox row's id) becomes the provider id
        a delivery report comes back with; without it a fresh id is made."""
        number = normalize_recipient(recipient, self.settings.region)
        if number is None:
            log.info("sms: not sending to %s: not a valid mobile number", masked(recipient))
            return SendResult(SendOutcome.STOPPED, error="invalid mobile number")
        if self.stops is not None:
            reason = await asyncio.to_thread(self.stops.reason, number)
            if reason is not None:
                log.info("sms: not sending to %s: stopped (%s)", masked(number), mask_text(reason))
                return SendResult(SendOutcome.STOPPED, error=f"number stopped ({reason})")
        body = sanitize(with_signature(text, self.settings.signature))
        if not body:
            return SendResult(SendOutcome.FAILED, error="empty message")
        segments = count_segments(body)
        if segments.parts > MAX_OUTBOUND_SEGMENTS:
            return SendResult(SendOutcome.FAILED,
                              error=f"message too long: {segments.parts} parts, at most {MAX_OUTBOUND_SEGMENTS}")
        provider_id = reference or self._new_id()
        # POST with X-Kannel-* headers: the account and the number never appear in a URL that an
        # HTTP library or proxy might log. The same as GET's charset=UTF-8&coding=2.
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-Kannel-Username": self.settings.kannel_user,
            "X-Kannel-Password": self.settings.kannel_password,
            "X-Kannel-To": for_gateway(number, self.settings.number_format, self.settings.region),
            "X-Kannel-Coding": "0" if segments.encoding == "gsm7" else "2",
        }
        if self.settings.kannel_from:
            headers["X-Kannel-From"] = self.settings.kannel_from
        if self.settings.kannel_smsc:
            headers["X-Kannel-SMSC"] = self.settings.kannel_smsc
        if self.settings.kannel_dlr_url:
            headers["X-Kannel-DLR-Mask"] = str(DLR_MASK)
            headers["X-Kannel-DLR-Url"] = self._dlr_url(provider_id)
        await self.limiter.acquire(segments.parts)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT, trust_env=False)
        try:
            response = await self._client.post(self.settings.kannel_sendsms_url, content=body.encode("utf-8"),
                                               headers=headers)
        except httpx.TimeoutException:
            log.warning("sms: sendsms timed out for %s", masked(number))
            return SendResult(SendOutcome.RETRY, provider_id=provider_id, error="gateway timeout")
        except httpx.HTTPError as error:
            log.warning("sms: sendsms unreachable for %s: %s", masked(number), type(error).__name__)
            return SendResult(SendOutcome.RETRY, provider_id=provider_id, error=f"gateway unreachable: "
                              f"{type(error).__name__}")
        result = self._outcome(response.status_code, response.text, provider_id)
        level = logging.DEBUG if result.outcome is SendOutcome.SENT else logging.INFO
        log.log(level, "sms: out to %s, %d part(s): %s %s", masked(number), segments.parts, result.outcome.value,
                result.error)
        return result

    @staticmethod
    def _outcome(status: int, body: str, provider_id: str) -> SendResult:
        answer = mask_text(body.strip().splitlines()[0] if body.strip() else "")[:160]
        if status in (200, 202):
            return SendResult(SendOutcome.SENT, provider_id=provider_id)
        if status == 503:
            return SendResult(SendOutcome.THROTTLED, retry_after=5.0, error=f"gateway busy: {answer}")
        if status in (401, 403):
            return SendResult(SendOutcome.RETRY, retry_after=300.0,
                              error=f"gateway refused our account (check GUIDEBOT_KANNEL_USER/PASSWORD): {answer}")
        if 400 <= status < 500:
            lowered = answer.lower()
            if "sender missing" in lowered:
                return SendResult(SendOutcome.RETRY, retry_after=300.0,
                                  error=f"gateway needs a sender (set GUIDEBOT_KANNEL_FROM): {answer}")
            if "receiver" in lowered or "denied" in lowered or "number" in lowered:
                return SendResult(SendOutcome.STOPPED, error=f"gateway rejected the number: {answer}")
            return SendResult(SendOutcome.FAILED, error=f"gateway rejected the message ({status}): {answer}")
        return SendResult(SendOutcome.RETRY, error=f"gateway error {status}: {answer}")


# -- configuration -----------------------------------------------------------------------------


def sms_service_group(base_url: str, secret: str = "", *, post: bool = False, max_messages: int = 10) -> str:
    """kannel.conf's sms-service group that sends every SMS to ``base_url`` (guidebot serve)."""
    url = base_url.rstrip("/") + INBOUND_PATH
    secret_param = f"secret={secret}&" if secret else ""
    if post:
        target = f'post-url = "{url}?{secret_param}id=%I&ts=%T"\nsend-sender = true'
    else:
        target = (f'get-url = "{url}?{secret_param}from=%p&to=%P&text=%a&charset=%C&coding=%c&id=%I&ts=%T"')
    return (
        "group = sms-service\n"
        "keyword = default\n"
        "catch-all = true\n"
        f"{target}\n"
        "accept-x-kannel-headers = true\n"
        f"max-messages = {max_messages}\n"
        "concatenation = true\n"
        "omit-empty = true\n"
    )


def sendsms_user_group(user: str, password: str, *, allow_ip: str = "127.0.0.1", max_messages: int = 10,
                       default_sender: str = "") -> str:
    """kannel.conf's sendsms-user group KannelSender logs in with (``default_sender``: the service
    number used when GUIDEBOT_KANNEL_FROM is not set)."""
    sender = f"default-sender = {default_sender}\n" if default_sender else ""
    return (
        "group = sendsms-user\n"
        f"username = {user}\n"
        f"password = {password}\n"
        'user-deny-ip = "*.*.*.*"\n'
        f'user-allow-ip = "{allow_ip}"\n'
        f"max-messages = {max_messages}\n"
        "concatenation = true\n"
        f"{sender}"
    )
