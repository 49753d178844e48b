"""What the dialog engine says, in plain parts that every channel renders for its medium.

Telegram turns `Choices` into inline buttons, SMS into "回复1 …" lines, the terminal into numbered
lines. Nothing here knows about any channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Inbound:
    """One message from a citizen or clerk, as any channel delivers it."""

    channel: str
    sender: str
    text: str
    received_at: datetime | None = None
    message_id: str = ""
    is_staff: bool = False


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Choice:
    """One numbered option; `reply` is what the citizen's answer is read as (its number)."""

    label: str
    reply: str


@dataclass(frozen=True)
class Choices:
    prompt: str
    options: tuple[Choice, ...]
    numbered: bool = True  # False: shortcuts (材料 · 收费 …) offered as buttons, not a question


Part = Text | Link | Choices


@dataclass(frozen=True)
class Reply:
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @classmethod
    def text(cls, *lines: str) -> Reply:
        return cls((Text("\n".join(lines)),))

    def plain(self) -> str:
        """The reply as plain text (terminal, logs, tests): choices as numbered lines."""
        chunks: list[str] = []
        for part in self.parts:
            if isinstance(part, Text):
                chunks.append(part.text)
            elif isinstance(part, Link):
                chunks.append(f"{part.label}：{part.url}")
            elif part.numbered:
                lines = [part.prompt] + [f"{i}. {c.label}" for i, c in enumerate(part.options, 1)]
                chunks.append("\n".join(lines))
            else:
                chunks.append(part.prompt + " " + " · ".join(c.label for c in part.options))
        return "\n".join(chunk for chunk in chunks if chunk)
