"""Settings from the environment, then an optional `.env` file, then defaults that run with nothing set.

Read once at start and validated, so a bad value is a clear message, never a traceback later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from guidebot.store.db import sqlite_url_in

PREFIX = "GUIDEBOT_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; quotes around a value removed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    catalog_path: Path | None
    synonyms_path: Path | None  # the center's own synonym entries, beside the bundled table
    telegram_token: str
    telegram_base_url: str
    staff_telegram_ids: frozenset[int]

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
        env = dict(read_env_file(env_file or Path(".env")))
        env.update(os.environ if environ is None else environ)

        def get(name: str, default: str = "") -> str:
            return env.get(PREFIX + name, default).strip()

        data_dir = Path(get("DATA_DIR") or platformdirs.user_data_dir("guidebot")).expanduser()
        database_url = get("DATABASE_URL") or sqlite_url_in(data_dir)
        if "://" not in database_url:
            raise SettingsError(f"{PREFIX}DATABASE_URL must be a URL such as "
                                f"postgresql+psycopg://user@host/db, got {database_url!r}")
        catalog = get("CATALOG")
        catalog_path = Path(catalog).expanduser() if catalog else None
        if catalog_path is None and (data_dir / "catalog.yaml").is_file():
            catalog_path = data_dir / "catalog.yaml"
        synonyms = get("SYNONYMS")
        synonyms_path = Path(synonyms).expanduser() if synonyms else None
        if synonyms_path is None and (data_dir / "synonyms.yaml").is_file():
            synonyms_path = data_dir / "synonyms.yaml"
        staff: set[int] = set()
        for part in get("STAFF_TELEGRAM_IDS").replace(";", ",").split(","):
            if part.strip():
                if not part.strip().lstrip("-").isdigit():
                    raise SettingsError(f"{PREFIX}STAFF_TELEGRAM_IDS: {part.strip()!r} is not a Telegram user id")
                staff.add(int(part))
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            catalog_path=catalog_path,
            synonyms_path=synonyms_path,
            telegram_token=get("TELEGRAM_TOKEN"),
            telegram_base_url=get("TELEGRAM_BASE_URL", "https://api.telegram.org/bot"),
            staff_telegram_ids=frozenset(staff),
        )
