"""A book of many loans on a real database, fast enough to close many days.

Loans are booked with the internal booking step (origination's controls are
tested on their own in test_applications) and disbursed and repaid through the
servicing commands, as a branch would.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from lendcore.products.model import Product
from lendcore.services import lender
from lendcore.services import loans as loan_service
from lendcore.services.clock import current_business_date
from lendcore.services.products import product_on
from lendcore.servicing.contract import terms_from_doc
from lendcore.servicing.replay import LoanContract, LoanState, replay
from lendcore.store.database import Database
from lendcore.store.schema import loans
from tests.integration.loan_helpers import FUNDING_MINOR, example

PRODUCT_NAMES = (
    "consumer-annuity",
    "microloan-weekly-flat",
    "working-capital-bullet",
    "interest-only-balloon",
)


@dataclass
class Book:
    operator: Database
    staff: lender.Staff
    products: dict[str, Product]
    loan_ids: list[int]

    @property
    def servicing(self) -> Database:
        return self.staff.servicing


def open_book(
    db: Database,
    size: int,
    seed: int,
    names: tuple[str, ...] = PRODUCT_NAMES,
    *,
    funding_minor: int = FUNDING_MINOR,
) -> Book:
    rng = random.Random(seed)
    products = {n: example(n) for n in names}
    funding = {p.currency: funding_minor for p in products.values()}
    staff = lender.set_up_lender(db, list(products.values()), funding)
    today = business_date(db)
    ids = []
    with db.transaction() as conn:
        for i in range(size):
            product = products[names[i % len(names)]]
            low, high = product.minor(product.principal.min), product.minor(product.principal.max)
            amount = rng.randint(low, min(high, low * 20)) // 100 * 100
            term = rng.randint(product.term.min, min(product.term.max, product.term.min + 12))
            rate = product.interest.rate
            view = loan_service.book_loan_on(
                conn,
                "officer",
                product,
                1,
                amount,
                annual_rate=Decimal(rate.default) if rate.default else Decimal(rate.min),
                term=term,
                start=today,
                pd_origination=str(round(rng.uniform(0.005, 0.12), 4)),
                risk_band=rng.choice("ABC"),
            )
            ids.append(view.id)
    for loan_id in ids:
        loan_service.disburse(staff.servicing, loan_id)
    return Book(db, staff, products, ids)


def business_date(db: Database) -> date:
    with db.reading() as conn:
        return current_business_date(conn)


def live_day(
    book: Book, rng: random.Random, *, backdate: bool = True, per_day: int | None = None
) -> None:
    """One day's live servicing on a random part of the book (a 25th of it, or
    `per_day` loans): instalments paid on time, late, partly, early; a
    backdated payment; a bounced one reversed."""
    today = business_date(book.operator)
    count = per_day if per_day is not None else max(1, len(book.loan_ids) // 25)
    for loan_id in rng.sample(book.loan_ids, k=min(count, len(book.loan_ids))):
        view = loan_service.get_loan(book.servicing, loan_id)
        state = view.state
        if state.status.value != "active":
            continue
        behaviour = rng.random()
        due = next((i for i in state.instalments if i.outstanding > 0), None)
        if due is None:
            continue
        if behaviour < 0.6:
            amount = due.outstanding
        elif behaviour < 0.8:
            amount = max(1, due.outstanding // 2)
        elif behaviour < 0.9:
            amount = due.outstanding * 3
        else:
            amount = max(1, state.payoff)
        value_date = None
        if backdate and rng.random() < 0.1 and state.allocations:
            last = max(a.value_date for a in state.allocations)
            back = today - timedelta(days=rng.randint(1, 10))
            value_date = max(back, last)
        repaid = loan_service.repay(
            book.servicing, loan_id, amount, view.currency, value_date=value_date
        )
        if rng.random() < 0.05:
            seq = max(a.seq for a in repaid.state.allocations)
            loan_service.reverse_repayment(book.servicing, loan_id, seq, "cheque bounced")


def replayed(db: Database, loan_id: int, as_of: date) -> LoanState:
    """The per-loan rule from the loan's events, ignoring every cached state."""
    with db.reading() as conn:
        row = conn.execute(select(loans).where(loans.c.id == loan_id)).one()
        product = product_on(conn, row.product_code, row.product_version).product
        events = loan_service.events_of(conn, loan_id)
    terms = terms_from_doc(json.loads(row.terms_json))
    return replay(LoanContract(row.id, product, terms, row.approved_minor), events, as_of)


def stored(db: Database) -> dict[int, tuple[str, int, int, int, dict[str, int]]]:
    """Each loan's summary as the database holds it: status, days past due,
    overdue, principal outstanding and posted positions."""
    return {k: (*v[:4], v[5]) for k, v in stored_as_of(db).items()}


def stored_as_of(db: Database) -> dict[int, tuple[str, int, int, int, date, dict[str, int]]]:
    """`stored`, with the date each loan's summary is as of before the positions."""
    with db.reading() as conn:
        rows = conn.execute(
            select(
                loans.c.id,
                loans.c.status,
                loans.c.days_past_due,
                loans.c.overdue_minor,
                loans.c.principal_outstanding_minor,
                loans.c.state_as_of,
                loans.c.positions_json,
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows}


def lived(db: Database, size: int, seed: int, nights: int, per_day: int) -> Book:
    """A book of `size` loans lived for `nights` days: live servicing, then end of day."""
    from lendcore.services import eod

    book = open_book(db, size, seed=seed)
    rng = random.Random(seed + 1)
    for _ in range(nights):
        live_day(book, rng, per_day=per_day)
        eod.run_day(book.servicing)
    return book
