"""The SMS channel on ``guidebot serve``: its endpoints, and the sender the outbox uses.

``guidebot.web.ROUTE_MODULES`` lists this module; :func:`routes` mounts Kannel's sms-service and
delivery-report endpoints always (closed to everyone but the gateway), and Aliyun's callbacks
when ``GUIDEBOT_SMS_GATEWAY=aliyun``. :func:`build_sender` gives the outbox dispatcher the
``Sender`` for the configured gateway.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.routing import BaseRoute

from guidebot.app import Guidebot
from guidebot.handlers.sms.cloud import AliyunChannel, AliyunSender
from guidebot.handlers.sms.kannel import KannelChannel, KannelSender
from guidebot.handlers.sms.service import ReportSink, SmsConversations, StopList
from guidebot.handlers.sms.settings import SmsSettings

log = logging.getLogger(__name__)

__all__ = ["build_conversations", "build_sender", "default_report_sink", "routes"]


def build_conversations(bot: Guidebot, settings: SmsSettings) -> SmsConversations:
    return SmsConversations(bot.engine, bot.store, max_segments=settings.max_segments)


def build_sender(settings: SmsSettings, store: Any = None) -> KannelSender | AliyunSender:
    """The outbox's SMS sender for ``GUIDEBOT_SMS_GATEWAY``; with ``store``, stopped numbers are refused."""
    stops = StopList(store) if store is not None else None
    if settings.gateway == "aliyun":
        return AliyunSender(settings, stops=stops)
    return KannelSender(settings, stops=stops)


def _log_only_sink(report: Any) -> bool:
    log.info("sms: delivery report %s (%s) not recorded: no outbox is wired to the SMS channel",
             report.provider_id[:40], report.outcome.value)
    return True


def default_report_sink(bot: Guidebot) -> ReportSink:
    """Where delivery reports go when nothing else is given: the outbox, once it takes them."""
    return _log_only_sink


def routes(bot: Guidebot, *, settings: SmsSettings | None = None, on_report: ReportSink | None = None,
           aliyun_sender: Any = None) -> list[BaseRoute]:
    """The SMS endpoints. ``on_report`` receives every delivery report (default: logged only)."""
    settings = settings or SmsSettings.from_env()
    conversations = build_conversations(bot, settings)
    sink = on_report or default_report_sink(bot)
    mounted: list[BaseRoute] = KannelChannel(conversations, settings, sink).routes()
    if settings.gateway == "aliyun":
        center = bot.catalog.center
        sender = aliyun_sender or AliyunSender(settings, stops=conversations.stops)
        reply = {"phone": center.phone[:35], "hours": center.hours[:35]}
        mounted += AliyunChannel(conversations, settings, sender, sink, reply_params=reply).routes()
    if not settings.secret:
        log.warning("sms: GUIDEBOT_SMS_SECRET is not set; the SMS endpoints rely on GUIDEBOT_SMS_ALLOW alone")
    return mounted
