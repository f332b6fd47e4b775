"""The simulator on real databases: the same seed lives the same book to the
minor unit, another seed another book; every loan passed the real controls;
the portfolio report agrees with the loans and the ledger behind it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lendcore.services import audit, business_date, ledger, loans, portfolio
from lendcore.services.simulate import (
    SimulationDatabaseNotEmpty,
    SimulationResult,
    SimulationSettingInvalid,
    SimulationSizeInvalid,
    check_settings,
    run_simulation,
)
from lendcore.services.verify import verify_ledger
from lendcore.store.database import Database, open_database
from lendcore.store.schema import (
    applications,
    decisions,
    loan_events,
    loan_provisions,
    pending_approvals,
)
from lendcore.store.schema import loans as loans_table
from tests.conftest import fresh_sqlite_url
from tests.integration.audit_helpers import table_contents
from tests.integration.loan_helpers import open_lender

LOANS = 24
DAYS = 90
# A stressed book that writes off early, so write-offs and a recovery happen in a
# short run. The book depends on the seed and the first business date, both fixed
# here (a date far enough ahead to be reached from today's); the seed is one whose
# run has them all: if the model changes, pick another that does.
SEED = 65
START = date(2040, 1, 2)
STRESS = Decimal(30)
WRITE_OFF_DPD = 5
PRINCIPAL_ACCOUNTS = {"USD": ("1200", "1400"), "KES": ("1300",)}


@dataclass(frozen=True)
class Simulated:
    db: Database
    result: SimulationResult


def simulate(url: str, seed: int) -> Simulated:
    db = open_database(url)
    # The business date moves at most a year at a time.
    while (today := business_date.business_date(db)) < START:
        business_date.set_business_date(db, min(START, today + timedelta(days=366)))
    result = run_simulation(
        db,
        loan_count=LOANS,
        days=DAYS,
        seed=seed,
        start=START,
        stress=STRESS,
        write_off_dpd=WRITE_OFF_DPD,
    )
    return Simulated(db, result)


@pytest.fixture(scope="module")
def runs(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Simulated]]:
    """Two runs with one seed and one with another, on three new databases."""
    directory = tmp_path_factory.mktemp("simulate")
    found = {
        name: simulate(fresh_sqlite_url(sqlite_template, directory), seed)
        for name, seed in (("a", SEED), ("b", SEED), ("c", SEED + 1))
    }
    yield found
    for run in found.values():
        run.db.dispose()


def book_state(db: Database) -> dict[str, Any]:
    """The loans, their events and provisions, and the trial balance."""
    with db.reading() as conn:
        state = {
            "loans": [
                tuple(r)
                for r in conn.execute(
                    select(
                        loans_table.c.id,
                        loans_table.c.product_code,
                        loans_table.c.borrower,
                        loans_table.c.approved_minor,
                        loans_table.c.terms_json,
                        loans_table.c.status,
                        loans_table.c.principal_outstanding_minor,
                        loans_table.c.overdue_minor,
                        loans_table.c.days_past_due,
                        loans_table.c.state_as_of,
                        loans_table.c.positions_json,
                        loans_table.c.last_seq,
                        loans_table.c.pd_origination,
                        loans_table.c.risk_band,
                        loans_table.c.business_date,
                    ).order_by(loans_table.c.id)
                )
            ],
            "events": [
                tuple(r)
                for r in conn.execute(
                    select(
                        loan_events.c.loan_id,
                        loan_events.c.seq,
                        loan_events.c.kind,
                        loan_events.c.value_date,
                        loan_events.c.amount_minor,
                        loan_events.c.payload_json,
                    ).order_by(loan_events.c.loan_id, loan_events.c.seq)
                )
            ],
            "provisions": [
                tuple(r)
                for r in conn.execute(select(loan_provisions).order_by(loan_provisions.c.loan_id))
            ],
        }
    tb = ledger.trial_balance(db)
    state["trial_balance"] = [(r.code, r.debit_minor, r.credit_minor) for r in tb.rows]
    state["totals"] = tb.totals
    return state


def test_the_same_seed_lives_the_same_book_and_another_seed_another(
    runs: dict[str, Simulated],
) -> None:
    a, b, c = (book_state(runs[k].db) for k in ("a", "b", "c"))
    assert len(a["loans"]) == LOANS
    assert a == b
    assert runs["a"].result.history == runs["b"].result.history
    assert runs["a"].result.report == runs["b"].result.report
    assert a["loans"] != c["loans"]
    assert a["trial_balance"] != c["trial_balance"]


def test_the_book_went_through_every_control(runs: dict[str, Simulated]) -> None:
    run = runs["a"]
    result = run.result
    assert result.loans_booked == LOANS
    assert result.engine_outcomes.get("declined", 0) >= 1
    assert result.referrals_approved >= 1 and result.referrals_declined >= 1
    with run.db.reading() as conn:
        by_status = dict(
            conn.execute(
                select(applications.c.status, func.count()).group_by(applications.c.status)
            ).all()
        )
        people = conn.execute(
            select(decisions.c.actor, decisions.c.outcome, applications.c.entered_by).join(
                applications, applications.c.id == decisions.c.application_id
            )
        ).all()
        unbooked_loans = conn.execute(
            select(func.count())
            .select_from(loans_table)
            .outerjoin(applications, applications.c.loan_id == loans_table.c.id)
            .where(applications.c.id.is_(None))
        ).scalar_one()
        write_offs = conn.execute(
            select(pending_approvals.c.maker, pending_approvals.c.checker).where(
                pending_approvals.c.command == "loan.write_off",
                pending_approvals.c.status == "executed",
            )
        ).all()
    assert by_status["booked"] == LOANS
    # Borrowers paid their instalments; one cured (paid all arrears at once).
    assert result.payments["instalment"] and result.payments["cure"]
    assert by_status["declined"] == result.engine_outcomes["declined"] + result.referrals_declined
    assert sum(by_status.values()) == result.applications
    assert unbooked_loans == 0
    # A referred application is decided by a credit approver, never by its enterer.
    decided_by_people = [p for p in people if p.actor != "lendcore"]
    assert len(decided_by_people) == result.referrals_approved + result.referrals_declined
    assert all(p.actor == "sim-approver" != p.entered_by for p in decided_by_people)
    # Every write-off was asked for by servicing and approved by a credit approver.
    assert result.write_offs >= 1
    assert write_offs == [("sim-servicing", "sim-approver")] * result.write_offs
    assert verify_ledger(run.db).ok
    assert audit.verify_audit(run.db).ok


def _summaries(db: Database) -> list[loans.LoanSummary]:
    return loans.list_loans(db, limit=loans.PAGE_SIZE_MAX)


def test_the_report_agrees_with_the_loans_and_the_ledger(runs: dict[str, Simulated]) -> None:
    run = runs["a"]
    result, report = run.result, run.result.report
    summaries = _summaries(run.db)
    assert report.as_of == result.closed_through == result.started_on + timedelta(days=DAYS - 1)
    assert {c.currency for c in report.currencies} == {"USD", "KES"}
    with run.db.reading() as conn:
        repayments = conn.execute(
            select(func.count()).select_from(loan_events).where(loan_events.c.kind == "repayment")
        ).scalar_one()
        ecl = dict(
            conn.execute(
                select(loans_table.c.currency, func.sum(loan_provisions.c.ecl_minor))
                .join(loans_table, loans_table.c.id == loan_provisions.c.loan_id)
                .where(loan_provisions.c.business_date == report.provisioned_on)
                .group_by(loans_table.c.currency)
            ).all()
        )
    assert repayments == sum(result.payments.values())
    for figures in report.currencies:
        code = figures.currency
        mine = [s for s in summaries if s.currency == code]
        active = [s for s in mine if s.status == "active"]
        outstanding = sum(s.principal_outstanding_minor for s in active)
        assert figures.position.outstanding_minor == outstanding
        assert outstanding == sum(
            ledger.account_balance(run.db, account).posted for account in PRINCIPAL_ACCOUNTS[code]
        )
        late = sum(s.principal_outstanding_minor for s in active if s.days_past_due > 30)
        assert figures.position.par30 == portfolio.ratio(late, outstanding)
        assert figures.position.loans_active == len(active)
        assert figures.loans_written_off == sum(s.status == "written-off" for s in mine)
        assert figures.disbursed_minor == sum(s.approved_minor for s in mine)
        assert figures.position.ecl_minor == ecl.get(code, 0)
        assert figures.written_off_minor > 0 or figures.loans_written_off == 0
    assert sum(c.loans_written_off for c in report.currencies) == result.write_offs
    assert result.payments["recovery"] >= 1
    assert sum(c.recovery_income_minor for c in report.currencies) > 0
    # The day-by-day positions: one per closed day, the last one the report's.
    days = [d.business_date for d in result.history]
    assert days == [result.started_on + timedelta(days=n) for n in range(DAYS)]
    assert result.history[-1].positions == tuple(c.position for c in report.currencies)
    # Vintages cover every booked loan; a written-off loan is bad in its cohort.
    assert sum(v.loans for v in report.vintages) == LOANS
    if result.write_offs:
        assert any(p.bad for v in report.vintages for p in v.points)


def test_a_database_with_a_book_is_refused_and_left_as_it_was(
    db: Database,
) -> None:
    lender = open_lender(db)
    loans.disburse(lender.servicing, lender.book("5000.00", 6).id)
    before = table_contents(db)
    with pytest.raises(SimulationDatabaseNotEmpty):
        run_simulation(db, loan_count=5, days=5)
    assert table_contents(db) == before


@pytest.mark.parametrize(
    ("loan_count", "days", "stress", "error"),
    [
        (0, 10, "1", SimulationSizeInvalid),
        (-3, 10, "1", SimulationSizeInvalid),
        (10, 0, "1", SimulationSizeInvalid),
        (10, -1, "1", SimulationSizeInvalid),
        (20_001, 10, "1", SimulationSizeInvalid),
        (10, 3_651, "1", SimulationSizeInvalid),
        (10, 10, "-1", SimulationSettingInvalid),
        (10, 10, "NaN", SimulationSettingInvalid),
    ],
)
def test_bad_sizes_are_refused_before_anything_is_written(
    db: Database, loan_count: int, days: int, stress: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_settings(loan_count, days, Decimal(stress))
    before = table_contents(db)
    with pytest.raises(error):
        run_simulation(db, loan_count=loan_count, days=days, stress=Decimal(stress))
    assert table_contents(db) == before


def test_the_report_of_a_book_not_yet_closed_shows_zeros_for_what_is_not_there(
    db: Database,
) -> None:
    lender = open_lender(db)
    view = loans.disburse(lender.servicing, lender.book("5000.00", 6).id)
    report = portfolio.portfolio_report(db)
    assert report.as_of is None and report.provisioned_on is None
    (usd,) = report.currencies
    assert usd.position.outstanding_minor == view.state.principal_outstanding == 500_000
    assert usd.position.par30 == usd.position.par90 == Decimal(0)
    assert [(s.stage, s.loans, s.ecl_minor) for s in usd.position.stages] == [
        (1, 0, 0),
        (2, 0, 0),
        (3, 0, 0),
    ]
    assert usd.disbursed_minor == 500_000 and usd.collected_minor == 0
    (vintage,) = report.vintages
    assert vintage.loans == 1 and vintage.points == ()
    assert portfolio.position(db).positions == (usd.position,)
