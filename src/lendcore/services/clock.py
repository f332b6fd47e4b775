"""Reading the two clocks inside a transaction: the business date and UTC time."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection, select

from lendcore.store.database import TX_INFO_PREFIX
from lendcore.store.schema import institution


def utc_timestamp() -> str:
    """The recorded-at timestamp: ISO 8601 UTC with microseconds, stored as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_CACHED = TX_INFO_PREFIX + "business_date"


def current_business_date(conn: Connection) -> date:
    """The business date, read once per transaction (a booking asks several times)."""
    cached = conn.info.get(_CACHED)
    if isinstance(cached, date):
        return cached
    value = conn.execute(
        select(institution.c.business_date).where(institution.c.id == 1)
    ).scalar_one()
    if not isinstance(value, date):
        raise RuntimeError("institution.business_date is not a date")
    conn.info[_CACHED] = value
    return value


def remember_business_date(conn: Connection, value: date) -> None:
    """After this transaction moved the date, later reads in it see the new one."""
    conn.info[_CACHED] = value
