"""The contract between the outbox dispatcher and each channel's sender.

Like courier's send outcomes: a closed set, mapped to outbox statuses in one place (the dispatcher),
so a channel only has to say what happened, never what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class SendOutcome(StrEnum):
    SENT = "sent"  # accepted by the channel; a delivery report may follow
    DELIVERED = "delivered"  # the channel confirmed delivery to the handset / chat
    RETRY = "retry"  # a passing fault (timeout, 5xx): try again later with backoff
    THROTTLED = "throttled"  # the channel asked us to slow down (429): wait retry_after
    FAILED = "failed"  # permanent for this message (bad request); do not retry
    STOPPED = "stopped"  # the recipient cannot be reached any more (blocked the bot, invalid number)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_id: str = ""  # the channel's message id, to match a later delivery report
    retry_after: float | None = None  # seconds, for THROTTLED (and optionally RETRY)
    error: str = ""  # short, already masked: never a token, phone or ID number


class Sender(Protocol):
    """Sends one outbox message to one recipient of one channel.

    ``send`` may also take keywords, which the dispatcher then passes: ``reference`` (the outbox
    row id, e.g. for delivery reports) and ``attempt`` (1 for the first try of the row; more when
    an earlier try timed out or its dispatcher died before recording it, so the message may
    already have gone — a sender that can ask the channel should, see ``AliyunSender``).
    """

    channel: str
    max_per_second: float  # the channel's overall rate limit
    per_recipient_interval: float  # at least this many seconds between two messages to one recipient

    async def send(self, recipient: str, text: str) -> SendResult: ...
