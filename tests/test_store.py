"""The store: database URL, migrations, conversation state, query log — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from guidebot.store import db as store_db
from guidebot.store.db import (
    SchemaNotCurrent,
    Store,
    alembic_config,
    default_database_url,
    open_store,
    upgrade,
)
from guidebot.store.models import Base, Conversation, QueryLog
from tests.store_fixtures import (  # noqa: F401 — fixtures
    postgres_schema_url,
    require_postgres,
    store,
    store_url,
)

EXPECTED_TABLES = {"cases", "case_events", "lookup_failures", "conversations", "query_log", "guidebot_meta"}


def test_default_url_is_env_or_user_data_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GUIDEBOT_DATABASE_URL", "postgresql+psycopg://u@db/guidebot")
    assert default_database_url() == "postgresql+psycopg://u@db/guidebot"
    monkeypatch.delenv("GUIDEBOT_DATABASE_URL")
    monkeypatch.setenv("GUIDEBOT_DATA_DIR", str(tmp_path / "configured"))
    assert default_database_url() == f"sqlite:///{tmp_path / 'configured' / 'guidebot.sqlite3'}"
    monkeypatch.delenv("GUIDEBOT_DATA_DIR")
    monkeypatch.setattr(store_db.platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "data"))
    assert default_database_url() == f"sqlite:///{tmp_path / 'data' / 'guidebot.sqlite3'}"


def test_new_sqlite_database_is_created_and_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "guidebot.sqlite3"
    opened = open_store(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert set(inspect(opened.engine).get_table_names()) >= EXPECTED_TABLES
        with opened.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == store_db._head_revision()
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        opened.close()


def test_old_sqlite_database_is_upgraded_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:  # take it back to an empty, pre-0001 database
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert "cases" not in inspect(engine).get_table_names()
    engine.dispose()
    opened = open_store(url)
    try:
        assert set(inspect(opened.engine).get_table_names()) >= EXPECTED_TABLES
    finally:
        opened.close()


def test_postgres_is_not_upgraded_behind_the_operators_back(postgres_schema_url: str) -> None:  # noqa: F811
    with pytest.raises(SchemaNotCurrent, match="guidebot db upgrade"):
        open_store(postgres_schema_url)
    assert upgrade(postgres_schema_url) == store_db._head_revision()
    opened = open_store(postgres_schema_url)
    try:
        assert set(inspect(opened.engine).get_table_names()) >= EXPECTED_TABLES
    finally:
        opened.close()


def test_migrations_match_the_models(store: Store) -> None:  # noqa: F811
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_conversation_state_round_trip_per_sender(store: Store) -> None:  # noqa: F811
    assert store.load_state("telegram", "1001") == {}
    store.save_state("telegram", "1001", {"pending": ["511A0138", "511Z07"], "item": "511A0138"})
    store.save_state("sms", "1001", {"awaiting_factor": "SC20240511000123"})
    assert store.load_state("telegram", "1001") == {"pending": ["511A0138", "511Z07"], "item": "511A0138"}
    assert store.load_state("sms", "1001") == {"awaiting_factor": "SC20240511000123"}
    assert store.load_state("telegram", "1002") == {}

    store.save_state("telegram", "1001", {"item": "511Z07"})  # replaces, not merges
    assert store.load_state("telegram", "1001") == {"item": "511Z07"}
    store.save_state("telegram", "1001", {})
    assert store.load_state("telegram", "1001") == {}
    with store.session() as session:
        assert session.scalar(select(Conversation).where(Conversation.channel == "telegram")) is None


def test_raw_sender_ids_are_never_stored(store: Store) -> None:  # noqa: F811
    phone = "13812345678"
    store.save_state("sms", phone, {"step": 1})
    store.log_query("sms", phone, "营业执照怎么办", "answer")
    with store.session() as session:
        stored = [
            *session.scalars(select(Conversation.sender_hash)),
            *session.scalars(select(QueryLog.sender_hash)),
        ]
    assert stored and all(phone not in value and "5678" not in value for value in stored)
    assert len(set(stored)) == 1  # the same sender hashes the same everywhere


def test_sender_hash_is_stable_across_opens_and_keyed(store_url: str) -> None:  # noqa: F811
    first = open_store(store_url)
    second = open_store(store_url)
    try:
        assert first.sender_hash("sms", "13812345678") == second.sender_hash("sms", "13812345678")
        assert first.sender_hash("sms", "13812345678") != first.sender_hash("telegram", "13812345678")
    finally:
        first.close()
        second.close()


def test_query_log_masks_text(store: Store) -> None:  # noqa: F811
    store.log_query("sms", "1", "我手机13812345678身份证110101199001011234能查吗", "unknown")
    with store.session() as session:
        logged = session.scalars(select(QueryLog.text)).one()
    assert logged == "我手机138****5678身份证110***********1234能查吗"


def test_top_unanswered_counts_filters_and_orders(store: Store) -> None:  # noqa: F811
    base = dt.datetime(2025, 3, 3, 9, 0)
    for minute, (sender, question) in enumerate(
        [("a", "狗证怎么办"), ("b", "狗证怎么办"), ("c", "狗证怎么办"), ("a", "渔船登记"), ("b", "渔船登记")]
    ):
        store.log_query("telegram", sender, question, "unknown", at=base + dt.timedelta(minutes=minute))
    store.log_query("telegram", "a", "营业执照", "answer", at=base)
    store.log_query("telegram", "a", "旧问题", "unknown", at=base - dt.timedelta(days=30))

    top = store.top_unanswered(limit=10)
    assert [(q.text, q.count) for q in top] == [("狗证怎么办", 3), ("渔船登记", 2), ("旧问题", 1)]
    assert top[0].last_asked == base + dt.timedelta(minutes=2)
    assert [q.text for q in store.top_unanswered(limit=1)] == ["狗证怎么办"]
    recent = store.top_unanswered(limit=10, since=base - dt.timedelta(days=1))
    assert [q.text for q in recent] == ["狗证怎么办", "渔船登记"]
    with_answers = store.top_unanswered(limit=10, decisions=("answer",))
    assert [(q.text, q.count) for q in with_answers] == [("营业执照", 1)]


def test_missing_postgres_skips_locally_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDEBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not reachable"):
        require_postgres()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_postgres()
