"""The SMS channel is wired in: its routes on guidebot serve, its commands on the guidebot CLI."""

from __future__ import annotations

import pytest
from starlette.routing import Route

from guidebot.app import Guidebot
from guidebot.cli import build_parser, main
from guidebot.dialog.engine import DialogEngine, MemoryStore
from guidebot.handlers.sms.cli import kannel_conf
from guidebot.handlers.sms.routes import build_sender, routes
from guidebot.handlers.sms.settings import SmsSettings
from guidebot.knowledge.matching import CatalogIndex
from guidebot.settings import Settings
from guidebot.web import ROUTE_MODULES, build_web_app


@pytest.fixture
def bot(small_index: CatalogIndex) -> Guidebot:
    store = MemoryStore()
    return Guidebot(Settings.load(environ={}), small_index.catalog, small_index, DialogEngine(small_index, store),
                    store)


def paths(mounted: list) -> set[str]:
    return {route.path for route in mounted if isinstance(route, Route)}


def test_guidebot_serve_mounts_the_kannel_endpoints(bot: Guidebot) -> None:
    assert "guidebot.handlers.sms.routes" in ROUTE_MODULES
    app = build_web_app(bot, route_modules=("guidebot.handlers.sms.routes",))
    assert {"/sms/kannel", "/sms/kannel/dlr"} <= paths(app.routes)


def test_aliyun_callbacks_only_when_that_gateway_is_configured(bot: Guidebot) -> None:
    assert "/sms/aliyun/inbound" not in paths(routes(bot, settings=SmsSettings.from_env({})))
    aliyun = SmsSettings.from_env({"GUIDEBOT_SMS_GATEWAY": "aliyun", "GUIDEBOT_ALIYUN_ACCESS_KEY_ID": "id",
                                   "GUIDEBOT_ALIYUN_ACCESS_KEY_SECRET": "secret",
                                   "GUIDEBOT_ALIYUN_SIGN_NAME": "区政务"})
    assert {"/sms/aliyun/inbound", "/sms/aliyun/report"} <= paths(routes(bot, settings=aliyun))
    assert type(build_sender(aliyun)).__name__ == "AliyunSender"


def test_the_sms_commands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["sms", "kannel-conf", "--url", "http://127.0.0.1:9000"])
    assert args.url == "http://127.0.0.1:9000"


def test_kannel_conf_points_the_sms_service_at_guidebot() -> None:
    settings = SmsSettings.from_env({"GUIDEBOT_SMS_SECRET": "abcdefghijklmnop", "GUIDEBOT_KANNEL_USER": "gb",
                                     "GUIDEBOT_KANNEL_PASSWORD": "pw", "GUIDEBOT_KANNEL_FROM": "10690001"})
    conf = kannel_conf(settings, "http://127.0.0.1:8080")
    assert ('get-url = "http://127.0.0.1:8080/sms/kannel?secret=abcdefghijklmnop&from=%p&to=%P&text=%a'
            '&charset=%C&coding=%c&id=%I&ts=%T"') in conf
    for line in ("group = smsc\nsmsc = smpp", "accept-x-kannel-headers = true", "omit-empty = true",
                 "concatenation = true", "mo-recode = true", "username = gb\npassword = pw",
                 "default-sender = 10690001", "admin-interface = 127.0.0.1", "sendsms-interface = 127.0.0.1"):
        assert line in conf
    assert "post-url" in kannel_conf(settings, "http://127.0.0.1:8080", post=True)


def test_sms_send_reports_the_outcome(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GUIDEBOT_KANNEL_USER", "gb")
    monkeypatch.setenv("GUIDEBOT_KANNEL_PASSWORD", "pw")
    assert main(["sms", "send", "12345", "测试"]) == 1  # not a mobile number: stopped, nothing sent
    assert capsys.readouterr().out.startswith("stopped")


def test_sms_send_without_an_account_is_a_settings_error(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GUIDEBOT_KANNEL_USER", raising=False)
    assert main(["sms", "send", "13800138000", "测试"]) == 2
    assert "GUIDEBOT_KANNEL_USER" in capsys.readouterr().err
