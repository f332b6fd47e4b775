"""The demo job: a small lender's first months, through the real commands.

Two risk managers load and approve the example products (maker-checker), an
accountant opens their accounts and the capital, servicing books and disburses
a few dozen loans, and the book lives day by day: borrowers pay on time, late
or not at all (a seeded draw, so every run tells the same story), one payment
is backdated, one bounces and is reversed, interest and dues are recognised
every night, and a defaulted loan is written off with a second person's
approval. End of day over the whole book arrives with its own issue; until
then the nightly step is `loans.accrue_book`.

Running the demo on a database that has it already changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from lendcore.errors import LendcoreError
from lendcore.ledger.model import AccountSpec, AccountType, EntrySpec, PostingSpec, Side
from lendcore.products.chart import chart_for
from lendcore.products.model import Product, load_product_text
from lendcore.services import approvals, identity, ledger, loans, products
from lendcore.services import business_date as business_date_service
from lendcore.store.database import Database
from lendcore.store.schema import journal_entries

EXAMPLES = Path(__file__).resolve().parents[1] / "products" / "examples"
DEMO_PRODUCTS = ("consumer-annuity", "working-capital-bullet", "microloan-weekly-flat")
LOANS = 36
DAYS = 150
SEED = 20261126
CAPITAL_MINOR = {"USD": 5_000_000_00, "KES": 50_000_000_00}


@dataclass(frozen=True, slots=True)
class DemoResult:
    already_run: bool
    loans_booked: int
    repayments: int
    days: int
    ledger_entries: int


@dataclass(frozen=True, slots=True)
class _Staff:
    accountant: Database
    risk: Database
    risk_checker: Database
    servicing: Database
    approver: Database


def example_product(code: str) -> Product:
    return load_product_text((EXAMPLES / f"{code}.yaml").read_text())


def _staff(db: Database) -> _Staff:
    def user(name: str, role: str) -> Database:
        return db.acting_as(identity.create_user(db, name, [role]).actor())

    return _Staff(
        accountant=user("demo-accountant", "accountant"),
        risk=user("demo-risk", "risk_manager"),
        risk_checker=user("demo-risk-checker", "risk_manager"),
        servicing=user("demo-servicing", "servicing"),
        approver=user("demo-approver", "credit_approver"),
    )


def _already_run(db: Database) -> bool:
    try:
        return bool(loans.list_loans(db, limit=1))
    except LendcoreError:
        return False


def _open_books(db: Database, staff: _Staff, book: list[Product]) -> None:
    opened: set[str] = set()
    for product in book:
        for spec in chart_for(product):
            if spec.code not in opened:
                ledger.open_account(staff.accountant, spec)
                opened.add(spec.code)
    for code, amount_minor in CAPITAL_MINOR.items():
        funds = {p.accounting.fund_source for p in book if p.currency == code}
        ledger.open_account(
            staff.accountant,
            AccountSpec(f"3000-{code}", f"Share capital ({code})", AccountType.EQUITY, code),
        )
        for fund in sorted(funds):
            ledger.book_entry(
                db,
                EntrySpec(
                    f"demo:capital:{fund}",
                    (
                        PostingSpec(fund, Side.DEBIT, amount_minor, code),
                        PostingSpec(f"3000-{code}", Side.CREDIT, amount_minor, code),
                    ),
                    description=f"Paid-in capital into {fund}",
                ),
            )
    for product in book:
        submission = products.submit_product(staff.risk, product)
        if submission.approval is not None:
            approvals.approve(staff.risk_checker, submission.approval.id)


def run_demo(
    db: Database,
    progress: Callable[[int, int], None] | None = None,
    *,
    loan_count: int = LOANS,
    days: int = DAYS,
) -> DemoResult:
    """Run the demo book for `days` days; `progress(done, total)` after each day."""
    if _already_run(db):
        return DemoResult(True, 0, 0, 0, 0)
    staff = _staff(db)
    book = [example_product(code) for code in DEMO_PRODUCTS]
    _open_books(db, staff, book)
    draw = random.Random(SEED)
    svc = staff.servicing
    # Each loan's borrower: pays on time, a few days late, or stops paying.
    pay_days: dict[int, set[date]] = {}
    start = business_date_service.business_date(db)
    for n in range(loan_count):
        product = book[n % len(book)]
        low, high = product.minor(product.principal.min), product.minor(product.principal.max)
        unit = 10**product.exponent * 100
        principal = max(low, min(high, draw.randrange(low, max(low + 1, high // 4)) // unit * unit))
        loan = loans.book_loan(svc, product.code, principal, borrower=f"Borrower {n + 1:03d}")
        view = loans.disburse(svc, loan.id)
        kind = draw.choices(["on-time", "late", "stops"], weights=[78, 14, 8])[0]
        lag = draw.randint(3, 40) if kind == "late" else 0
        stop = start + timedelta(days=40) if kind == "stops" else date.max
        pay_days[loan.id] = {
            i.due_date + timedelta(days=lag)
            for i in view.state.instalments
            if i.due_date + timedelta(days=lag) < stop
        }
    repayments = 0
    for day in range(1, days + 1):
        today = business_date_service.advance_business_date(db, 1)
        for loan_id, when in pay_days.items():
            if today in when:
                repayments += _borrower_pays(svc, loan_id)
        if day == min(45, days):
            repayments += _backdated_and_bounced(svc, list(pay_days), today)
        loans.accrue_book(svc)
        if progress is not None:
            progress(day, days)
    _write_off_the_worst(staff)
    with db.reading() as conn:
        entries = conn.execute(select(func.count()).select_from(journal_entries)).scalar_one()
    return DemoResult(False, loan_count, repayments, days, int(entries))


def _borrower_pays(svc: Database, loan_id: int) -> int:
    """The borrower pays everything that has fallen due."""
    view = loans.get_loan(svc, loan_id)
    amount = sum(i.outstanding for i in view.state.instalments if i.fallen_due)
    if view.state.status.value != "active" or amount == 0:
        return 0
    loans.repay(svc, loan_id, amount, view.currency)
    return 1


def _backdated_and_bounced(svc: Database, loan_ids: list[int], today: date) -> int:
    """A payment found in the bank statement a week late, and a cheque that bounced."""
    first = loans.get_loan(svc, loan_ids[0])
    loans.repay(svc, first.id, 5_000, first.currency, value_date=today - timedelta(days=7))
    second = loans.get_loan(svc, loan_ids[1])
    paid = [h for h in second.history if h.kind == "repayment"]
    if paid:
        loans.reverse_repayment(svc, second.id, paid[-1].seq, "cheque returned unpaid")
    return 1


def _write_off_the_worst(staff: _Staff) -> None:
    worst = max(
        loans.list_loans(staff.servicing, status="active", limit=500),
        key=lambda s: s.days_past_due,
        default=None,
    )
    if worst is None or worst.days_past_due < 90:
        return
    pending = loans.write_off(
        staff.servicing, worst.id, f"{worst.days_past_due} days past due, borrower unreachable"
    )
    approvals.approve(staff.approver, pending.id)
