"""The demo job: a small lender's first days, booked through the real ledger.

Until servicing and end of day arrive, the demo opens a chart of accounts and
books what a lender books: capital and a funding line, loan disbursements with
a deducted fee, daily interest accrual and repayments. Every entry carries an
idempotency key, so running the demo again books nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from lendcore.errors import AccountExists
from lendcore.ledger.model import (
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.services import business_date as business_date_service
from lendcore.services import ledger as ledger_service
from lendcore.store.database import Database

CURRENCY = "USD"

CHART: tuple[AccountSpec, ...] = (
    AccountSpec(
        "1000",
        "Cash at bank",
        AccountType.ASSET,
        CURRENCY,
        balance_constraint=BalanceConstraint.NON_NEGATIVE,
    ),
    AccountSpec("1100", "Loans and advances", AccountType.ASSET, CURRENCY),
    AccountSpec(
        "1110", "Loan principal receivable", AccountType.ASSET, CURRENCY, parent_code="1100"
    ),
    AccountSpec("1120", "Interest receivable", AccountType.ASSET, CURRENCY, parent_code="1100"),
    AccountSpec("2000", "Borrowings: senior funding line", AccountType.LIABILITY, CURRENCY),
    AccountSpec("2100", "Borrower overpayments (suspense)", AccountType.LIABILITY, CURRENCY),
    AccountSpec("3000", "Share capital", AccountType.EQUITY, CURRENCY),
    AccountSpec("4000", "Interest income", AccountType.INCOME, CURRENCY),
    AccountSpec("4100", "Fee income", AccountType.INCOME, CURRENCY),
)


def _entry(key: str, description: str, *lines: tuple[Side, str, int]) -> EntrySpec:
    return EntrySpec(
        idempotency_key=f"demo:{key}",
        postings=tuple(PostingSpec(code, side, minor, CURRENCY) for side, code, minor in lines),
        description=description,
    )


D, C = Side.DEBIT, Side.CREDIT

# (days to advance before booking, entries): amounts in cents.
DAYS: tuple[tuple[int, tuple[EntrySpec, ...]], ...] = (
    (
        0,
        (
            _entry(
                "capital",
                "Shareholders pay in capital",
                (D, "1000", 50_000_000),
                (C, "3000", 50_000_000),
            ),
            _entry(
                "funding",
                "Draw on the senior funding line",
                (D, "1000", 150_000_000),
                (C, "2000", 150_000_000),
            ),
        ),
    ),
    (
        1,
        (
            _entry(
                "disburse:L-0001",
                "Disburse loan L-0001, 2% fee deducted",
                (D, "1110", 1_000_000),
                (C, "1000", 980_000),
                (C, "4100", 20_000),
            ),
            _entry(
                "disburse:L-0002",
                "Disburse loan L-0002, 2% fee deducted",
                (D, "1110", 2_500_000),
                (C, "1000", 2_450_000),
                (C, "4100", 50_000),
            ),
            _entry(
                "disburse:L-0003",
                "Disburse loan L-0003, 2% fee deducted",
                (D, "1110", 750_000),
                (C, "1000", 735_000),
                (C, "4100", 15_000),
            ),
        ),
    ),
    (
        30,
        (
            _entry(
                "accrue:month-1",
                "Interest accrued for the month",
                (D, "1120", 42_397),
                (C, "4000", 42_397),
            ),
            _entry(
                "repay:L-0001:1",
                "Repayment L-0001: interest then principal",
                (D, "1000", 88_849),
                (C, "1120", 10_000),
                (C, "1110", 78_849),
            ),
            _entry(
                "repay:L-0002:1",
                "Repayment L-0002: interest then principal",
                (D, "1000", 222_123),
                (C, "1120", 25_000),
                (C, "1110", 197_123),
            ),
            _entry(
                "repay:L-0003:1",
                "Repayment L-0003 with an overpayment to suspense",
                (D, "1000", 80_000),
                (C, "1120", 7_397),
                (C, "1110", 64_213),
                (C, "2100", 8_390),
            ),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    accounts_opened: int
    entries_booked: int
    entries_replayed: int


def run_demo(db: Database) -> DemoResult:
    opened = 0
    for spec in CHART:
        try:
            ledger_service.open_account(db, spec)
            opened += 1
        except AccountExists:
            pass
    booked = replayed = 0
    for days, entries in DAYS:
        already = all(_is_booked(db, e.idempotency_key) for e in entries)
        if days and not already:
            business_date_service.advance_business_date(db, days)
        for entry in entries:
            result = ledger_service.book_entry(db, entry)
            replayed += result.replayed
            booked += not result.replayed
    return DemoResult(opened, booked, replayed)


def _is_booked(db: Database, key: str) -> bool:
    from sqlalchemy import select

    from lendcore.store.schema import journal_entries

    with db.reading() as conn:
        return (
            conn.execute(
                select(journal_entries.c.id).where(journal_entries.c.idempotency_key == key)
            ).first()
            is not None
        )
