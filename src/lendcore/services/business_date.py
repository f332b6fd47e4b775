"""The institution's business date: every operation is dated by it, not by the wall clock."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, update

from lendcore.errors import BusinessDateBackwards, InvalidInput
from lendcore.services.clock import current_business_date, remember_business_date, utc_timestamp
from lendcore.services.commands import command, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database
from lendcore.store.schema import institution

__all__ = ["business_date", "current_business_date", "move_business_date", "utc_timestamp"]

# One move may not skip more than this many days: a typo should not age a book by a decade.
ADVANCE_DAYS_MAX = 366


@query("calendar.business_date.read")
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
        remember_business_date(conn, new_date)
        expired = expire_holds(conn, new_date)
        emit(
            conn,
            "business_date.moved",
            "institution",
            "1",
            {"from": today, "to": new_date, "holds_expired": expired},
        )
        note_result(business_date=new_date, holds_expired=expired)
    return new_date


@command("calendar.business_date.move")
def set_business_date(db: Database, new_date: date) -> date:
    with db.transaction() as conn:
        return move_business_date(conn, new_date)


@command("calendar.business_date.move")
def advance_business_date(db: Database, days: int = 1) -> date:
    if days < 1:
        raise InvalidInput(f"advance by at least one day, got {days}")
    with db.transaction() as conn:
        return move_business_date(conn, current_business_date(conn) + timedelta(days=days))
