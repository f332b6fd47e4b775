"""A lender set up and lending through the real commands, step by step.

The demo, the benchmarks and the tests need the same thing: staff with their
roles, the books of account, products, a credit policy and a scorecard each
approved by a second person, and then loans that go the whole way from
borrower to booked loan, every control passed, none skipped. This module does
exactly that with the public service functions and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from lendcore.ledger.model import AccountSpec, AccountType, EntrySpec, PostingSpec, Side
from lendcore.origination.borrowers import (
    BorrowerDetails,
    BorrowerKind,
    EmploymentStatus,
    KycEvidence,
    KycOutcome,
)
from lendcore.origination.screening import read_watch_list
from lendcore.products.chart import chart_for
from lendcore.products.model import Product, load_product_text
from lendcore.risk.policy import default_policy_text
from lendcore.services import (
    applications,
    approvals,
    borrowers,
    business_date,
    identity,
    ledger,
    loans,
    models,
    policies,
    products,
)
from lendcore.store.database import Database

EXAMPLES: Final = Path(__file__).resolve().parents[1] / "products" / "examples"
DEMO_MODEL: Final = Path(__file__).resolve().parents[1] / "risk" / "demo_model"
WATCH_LIST: Final = (
    Path(__file__).resolve().parents[1] / "origination" / "data" / "watchlist_demo.csv"
)
# A credit profile of a borrower with a clean record (the scorecard's characteristics).
GOOD_PROFILE: Final[Mapping[str, float]] = {
    "revolving_utilization": 0.12,
    "open_credit_lines": 6,
    "real_estate_loans": 1,
    "times_30_59_days_late": 0,
    "times_60_89_days_late": 0,
    "times_90_days_late": 0,
    "dependents": 1,
}


def example_product(code: str) -> Product:
    return load_product_text((EXAMPLES / f"{code}.yaml").read_text())


@dataclass(frozen=True, slots=True)
class Staff:
    """One user per step, so every maker-checker pair is two people."""

    accountant: Database
    risk: Database
    risk_checker: Database
    loan_officer: Database
    approver: Database
    servicing: Database


def hire_staff(db: Database, prefix: str = "") -> Staff:
    def user(name: str, role: str) -> Database:
        return db.acting_as(identity.create_user(db, f"{prefix}{name}", [role]).actor())

    return Staff(
        accountant=user("accountant", "accountant"),
        risk=user("risk", "risk_manager"),
        risk_checker=user("risk-checker", "risk_manager"),
        loan_officer=user("officer", "loan_officer"),
        approver=user("approver", "credit_approver"),
        servicing=user("servicing", "servicing"),
    )


def open_books(
    db: Database, staff: Staff, book: Sequence[Product], capital_minor: Mapping[str, int]
) -> None:
    """The products' accounts, paid-in capital per currency, the products approved."""
    opened: set[str] = set()
    for product in book:
        for spec in chart_for(product):
            if spec.code not in opened:
                ledger.open_account(staff.accountant, spec)
                opened.add(spec.code)
    for code, amount_minor in capital_minor.items():
        funds = sorted({p.accounting.fund_source for p in book if p.currency == code})
        if not funds:
            continue
        equity = f"3000-{code}"
        ledger.open_account(
            staff.accountant,
            AccountSpec(equity, f"Share capital ({code})", AccountType.EQUITY, code),
        )
        for fund in funds:
            ledger.book_entry(
                db,
                EntrySpec(
                    f"capital:{fund}",
                    (
                        PostingSpec(fund, Side.DEBIT, amount_minor, code),
                        PostingSpec(equity, Side.CREDIT, amount_minor, code),
                    ),
                    description=f"Paid-in capital into {fund}",
                ),
            )
    for product in book:
        submission = products.submit_product(staff.risk, product)
        if submission.approval is not None:
            approvals.approve(staff.risk_checker, submission.approval.id)


def adopt_policy_and_model(staff: Staff, policy_text: str | None = None) -> None:
    """The demo watch list, the default credit policy and the demo scorecard, the
    last two approved by a second risk manager."""
    borrowers.load_watch_list(
        staff.risk, read_watch_list(WATCH_LIST.read_text(), WATCH_LIST.name, "demo-sanctions")
    )
    pending = policies.submit_policy(staff.risk, policy_text or default_policy_text())
    approvals.approve(staff.risk_checker, pending.id)
    registered = models.register_model(staff.risk, DEMO_MODEL)
    activation = models.activate_model(staff.risk, registered.version, "champion")
    approvals.approve(staff.risk_checker, activation.id)


def set_up_lender(
    db: Database,
    book: Sequence[Product],
    capital_minor: Mapping[str, int],
    prefix: str = "",
) -> Staff:
    staff = hire_staff(db, prefix)
    open_books(db, staff, book, capital_minor)
    adopt_policy_and_model(staff)
    return staff


def onboard(
    staff: Staff,
    name: str,
    currency: str,
    *,
    date_of_birth: date = date(1984, 5, 17),
    monthly_income_minor: int = 600_000,
    monthly_obligations_minor: int = 40_000,
) -> int:
    """A borrower entered and KYC-verified (screened on entry); returns the id."""
    borrower = borrowers.create_borrower(
        staff.loan_officer,
        BorrowerDetails(
            BorrowerKind.PERSON,
            name,
            currency,
            date_of_birth=date_of_birth,
            monthly_income_minor=monthly_income_minor,
            monthly_obligations_minor=monthly_obligations_minor,
            employment_status=EmploymentStatus.EMPLOYED,
        ),
    )
    today = business_date.business_date(staff.loan_officer)
    borrowers.record_kyc_check(
        staff.loan_officer,
        borrower.id,
        KycEvidence(
            KycOutcome.VERIFIED,
            "passport",
            f"P{borrower.id:08d}",
            valid_until=today.replace(year=today.year + 10, day=min(today.day, 28)),
        ),
    )
    return borrower.id


def originate(
    staff: Staff,
    borrower_id: int,
    product: Product,
    amount: str | int,
    term: int,
    *,
    monthly_income: str | int = 600_000,
    monthly_obligations: str | int = 40_000,
    profile: Mapping[str, Any] | None = None,
    purpose: str = "Household purchase",
) -> loans.LoanView:
    """Application entered, decided, approved by a person if referred, booked."""
    application = applications.submit_application(
        staff.loan_officer,
        borrower_id,
        product.code,
        amount,
        term,
        purpose=purpose,
        monthly_income=monthly_income,
        monthly_obligations=monthly_obligations,
        credit_profile=dict(GOOD_PROFILE if profile is None else profile),
    )
    if application.status == "referred":
        application = applications.approve_application(
            staff.approver, application.id, "Referred: affordability checked by hand"
        )
    if application.status != "approved":
        raise applications.ApplicationState(
            f"application {application.id} was {application.status}", application_id=application.id
        )
    return applications.book_application(staff.servicing, application.id)
