"""Store fixtures shared by the store, import and lookup tests (imported explicitly).

``store`` runs each test on SQLite (a temporary file) and on the real PostgreSQL server
(``GUIDEBOT_TEST_PG_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
Every PostgreSQL test gets its own schema, dropped afterwards, so tests never see each other's
rows.  When the server is unreachable those tests are skipped with the reason — except under
``CI=true``, where a missing database must fail the build instead of silently skipping.
"""

from __future__ import annotations

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
