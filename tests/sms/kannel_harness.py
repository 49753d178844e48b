"""Real Kannel on 127.0.0.1 for the SMS end-to-end tests: bearerbox, smsbox and fakesmsc.

The configuration is written into a temporary directory with free loopback ports picked at test
time; the sms-service and sendsms-user groups come from guidebot's own generator, so the tested
configuration is the documented one. Every process is started with Popen and stopped by its pid.

fakesmsc is Kannel's simulated handset network: it types MO messages given on its command line and
prints every MT message it receives ("Got message N: <from to type data>"). Kannel's fake SMSC
serves one fakesmsc connection at a time, so each typed message starts a new fakesmsc after the
previous one is stopped; all their outputs are read together.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from guidebot.handlers.sms.kannel import sendsms_user_group, sms_service_group

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
SHORT_CODE = "12345"


def require_kannel() -> None:
    """Skip (or, under CI=true, fail) when Kannel's binaries are not installed."""
    missing = [str(path) for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]
    if missing:
        reason = (f"Kannel not installed ({', '.join(missing)} missing): "
                  "apt-get install kannel kannel-extras, as .ci/run does")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: the Kannel tests must not be skipped)")
        pytest.skip(reason)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while picked)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=0.5, trust_env=False)
        return True
    except httpx.HTTPError:
        return False


def stop_process(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaped."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout)


# -- guidebot serve, in a thread -------------------------------------------------------------


class AppServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def start(self) -> AppServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 15, "guidebot serve to start")
        if not self.server.started:
            raise RuntimeError(f"uvicorn did not start on port {self.port}")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


# -- what fakesmsc received --------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One MT SMS as fakesmsc printed it."""

    sender: str
    receiver: str
    coding: str  # "text", "ucs-2" or "data" (a concatenated part)
    text: str
    udh: bytes = b""

    @property
    def concat(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) of a concatenated part (UDH IE 0x00), else None."""
        if len(self.udh) >= 6 and self.udh[1] == 0x00 and self.udh[2] == 0x03:
            return self.udh[3], self.udh[4], self.udh[5]
        return None


_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>$")


def _payload(data: str) -> bytes:
    return unquote_to_bytes(data.replace("+", "%20"))


def parse_fakesmsc(output: str) -> list[Part]:
    parts = []
    for line in output.splitlines():
        match = _GOT.search(line.rstrip())
        if not match:
            continue
        sender, receiver, kind, rest = match.groups()
        if kind == "ucs-2":
            parts.append(Part(sender, receiver, kind, _payload(rest).decode("utf-16-be")))
        elif kind.startswith("udh"):
            udh, coding, data = rest.split(" ", 2)
            raw = _payload(data)
            text = raw.decode("utf-16-be") if coding == "data" else raw.decode("latin-1")
            parts.append(Part(sender, receiver, coding, text, _payload(udh)))
        else:
            parts.append(Part(sender, receiver, kind, _payload(rest).decode("latin-1")))
    return parts


@dataclass(frozen=True)
class Received:
    """One message as the handset shows it: its parts put back together."""

    receiver: str
    text: str
    parts: tuple[Part, ...]


def assemble(parts: list[Part]) -> list[Received]:
    """Concatenated parts joined by (receiver, reference); single messages as they are."""
    messages: list[Received] = []
    pending: dict[tuple[str, int], list[Part]] = {}
    for part in parts:
        concat = part.concat
        if concat is None:
            messages.append(Received(part.receiver, part.text, (part,)))
            continue
        key = (part.receiver, concat[0])
        group = pending.setdefault(key, [])
        group.append(part)
        if len(group) == concat[1]:
            ordered = sorted(group, key=lambda p: p.concat[2] if p.concat else 0)
            messages.append(Received(part.receiver, "".join(p.text for p in ordered), tuple(ordered)))
            del pending[key]
    return messages


# -- Kannel ------------------------------------------------------------------------------------


class Kannel:
    """bearerbox + smsbox + fakesmsc with a loopback-only configuration in ``workdir``."""

    def __init__(self, workdir: Path, service_url: str, *, secret: str = "", post: bool = False,
                 max_segments: int = 3) -> None:
        self.workdir = workdir
        self.service_url = service_url
        self.secret = secret
        self.post = post
        self.max_segments = max_segments
        self.user, self.password = "guidebot", "sendsms-pass-1"
        self.admin_password = "admin-pass-1"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.fakesmsc: subprocess.Popen[bytes] | None = None
        self.outputs: list[Path] = []
        self._typed = 0
        self._pick_ports()

    def _pick_ports(self) -> None:
        self.admin_port, self.box_port, self.smsc_port, self.sendsms_port = free_ports(4)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/status.txt?password={self.admin_password}"

    def config(self) -> str:
        return (
            "group = core\n"
            f"admin-port = {self.admin_port}\n"
            "admin-interface = 127.0.0.1\n"
            f"admin-password = {self.admin_password}\n"
            f"status-password = {self.admin_password}\n"
            'admin-allow-ip = "127.0.0.1"\n'
            f"smsbox-port = {self.box_port}\n"
            "smsbox-interface = 127.0.0.1\n"
            'box-deny-ip = "*.*.*.*"\n'
            'box-allow-ip = "127.0.0.1"\n'
            'log-file = "bearerbox.log"\n'
            "log-level = 0\n"
            "dlr-storage = internal\n"
            "\n"
            "group = smsc\n"
            "smsc = fake\n"
            "smsc-id = fake1\n"
            f"port = {self.smsc_port}\n"
            "our-host = 127.0.0.1\n"
            "connect-allow-ip = 127.0.0.1\n"
            "\n"
            "group = smsbox\n"
            "bearerbox-host = 127.0.0.1\n"
            f"bearerbox-port = {self.box_port}\n"
            f"sendsms-port = {self.sendsms_port}\n"
            "sendsms-interface = 127.0.0.1\n"
            f"mo-recode = {'false' if self.post else 'true'}\n"
            'log-file = "smsbox.log"\n'
            "log-level = 0\n"
            "\n" + sendsms_user_group(self.user, self.password)
            + "\n" + sms_service_group(self.service_url, self.secret, post=self.post, max_messages=self.max_segments)
        )

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        out = (self.workdir / log_name).open("wb")
        try:
            process = subprocess.Popen(args, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        finally:
            out.close()
        self.processes.append(process)
        return process

    def start(self) -> Kannel:
        for attempt in range(3):
            (self.workdir / "kannel.conf").write_text(self.config(), encoding="utf-8")
            bearerbox = self._spawn([str(BEARERBOX), "kannel.conf"], f"bearerbox-{attempt}.out")
            with contextlib.suppress(AssertionError):
                wait_until(lambda b=bearerbox: _answers(self.status_url) or b.poll() is not None, 10,
                           "bearerbox's admin port")
            if bearerbox.poll() is None and _answers(self.status_url):
                break
            stop_process(bearerbox)  # a port was taken meanwhile: pick others and try again
            self._pick_ports()
        else:
            raise RuntimeError(f"bearerbox did not start; see {self.workdir}")
        smsbox = self._spawn([str(SMSBOX), "kannel.conf"], "smsbox.out")
        wait_until(lambda: _answers(self.sendsms_url) or smsbox.poll() is not None, 10, "smsbox's sendsms port")
        if smsbox.poll() is not None:
            raise RuntimeError(f"smsbox exited; see {self.workdir / 'smsbox.out'}")
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)

    # -- the handsets --------------------------------------------------------------------------

    def _fakesmsc(self, message: str, max_messages: int) -> None:
        if self.fakesmsc is not None:
            stop_process(self.fakesmsc)
        self._typed += 1
        name = f"fakesmsc-{self._typed}.out"
        self.outputs.append(self.workdir / name)
        self.fakesmsc = self._spawn([str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.smsc_port), "-i", "0.01",
                                     "-m", str(max_messages), message], name)
        wait_until(self._smsc_online, 10, "fakesmsc to connect")

    def _smsc_online(self) -> bool:
        try:
            status = httpx.get(self.status_url, timeout=1, trust_env=False).text
        except httpx.HTTPError:
            return False
        return bool(re.search(r"fake1\[fake1\]\s+FAKE:\d+ \(online", status))

    def listen(self) -> None:
        """A handset network that only receives."""
        self._fakesmsc(f"{SHORT_CODE} {SHORT_CODE} text nothing", 0)

    def type(self, sender: str, text: str) -> None:
        """``sender`` texts ``text`` (UCS-2, as a Chinese handset sends it) to the short code."""
        encoded = quote(text.encode("utf-16-be"), safe="")
        self._fakesmsc(f"{sender} {SHORT_CODE} ucs2 {encoded}", 1)

    def type_text(self, sender: str, text: str) -> None:
        """``sender`` texts plain GSM text (fakesmsc's "text" type: spaces as +)."""
        self._fakesmsc(f"{sender} {SHORT_CODE} text {text}", 1)

    def parts(self) -> list[Part]:
        found: list[Part] = []
        for path in self.outputs:
            if path.exists():
                found.extend(parse_fakesmsc(path.read_text(encoding="latin-1")))
        return found

    def messages(self, receiver: str | None = None) -> list[Received]:
        return [m for m in assemble(self.parts()) if receiver is None or m.receiver == receiver]

    def wait_messages(self, receiver: str | None, count: int, timeout: float = 10.0) -> list[Received]:
        wait_until(lambda: len(self.messages(receiver)) >= count, timeout,
                   f"{count} message(s) to {receiver or 'anyone'} at fakesmsc")
        return self.messages(receiver)

    def ask(self, sender: str, text: str, timeout: float = 10.0) -> Received:
        """Type ``text`` from ``sender`` and wait for the one answer it gets."""
        before = len(self.messages(sender))
        self.type(sender, text)
        return self.wait_messages(sender, before + 1, timeout)[before]


@contextlib.contextmanager
def running_kannel(workdir: Path, service_url: str, **options: object) -> Iterator[Kannel]:
    kannel = Kannel(workdir, service_url, **options)  # type: ignore[arg-type]
    try:
        yield kannel.start()
    finally:
        kannel.stop()
