"""`lendcore simulate`: a lender's book lived day by day through the real commands.

On an empty database: staff are hired and the example products, the credit
policy and the demo scorecard approved by a second person
(`lender.set_up_lender`); then, spread evenly over the first third of the run
(at most 120 days, so there are monthly cohorts that each have time to
season), a loan officer onboards applicants (KYC, watch-list screening) and
enters their applications, the decision engine approves, refers or declines
each, a credit approver (never the officer who entered it) decides the
referred ones, and servicing books and disburses the approved ones. Every day
borrowers pay as their behaviour says (`lendcore.simulate.behaviour`, drawn
from the PD of each loan's decision, times `stress`), loans long in default
are written off (servicing asks, a credit approver approves) and some are
partly recovered, and end of day closes the date for the whole book
(`eod.run_day`): accrual, dues, arrears, late fees, IFRS 9 stages and ECL.
The positions of the book after each close are kept for the charts over time.

Every draw comes from a stream seeded by the seed and what it is for
(`behaviour.stream`), so the same seed on the same start date books and lives
the same book, to the minor unit.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final

from sqlalchemy import func, select

from lendcore.errors import Conflict, InvalidInput
from lendcore.origination.borrowers import (
    BorrowerDetails,
    BorrowerKind,
    EmploymentStatus,
    KycEvidence,
    KycOutcome,
)
from lendcore.products.model import Product
from lendcore.schedules.terms import frequency
from lendcore.services import applications, approvals, borrowers, eod, lender, loans, portfolio
from lendcore.services import business_date as business_date_service
from lendcore.services.portfolio import PortfolioDay, PortfolioReport
from lendcore.simulate.behaviour import (
    Applicant,
    Behaviour,
    Loan,
    Payment,
    PaymentKind,
    Situation,
    acts_on,
    draw_applicant,
    draw_behaviour,
    payment,
    recovery,
    stream,
)
from lendcore.store.database import Database
from lendcore.store.schema import loans as loans_table
from lendcore.store.schema import products as products_table

LOANS_MAX: Final = 20_000
DAYS_MAX: Final = 3_650
DEFAULT_SEED: Final = 20261126
# Bookings are spread over the first third of the run, at most this many days.
BOOKING_DAYS_MAX: Final = 120
# The engine declines some applicants: stop after this many applications per loan asked for.
APPLICATIONS_PER_LOAN_MAX: Final = 5
# A credit approver approves this share of the applications the engine refers.
REFERRALS_APPROVED: Final = 0.6
# Servicing asks to write a loan off once it is this many days past due (by default).
WRITE_OFF_DPD: Final = 120
STRESS_MAX: Final = Decimal(100)
PAGE: Final = 500

# product -> (share of applications, largest amount asked for, in minor units).
# Amounts stay below the policy's limit per borrower (100,000.00 USD, 1,000,000.00 KES).
PRODUCT_MIX: Final[Mapping[str, tuple[int, int]]] = {
    "consumer-annuity": (55, 2_500_000),
    "microloan-weekly-flat": (25, 10_000_000),
    "working-capital-bullet": (20, 9_500_000),
}
COUNTRY: Final = {"USD": "US", "KES": "KE"}
# Paid-in capital per loan asked for: more than any loan of the mix lends.
CAPITAL_PER_LOAN_MINOR: Final = {"USD": 100_000_00, "KES": 1_000_000_00}


class SimulationSizeInvalid(InvalidInput):
    code = "SIMULATION_SIZE_INVALID"


class SimulationSettingInvalid(InvalidInput):
    code = "SIMULATION_SETTING_INVALID"


class SimulationDatabaseNotEmpty(Conflict):
    code = "SIMULATION_DATABASE_NOT_EMPTY"


def check_settings(loan_count: int, days: int, stress: Decimal = Decimal(1)) -> None:
    """Refuse a size or setting the simulation cannot run, before anything is
    opened or written."""
    if not 1 <= loan_count <= LOANS_MAX:
        raise SimulationSizeInvalid(
            f"--loans must be between 1 and {LOANS_MAX:,}, got {loan_count}", loans=loan_count
        )
    if not 1 <= days <= DAYS_MAX:
        raise SimulationSizeInvalid(
            f"--days must be between 1 and {DAYS_MAX:,}, got {days}", days=days
        )
    if not stress.is_finite() or not Decimal(0) <= stress <= STRESS_MAX:
        raise SimulationSettingInvalid(
            f"--stress must be between 0 and {STRESS_MAX}, got {stress}", stress=str(stress)
        )


@dataclass(frozen=True, slots=True)
class SimulationResult:
    seed: int
    stress: Decimal
    started_on: date
    closed_through: date
    days: int
    applications: int
    engine_outcomes: Mapping[str, int]  # approved / referred / declined by the engine
    referrals_approved: int
    referrals_declined: int
    booking_refused: int
    loans_booked: int
    personas: Mapping[str, int]
    payments: Mapping[str, int]  # by kind of payment
    write_offs: int
    stage_moves: int
    ecl_change_minor: Mapping[str, int]  # per currency, over the whole run
    history: tuple[PortfolioDay, ...]  # the book after each day's close
    report: PortfolioReport
    seconds: float


@dataclass(slots=True)
class _Live:
    """A booked loan as the simulation follows it."""

    behaviour: Behaviour
    due_dates: tuple[date, ...]
    currency: str
    written_off_on: date | None = None
    written_off_minor: int = 0


@dataclass(slots=True)
class _Run:
    db: Database
    staff: lender.Staff
    book: dict[str, Product]
    seed: int
    stress: Decimal
    write_off_dpd: int
    live: dict[int, _Live] = field(default_factory=dict)
    applications: int = 0
    engine: Counter[str] = field(default_factory=Counter)
    referrals: Counter[str] = field(default_factory=Counter)
    booking_refused: int = 0
    personas: Counter[str] = field(default_factory=Counter)
    payments: Counter[str] = field(default_factory=Counter)
    write_offs: int = 0


def _refuse_used_database(db: Database) -> None:
    with db.reading() as conn:
        loans_count = conn.execute(select(func.count()).select_from(loans_table)).scalar_one()
        products_count = conn.execute(select(func.count()).select_from(products_table)).scalar_one()
    if loans_count or products_count:
        raise SimulationDatabaseNotEmpty(
            f"the database holds {loans_count} loan(s) and {products_count} product version(s) "
            "already: a simulation builds a new institution, so give it a new database "
            "(--db sqlite:///another.db)",
            loans=int(loans_count),
            products=int(products_count),
        )


def booked_by(day: int, loan_count: int, booking_days: int) -> int:
    """How many loans should be booked by the end of day `day` (0-based): an even
    spread over the booking days."""
    return min(loan_count, math.ceil(loan_count * (day + 1) / booking_days))


def _onboard(run: _Run, applicant: Applicant, currency: str, today: date) -> int:
    officer = run.staff.loan_officer
    borrower = borrowers.create_borrower(
        officer,
        BorrowerDetails(
            BorrowerKind.PERSON,
            applicant.name,
            currency,
            date_of_birth=applicant.date_of_birth,
            country=COUNTRY.get(currency),
            monthly_income_minor=applicant.monthly_income_minor,
            monthly_obligations_minor=applicant.monthly_obligations_minor,
            employment_status=EmploymentStatus(applicant.employment_status),
        ),
    )
    borrowers.record_kyc_check(
        officer,
        borrower.id,
        KycEvidence(
            KycOutcome.VERIFIED,
            "passport",
            f"P{borrower.id:08d}",
            valid_until=today.replace(year=today.year + 10, day=min(today.day, 28)),
        ),
    )
    return borrower.id


def _apply(run: _Run, number: int, today: date) -> None:
    """One applicant from onboarding to a disbursed loan (or a decline)."""
    rng = stream(run.seed, "applicant", number)
    codes = sorted(run.book)
    code = rng.choices(codes, weights=[PRODUCT_MIX[c][0] for c in codes])[0]
    product = run.book[code]
    applicant = draw_applicant(rng, product, today, amount_max_minor=PRODUCT_MIX[code][1])
    borrower_id = _onboard(run, applicant, product.currency, today)
    run.applications += 1
    application = applications.submit_application(
        run.staff.loan_officer,
        borrower_id,
        product.code,
        applicant.amount_minor,
        applicant.term,
        purpose=applicant.purpose,
        monthly_income=applicant.monthly_income_minor,
        monthly_obligations=applicant.monthly_obligations_minor,
        credit_profile=dict(applicant.credit_profile),
    )
    run.engine[application.status] += 1
    if application.status == "referred":
        if stream(run.seed, "referral", number).random() < REFERRALS_APPROVED:
            application = applications.approve_application(
                run.staff.approver, application.id, "Referred: income and obligations checked"
            )
            run.referrals["approved"] += 1
        else:
            application = applications.decline_application(
                run.staff.approver, application.id, "Referred: affordability not shown"
            )
            run.referrals["declined"] += 1
    if application.status != "approved":
        return
    servicing = run.staff.servicing
    try:
        booked = applications.book_application(servicing, application.id)
    except applications.BookingRefused:
        run.booking_refused += 1
        return
    view = loans.disburse(servicing, booked.id)
    with run.db.reading() as conn:
        pd_text = conn.execute(
            select(loans_table.c.pd_origination).where(loans_table.c.id == view.id)
        ).scalar_one()
    due_dates = tuple(i.due_date for i in view.state.instalments)
    per_year = frequency(product.frequency).periods_per_year
    behaviour = draw_behaviour(
        stream(run.seed, "behaviour", number),
        Loan(
            pd=Decimal(pd_text or "0"),
            booked_on=today,
            due_dates=due_dates,
            period_days=max(1, int(365 / per_year)),
        ),
        stress=run.stress,
    )
    run.personas[behaviour.persona.value] += 1
    run.live[view.id] = _Live(behaviour, due_dates, view.currency)


def _originate(run: _Run, day: int, today: date, loan_count: int, booking_days: int) -> None:
    target = booked_by(day, loan_count, booking_days)
    budget = loan_count * APPLICATIONS_PER_LOAN_MAX
    while len(run.live) < target and run.applications < budget:
        _apply(run, run.applications + 1, today)


def _repay(run: _Run, loan_id: int, paid: Payment, currency: str) -> None:
    loans.repay(run.staff.servicing, loan_id, paid.amount_minor, currency)
    run.payments[paid.kind.value] += 1


def _borrowers_pay(run: _Run, today: date, active: Mapping[int, loans.LoanSummary]) -> None:
    for loan_id in sorted(run.live):
        live = run.live[loan_id]
        if live.written_off_on is not None:
            paid = recovery(live.behaviour, live.written_off_on, today, live.written_off_minor)
            if paid is not None:
                _repay(run, loan_id, paid, live.currency)
            continue
        if loan_id not in active or not acts_on(live.behaviour, today, live.due_dates):
            continue
        view = loans.get_loan(run.staff.servicing, loan_id)
        if view.state.status.value != "active":
            continue
        situation = Situation(
            today=today,
            due_dates=live.due_dates,
            fallen_due_minor=sum(i.outstanding for i in view.state.instalments if i.fallen_due),
            payoff_minor=view.state.payoff,
        )
        paid = payment(live.behaviour, situation)
        if paid is not None:
            _repay(run, loan_id, paid, live.currency)


def _write_off(run: _Run, today: date, active: Mapping[int, loans.LoanSummary]) -> None:
    """Servicing asks, a credit approver approves: maker-checker for every write-off."""
    for loan_id, summary in sorted(active.items()):
        if summary.days_past_due < run.write_off_dpd or loan_id not in run.live:
            continue
        pending = loans.write_off(
            run.staff.servicing,
            loan_id,
            f"{summary.days_past_due} days past due, collection exhausted",
        )
        approvals.approve(run.staff.approver, pending.id, "Collection file reviewed")
        live = run.live[loan_id]
        live.written_off_on = today
        live.written_off_minor = summary.principal_outstanding_minor
        run.write_offs += 1


def _active(run: _Run) -> dict[int, loans.LoanSummary]:
    found: dict[int, loans.LoanSummary] = {}
    after = 0
    while True:
        page = loans.list_loans(run.staff.servicing, status="active", after_id=after, limit=PAGE)
        found.update((s.id, s) for s in page)
        if len(page) < PAGE:
            return found
        after = page[-1].id


Progress = Callable[[int, int], None]


def run_simulation(
    db: Database,
    *,
    loan_count: int,
    days: int,
    seed: int = DEFAULT_SEED,
    start: date | None = None,
    stress: Decimal = Decimal(1),
    write_off_dpd: int = WRITE_OFF_DPD,
    progress: Progress | None = None,
) -> SimulationResult:
    """Build an institution on the empty database `db` and live `days` days of
    its book (see the module docstring); `progress(done, total)` after each day.
    `stress` multiplies every borrower's default hazard; servicing asks to write
    off loans `write_off_dpd` or more days past due."""
    check_settings(loan_count, days, stress)
    if write_off_dpd < 1:
        raise SimulationSettingInvalid(
            f"write-offs start at 1 day past due or later, got {write_off_dpd}"
        )
    clock = time.perf_counter()
    _refuse_used_database(db)
    if start is not None and start != business_date_service.business_date(db):
        business_date_service.set_business_date(db, start)
    started_on = business_date_service.business_date(db)
    book = {code: lender.example_product(code) for code in sorted(PRODUCT_MIX)}
    capital = {
        currency: per_loan * loan_count for currency, per_loan in CAPITAL_PER_LOAN_MINOR.items()
    }
    staff = lender.set_up_lender(db, list(book.values()), capital, prefix="sim-")
    run = _Run(db=db, staff=staff, book=book, seed=seed, stress=stress, write_off_dpd=write_off_dpd)
    booking_days = max(1, min(days // 3, BOOKING_DAYS_MAX))
    history: list[PortfolioDay] = []
    stage_moves = 0
    ecl_change: Counter[str] = Counter()
    closed_through = started_on
    for day in range(days):
        today = business_date_service.business_date(db)
        if day < booking_days:
            _originate(run, day, today, loan_count, booking_days)
        active = _active(run)
        _borrowers_pay(run, today, active)
        if any(s.days_past_due >= write_off_dpd for s in active.values()):
            # Read again: a payment today may have brought a candidate back.
            _write_off(run, today, _active(run))
        close = eod.run_day(db)
        closed_through = close.business_date
        stage_moves += close.stage_moves
        ecl_change.update(close.ecl_change_minor)
        history.append(portfolio.position(staff.risk))
        if progress is not None:
            progress(day + 1, days)
    report = portfolio.portfolio_report(staff.risk)
    return SimulationResult(
        seed=seed,
        stress=stress,
        started_on=started_on,
        closed_through=closed_through,
        days=days,
        applications=run.applications,
        engine_outcomes=dict(sorted(run.engine.items())),
        referrals_approved=run.referrals["approved"],
        referrals_declined=run.referrals["declined"],
        booking_refused=run.booking_refused,
        loans_booked=len(run.live),
        personas=dict(sorted(run.personas.items())),
        payments={kind.value: run.payments[kind.value] for kind in PaymentKind},
        write_offs=run.write_offs,
        stage_moves=stage_moves,
        ecl_change_minor=dict(sorted(ecl_change.items())),
        history=tuple(history),
        report=report,
        seconds=time.perf_counter() - clock,
    )
