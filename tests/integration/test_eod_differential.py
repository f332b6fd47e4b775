"""End of day against the per-loan rule, on a real database, to the minor unit.

(a) A random book lives 90 days: each day live servicing (repayments on time,
late, partial, early, backdated, reversed) and then end of day. At checkpoints
every loan's stored status, days past due, overdue amount, principal and posted
positions must equal the replay of its events, and every account of the
general ledger must hold exactly what the book's loans say it holds.

(b) Both ways: two databases with the same book and the same live operations;
one closes each day with end of day, the other with the per-loan path
(`accrue_book`, then advancing the business date). Their trial balances must
agree account by account (but for the IFRS 9 accounts, which only end of day
moves) and every loan's stored positions, arrears and status must be the same.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lendcore.eod.kernel import ROLES
from lendcore.products.model import Product
from lendcore.services import eod, ledger
from lendcore.services import loans as loan_service
from lendcore.services.business_date import advance_business_date
from lendcore.store.database import Database, open_database
from lendcore.store.schema import loan_provisions, loans
from tests.conftest import create_pg_schema, drop_pg_schema, fresh_sqlite_url
from tests.integration.eod_helpers import (
    Book,
    business_date,
    live_day,
    open_book,
    replayed,
    stored,
    stored_as_of,
)

DAYS = 90
CHECKPOINTS = (30, 60, 90)
# (a): the 2,000 loans x 90 days takes ~120 s on SQLite on 2 busy cores
# (opening the book 16 s, live servicing through the commands most of the rest,
# replays ~7 s per checkpoint); PostgreSQL's commands cost more, so a smaller book.
LOANS = {"sqlite": 2_000, "postgresql": 250}
# Loans that see a live operation each day (a branch's day, not every loan's).
LIVE_PER_DAY = {"sqlite": 20, "postgresql": 10}
LOANS_BOTH_WAYS = {"sqlite": 100, "postgresql": 40}
# Enough for thousands of loans in every currency of the example products.
FUNDING_MINOR = 10**14


def open_funded_book(db: Database, size: int, seed: int) -> Book:
    """`eod_helpers.open_book` with capital for a book of thousands of loans."""
    return open_book(db, size, seed, funding_minor=FUNDING_MINOR)


def _products_of_loans(db: Database) -> dict[int, str]:
    with db.reading() as conn:
        return {
            r.id: r.product_code for r in conn.execute(select(loans.c.id, loans.c.product_code))
        }


def _balances(db: Database, codes: set[str]) -> dict[str, int]:
    """Each account's posted balance on its normal side."""
    return {code: ledger.account_balance(db, code).posted for code in sorted(codes)}


def _check_loans_against_replay(db: Database, closed_through: date) -> dict[str, dict[str, int]]:
    """Every loan's stored state equals its replay; returns the replayed
    positions summed per product."""
    per_product: dict[str, dict[str, int]] = {}
    product_of = _products_of_loans(db)
    for loan_id, (status, dpd, overdue, principal, positions) in stored(db).items():
        want = replayed(db, loan_id, closed_through)
        where = f"loan {loan_id} as of {closed_through}"
        assert positions == want.positions, where
        assert (status, dpd, overdue, principal) == (
            want.status.value,
            want.days_past_due,
            want.overdue,
            want.principal_outstanding,
        ), where
        total = per_product.setdefault(product_of[loan_id], dict.fromkeys(ROLES, 0))
        for role, value in want.positions.items():
            total[role] += value
    return per_product


def _check_ledger(
    db: Database, products: dict[str, Product], per_product: dict[str, dict[str, int]]
) -> None:
    """Each account the loans post to holds the sum, over the products mapping a
    role to it, of the loans' replayed positions in that role (the bank account
    also the lender's capital); each loss allowance the loans' ECL."""
    expected: dict[str, int] = {}
    for code, product in products.items():
        mapping = product.accounting.model_dump()
        for role in ROLES:
            account = mapping[role]
            expected[account] = expected.get(account, 0) + per_product.get(code, {}).get(role, 0)
        expected[mapping["fund_source"]] = expected.get(mapping["fund_source"], 0)
    for account in {p.accounting.fund_source for p in products.values()}:
        expected[account] += FUNDING_MINOR
    assert _balances(db, set(expected)) == expected

    with db.reading() as conn:
        ecl = conn.execute(
            select(loans.c.product_code, loan_provisions.c.ecl_minor).select_from(
                loan_provisions.join(loans, loans.c.id == loan_provisions.c.loan_id)
            )
        ).all()
    for code, product in products.items():
        allowance = product.accounting.loss_allowance
        if allowance is None:
            continue
        assert sum(r.ecl_minor for r in ecl if r.product_code == code) == (
            ledger.account_balance(db, allowance).posted
        ), f"loss allowance of {code}"
    trial = ledger.trial_balance(db)
    assert trial.balanced, trial.totals


@pytest.mark.slow
def test_a_random_book_closed_for_90_days_equals_each_loan_replayed_and_the_ledger(
    db: Database,
) -> None:
    backend = "postgresql" if db.is_postgres else "sqlite"
    size = LOANS[backend]
    started = time.perf_counter()
    book = open_funded_book(db, size, seed=21)
    rng = random.Random(22)
    opened = time.perf_counter()
    checked = 0
    for day in range(1, DAYS + 1):
        live_day(book, rng, per_day=LIVE_PER_DAY[backend])
        eod.run_day(book.servicing)
        if day in CHECKPOINTS:
            closed_through = business_date(db) - timedelta(days=1)
            per_product = _check_loans_against_replay(db, closed_through)
            _check_ledger(db, book.products, per_product)
            checked += 1
    assert checked == len(CHECKPOINTS)
    states = [s[0] for s in stored(db).values()]
    in_arrears = sum(1 for s in stored(db).values() if s[1] > 0)
    print(
        f"\n{size} loans, {DAYS} days: opened in {opened - started:.1f}s, lived and closed "
        f"in {time.perf_counter() - opened:.1f}s; statuses "
        f"{ {s: states.count(s) for s in sorted(set(states))} }, {in_arrears} in arrears"
    )
    # The book must have exercised arrears and repayments in full, not only accrual.
    assert in_arrears > 0
    assert states.count("closed") > 0


# --- (b) both ways ------------------------------------------------------------------------


@pytest.fixture
def second_url(db_url: str, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """Another fresh database of the same kind as `db_url`."""
    if db_url.startswith("sqlite"):
        yield fresh_sqlite_url(sqlite_template, tmp_path)
        return
    schema, url = create_pg_schema()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


def _ifrs9_accounts(products: dict[str, Product]) -> set[str]:
    """Accounts only IFRS 9 provisioning moves (the per-loan path does not provision)."""
    mappings = [p.accounting.model_dump() for p in products.values()]
    servicing = {m[role] for m in mappings for role in ROLES}
    return {v for m in mappings for k, v in m.items() if k not in ROLES and v} - servicing


def _trial_balance(db: Database, leave_out: set[str]) -> dict[str, tuple[int, int]]:
    return {
        r.code: (r.debit_minor, r.credit_minor)
        for r in ledger.trial_balance(db).rows
        if r.code not in leave_out
    }


@pytest.mark.slow
def test_end_of_day_and_the_per_loan_path_give_the_same_ledger_and_loans(
    db: Database, second_url: str
) -> None:
    other = open_database(second_url)
    try:
        size = LOANS_BOTH_WAYS["postgresql" if db.is_postgres else "sqlite"]
        by_eod = open_funded_book(db, size, seed=31)
        per_loan = open_funded_book(other, size, seed=31)
        assert by_eod.loan_ids == per_loan.loan_ids
        leave_out = _ifrs9_accounts(by_eod.products)
        assert leave_out, "the example products name their IFRS 9 accounts"
        rng_eod, rng_per_loan = random.Random(32), random.Random(32)
        compared = 0
        for day in range(1, DAYS + 1):
            live_day(by_eod, rng_eod)
            live_day(per_loan, rng_per_loan)
            eod.run_day(by_eod.servicing)
            loan_service.accrue_book(per_loan.servicing)
            advance_business_date(per_loan.servicing)
            if day % 30 == 0:
                assert business_date(db) == business_date(other)
                assert _trial_balance(db, leave_out) == _trial_balance(other, leave_out), day
                assert stored_as_of(db) == stored_as_of(other), day
                compared += 1
        assert compared == 3
        states = stored(db).values()
        assert any(s[1] > 0 for s in states), "no loan fell into arrears"
        assert any(s[0] == "closed" for s in states), "no loan was repaid"
    finally:
        other.dispose()
