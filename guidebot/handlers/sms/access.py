"""Who may call the gateway endpoints, and reading their requests without trusting them.

A request must come from an address on ``GUIDEBOT_SMS_ALLOW`` (default: this machine) and, when
``GUIDEBOT_SMS_SECRET`` is set, carry it as ``secret=`` in the URL. Refusals are 403 with a short
reason; the secret itself never reaches a log line.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import unquote_plus, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from guidebot.handlers.sms.settings import SmsSettings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class BadRequest(Exception):
    """The gateway sent something we cannot use; ``status`` and a message for its log."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return PlainTextResponse(self.message + "\n", status_code=self.status)


def query_bytes(raw: bytes) -> dict[str, bytes]:
    """A query string as {name: raw bytes of the value}: values stay bytes until their charset is
    known (Kannel sends UTF-16BE text url-encoded when mo-recode is off). First value wins."""
    params: dict[str, bytes] = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        key = unquote_plus(name.decode("latin-1"))
        if key not in params:
            params[key] = unquote_to_bytes(value.replace(b"+", b" "))
    return params


def text_param(params: dict[str, bytes], name: str, default: str = "") -> str:
    value = params.get(name)
    return default if value is None else value.decode("utf-8", "replace").strip()


def check_access(request: Request, settings: SmsSettings, secret: str | None = None) -> Response | None:
    """None when the request may pass; else the 403 to answer."""
    client = request.client.host if request.client else None
    if not settings.allows(client):
        log.warning("sms: refused %s %s from %s (not in GUIDEBOT_SMS_ALLOW)", request.method, request.url.path,
                    client or "unknown address")
        return PlainTextResponse("forbidden: address not allowed\n", status_code=403)
    expected = settings.secret if secret is None else secret
    if expected:
        given = query_bytes(request.scope.get("query_string", b"")).get("secret", b"")
        if not hmac.compare_digest(given, expected.encode()):
            log.warning("sms: refused %s %s from %s (wrong or missing secret)", request.method, request.url.path,
                        client)
            return PlainTextResponse("forbidden: wrong or missing secret\n", status_code=403)
    return None


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"body too large (more than {limit} bytes)", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body too large (more than {limit} bytes)", 413)
        chunks.append(chunk)
    return b"".join(chunks)
