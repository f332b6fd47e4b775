"""Domain events: written to the outbox in the transaction of the command that caused them.

A publisher (lendcore.services.publisher) delivers them at least once, in order
per aggregate; consumers de-duplicate by `event_id`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, select

from lendcore.audit import canonical, to_plain
from lendcore.errors import InvalidInput
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import query
from lendcore.store.bulk import COPY_ROWS_MIN, insert_rows
from lendcore.store.database import TX_INFO_PREFIX, Database, before_this_commit, send_later
from lendcore.store.schema import outbox_events

PAGE_SIZE_MAX = 1_000
# Events waiting in a transaction for its commit.
_PENDING = TX_INFO_PREFIX + "outbox"
# The PostgreSQL advisory lock that orders outbox writes by commit.
OUTBOX_LOCK_KEY = 7_243_001


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    business_date: date
    recorded_at: str
    payload: Mapping[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The document sent to webhooks and streams."""
        return {
            "event_id": self.event_id,
            "sequence": self.id,
            "type": self.event_type,
            "aggregate": {"type": self.aggregate_type, "id": self.aggregate_id},
            "business_date": self.business_date.isoformat(),
            "recorded_at": self.recorded_at,
            "data": dict(self.payload),
        }


def emit(
    conn: Connection,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str | int,
    payload: Mapping[str, Any],
    *,
    plain: bool = False,
) -> str:
    """Add one event to the outbox of the caller's transaction; returns its id.

    Events are written at the end of the transaction, under a lock held until
    commit, so outbox ids follow commit order: a reader that moves a cursor past
    id N never misses an event with a smaller id that commits later. With
    `plain`, the payload holds JSON types only already (no dates, enums or
    dataclasses to convert), which saves the conversion on the booking path.
    """
    event_id = str(uuid.uuid4())
    pending: list[dict[str, Any]] = conn.info.setdefault(_PENDING, [])
    pending.append(
        {
            "event_id": event_id,
            "event_type": event_type,
            "aggregate_type": aggregate_type,
            "aggregate_id": str(aggregate_id),
            "recorded_at": utc_timestamp(),
            "payload_json": canonical(payload if plain else to_plain(dict(payload))),
        }
    )
    before_this_commit(conn, "outbox", _write_outbox)
    return event_id


_OUTBOX_COLUMNS = (
    "event_id",
    "event_type",
    "aggregate_type",
    "aggregate_id",
    "business_date",
    "recorded_at",
    "payload_json",
)


@lru_cache(maxsize=32)
def _outbox_sql_pg(count: int) -> str:
    """PostgreSQL: take the lock, then insert (ids are drawn as rows are produced,
    after the lock is held), in one statement that goes with the COMMIT."""
    first = "(%s::text, %s::text, %s::text, %s::text, %s::text, %s::text)"
    rest = "(%s, %s, %s, %s, %s, %s)"
    values = ", ".join([first] + [rest] * (count - 1))
    return (
        "WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s)) "
        "INSERT INTO outbox_events (event_id, event_type, aggregate_type, aggregate_id, "
        "business_date, recorded_at, payload_json) "
        "SELECT v.event_id, v.event_type, v.aggregate_type, v.aggregate_id, %s::date, "
        f"v.recorded_at, v.payload_json FROM ordered, (VALUES {values}) "
        "AS v(event_id, event_type, aggregate_type, aggregate_id, recorded_at, payload_json)"
    )


_EVENT_FIELDS = (
    "event_id",
    "event_type",
    "aggregate_type",
    "aggregate_id",
    "recorded_at",
    "payload_json",
)


def _write_outbox(conn: Connection) -> None:
    rows = conn.info.pop(_PENDING, [])
    if not rows:
        return
    today = current_business_date(conn)
    if conn.dialect.name == "postgresql" and len(rows) < COPY_ROWS_MIN:
        # The lock is held until commit: emitting transactions commit their
        # events one at a time.
        params: list[Any] = [OUTBOX_LOCK_KEY, today]
        params += [row[name] for row in rows for name in _EVENT_FIELDS]
        send_later(conn, _outbox_sql_pg(len(rows)), params)
        return
    if conn.dialect.name == "postgresql":
        send_later(conn, "SELECT pg_advisory_xact_lock(%s)", (OUTBOX_LOCK_KEY,))
        day: Any = today
    else:
        day = today.isoformat()
    insert_rows(
        conn,
        "outbox_events",
        _OUTBOX_COLUMNS,
        [
            (
                row["event_id"],
                row["event_type"],
                row["aggregate_type"],
                row["aggregate_id"],
                day,
                row["recorded_at"],
                row["payload_json"],
            )
            for row in rows
        ],
    )


def to_event(row: Any) -> Event:
    return Event(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        business_date=row.business_date,
        recorded_at=row.recorded_at,
        payload=json.loads(row.payload_json),
    )


@query("events.read")
def list_events(
    db: Database,
    *,
    after_id: int = 0,
    limit: int = 100,
    event_type: str | None = None,
    aggregate_type: str | None = None,
    aggregate_id: str | None = None,
) -> list[Event]:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    q = select(outbox_events).where(outbox_events.c.id > after_id)
    if event_type:
        q = q.where(outbox_events.c.event_type == event_type)
    if aggregate_type:
        q = q.where(outbox_events.c.aggregate_type == aggregate_type)
    if aggregate_id:
        q = q.where(outbox_events.c.aggregate_id == aggregate_id)
    with db.reading() as conn:
        return [to_event(r) for r in conn.execute(q.order_by(outbox_events.c.id).limit(limit))]
