"""The SMS channel's settings, read from the environment and validated once.

They live here, beside the channel, until they move into ``guidebot.settings``; every name is
``GUIDEBOT_SMS_*``, ``GUIDEBOT_KANNEL_*`` or ``GUIDEBOT_ALIYUN_*`` and every one has a default
that runs on one machine with Kannel on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from guidebot.settings import SettingsError, read_env_file

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

GATEWAYS = ("kannel", "aliyun")
NUMBER_FORMATS = ("national", "e164")
DEFAULT_ALLOW = "127.0.0.1,::1"
DEFAULT_SENDSMS_URL = "http://127.0.0.1:13013/cgi-bin/sendsms"
DEFAULT_ALIYUN_URL = "https://dysmsapi.aliyuncs.com/"
MIN_SECRET_CHARS = 12


def _networks(name: str, raw: str) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"{name}: {part!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _number(name: str, raw: str, cast: type[int] | type[float], low: float, high: float) -> float:
    try:
        value = cast(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number between {low:g} and {high:g}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


def _url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL such as http://127.0.0.1:13013/cgi-bin/sendsms, "
                            f"got {raw!r}")
    return raw


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _templates(name: str, raw: str) -> dict[str, str]:
    """``case_status=SMS_1001,notice=SMS_1002`` → {template name: provider template code}."""
    mapping: dict[str, str] = {}
    for part in raw.replace(";", ",").split(","):
        if not part.strip():
            continue
        key, sep, code = part.partition("=")
        if not sep or not key.strip() or not code.strip():
            raise SettingsError(f"{name}: expected name=TEMPLATE_CODE pairs separated by commas, got {part.strip()!r}")
        mapping[key.strip()] = code.strip()
    return mapping


@dataclass(frozen=True)
class SmsSettings:
    """Everything the SMS channel reads from the environment (see README, 短信 / SMS)."""

    gateway: str = "kannel"
    secret: str = ""
    allow: tuple[IPNetwork, ...] = field(default_factory=lambda: _networks("default", DEFAULT_ALLOW))
    max_segments: int = 3
    region: str = "CN"
    number_format: str = "national"
    rate: float = 10.0
    signature: str = ""
    kannel_sendsms_url: str = DEFAULT_SENDSMS_URL
    kannel_user: str = ""
    kannel_password: str = ""
    kannel_from: str = ""
    kannel_smsc: str = ""
    kannel_dlr_url: str = ""
    aliyun_url: str = DEFAULT_ALIYUN_URL
    aliyun_key_id: str = ""
    aliyun_key_secret: str = ""
    aliyun_sign_name: str = ""
    aliyun_region: str = "cn-hangzhou"
    aliyun_templates: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmsSettings:
        """From ``environ`` (default: the environment over the current directory's ``.env``)."""
        env = {**read_env_file(Path(".env")), **os.environ} if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        secret = get("GUIDEBOT_SMS_SECRET")
        if secret and (len(secret) < MIN_SECRET_CHARS or not secret.isascii() or not secret.isprintable()
                       or any(c in secret for c in "&=#%?/ ")):
            raise SettingsError(f"GUIDEBOT_SMS_SECRET must be at least {MIN_SECRET_CHARS} URL-safe characters "
                                "(letters, digits, - _ . ~), e.g. from `python3 -c 'import secrets; "
                                "print(secrets.token_urlsafe(24))'`")
        region = get("GUIDEBOT_SMS_REGION", "CN").upper()
        if len(region) != 2 or not region.isalpha():
            raise SettingsError(f"GUIDEBOT_SMS_REGION must be a two-letter region code such as CN, got {region!r}")
        signature = get("GUIDEBOT_SMS_SIGNATURE")
        if signature and not (signature.startswith("【") and signature.endswith("】")):
            raise SettingsError(f"GUIDEBOT_SMS_SIGNATURE must be written as 【签名】, got {signature!r}")
        dlr_url = get("GUIDEBOT_KANNEL_DLR_URL")
        gateway = _choice("GUIDEBOT_SMS_GATEWAY", get("GUIDEBOT_SMS_GATEWAY", "kannel"), GATEWAYS)
        settings = cls(
            gateway=gateway,
            secret=secret,
            allow=_networks("GUIDEBOT_SMS_ALLOW", get("GUIDEBOT_SMS_ALLOW", DEFAULT_ALLOW)),
            max_segments=int(_number("GUIDEBOT_SMS_MAX_SEGMENTS", get("GUIDEBOT_SMS_MAX_SEGMENTS", "3"), int, 1, 10)),
            region=region,
            number_format=_choice("GUIDEBOT_SMS_NUMBER_FORMAT", get("GUIDEBOT_SMS_NUMBER_FORMAT", "national"),
                                  NUMBER_FORMATS),
            rate=float(_number("GUIDEBOT_SMS_RATE", get("GUIDEBOT_SMS_RATE", "10"), float, 0.01, 10000)),
            signature=signature,
            kannel_sendsms_url=_url("GUIDEBOT_KANNEL_SENDSMS_URL",
                                    get("GUIDEBOT_KANNEL_SENDSMS_URL", DEFAULT_SENDSMS_URL)),
            kannel_user=get("GUIDEBOT_KANNEL_USER"),
            kannel_password=get("GUIDEBOT_KANNEL_PASSWORD"),
            kannel_from=get("GUIDEBOT_KANNEL_FROM"),
            kannel_smsc=get("GUIDEBOT_KANNEL_SMSC"),
            kannel_dlr_url=_url("GUIDEBOT_KANNEL_DLR_URL", dlr_url) if dlr_url else "",
            aliyun_url=_url("GUIDEBOT_ALIYUN_SMS_URL", get("GUIDEBOT_ALIYUN_SMS_URL", DEFAULT_ALIYUN_URL)),
            aliyun_key_id=get("GUIDEBOT_ALIYUN_ACCESS_KEY_ID"),
            aliyun_key_secret=get("GUIDEBOT_ALIYUN_ACCESS_KEY_SECRET"),
            aliyun_sign_name=get("GUIDEBOT_ALIYUN_SIGN_NAME"),
            aliyun_region=get("GUIDEBOT_ALIYUN_REGION", "cn-hangzhou"),
            aliyun_templates=_templates("GUIDEBOT_ALIYUN_TEMPLATES", get("GUIDEBOT_ALIYUN_TEMPLATES")),
        )
        if gateway == "kannel" and bool(settings.kannel_user) != bool(settings.kannel_password):
            raise SettingsError("GUIDEBOT_KANNEL_USER and GUIDEBOT_KANNEL_PASSWORD must be set together "
                                "(the username/password of a sendsms-user group in kannel.conf)")
        if gateway == "aliyun":
            missing = [name for name, value in (("GUIDEBOT_ALIYUN_ACCESS_KEY_ID", settings.aliyun_key_id),
                                                ("GUIDEBOT_ALIYUN_ACCESS_KEY_SECRET", settings.aliyun_key_secret),
                                                ("GUIDEBOT_ALIYUN_SIGN_NAME", settings.aliyun_sign_name))
                       if not value]
            if missing:
                raise SettingsError(f"GUIDEBOT_SMS_GATEWAY=aliyun needs {', '.join(missing)}")
        return settings

    def allows(self, address: str | None) -> bool:
        """Whether a request from ``address`` may use the gateway endpoints (the allow-list)."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allow)
