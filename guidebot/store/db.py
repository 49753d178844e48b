"""Opening the database, running migrations, and the small store API the dialog uses.

- ``default_database_url()``: ``GUIDEBOT_DATABASE_URL`` if set, else a SQLite file in the
  user data directory — nothing to configure.
- ``open_store(url)``: engine + :class:`Store`.  A SQLite database (new or from an older
  version) is brought up to date through Alembic on open; a PostgreSQL database must be
  upgraded explicitly (``guidebot db upgrade``), because several processes share it and a
  schema change there is an operator's decision.
- ``upgrade(url)``: run the Alembic migrations to head (what ``guidebot db upgrade`` does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from guidebot.privacy import mask_text
from guidebot.store.models import Conversation, MetaSetting, QueryLog

__all__ = [
    "CHINA_TZ",
    "DATABASE_URL_ENV",
    "SchemaNotCurrent",
    "Store",
    "UnansweredQuestion",
    "alembic_config",
    "create_engine_for",
    "default_database_url",
    "now",
    "open_store",
    "upgrade",
]

DATABASE_URL_ENV = "GUIDEBOT_DATABASE_URL"
DATA_DIR_ENV = "GUIDEBOT_DATA_DIR"
# Optional fixed key for hashing sender ids; without it a random key is kept in the database.
SENDER_KEY_ENV = "GUIDEBOT_SENDER_HASH_KEY"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_SENDER_KEY_SETTING = "sender_hash_key"
_QUERY_TEXT_LIMIT = 500


def now() -> dt.datetime:
    """The current time as stored: naive, China Standard Time (see models.py)."""
    return dt.datetime.now(CHINA_TZ).replace(tzinfo=None)


def default_database_url() -> str:
    """``GUIDEBOT_DATABASE_URL`` if set, else ``sqlite:///<data dir>/guidebot.sqlite3`` where the
    data dir is ``GUIDEBOT_DATA_DIR`` or the user data directory (as in guidebot.settings)."""
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return configured
    data_dir = os.environ.get(DATA_DIR_ENV, "").strip() or platformdirs.user_data_dir("guidebot")
    return sqlite_url_in(Path(data_dir).expanduser())


def sqlite_url_in(data_dir: Path) -> str:
    """The embedded default database: one SQLite file in guidebot's data directory."""
    return f"sqlite:///{data_dir / 'guidebot.sqlite3'}"


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the bot read while an import writes; NORMAL sync is durable enough with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its directory created and its pragmas set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            # One shared connection, or every session would see its own empty database.
            engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config() -> Config:
    """Alembic configured from code: no alembic.ini needed, works from an installed wheel."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade_engine(engine: Engine) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def upgrade(url: str | None = None) -> str:
    """Bring the database at ``url`` (default: :func:`default_database_url`) to the latest
    schema; returns the revision it is at."""
    engine = create_engine_for(url or default_database_url())
    try:
        _upgrade_engine(engine)
        return _current_revision(engine) or ""
    finally:
        engine.dispose()


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class SchemaNotCurrent(RuntimeError):
    """The database schema is older (or newer) than this version of guidebot expects."""


def open_store(url: str | None = None, *, auto_upgrade: bool | None = None) -> Store:
    """Open the store at ``url`` (default :func:`default_database_url`).

    ``auto_upgrade`` defaults to True for SQLite and False otherwise; when False, a database
    that is not at the latest migration raises :class:`SchemaNotCurrent` with what to run.
    """
    engine = create_engine_for(url or default_database_url())
    if auto_upgrade is None:
        auto_upgrade = engine.dialect.name == "sqlite"
    try:
        if auto_upgrade:
            _upgrade_engine(engine)
        else:
            current, head = _current_revision(engine), _head_revision()
            if current != head:
                raise SchemaNotCurrent(
                    f"database schema is at revision {current or '(empty)'}, guidebot needs {head}: "
                    "run `guidebot db upgrade`"
                )
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


@dataclass(frozen=True, slots=True)
class UnansweredQuestion:
    """A question the bot could not answer, with how often and when it was last asked."""

    text: str
    count: int
    last_asked: dt.datetime


class Store:
    """The database behind guidebot: sessions plus the few operations the dialog needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._sender_key = self._load_sender_key()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``: the few places that differ ask this."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- senders --------------------------------------------------------------------------

    def _load_sender_key(self) -> bytes:
        configured = os.environ.get(SENDER_KEY_ENV, "").strip()
        if configured:
            return configured.encode()
        with self.session() as session:
            insert = self.insert_for(MetaSetting)
            session.execute(
                insert.values(key=_SENDER_KEY_SETTING, value=secrets.token_hex(32)).on_conflict_do_nothing()
            )
            stored = session.scalar(select(MetaSetting.value).where(MetaSetting.key == _SENDER_KEY_SETTING))
        assert stored is not None
        return stored.encode()

    def sender_hash(self, channel: str, sender: str) -> str:
        """A keyed hash of a sender: stable per install, useless without the key.

        A plain hash of a phone number can be reversed by trying every number; the key
        (random per database, or ``GUIDEBOT_SENDER_HASH_KEY``) prevents that.
        """
        digest = hmac.new(self._sender_key, f"{channel}\x00{sender}".encode(), hashlib.sha256)
        return digest.hexdigest()[:40]

    def insert_for(self, model: type) -> Any:
        """The dialect's INSERT (with ``on_conflict_do_*``) for ``model``."""
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        return dialect_insert(model)

    # -- conversation state ---------------------------------------------------------------

    def load_state(self, channel: str, sender: str) -> dict[str, Any]:
        """The dialog state saved for this sender, or ``{}``."""
        key = self.sender_hash(channel, sender)
        with self.session() as session:
            stored = session.scalar(
                select(Conversation.state_json).where(
                    Conversation.channel == channel, Conversation.sender_hash == key
                )
            )
        return json.loads(stored) if stored else {}

    def save_state(self, channel: str, sender: str, state: dict[str, Any]) -> None:
        """Replace this sender's dialog state; an empty dict deletes it."""
        key = self.sender_hash(channel, sender)
        with self.session() as session:
            if not state:
                session.execute(
                    delete(Conversation).where(
                        Conversation.channel == channel, Conversation.sender_hash == key
                    )
                )
                return
            values = {
                "channel": channel,
                "sender_hash": key,
                "state_json": json.dumps(state, ensure_ascii=False, default=str),
                "updated_at": now(),
            }
            insert = self.insert_for(Conversation).values(**values)
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=["channel", "sender_hash"],
                    set_={"state_json": values["state_json"], "updated_at": values["updated_at"]},
                )
            )

    # -- query log ------------------------------------------------------------------------

    def log_query(
        self,
        channel: str,
        sender: str,
        text: str,
        decision: str,
        item_code: str | None = None,
        field: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Record one question: the text masked, the sender hashed."""
        with self.session() as session:
            session.add(
                QueryLog(
                    at=at or now(),
                    channel=channel,
                    sender_hash=self.sender_hash(channel, sender),
                    text=mask_text(text.strip())[:_QUERY_TEXT_LIMIT],
                    decision=decision,
                    item_code=item_code,
                    field=field,
                )
            )

    def top_unanswered(
        self,
        limit: int = 20,
        since: dt.datetime | None = None,
        decisions: Sequence[str] = ("unknown",),
    ) -> list[UnansweredQuestion]:
        """The most frequent questions with one of ``decisions``, most asked first."""
        count = func.count().label("count")
        query = (
            select(QueryLog.text, count, func.max(QueryLog.at))
            .where(QueryLog.decision.in_(list(decisions)))
            .group_by(QueryLog.text)
            .order_by(count.desc(), func.max(QueryLog.at).desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(QueryLog.at >= since)
        with self.session() as session:
            rows = session.execute(query).all()
        return [UnansweredQuestion(text, int(n), last) for text, n, last in rows]
