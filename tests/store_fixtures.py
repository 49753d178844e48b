"""Store fixtures shared by the store, import and lookup tests (imported explicitly).

``store`` runs each test on SQLite (a temporary file) and on the real PostgreSQL server
(``GUIDEBOT_TEST_PG_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
Every PostgreSQL test gets its own schema, dropped afterwards, so tests never see each other's
rows.  When the server is unreachable those tests are skipped with the reason — except under
``CI=true``, where a missing database must fail the build instead of silently skipping.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from guidebot.store.db import Store, open_store, upgrade

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("GUIDEBOT_TEST_PG_URL", DEFAULT_PG_URL)


def require_postgres() -> str:
    """The PostgreSQL URL if the server answers; skip (or fail under CI=true) otherwise."""
    url = postgres_url()
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as error:
        reason = f"PostgreSQL not reachable at {url}: {type(error).__name__}: {str(error).splitlines()[0]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: tests needing PostgreSQL must not be skipped)")
        pytest.skip(reason)
    return url


def _isolated_postgres_url(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh, empty schema; the schema is dropped afterwards."""
    base_url = require_postgres()
    schema = f"gbtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _isolated_postgres_url(base_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL at the latest schema, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'guidebot.sqlite3'}"
    url = request.getfixturevalue("postgres_schema_url")
    upgrade(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on each backend, closed afterwards."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


# -- case files ----------------------------------------------------------------------------

CASE_HEADER = [
    "办件编号",
    "事项编码",
    "事项名称",
    "申请人",
    "联系电话",
    "证件号码",
    "受理窗口",
    "受理时间",
    "办件状态",
    "状态时间",
    "备注",
]


def write_case_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    """Write an import file with the documented header (row 1) and ``rows``."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CASE_HEADER)
        writer.writerows(rows)
    return path


def new_case_row(
    case_no: str,
    accepted: str = "2025-09-26 10:00",
    status: str = "已受理",
    name: str = "张三",
    phone: str = "13812345678",
    id_number: str = "11010119900101123X",
    item_code: str = "511A0138000000",
) -> list[str]:
    """A row creating a case (状态时间 left empty: it defaults to 受理时间)."""
    item_name, window = "适龄儿童延缓入学审批", "综合窗口3号"
    return [case_no, item_code, item_name, name, phone, id_number, window, accepted, status, "", ""]


def update_row(case_no: str, status: str, at: str, note: str = "") -> list[str]:
    """A status-update row: only number, status, time and note."""
    return [case_no, "", "", "", "", "", "", "", status, at, note]
