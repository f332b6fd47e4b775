"""The demo job: a small lender's first months, through the real commands.

Two risk managers load and approve the example products, the credit policy and
the demo scorecard (maker-checker), an accountant opens the accounts and the
capital; a loan officer onboards borrowers (KYC, screening) and enters their
applications, the engine decides them, a credit approver decides the referred
ones, servicing books and disburses the approved ones, and the book lives day
by day: borrowers pay on time, late
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

from sqlalchemy import func, select

from lendcore.errors import LendcoreError
from lendcore.schedules.terms import frequency
from lendcore.services import applications, approvals, lender, loans
from lendcore.services import business_date as business_date_service
from lendcore.store.database import Database
from lendcore.store.schema import journal_entries

DEMO_PRODUCTS = ("consumer-annuity", "working-capital-bullet", "microloan-weekly-flat")
LOANS = 36
DAYS = 150
SEED = 20261126
CAPITAL_MINOR = {"USD": 5_000_000_00, "KES": 50_000_000_00}


@dataclass(frozen=True, slots=True)
class DemoResult:
    already_run: bool
    applications: int
    approved: int
    referred: int
    declined: int
    loans_booked: int
    repayments: int
    days: int
    ledger_entries: int


def _already_run(db: Database) -> bool:
    try:
        return bool(loans.list_loans(db, limit=1))
    except LendcoreError:
        return False


def _profile(draw: random.Random) -> dict[str, float]:
    """A credit profile: most borrowers clean, some with a late payment or two."""
    late = draw.choices([0, 0, 0, 0, 0, 0, 1, 2, 4], k=3)
    return {
        "revolving_utilization": round(draw.uniform(0.0, 0.9), 3),
        "open_credit_lines": draw.randint(1, 15),
        "real_estate_loans": draw.randint(0, 2),
        "times_30_59_days_late": late[0],
        "times_60_89_days_late": late[1] // 2,
        "times_90_days_late": late[2] // 4,
        "dependents": draw.randint(0, 3),
    }


def run_demo(
    db: Database,
    progress: Callable[[int, int], None] | None = None,
    *,
    loan_count: int = LOANS,
    days: int = DAYS,
) -> DemoResult:
    """Run the demo book for `days` days; `progress(done, total)` after each day."""
    if _already_run(db):
        return DemoResult(True, 0, 0, 0, 0, 0, 0, 0, 0)
    book = [lender.example_product(code) for code in DEMO_PRODUCTS]
    staff = lender.set_up_lender(db, book, CAPITAL_MINOR, prefix="demo-")
    draw = random.Random(SEED)
    svc = staff.servicing
    pay_days: dict[int, set[date]] = {}
    start = business_date_service.business_date(db)
    outcomes = {"approved": 0, "referred": 0, "declined": 0}
    for n in range(loan_count):
        product = book[n % len(book)]
        low, high = product.minor(product.principal.min), product.minor(product.principal.max)
        unit = 10**product.exponent * 100
        principal = min(high, draw.randrange(low, low * 12) // unit * unit)
        # Income that makes the monthly payment 10 % to 40 % of it: mostly affordable.
        months = max(
            1,
            round(product.term.default * 12 / float(frequency(product.frequency).periods_per_year)),
        )
        income = int(principal / months * draw.uniform(2.5, 10))
        borrower = lender.onboard(
            staff,
            f"Borrower {n + 1:03d}",
            product.currency,
            date_of_birth=date(draw.randint(1952, 2003), draw.randint(1, 12), draw.randint(1, 28)),
            monthly_income_minor=income,
            monthly_obligations_minor=income // draw.randint(5, 20),
        )
        application = applications.submit_application(
            staff.loan_officer,
            borrower,
            product.code,
            principal,
            product.term.default,
            purpose=draw.choice(
                ["Working capital", "Home repair", "School fees", "Vehicle", "Stock"]
            ),
            monthly_income=income,
            monthly_obligations=income // draw.randint(5, 20),
            credit_profile=_profile(draw),
        )
        outcomes[application.status] = outcomes.get(application.status, 0) + 1
        if application.status == "referred":
            decide = (
                applications.approve_application
                if draw.random() < 0.7
                else applications.decline_application
            )
            application = decide(
                staff.approver, application.id, "Reviewed: income documents checked"
            )
        if application.status != "approved":
            continue
        view = loans.disburse(svc, applications.book_application(svc, application.id).id)
        kind = draw.choices(["on-time", "late", "stops"], weights=[78, 14, 8])[0]
        lag = draw.randint(3, 40) if kind == "late" else 0
        stop = start + timedelta(days=40) if kind == "stops" else date.max
        pay_days[view.id] = {
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
        if day == min(45, days) and len(pay_days) >= 2:
            repayments += _backdated_and_bounced(svc, list(pay_days), today)
        loans.accrue_book(svc)
        if progress is not None:
            progress(day, days)
    _write_off_the_worst(staff)
    with db.reading() as conn:
        entries = conn.execute(select(func.count()).select_from(journal_entries)).scalar_one()
    return DemoResult(
        False,
        loan_count,
        outcomes["approved"],
        outcomes["referred"],
        outcomes["declined"],
        len(pay_days),
        repayments,
        days,
        int(entries),
    )


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
    # The whole history (a read pages it): its first event is the disbursement.
    first = loans.get_loan(svc, loan_ids[0], history_limit=loans.HISTORY_PAGE_MAX)
    if first.state.status.value != "active":
        return 0
    disbursed_on = first.history[0].value_date
    value_date = max(disbursed_on, today - timedelta(days=7))
    loans.repay(svc, first.id, 5_000, first.currency, value_date=value_date)
    second = loans.get_loan(svc, loan_ids[1])
    paid = [h for h in second.history if h.kind == "repayment"]
    if paid:
        loans.reverse_repayment(svc, second.id, paid[-1].seq, "cheque returned unpaid")
    return 1


def _write_off_the_worst(staff: lender.Staff) -> None:
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
