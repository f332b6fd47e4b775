"""Helpers for the borrower tests: people, the demo watch list, staff."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from lendcore.origination.borrowers import BorrowerDetails, BorrowerKind
from lendcore.origination.screening import WatchListFile, read_watch_list
from lendcore.services import identity
from lendcore.store.database import Database

DEMO_LIST = (
    Path(__file__).parents[2] / "src" / "lendcore" / "origination" / "data" / "watchlist_demo.csv"
)
# On the demo list with this very date of birth (SYN-0009).
LISTED = ("Nadia Notreal", date(1993, 12, 12))


def demo_list(name: str = "demo") -> WatchListFile:
    return read_watch_list(DEMO_LIST.read_text(), DEMO_LIST.name, name)


def person(
    name: str = "Ada Lovelace",
    date_of_birth: date = date(1985, 12, 10),
    national_id: str | None = None,
    **others: object,
) -> BorrowerDetails:
    return BorrowerDetails(
        BorrowerKind.PERSON,
        name,
        "USD",
        date_of_birth=date_of_birth,
        national_id=national_id,
        monthly_income_minor=450_000,
        monthly_obligations_minor=50_000,
        **others,  # type: ignore[arg-type]
    )


def as_user(db: Database, username: str, role: str) -> Database:
    """`db` acting as a new user with one role."""
    identity.create_user(db, username, [role])
    return db.acting_as(identity.actor_for_username(db, username))
