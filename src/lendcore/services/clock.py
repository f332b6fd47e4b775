"""Reading the two clocks inside a transaction: the business date and UTC time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from lendcore.store.database import TX_INFO_PREFIX, run_now


def utc_timestamp() -> str:
    """The recorded-at timestamp: ISO 8601 UTC with microseconds, stored as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_CACHED = TX_INFO_PREFIX + "business_date"


def cached_business_date(conn: Connection) -> date | None:
    """The business date if this transaction has read it already."""
    cached = conn.info.get(_CACHED)
    return cached if isinstance(cached, date) else None


def current_business_date(conn: Connection) -> date:
    """The business date, read once per transaction (a booking asks several times)."""
    cached = cached_business_date(conn)
    if cached is not None:
        return cached
    rows = run_now(conn, "SELECT business_date FROM institution WHERE id = 1")
    if len(rows) != 1:
        raise RuntimeError("the institution row is missing")
    return remember_business_date(conn, rows[0][0])


def remember_business_date(conn: Connection, value: Any) -> date:
    """Cache the business date for the rest of this transaction (after it was read,
    or moved by this transaction) and return it. SQLite hands it over as text."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if not isinstance(value, date) or isinstance(value, datetime):
        raise RuntimeError("institution.business_date is not a date")
    conn.info[_CACHED] = value
    return value
