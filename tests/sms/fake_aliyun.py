"""A local fake of Aliyun's SMS API (dysmsapi 2017-05-25 SendSms) on 127.0.0.1.

It checks what the real service checks — the RPC signature (computed here independently of
guidebot's code, following the provider's documented recipe), the common parameters, that the
template code is registered and that TemplateParam carries exactly its variables — records every
accepted message, answers QuerySendDetails from those records, and can be told to answer the next
call with a given error code, or to accept the next message and answer too late.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEY_ID = "LTAI-test-key-id"
KEY_SECRET = "test-key-secret-0123456789"
SIGN_NAME = "区政务服务中心"
# Registered templates: code → the variables it takes.
REGISTERED = {
    "SMS_1001": {"case_no", "status", "next_step"},
    "SMS_1002": {"case_no", "window"},
    "SMS_1003": {"case_no", "materials", "window"},
    "SMS_1004": {"center", "content"},
    "SMS_1005": {"phone", "hours"},
}
TEMPLATE_SETTING = "case_status=SMS_1001,case_done=SMS_1002,case_correction=SMS_1003,notice=SMS_1004," \
                   "reply_received=SMS_1005"
COMMON = ("AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce", "SignatureVersion",
          "Timestamp", "Version")


def beijing_today() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).strftime("%Y%m%d")


def _pop_encode(value: str) -> str:
    return quote_plus(value, encoding="utf-8").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    query = "&".join(_pop_encode(k) + "=" + _pop_encode(v) for k, v in pairs)
    to_sign = method + "&" + _pop_encode("/") + "&" + _pop_encode(query)
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


@dataclass
class Sent:
    phone: str
    template_code: str
    params: dict[str, str]
    out_id: str
    biz_id: str
    send_date: str = ""  # yyyyMMdd, Beijing time, as QuerySendDetails is asked


@dataclass
class FakeAliyun:
    sent: list[Sent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Accept the next SendSms, then answer only after this many seconds (the answer gets lost).
    stall_after_accept: float = 0.0
    queries: int = 0

    def fail_next(self, code: str) -> None:
        self.failures.append(code)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self.endpoint, methods=["GET", "POST"])])

    async def endpoint(self, request: Request) -> JSONResponse:
        raw = (await request.body()).decode("utf-8") if request.method == "POST" else request.url.query
        params = dict(parse_qsl(raw, keep_blank_values=True))
        if params.get("Action") == "QuerySendDetails":
            return self._query(params, request.method)
        error = self._check(params, request.method)
        if error is not None:
            code, status = error
            return JSONResponse({"Code": code, "Message": code, "RequestId": "req-err"}, status_code=status)
        with self.lock:
            if self.failures:
                code = self.failures.pop(0)
                return JSONResponse({"Code": code, "Message": f"fake {code}", "RequestId": "req-fail"})
            biz_id = f"{len(self.sent) + 1:06d}^0"
            self.sent.append(Sent(params["PhoneNumbers"], params["TemplateCode"], json.loads(params["TemplateParam"]),
                                  params.get("OutId", ""), biz_id, beijing_today()))
            stall, self.stall_after_accept = self.stall_after_accept, 0.0
        if stall:
            await asyncio.sleep(stall)
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "req-ok"})

    def _query(self, params: dict[str, str], method: str) -> JSONResponse:
        """QuerySendDetails: the messages sent to one number on one day (the documented JSON shape)."""
        missing = [name for name in (*COMMON, "PhoneNumber", "SendDate", "PageSize", "CurrentPage", "Signature")
                   if not params.get(name)]
        if missing:
            return JSONResponse({"Code": f"MissingParameter.{missing[0]}", "RequestId": "req-err"}, status_code=400)
        if not hmac.compare_digest(params["Signature"], expected_signature(params, KEY_SECRET, method)):
            return JSONResponse({"Code": "SignatureDoesNotMatch", "RequestId": "req-err"}, status_code=400)
        with self.lock:
            self.queries += 1
            records = [{"PhoneNum": s.phone, "SendStatus": 3, "ErrCode": "DELIVERED", "TemplateCode": s.template_code,
                        "Content": json.dumps(s.params, ensure_ascii=False), "SendDate": s.send_date,
                        "OutId": s.out_id}
                       for s in self.sent if s.phone == params["PhoneNumber"] and s.send_date == params["SendDate"]]
        return JSONResponse({"Code": "OK", "Message": "OK", "RequestId": "req-q", "TotalCount": len(records),
                             "SmsSendDetailDTOs": {"SmsSendDetailDTO": records[:int(params["PageSize"])]}})

    def _check(self, params: dict[str, str], method: str) -> tuple[str, int] | None:
        missing = [name for name in (*COMMON, "PhoneNumbers", "SignName", "TemplateCode", "Signature")
                   if not params.get(name)]
        if missing:
            return f"MissingParameter.{missing[0]}", 400
        if params["AccessKeyId"] != KEY_ID:
            return "InvalidAccessKeyId.NotFound", 404
        if not hmac.compare_digest(params["Signature"], expected_signature(params, KEY_SECRET, method)):
            return "SignatureDoesNotMatch", 400
        if (params["Action"], params["Version"], params["SignatureMethod"], params["SignatureVersion"]) != (
                "SendSms", "2017-05-25", "HMAC-SHA1", "1.0"):
            return "InvalidParameter", 400
        with self.lock:
            if params["SignatureNonce"] in self.nonces:
                return "SignatureNonceUsed", 400
            self.nonces.add(params["SignatureNonce"])
        if params["SignName"] != SIGN_NAME:
            return "isv.SMS_SIGNATURE_ILLEGAL", 200
        variables = REGISTERED.get(params["TemplateCode"])
        if variables is None:
            return "isv.SMS_TEMPLATE_ILLEGAL", 200
        try:
            given = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return "isv.INVALID_JSON_PARAM", 200
        if set(given) != variables:
            return "isv.TEMPLATE_MISSING_PARAMETERS", 200
        if any(len(str(v)) > 35 for v in given.values()):
            return "isv.PARAM_LENGTH_LIMIT", 200
        phone = params["PhoneNumbers"]
        if not phone.isdigit() or (len(phone) == 11 and not phone.startswith("1")):
            return "isv.MOBILE_NUMBER_ILLEGAL", 200
        return None
