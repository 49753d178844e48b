"""The SMS channel on ``guidebot serve``: its endpoints, and the sender the outbox uses.

``guidebot.web.ROUTE_MODULES`` lists this module; :func:`routes` mounts Kannel's sms-service and
delivery-report endpoints always (closed to everyone but the gateway), and Aliyun's callbacks
when ``GUIDEBOT_SMS_GATEWAY=aliyun``. :func:`build_sender` gives the outbox dispatcher the
``Sender`` for the configured gateway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.routing import BaseRoute

from guidebot.app import Guidebot
from guidebot.handlers.sms.cloud import AliyunChannel, AliyunSender
from guidebot.handlers.sms.kannel import KannelChannel, KannelSender
from guidebot.handlers.sms.service import CHANNEL, DeliveryReport, ReportSink, SmsConversations, StopList
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.outbox.sender import SendOutcome

log = logging.getLogger(__name__)

__all__ = ["build_conversations", "build_sender", "default_report_sink", "outbox_report_sink", "routes"]


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


def outbox_report_sink(store: Any) -> ReportSink:
    """Delivery reports applied to the outbox rows they are about (``queue.record_delivery_report``).

    Returns False while the row is unknown or still being sent, so the report is offered again.
    """
    from guidebot.outbox.queue import record_delivery_report

    async def sink(report: DeliveryReport) -> bool:
        if report.outcome is SendOutcome.SENT:  # accepted by the SMSC: nothing to record yet
            return True
        delivered = report.outcome is SendOutcome.DELIVERED
        return await asyncio.to_thread(record_delivery_report, store, CHANNEL, report.provider_id, delivered,
                                       report.error)

    return sink


def default_report_sink(bot: Guidebot) -> ReportSink:
    """Where delivery reports go: the outbox when the store has it, else the log."""
    if StopList(bot.store).in_outbox:
        return outbox_report_sink(bot.store)
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
    if not settings.secret and not all(network.is_loopback for network in settings.allow):
        log.warning("sms: GUIDEBOT_SMS_SECRET is not set; the SMS endpoints rely on GUIDEBOT_SMS_ALLOW alone")
    return mounted
