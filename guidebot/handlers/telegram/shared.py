"""What several `guidebot serve` (or `guidebot telegram`) processes of one bot must agree on, kept in
the store's conversation-state slots — no table of its own, no migration:

- `UpdateLedger` — which update ids were taken (slot ``telegram-updates``, one state per chat): a
  webhook update Telegram redelivers to another process is answered once;
- `Drafts` — unconfirmed /broadcast previews (slot ``telegram-drafts``, one state per staff user,
  30 minutes): 确认发送 works whichever process Telegram hands the press to, and only once.

Both are read-modify-write of one small JSON state. `Store.load_state`/`save_state` alone would let
two processes both read "not taken" and both go on, so `SharedState.change` writes only if the row
is still what it read (compare-and-set on the stored text; on PostgreSQL the row is also locked
while it is changed) and otherwise reads again. With an in-memory store (one process by
definition) a lock is enough.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from guidebot.dialog.engine import StateStore

__all__ = ["DRAFTS_SLOT", "DRAFT_TTL", "UPDATES_SLOT", "Claim", "Draft", "Drafts", "SharedState", "UpdateLedger"]

T = TypeVar("T")

UPDATES_SLOT = "telegram-updates"
DRAFTS_SLOT = "telegram-drafts"
UPDATES_KEPT = 100  # per chat; Telegram redelivers within hours, and a chat sends far fewer in that time
STALE_CLAIM = 300.0  # seconds: a claim older than this belongs to a process that died mid-update
DRAFT_TTL = 30 * 60.0
DRAFTS_KEPT = 10  # per staff user
MAX_ATTEMPTS = 20


class SharedState:
    """Atomic changes of one state slot per key, across processes sharing the store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def change(self, slot: str, key: str, edit: Callable[[dict[str, Any]], T]) -> T:
        """Apply `edit` to the state (in place) and keep the result; returns what `edit` returns.

        `edit` may run more than once (when another process wrote in between), so it must not do
        anything but change the dict it is given.
        """
        from guidebot.store.db import Store

        if not isinstance(self.store, Store):
            with self._lock:
                state = self.store.load_state(slot, key)
                result = edit(state)
                self.store.save_state(slot, key, state)
                return result
        for attempt in range(MAX_ATTEMPTS):
            written, result = self._attempt(self.store, slot, key, edit)
            if written:
                return result
            time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # someone else wrote: let them finish
        raise RuntimeError(f"state slot {slot} kept changing under us")

    @staticmethod
    def _attempt(store: Any, slot: str, key: str, edit: Callable[[dict[str, Any]], T]) -> tuple[bool, T]:
        """One read-edit-write; (False, _) when another writer came first.

        On PostgreSQL the row is read FOR UPDATE in the write's transaction, so writers of an
        existing row queue up instead of retrying. SQLite allows one writer at a time anyway but
        fails a read transaction that tries to write after another commit, so there the read is its
        own transaction and the write is conditional on the row still holding what was read.
        """
        from sqlalchemy import delete, select, update

        from guidebot.store.db import now
        from guidebot.store.models import Conversation

        sender_hash = store.sender_hash(slot, key)
        row = (Conversation.channel == slot, Conversation.sender_hash == sender_hash)
        locking = store.dialect == "postgresql"
        with store.session() as session:
            query = select(Conversation.state_json).where(*row)
            if locking:
                raw: str | None = session.scalar(query.with_for_update())
            else:
                raw = session.scalar(query)
                session.commit()
            before: dict[str, Any] = json.loads(raw) if raw else {}
            state = copy.deepcopy(before)
            result = edit(state)
            if state == before:
                return True, result
            text = json.dumps(state, ensure_ascii=False, sort_keys=True)
            if raw is None:
                statement = store.insert_for(Conversation).values(
                    channel=slot, sender_hash=sender_hash, state_json=text, updated_at=now()).on_conflict_do_nothing()
            elif not state:
                statement = delete(Conversation).where(*row, Conversation.state_json == raw)
            else:
                statement = update(Conversation).where(*row, Conversation.state_json == raw).values(
                    state_json=text, updated_at=now())
            # RETURNING rather than rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING.
            written = session.connection().execute(statement.returning(Conversation.channel)).first()
            return written is not None, result


class Claim(StrEnum):
    NEW = "new"  # ours now: process it, then `finish`
    DONE = "done"  # processed before (here or by another process): answer 200, do nothing
    BUSY = "busy"  # another process is processing it right now: let Telegram retry later


class UpdateLedger:
    """Update ids per chat: taken, being processed, or processed, as every process sees them.

    Keyed per chat because Telegram delivers one chat's updates one after another: a chat's state
    is small and rarely written by two processes at once.
    """

    def __init__(self, shared: SharedState, *, clock: Callable[[], float] = time.time,
                 stale_after: float = STALE_CLAIM) -> None:
        self.shared = shared
        self.clock = clock
        self.stale_after = stale_after

    def claim(self, chat: str, update_id: int) -> Claim:
        at = self.clock()

        def take(state: dict[str, Any]) -> Claim:
            entries: list[list[Any]] = state.setdefault("updates", [])
            for entry in entries:
                if entry[0] == update_id:
                    if entry[1] == "done":
                        return Claim.DONE
                    if at - float(entry[2]) < self.stale_after:
                        return Claim.BUSY
                    entry[2] = at  # its process died: the update is ours now
                    return Claim.NEW
            entries.append([update_id, "busy", at])
            del entries[:-UPDATES_KEPT]
            return Claim.NEW

        return self.shared.change(UPDATES_SLOT, chat, take)

    def finish(self, chat: str, update_id: int, *, processed: bool) -> None:
        """Mark the update processed, or forget it (it failed: Telegram's redelivery is processed)."""

        def mark(state: dict[str, Any]) -> None:
            entries: list[list[Any]] = state.get("updates", [])
            for entry in entries:
                if entry[0] == update_id:
                    if processed:
                        entry[1] = "done"
                    else:
                        entries.remove(entry)
                    return

        self.shared.change(UPDATES_SLOT, chat, mark)


@dataclass(frozen=True)
class Draft:
    text: str
    created_at: float


class Drafts:
    """Unconfirmed /broadcast previews of each staff user, valid for `ttl` seconds."""

    def __init__(self, shared: SharedState, *, clock: Callable[[], float] = time.time, ttl: float = DRAFT_TTL) -> None:
        self.shared = shared
        self.clock = clock
        self.ttl = ttl

    def _fresh(self, state: dict[str, Any], at: float) -> dict[str, Any]:
        drafts: dict[str, Any] = state.setdefault("drafts", {})
        for key in [k for k, d in drafts.items() if at - float(d["at"]) >= self.ttl]:
            del drafts[key]
        return drafts

    def add(self, user_id: int, key: str, text: str) -> None:
        at = self.clock()

        def put(state: dict[str, Any]) -> None:
            drafts = self._fresh(state, at)
            drafts[key] = {"text": text, "at": at}
            for oldest in sorted(drafts, key=lambda k: float(drafts[k]["at"]))[:-DRAFTS_KEPT]:
                del drafts[oldest]

        self.shared.change(DRAFTS_SLOT, str(user_id), put)

    def take(self, user_id: int, key: str) -> Draft | None:
        """Remove and return the draft (so only one 确认发送 ever sends it); None if gone or expired."""
        at = self.clock()

        def pop(state: dict[str, Any]) -> Draft | None:
            drafts = self._fresh(state, at)
            found = drafts.pop(key, None)
            if not drafts:
                state.pop("drafts")
            return Draft(found["text"], float(found["at"])) if found else None

        return self.shared.change(DRAFTS_SLOT, str(user_id), pop)
