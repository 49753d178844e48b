"""SMS settings: defaults that run with nothing set, and a clear message for every bad value."""

from __future__ import annotations

import pytest

from guidebot.handlers.sms.settings import SmsSettings
from guidebot.settings import SettingsError


def test_defaults_run_with_nothing_set() -> None:
    settings = SmsSettings.from_env({})
    assert settings.gateway == "kannel"
    assert settings.max_segments == 3 and settings.region == "CN" and settings.rate == 10.0
    assert settings.kannel_sendsms_url == "http://127.0.0.1:13013/cgi-bin/sendsms"
    assert settings.allows("127.0.0.1") and settings.allows("::1")
    assert not settings.allows("10.1.2.3") and not settings.allows(None) and not settings.allows("nonsense")


def test_values_are_read() -> None:
    settings = SmsSettings.from_env({
        "GUIDEBOT_SMS_SECRET": "s3cret-s3cret-s3cret",
        "GUIDEBOT_SMS_ALLOW": "10.0.0.0/8, 192.168.1.5",
        "GUIDEBOT_SMS_MAX_SEGMENTS": "5",
        "GUIDEBOT_SMS_RATE": "2.5",
        "GUIDEBOT_SMS_SIGNATURE": "【区政务服务中心】",
        "GUIDEBOT_KANNEL_USER": "bot",
        "GUIDEBOT_KANNEL_PASSWORD": "pw",
        "GUIDEBOT_KANNEL_DLR_URL": "http://127.0.0.1:8080/sms/kannel/dlr",
        "GUIDEBOT_ALIYUN_TEMPLATES": "case_status=SMS_1, notice=SMS_2",
    })
    assert settings.allows("10.9.8.7") and settings.allows("192.168.1.5") and not settings.allows("127.0.0.1")
    assert (settings.max_segments, settings.rate) == (5, 2.5)
    assert settings.aliyun_templates == {"case_status": "SMS_1", "notice": "SMS_2"}


@pytest.mark.parametrize(("env", "says"), [
    pytest.param({"GUIDEBOT_SMS_GATEWAY": "twilio"}, "GUIDEBOT_SMS_GATEWAY must be one of", id="gateway"),
    pytest.param({"GUIDEBOT_SMS_SECRET": "short"}, "at least 12", id="short-secret"),
    pytest.param({"GUIDEBOT_SMS_SECRET": "has&ampersand-in-it"}, "URL-safe", id="unsafe-secret"),
    pytest.param({"GUIDEBOT_SMS_ALLOW": "127.0.0.1, kannel.local"}, "'kannel.local' is not an IP", id="allow"),
    pytest.param({"GUIDEBOT_SMS_MAX_SEGMENTS": "0"}, "between 1 and 10", id="segments-zero"),
    pytest.param({"GUIDEBOT_SMS_MAX_SEGMENTS": "three"}, "must be a number", id="segments-word"),
    pytest.param({"GUIDEBOT_SMS_RATE": "-1"}, "GUIDEBOT_SMS_RATE", id="rate"),
    pytest.param({"GUIDEBOT_SMS_REGION": "China"}, "two-letter", id="region"),
    pytest.param({"GUIDEBOT_SMS_NUMBER_FORMAT": "local"}, "national, e164", id="number-format"),
    pytest.param({"GUIDEBOT_SMS_SIGNATURE": "区政务服务中心"}, "【签名】", id="signature"),
    pytest.param({"GUIDEBOT_KANNEL_SENDSMS_URL": "127.0.0.1:13013"}, "http(s) URL", id="sendsms-url"),
    pytest.param({"GUIDEBOT_KANNEL_USER": "bot"}, "set together", id="user-without-password"),
    pytest.param({"GUIDEBOT_ALIYUN_TEMPLATES": "case_status"}, "name=TEMPLATE_CODE", id="templates"),
    pytest.param({"GUIDEBOT_SMS_GATEWAY": "aliyun"}, "GUIDEBOT_ALIYUN_ACCESS_KEY_ID", id="aliyun-missing"),
])
def test_bad_values_are_clear_errors(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=None) as error:
        SmsSettings.from_env(env)
    assert says in str(error.value)
