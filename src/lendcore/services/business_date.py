"""The institution's business date: every operation is dated by it, not by the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, select, update

from lendcore.errors import BusinessDateBackwards, InvalidInput
from lendcore.store.database import Database
from lendcore.store.schema import institution

# One advance may not skip more than this many days: a typo should not age a book by a decade.
ADVANCE_DAYS_MAX = 366


def utc_timestamp() -> str:
    """The recorded-at timestamp: ISO 8601 UTC with microseconds, stored as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_business_date(conn: Connection) -> date:
    value = conn.execute(
        select(institution.c.business_date).where(institution.c.id == 1)
    ).scalar_one()
    if not isinstance(value, date):
        raise RuntimeError("institution.business_date is not a date")
    return value


def business_date(db: Database) -> date:
    with db.reading() as conn:
        return current_business_date(conn)


def move_business_date(conn: Connection, new_date: date) -> date:
    """Move the business date forward inside the caller's transaction (end of day uses this)."""
    from lendcore.services.ledger import expire_holds

    today = current_business_date(conn)
    if new_date < today:
        raise BusinessDateBackwards(
            f"the business date is {today.isoformat()}; it cannot move back to {new_date.isoformat()}",
            business_date=today.isoformat(),
        )
    if (new_date - today).days > ADVANCE_DAYS_MAX:
        raise InvalidInput(
            f"moving the business date by {(new_date - today).days} days is more than the "
            f"{ADVANCE_DAYS_MAX} allowed at once"
        )
    if new_date != today:
        conn.execute(
            update(institution)
            .where(institution.c.id == 1)
            .values(business_date=new_date, updated_at=utc_timestamp())
        )
        expire_holds(conn, new_date)
    return new_date


def set_business_date(db: Database, new_date: date) -> date:
    with db.transaction() as conn:
        return move_business_date(conn, new_date)


def advance_business_date(db: Database, days: int = 1) -> date:
    if days < 1:
        raise InvalidInput(f"advance by at least one day, got {days}")
    with db.transaction() as conn:
        return move_business_date(conn, current_business_date(conn) + timedelta(days=days))
