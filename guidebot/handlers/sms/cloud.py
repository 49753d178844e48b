"""The mainland cloud SMS shape (Aliyun dysmsapi 2017-05-25): JSON callbacks in, approved templates out.

Cloud providers send **only pre-approved templates with parameters**, never free text. So every
message guidebot may send through them has a template here, and the text the rest of guidebot
produces for SMS is made with :func:`render_template`: Kannel sends that text as it is, and
:class:`AliyunSender` recognises it again (:func:`match_template`) and sends the template's code
with the parameters. A text no template produces is refused (FAILED), never sent half-right.

The templates (register each with the provider, then map name → code in
``GUIDEBOT_ALIYUN_TEMPLATES=case_status=SMS_1,...``; the provider puts the 【签名】 in front):

=================  ===========================================================================
name               text
=================  ===========================================================================
case_status        您的办件${case_no}状态已更新为：${status}。${next_step}
case_done          您的办件${case_no}已办结，请携带身份证到${window}领取。
case_correction    您的办件${case_no}需补正材料：${materials}。请到${window}补交。
notice             ${center}通知：${content}
reply_received     您的短信已收到。办事咨询请致电${phone}，办公时间${hours}。
=================  ===========================================================================

Sending again: ``SendSms`` is not idempotent, so when the outbox tries a row again (an earlier
attempt timed out or its dispatcher died unrecorded), :class:`AliyunSender` first looks for the
row's ``OutId`` in the provider's send records (``QuerySendDetails``) and does not send it twice.

Every parameter is at most 35 characters (Aliyun's limit for a variable). Replies to a citizen's
own SMS can only be ``reply_received`` (the dialog's answer is free text), which is why Kannel —
free text, any length — is the gateway for the conversation and the cloud provider is for notices.

Endpoints (mounted on ``guidebot serve`` when ``GUIDEBOT_SMS_GATEWAY=aliyun``), both restricted
like Kannel's (allow-list, ``?secret=``):

- ``POST /sms/aliyun/inbound`` — SmsUp "HTTP批量推送": a JSON array of
  ``{phone_number, send_time, content, sign_name, dest_code, sequence_id}``; answered
  ``{"code": 0, "msg": "接收成功"}`` (anything else makes the provider push again).
- ``POST /sms/aliyun/report`` — SmsReport: ``[{phone_number, success, err_code, err_msg, biz_id,
  out_id, ...}]``; ``out_id`` is the provider id :class:`AliyunSender` sent.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from guidebot.handlers.sms.access import BadRequest, check_access, read_body
from guidebot.handlers.sms.kannel import RateLimiter, gateway_limiter
from guidebot.handlers.sms.phones import for_gateway, masked, normalize, normalize_recipient
from guidebot.handlers.sms.service import (
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
    "INBOUND_PATH",
    "REPORT_PATH",
    "TEMPLATES",
    "AliyunChannel",
    "AliyunSender",
    "SmsTemplate",
    "TemplateError",
    "match_template",
    "percent_encode",
    "render_template",
    "sign_request",
]

INBOUND_PATH = "/sms/aliyun/inbound"
REPORT_PATH = "/sms/aliyun/report"
API_VERSION = "2017-05-25"
MAX_PARAM_CHARS = 35
SEND_TIMEOUT = 10.0
MAX_CALLBACK_ITEMS = 1000

_VARIABLE = re.compile(r"\$\{(\w+)\}")


class TemplateError(ValueError):
    """A template is unknown, or its parameters are missing or too long."""


@dataclass(frozen=True)
class SmsTemplate:
    name: str
    text: str
    max_param_chars: int = MAX_PARAM_CHARS

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_VARIABLE.findall(self.text))

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        pieces = _VARIABLE.split(self.text)  # literal, name, literal, name, ..., literal
        regex = "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^\\n]*?)"
                        for i, piece in enumerate(pieces))
        return re.compile(f"^{regex}$", re.DOTALL)

    def render(self, **params: object) -> str:
        missing = [name for name in self.params if name not in params]
        if missing:
            raise TemplateError(f"template {self.name}: missing {', '.join(missing)}")
        values: dict[str, str] = {}
        for name in self.params:
            value = " ".join(str(params[name]).split())
            if len(value) > self.max_param_chars:
                raise TemplateError(f"template {self.name}: {name} longer than {self.max_param_chars} characters")
            values[name] = value
        return _VARIABLE.sub(lambda m: values[m.group(1)], self.text)

    def parse(self, text: str) -> dict[str, str] | None:
        match = self._pattern.match(text)
        if match is None:
            return None
        values = match.groupdict()
        if any(len(value) > self.max_param_chars for value in values.values()):
            return None
        return values


TEMPLATES: tuple[SmsTemplate, ...] = (
    SmsTemplate("case_status", "您的办件${case_no}状态已更新为：${status}。${next_step}"),
    SmsTemplate("case_done", "您的办件${case_no}已办结，请携带身份证到${window}领取。"),
    SmsTemplate("case_correction", "您的办件${case_no}需补正材料：${materials}。请到${window}补交。"),
    SmsTemplate("notice", "${center}通知：${content}"),
    SmsTemplate("reply_received", "您的短信已收到。办事咨询请致电${phone}，办公时间${hours}。"),
)
_BY_NAME = {template.name: template for template in TEMPLATES}


def render_template(name: str, **params: object) -> str:
    """The SMS text of an approved template: what to put in the outbox for the SMS channel."""
    template = _BY_NAME.get(name)
    if template is None:
        raise TemplateError(f"unknown SMS template {name!r}; known: {', '.join(_BY_NAME)}")
    return template.render(**params)


def match_template(text: str,
                   templates: Iterable[SmsTemplate] = TEMPLATES) -> tuple[SmsTemplate, dict[str, str]] | None:
    """The template (and its parameters) that produced ``text``, or None."""
    for template in templates:
        params = template.parse(text)
        if params is not None:
            return template, params
    return None


# -- Aliyun's RPC signature (SignatureVersion 1.0, HMAC-SHA1) ------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun signs it: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(value, safe="-_.~", encoding="utf-8")


def sign_request(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# Provider answer codes → what the dispatcher should do.
_STOPPED_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})
_THROTTLED_CODES = {"isv.BUSINESS_LIMIT_CONTROL": 60.0, "isv.DAY_LIMIT_CONTROL": 3600.0,
                    "isv.MONTH_LIMIT_CONTROL": 86400.0, "Throttling.User": 5.0, "Throttling": 5.0}
_RETRY_CODES = frozenset({"isp.SYSTEM_ERROR", "isv.OUT_OF_SERVICE", "isv.AMOUNT_NOT_ENOUGH", "SignatureNonceUsed",
                          "InvalidTimeStamp.Expired", "ServiceUnavailable", "InternalError"})
_ACCOUNT_CODES = frozenset({"InvalidAccessKeyId.NotFound", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                            "Forbidden.RAM", "isp.RAM_PERMISSION_DENY", "isv.ACCOUNT_NOT_EXISTS",
                            "isv.ACCOUNT_ABNORMAL", "isv.DENY_IP_RANGE"})
_REPORT_INVALID_NUMBER = re.compile(r"MOBILE_NUMBER_ILLEGAL|NOT_EXIST|空号|号码不存在|unknown subscriber",
                                    re.IGNORECASE)


def _outcome(code: str, message: str, provider_id: str) -> SendResult:
    detail = mask_text(f"{code}: {message}")[:160]
    if code == "OK":
        return SendResult(SendOutcome.SENT, provider_id=provider_id)
    if code in _STOPPED_CODES:
        return SendResult(SendOutcome.STOPPED, provider_id=provider_id, error=detail)
    if code in _THROTTLED_CODES:
        return SendResult(SendOutcome.THROTTLED, provider_id=provider_id, retry_after=_THROTTLED_CODES[code],
                          error=detail)
    if code in _ACCOUNT_CODES:
        return SendResult(SendOutcome.RETRY, provider_id=provider_id, retry_after=300.0,
                          error=f"provider refused our account (check GUIDEBOT_ALIYUN_*): {detail}")
    if code in _RETRY_CODES or code.startswith("isp."):
        return SendResult(SendOutcome.RETRY, provider_id=provider_id, error=detail)
    return SendResult(SendOutcome.FAILED, provider_id=provider_id, error=detail)


class AliyunSender:
    """The outbox's SMS sender through Aliyun's SendSms (implements outbox.sender.Sender)."""

    channel = "sms"
    per_recipient_interval = 60.0  # Aliyun's flow control: one message a minute per number and template

    def __init__(self, settings: SmsSettings, *, stops: StopList | None = None,
                 client: httpx.AsyncClient | None = None, limiter: RateLimiter | None = None,
                 templates: Iterable[SmsTemplate] = TEMPLATES, new_id: Callable[[], str] | None = None,
                 now: Callable[[], dt.datetime] | None = None) -> None:
        if not (settings.aliyun_key_id and settings.aliyun_key_secret and settings.aliyun_sign_name):
            raise SettingsError("sending SMS through Aliyun needs GUIDEBOT_ALIYUN_ACCESS_KEY_ID, "
                                "GUIDEBOT_ALIYUN_ACCESS_KEY_SECRET and GUIDEBOT_ALIYUN_SIGN_NAME")
        self.settings = settings
        self.stops = stops
        self.templates = tuple(templates)
        self.max_per_second = settings.rate
        self._client = client
        self._own_client = client is None
        self.limiter = limiter or gateway_limiter(f"aliyun:{settings.aliyun_url}:{settings.aliyun_key_id}",
                                                  settings.rate)
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> AliyunSender:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def send(self, recipient: str, text: str, *, reference: str = "", attempt: int = 1) -> SendResult:
        """Send a text made by :func:`render_template` as its template.

        ``reference`` (the outbox row id) goes as ``OutId``; on a later ``attempt`` of the same
        row the provider's records are asked first (:meth:`already_accepted`)."""
        body = text.strip()
        if self.settings.signature and body.startswith(self.settings.signature):
            body = body[len(self.settings.signature):]
        matched = match_template(body, self.templates)
        if matched is None:
            return SendResult(SendOutcome.FAILED, error="no approved SMS template produces this text "
                              "(make it with guidebot.handlers.sms.cloud.render_template)")
        template, params = matched
        return await self.send_template(recipient, template.name, params, reference=reference, attempt=attempt)

    async def send_template(self, recipient: str, name: str, params: Mapping[str, str], *,
                            reference: str = "", attempt: int = 1) -> SendResult:
        number = normalize_recipient(recipient, self.settings.region)
        if number is None:
            return SendResult(SendOutcome.STOPPED, error="invalid mobile number")
        if self.stops is not None:
            reason = await asyncio.to_thread(self.stops.reason, number)
            if reason is not None:
                return SendResult(SendOutcome.STOPPED, error=f"number stopped ({reason})")
        code = self.settings.aliyun_templates.get(name)
        if not code:
            return SendResult(SendOutcome.FAILED, error=f"no template code for {name!r} in GUIDEBOT_ALIYUN_TEMPLATES")
        provider_id = reference or self._new_id()
        phone = for_gateway(number, "national", self.settings.region).lstrip("+")
        if attempt > 1 and reference and await self.already_accepted(phone, reference):
            # SendSms is not idempotent; the provider's advice is to look before sending again.
            log.info("sms: aliyun %s to %s: accepted on an earlier attempt, not sent again", name, masked(number))
            return SendResult(SendOutcome.SENT, provider_id=provider_id)
        request = self._signed("SendSms", {
            "OutId": provider_id,
            "PhoneNumbers": phone,
            "SignName": self.settings.aliyun_sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")),
        })
        await self.limiter.acquire(1)
        client = self._http()
        try:
            response = await client.post(self.settings.aliyun_url, data=request)
        except httpx.TimeoutException:
            return SendResult(SendOutcome.RETRY, provider_id=provider_id, error="provider timeout")
        except httpx.HTTPError as error:
            return SendResult(SendOutcome.RETRY, provider_id=provider_id,
                              error=f"provider unreachable: {type(error).__name__}")
        try:
            answer = response.json()
            code_answer, message = str(answer.get("Code", "")), str(answer.get("Message", ""))
        except (ValueError, AttributeError):
            code_answer, message = "", response.text[:80]
        if not code_answer:
            outcome = SendOutcome.RETRY if response.status_code >= 500 else SendOutcome.FAILED
            result = SendResult(outcome, provider_id=provider_id,
                                error=mask_text(f"HTTP {response.status_code}: {message}")[:160])
        else:
            result = _outcome(code_answer, message, provider_id)
        log.info("sms: aliyun %s to %s: %s %s", name, masked(number), result.outcome.value, result.error)
        return result

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT)
        return self._client

    def _signed(self, action: str, params: Mapping[str, str]) -> dict[str, str]:
        """An RPC request: the common parameters, ``params``, and the signature over all of them."""
        request = {
            "AccessKeyId": self.settings.aliyun_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.settings.aliyun_region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": self._now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            **params,
        }
        request["Signature"] = sign_request(request, self.settings.aliyun_key_secret, "POST")
        return request

    async def already_accepted(self, phone: str, out_id: str) -> bool:
        """Whether the provider's send records (QuerySendDetails) for ``phone``, today or yesterday
        (Beijing time), hold a message with this ``OutId``.

        Asked only when the outbox sends a row again (its earlier attempt timed out, or its
        dispatcher died before writing the outcome). Any doubt — the query fails or answers
        something unexpected — is False: the message is sent again rather than lost.
        """
        today = (self._now().astimezone(dt.UTC) + dt.timedelta(hours=8)).date()
        client = self._http()
        for day in (today, today - dt.timedelta(days=1)):
            request = self._signed("QuerySendDetails", {"PhoneNumber": phone, "SendDate": day.strftime("%Y%m%d"),
                                                        "PageSize": "50", "CurrentPage": "1"})
            try:
                answer = (await client.post(self.settings.aliyun_url, data=request)).json()
                if answer.get("Code") != "OK":
                    log.warning("sms: aliyun send records unavailable (%s): sending again",
                                mask_text(str(answer.get("Code")))[:80])
                    return False
                records = (answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            except (httpx.HTTPError, ValueError, AttributeError) as error:
                log.warning("sms: aliyun send records unavailable (%s): sending again", type(error).__name__)
                return False
            if any(isinstance(record, dict) and str(record.get("OutId", "")) == out_id for record in records):
                return True
        return False


# -- callbacks ---------------------------------------------------------------------------------


def _json_array(body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not UTF-8 JSON") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise BadRequest("expected a JSON array of objects")
    if len(data) > MAX_CALLBACK_ITEMS:
        raise BadRequest(f"more than {MAX_CALLBACK_ITEMS} items", 413)
    return data


def _shanghai(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    except (TypeError, ValueError):
        return None


class AliyunChannel:
    """The two callbacks Aliyun pushes: citizens' SMS (SmsUp) and delivery reports (SmsReport)."""

    def __init__(self, conversations: SmsConversations, settings: SmsSettings, sender: Any,
                 sink: ReportSink | None = None, reply_params: Mapping[str, str] | None = None) -> None:
        self.conversations = conversations
        self.settings = settings
        self.sender = sender
        self.sink = sink
        self.reply_params = dict(reply_params or {"phone": "", "hours": ""})

    def routes(self) -> list[BaseRoute]:
        return [
            Route(INBOUND_PATH, self.inbound, methods=["POST"], name="sms-aliyun"),
            Route(REPORT_PATH, self.report, methods=["POST"], name="sms-aliyun-report"),
        ]

    async def _pushed_items(self, request: Request, what: str) -> list[dict[str, Any]] | Response:
        """The items of a push from the provider, or the response refusing it (403, 4xx)."""
        refused = check_access(request, self.settings)
        if refused is not None:
            return refused
        try:
            return _json_array(await read_body(request, 1024 * 1024))
        except BadRequest as error:
            log.warning("sms: bad aliyun %s push: %s", what, error.message)
            return error.response()

    async def inbound(self, request: Request) -> Response:
        items = await self._pushed_items(request, "inbound")
        if isinstance(items, Response):
            return items
        for item in items:
            sender = normalize(str(item.get("phone_number", "")), self.settings.region)
            content = item.get("content")
            if sender is None or not isinstance(content, str):
                log.warning("sms: aliyun inbound item without a usable phone_number/content skipped")
                continue
            key = message_key(str(item.get("sequence_id", "")), sender, content, str(item.get("send_time", "")))
            try:
                answer = await asyncio.to_thread(self.conversations.answer, sender, content[:5000], key=key,
                                                 received_at=_shanghai(str(item.get("send_time", ""))),
                                                 message_id=str(item.get("sequence_id", "")))
                if answer.text is None:
                    continue
                matched = match_template(answer.text)
                if matched is not None:
                    result = await self.sender.send_template(sender, matched[0].name, matched[1])
                else:
                    result = await self.sender.send_template(sender, "reply_received", self.reply_params)
                log.info("sms: aliyun answer to %s: %s", masked(sender), result.outcome.value)
            except Exception:
                log.exception("sms: answering %s through aliyun failed", masked(sender))
        return JSONResponse({"code": 0, "msg": "接收成功"})

    async def report(self, request: Request) -> Response:
        items = await self._pushed_items(request, "report")
        if isinstance(items, Response):
            return items
        for item in items:
            provider_id = str(item.get("out_id") or item.get("biz_id") or "")[:100]
            if not provider_id:
                continue
            error_code = f"{item.get('err_code', '')} {item.get('err_msg', '')}".strip()
            if item.get("success") is True:
                outcome = SendOutcome.DELIVERED
            elif _REPORT_INVALID_NUMBER.search(error_code):
                outcome = SendOutcome.STOPPED
            else:
                outcome = SendOutcome.FAILED
            recipient = normalize(str(item.get("phone_number", "")), self.settings.region) or ""
            report = DeliveryReport(provider_id, outcome, recipient, mask_text(error_code)[:160], "aliyun")
            await deliver_report(report, self.sink, self.conversations.stops, wait=0.0)
        return JSONResponse({"code": 0, "msg": "接收成功"})
