"""``guidebot sms``: send one SMS through the configured gateway; print a kannel.conf for guidebot."""

from __future__ import annotations

import argparse
import asyncio
import secrets
from typing import Any

from guidebot.handlers.sms.kannel import MAX_OUTBOUND_SEGMENTS, sendsms_user_group, sms_service_group
from guidebot.handlers.sms.settings import SmsSettings

SMPP_EXAMPLE = """\
# The operator's SMPP account (values from the operator).
group = smsc
smsc = smpp
smsc-id = operator
host = smpp.operator.example
port = 7890
transceiver-mode = true
smsc-username = "ACCOUNT"
smsc-password = "PASSWORD"
system-type = ""
source-addr-ton = 0
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1
"""


def kannel_conf(settings: SmsSettings, service_url: str, *, post: bool = False) -> str:
    """A minimal, loopback-only kannel.conf: bearerbox, an SMPP account, smsbox pointed at guidebot."""
    user = settings.kannel_user or "guidebot"
    password = settings.kannel_password or secrets.token_urlsafe(12)
    return (
        "# kannel.conf for guidebot: `guidebot sms kannel-conf > /etc/kannel/kannel.conf`\n"
        "group = core\n"
        "admin-port = 13000\n"
        "admin-interface = 127.0.0.1\n"
        f"admin-password = {secrets.token_urlsafe(12)}\n"
        'admin-allow-ip = "127.0.0.1"\n'
        "smsbox-port = 13001\n"
        "smsbox-interface = 127.0.0.1\n"
        'box-deny-ip = "*.*.*.*"\n'
        'box-allow-ip = "127.0.0.1"\n'
        'log-file = "/var/log/kannel/bearerbox.log"\n'
        "log-level = 1\n"
        "dlr-storage = internal\n"
        "\n" + SMPP_EXAMPLE + "\n"
        "group = smsbox\n"
        "bearerbox-host = 127.0.0.1\n"
        "bearerbox-port = 13001\n"
        "sendsms-port = 13013\n"
        "sendsms-interface = 127.0.0.1\n"
        "mo-recode = true\n"

        'log-file = "/var/log/kannel/smsbox.log"\n'
        "log-level = 1\n"
        "\n" + sendsms_user_group(user, password, max_messages=MAX_OUTBOUND_SEGMENTS,
                                          default_sender=settings.kannel_from or "10690000")
        + "\n" + sms_service_group(service_url, settings.secret, post=post, max_messages=settings.max_segments)
    )


def cmd_kannel_conf(args: argparse.Namespace) -> int:
    """Print a kannel.conf whose sms-service points at guidebot serve (secret and account from settings)."""
    print(kannel_conf(SmsSettings.from_env(), args.url, post=args.post), end="")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Send one SMS through the configured gateway and print the outcome."""
    from guidebot.handlers.sms.routes import build_sender

    settings = SmsSettings.from_env()

    async def run() -> Any:
        sender = build_sender(settings)
        try:
            return await sender.send(args.number, args.text)
        finally:
            await sender.aclose()

    result = asyncio.run(run())
    print(f"{result.outcome.value} {result.provider_id} {result.error}".strip())
    return 0 if result.outcome.value == "sent" else 1


def register(subparsers: Any) -> None:
    sms = subparsers.add_parser("sms", help="短信通道 (the SMS channel: Kannel / cloud SMS)")
    sms_sub = sms.add_subparsers(dest="sms_command", required=True, metavar="ACTION")
    conf = sms_sub.add_parser("kannel-conf", help="打印指向 guidebot serve 的 kannel.conf")
    conf.add_argument("--url", default="http://127.0.0.1:8080", help="where Kannel reaches guidebot serve")
    conf.add_argument("--post", action="store_true", help="use post-url instead of get-url")
    conf.set_defaults(handler=cmd_kannel_conf)
    send = sms_sub.add_parser("send", help="通过短信网关发送一条短信（测试用）")
    send.add_argument("number")
    send.add_argument("text")
    send.set_defaults(handler=cmd_send)
