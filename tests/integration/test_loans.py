"""Servicing on real databases: a loan's whole life through the service layer,
booked in the ledger; the loan's balances always equal the ledger's."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from lendcore.errors import CurrencyMismatch, InvalidInput, LendcoreError
from lendcore.services import approvals, business_date, ledger, loans, verify
from lendcore.store.database import Database
from tests.integration.loan_helpers import Lender, ledger_positions, open_lender


def _today(db: Database) -> date:
    return business_date.business_date(db)


@pytest.fixture
def lender(db: Database) -> Lender:
    return open_lender(db)


def _assert_ledger_matches(lender: Lender, loan_id: int) -> loans.LoanView:
    view = loans.get_loan(lender.servicing, loan_id)
    assert dict(view.posted) == view.state.positions
    assert ledger_positions(lender.operator, lender.product) == view.state.positions
    return view


def test_a_loan_from_booking_to_closure(lender: Lender) -> None:
    svc = lender.servicing
    loan = lender.book("10000.00", 12)
    assert loan.state.status.value == "approved"
    loan = loans.disburse(svc, loan.id)
    assert loan.state.status.value == "active"
    # 1 % fee deducted: 9,900.00 leaves the bank, 10,000.00 is owed.
    view = _assert_ledger_matches(lender, loan.id)
    assert view.state.positions["fund_source"] == -990_000
    assert view.state.principal_outstanding == 1_000_000
    for instalment in view.state.instalments:
        business_date.set_business_date(lender.operator, instalment.due_date)
        current = loans.get_loan(svc, loan.id)
        due = next(i for i in current.state.instalments if i.number == instalment.number)
        loans.repay(svc, loan.id, due.outstanding, "USD")
        _assert_ledger_matches(lender, loan.id)
    final = loans.get_loan(svc, loan.id)
    assert final.state.status.value == "closed"
    assert final.state.principal_outstanding == 0
    assert verify.verify_ledger(lender.operator).ok


def test_late_payment_ages_and_charges_then_cures(lender: Lender) -> None:
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("5000.00", 6).id)
    first_due = loan.state.instalments[0].due_date
    business_date.set_business_date(lender.operator, date.fromordinal(first_due.toordinal() + 40))
    late = loans.get_loan(svc, loan.id).state
    assert late.days_past_due == 40
    assert late.bucket == "31-60"
    assert late.instalments[0].penalties > 1500  # the 15.00 late fee plus penalty interest
    loans.repay(svc, loan.id, late.overdue, "USD")
    cured = _assert_ledger_matches(lender, loan.id).state
    assert cured.days_past_due == 0
    assert cured.bucket is None


def test_backdated_repayment_and_reversal_replay_the_loan(lender: Lender) -> None:
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("3000.00", 6).id)
    dues = [i.due_date for i in loan.state.instalments]
    business_date.set_business_date(lender.operator, dues[2])
    amount = loan.state.instalments[0].total
    r2 = loans.repay(svc, loan.id, amount, "USD", value_date=dues[1])
    r3 = loans.repay(svc, loan.id, amount, "USD", value_date=dues[2])
    # Backdated before both: the replay pays the first instalment on time.
    loans.repay(svc, loan.id, amount, "USD", value_date=dues[0])
    view = _assert_ledger_matches(lender, loan.id)
    assert view.state.days_past_due == 0
    assert [i.outstanding for i in view.state.instalments[:3]] == [0, 0, 0]
    first_seq = next(
        h.seq for h in view.history if h.kind == "repayment" and h.value_date == dues[0]
    )
    loans.reverse_repayment(svc, loan.id, first_seq, "cheque bounced")
    after = _assert_ledger_matches(lender, loan.id).state
    assert after.instalments[2].outstanding > 0
    assert r2.id == r3.id == loan.id


def test_write_off_needs_a_second_person_then_recoveries(lender: Lender) -> None:
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("2000.00", 6).id)
    business_date.advance_business_date(lender.operator, 200)
    pending = loans.write_off(svc, loan.id, "borrower unreachable for 200 days")
    with pytest.raises(LendcoreError):
        approvals.approve(svc, pending.id)
    approvals.approve(lender.approver, pending.id)
    view = _assert_ledger_matches(lender, loan.id)
    assert view.state.status.value == "written-off"
    assert view.state.positions["principal"] == 0
    loans.repay(svc, loan.id, "100.00", "USD")
    recovered = _assert_ledger_matches(lender, loan.id)
    assert recovered.state.positions["recovery_income"] == 10_000


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda svc, lid: loans.repay(svc, lid, "10.00", "EUR"), CurrencyMismatch),
        (lambda svc, lid: loans.repay(svc, lid, "0.00", "USD"), InvalidInput),
        (lambda svc, lid: loans.repay(svc, lid, "10.001", "USD"), InvalidInput),
        (
            lambda svc, lid: loans.repay(
                svc, lid, "10.00", "USD", value_date=_today(svc) - timedelta(1)
            ),
            InvalidInput,
        ),
        (
            lambda svc, lid: loans.repay(
                svc, lid, "10.00", "USD", value_date=_today(svc) + timedelta(1)
            ),
            InvalidInput,
        ),
        (lambda svc, lid: loans.disburse(svc, lid, "1.00"), LendcoreError),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(lender: Lender, call, error) -> None:  # type: ignore[no-untyped-def]
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("2000.00", 6).id)
    entries_before = len(ledger.list_entries(lender.operator, limit=500))
    with pytest.raises(error):
        call(svc, loan.id)
    after = loans.get_loan(svc, loan.id)
    assert len(after.history) == 1
    assert len(ledger.list_entries(lender.operator, limit=500)) == entries_before


def test_disbursement_above_the_approved_amount_is_refused(lender: Lender) -> None:
    svc = lender.servicing
    loan = lender.book("2000.00", 6)
    with pytest.raises(loans.DisbursementExceedsApproved):
        loans.disburse(svc, loan.id, "2000.01")
    loans.disburse(svc, loan.id, "1500.00")
    loans.disburse(svc, loan.id, "500.00")
    view = _assert_ledger_matches(lender, loan.id)
    assert view.state.disbursed == 200_000


def test_accrual_of_the_book_is_one_entry_per_product_and_reconciles(lender: Lender) -> None:
    svc = lender.servicing
    ids = [loans.disburse(svc, lender.book(f"{1000 + n}.00", 6).id).id for n in range(3)]
    business_date.advance_business_date(lender.operator, 45)
    run = loans.accrue_book(svc)
    assert (run.loans_seen, run.loans_changed, len(run.entry_ids)) == (3, 3, 1)
    assert run.interest_minor["consumer-annuity"] > 0
    views = [loans.get_loan(svc, i) for i in ids]
    for view in views:
        assert dict(view.posted) == view.state.positions
    book = {role: sum(v.state.positions[role] for v in views) for role in views[0].state.positions}
    assert ledger_positions(lender.operator, lender.product) == book
    # Nothing new to recognise the same day: no entry.
    assert loans.accrue_book(svc).entry_ids == ()
    assert verify.verify_ledger(lender.operator).ok


# --- the ledger equals the loans, whatever happens -----------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(["pay", "pay", "pay", "backdate", "reverse", "wait"]),
        st.integers(min_value=1, max_value=40),  # days to wait or to backdate
        st.integers(min_value=1, max_value=120_000),  # amount in cents
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps_strategy)
def test_any_sequence_keeps_ledger_and_loans_equal_and_paying_all_closes(
    lender: Lender,
    steps: list[tuple[str, int, int]],
) -> None:
    """Random repayments, backdated repayments and reversals on a new loan of
    the same book: after every command each loan's posted position equals its
    replayed state, the ledger's accounts equal the sum over the loans, and
    paying the payoff closes the loan."""
    svc = lender.servicing
    loan = loans.disburse(svc, lender.book("2400.00", 6).id)
    disbursed_on = _today(svc)
    paid: list[int] = []
    for kind, days, cents in steps:
        today = _today(svc)
        commanded = kind != "wait" and (kind != "reverse" or bool(paid))
        closed = loans.get_loan(svc, loan.id).state.status.value == "closed"
        if closed and kind in ("pay", "backdate"):
            # Paid off by earlier steps: a closed loan takes no repayment.
            with pytest.raises(loans.LoanNotActive):
                loans.repay(svc, loan.id, cents, "USD")
            continue
        if kind == "wait":
            business_date.advance_business_date(lender.operator, days)
        elif kind == "pay":
            paid.append(loans.repay(svc, loan.id, cents, "USD").history[-1].seq)
        elif kind == "backdate":
            value = max(disbursed_on, today - timedelta(days=days))
            paid.append(loans.repay(svc, loan.id, cents, "USD", value_date=value).history[-1].seq)
        elif kind == "reverse" and paid:
            loans.reverse_repayment(svc, loan.id, paid.pop(0), "returned")
        view = loans.get_loan(svc, loan.id)
        if commanded:  # right after a command the ledger holds the loan's state
            assert dict(view.posted) == view.state.positions
    _assert_book_matches(lender)
    state = loans.get_loan(svc, loan.id).state
    if state.status.value == "active":
        loans.repay(svc, loan.id, state.payoff, "USD")
        assert loans.get_loan(svc, loan.id).state.status.value == "closed"
    _assert_book_matches(lender)


def _assert_book_matches(lender: Lender) -> None:
    """After the night's accrual run, every loan's posted position is its state,
    and the ledger holds exactly the sum of them."""
    loans.accrue_book(lender.servicing)
    views = [
        loans.get_loan(lender.servicing, s.id)
        for s in loans.list_loans(lender.servicing, limit=500)
    ]
    for view in views:
        assert dict(view.posted) == view.state.positions, view.id
    book = {role: sum(v.posted[role] for v in views) for role in views[0].posted}
    assert ledger_positions(lender.operator, lender.product) == book
