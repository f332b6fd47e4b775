"""A loan's read and its commands start from the snapshot on the loan's row and
read no events unless they must (a backdated repayment, a reversal). Whatever
the sequence, the state they give is the full replay of the loan's events, and
the snapshot they leave is the one a full replay leaves. The read's history
comes page by page."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from lendcore.errors import InvalidInput
from lendcore.services import approvals, business_date, loans
from lendcore.servicing.replay import LoanContract, resume
from lendcore.store.database import Database
from lendcore.store.schema import loan_snapshots
from tests.integration.loan_helpers import Lender, open_lender
from tests.integration.test_loans import steps_strategy as loan_steps


@pytest.fixture
def lender(db: Database) -> Lender:
    return open_lender(db)


def _today(lender: Lender) -> date:
    return business_date.business_date(lender.operator)


def _assert_snapshot_is_the_full_replay(lender: Lender, loan_id: int) -> None:
    """The state a read gives and the snapshot on the row equal those of a
    replay of all the loan's events from the first."""
    view = loans.get_loan(lender.servicing, loan_id)
    contract = LoanContract(loan_id, lender.product, view.terms, view.approved_minor)
    with lender.operator.reading() as conn:
        events = loans.events_of(conn, loan_id)
        stored = conn.execute(
            select(loan_snapshots.c.snapshot_json).where(loan_snapshots.c.loan_id == loan_id)
        ).scalar_one()
    full_state, _ = resume(contract, events, view.state.as_of, None, keep=False)
    assert view.state == full_state
    # The snapshot after the last event, as a command left it.
    last = max(e.value_date for e in events)
    _, full_snapshot = resume(contract, events, last, None)
    assert json.loads(stored) == full_snapshot


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=loan_steps, reschedule_at=st.integers(min_value=0, max_value=8))
def test_reads_and_commands_from_the_snapshot_equal_the_full_replay(
    lender: Lender, steps: list[tuple[str, int, int]], reschedule_at: int
) -> None:
    """test_loans' random steps, with a reschedule (approved by a second person)
    before step `reschedule_at`; after every step, the read equals the full replay."""
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("2400.00", 6).id)
    disbursed_on = _today(lender)
    # A month on, a repayment: a backdated one then sorts before it.
    business_date.advance_business_date(lender.operator, 35)
    paid = [loans.repay(svc, loan.id, 30_000, "USD").history[-1].seq]
    for step, (kind, days, cents) in enumerate(steps):
        if loans.get_loan(svc, loan.id).state.status.value != "active":
            break
        if step == reschedule_at:
            pending = loans.reschedule(svc, loan.id, extend_by=1)
            approvals.approve(lender.approver, pending.id)
            _assert_snapshot_is_the_full_replay(lender, loan.id)
        if kind == "wait":
            business_date.advance_business_date(lender.operator, days)
        elif kind == "pay":
            paid.append(loans.repay(svc, loan.id, cents, "USD").history[-1].seq)
        elif kind == "backdate":
            value = max(disbursed_on, _today(lender) - timedelta(days=days))
            paid.append(loans.repay(svc, loan.id, cents, "USD", value_date=value).history[-1].seq)
        elif kind == "reverse" and paid:
            loans.reverse_repayment(svc, loan.id, paid.pop(0), "returned")
        _assert_snapshot_is_the_full_replay(lender, loan.id)


def test_the_history_comes_page_by_page_with_each_repayments_allocation(
    lender: Lender,
) -> None:
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("2400.00", 6).id)
    for n in range(8):
        loans.repay(svc, loan.id, 1_000 + n, "USD")
    latest = loans.get_loan(svc, loan.id, history_limit=3)
    assert [h.seq for h in latest.history] == [7, 8, 9]
    assert [a.seq for a in latest.allocations] == [7, 8, 9]
    assert [a.amount for a in latest.allocations] == [1_005, 1_006, 1_007]
    seen = [h.seq for h in latest.history]
    cursor = latest.history_next
    while cursor is not None:
        page = loans.get_loan(svc, loan.id, history_before=cursor, history_limit=3)
        assert [h.seq for h in page.history] == sorted(h.seq for h in page.history)
        assert {a.seq for a in page.allocations} == {
            h.seq for h in page.history if h.kind == "repayment"
        }
        assert page.state == latest.state
        seen = [h.seq for h in page.history] + seen
        cursor = page.history_next
    assert seen == list(range(1, 10))
    whole = loans.get_loan(svc, loan.id, history_limit=loans.HISTORY_PAGE_MAX)
    assert [h.seq for h in whole.history] == seen and whole.history_next is None
    # The default page is the latest events.
    default = loans.get_loan(svc, loan.id)
    assert [h.seq for h in default.history] == seen[-loans.HISTORY_PAGE_DEFAULT :]


@pytest.mark.parametrize(
    ("before", "limit"), [(None, 0), (None, loans.HISTORY_PAGE_MAX + 1), (0, 5), (-3, 5)]
)
def test_a_history_page_out_of_bounds_is_refused(
    lender: Lender, before: int | None, limit: int
) -> None:
    loan = loans.disburse(lender.servicing, lender.book("2400.00", 6).id)
    with pytest.raises(InvalidInput):
        loans.get_loan(lender.servicing, loan.id, history_before=before, history_limit=limit)
