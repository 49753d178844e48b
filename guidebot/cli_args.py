"""Values typed on the command line, read the same way by every `guidebot` command."""

from __future__ import annotations

import datetime as dt


def parse_time(text: str) -> dt.datetime:
    """A local date and time as staff type it: 2025-12-05 09:00, 2025/12/05, 2025-12-05T09:00."""
    cleaned = text.strip().replace("T", " ").replace("/", "-")
    try:
        return dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise SystemExit(f"无法识别的时间：{text}（例如 2025-12-05 09:00）") from None
