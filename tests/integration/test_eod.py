"""End of day over the whole book on SQLite and PostgreSQL."""

from __future__ import annotations

import random

from lendcore.eod.kernel import ROLES
from lendcore.services import eod
from lendcore.store.database import Database
from tests.integration.eod_helpers import business_date, live_day, open_book, replayed, stored


def test_closing_days_keeps_every_loan_equal_to_its_replay(db: Database) -> None:
    book = open_book(db, 40, seed=3)
    rng = random.Random(5)
    for _ in range(70):
        live_day(book, rng)
        eod.run_day(book.servicing)
    today = business_date(db)
    closed_through = today.fromordinal(today.toordinal() - 1)
    for loan_id, (status, dpd, overdue, principal, positions) in stored(db).items():
        want = replayed(db, loan_id, closed_through)
        assert positions == want.positions, loan_id
        assert (status, dpd, overdue, principal) == (
            want.status.value,
            want.days_past_due,
            want.overdue,
            want.principal_outstanding,
        ), loan_id
    assert set(ROLES) == set(positions)
    statuses = [s[0] for s in stored(db).values()]
    in_arrears = [s for s in stored(db).values() if s[1] > 0]
    print("statuses", {x: statuses.count(x) for x in set(statuses)}, "arrears", len(in_arrears))
    print(eod.status(book.servicing))
