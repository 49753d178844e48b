"""The terminal chat: the whole dialog on stdin/stdout, needing nothing but the package."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from guidebot.dialog.engine import DialogEngine
from guidebot.dialog.replies import Inbound, Reply

CHANNEL = "console"


def render(reply: Reply) -> str:
    return reply.plain()


def run_chat(engine: DialogEngine, *, sender: str = "local", stdin: TextIO | None = None,
             stdout: TextIO | None = None, prompt: str = "您> ", read_line: Callable[[], str] | None = None) -> None:
    """Read a line, print the replies, until end of input or 退出/exit/quit."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty()
    center = engine.catalog.center
    print(f"{center.name} · 办事指南助手（输入“帮助”查看用法，“退出”结束）", file=stdout)
    while True:
        if interactive:
            print(prompt, end="", file=stdout, flush=True)
        line = read_line() if read_line else stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        if text.strip().lower() in ("退出", "exit", "quit", "/quit", "q"):
            print("再见！", file=stdout)
            break
        for reply in engine.handle(Inbound(channel=CHANNEL, sender=sender, text=text)):
            print("助手> " + render(reply).replace("\n", "\n      "), file=stdout)
        print(file=stdout, flush=True)
