"""The servicing rule, pure: loan events replayed into state."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.products.model import Product, load_product_text
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import ROLES_CREDIT, ROLES_DEBIT, LoanContract, LoanState, replay

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
START = date(2026, 1, 15)


def product(name: str = "consumer-annuity") -> Product:
    return load_product_text((EXAMPLES / f"{name}.yaml").read_text())


def contract(p: Product, principal: int = 1_000_000, term: int = 12) -> LoanContract:
    terms = p.terms(principal, START, term=term, enforce_limits=False)
    return LoanContract(1, p, terms, principal)


def balanced(state: LoanState) -> bool:
    debits = sum(state.positions[r] for r in ROLES_DEBIT)
    credits = sum(state.positions[r] for r in ROLES_CREDIT)
    return debits == credits


def disbursed(c: LoanContract) -> list[LoanEvent]:
    return [LoanEvent(1, EventKind.DISBURSEMENT, START, c.approved_minor)]


def test_paying_each_instalment_on_its_due_date_closes_the_loan() -> None:
    c = contract(product())
    events = disbursed(c)
    schedule = replay(c, events, START).instalments
    for i, instalment in enumerate(schedule, start=2):
        events.append(LoanEvent(i, EventKind.REPAYMENT, instalment.due_date, instalment.total))
    state = replay(c, events, schedule[-1].due_date)
    assert state.status.value == "closed"
    assert state.closed_on == schedule[-1].due_date
    assert state.positions["interest_income"] == sum(i.interest for i in schedule)
    assert state.positions["fund_source"] == sum(i.total for i in schedule) - 990_000
    assert balanced(state)


def test_accrual_grows_by_formula_not_by_rows() -> None:
    c = contract(product())
    events = disbursed(c)
    first = replay(c, events, START).instalments[0]
    halfway = START + (first.due_date - START) / 2
    state = replay(c, events, halfway)
    days = (halfway - START).days
    whole = (first.due_date - START).days
    assert abs(state.interest_accrued - first.interest * days / whole) <= 1
    assert replay(c, events, first.due_date).positions["interest_receivable"] == first.interest


def test_reversal_of_the_first_of_three_repayments() -> None:
    c = contract(product())
    events = disbursed(c)
    dues = replay(c, events, START).instalments
    for seq, due in enumerate(dues[:3], start=2):
        events.append(LoanEvent(seq, EventKind.REPAYMENT, due.due_date, due.total))
    on = dues[2].due_date
    before = replay(c, events, on)
    assert before.days_past_due == 0
    events.append(LoanEvent(5, EventKind.REPAYMENT_REVERSAL, on, reverses_seq=2))
    after = replay(c, events, on)
    # The later payments now pay instalment 1 late (with its late fee and penalty
    # interest) and instalment 2 late but for the penalties; instalment 3 is unpaid.
    assert after.instalments[0].outstanding == 0
    assert after.instalments[0].penalties > 1500
    assert after.instalments[1].penalties > 1500  # paid late too, by the third payment
    assert after.instalments[1].outstanding == (
        after.instalments[0].penalties + after.instalments[1].penalties
    )
    assert after.instalments[2].outstanding == dues[2].total
    assert after.days_past_due == (on - dues[1].due_date).days
    assert [a.seq for a in after.allocations] == [3, 4]
    assert after.positions["fund_source"] == before.positions["fund_source"] - dues[0].total
    assert balanced(after)


def test_backdated_repayment_before_an_earlier_repayment() -> None:
    c = contract(product())
    events = disbursed(c)
    dues = replay(c, events, START).instalments
    late = dues[1].due_date
    events.append(LoanEvent(2, EventKind.REPAYMENT, late, dues[0].total))
    late_state = replay(c, events, late)
    assert late_state.instalments[0].penalties > 0  # paid 28+ days late
    # Entered later, dated earlier: it sorts first and pays instalment 1 on time.
    events.append(LoanEvent(3, EventKind.REPAYMENT, dues[0].due_date, dues[0].total))
    state = replay(c, events, late)
    assert state.instalments[0].penalties == 0
    assert state.allocations[0].seq == 3
    assert state.days_past_due == 0
    assert balanced(state)


def test_payoff_closes_and_overpayment_goes_to_suspense() -> None:
    c = contract(product())
    events = disbursed(c)
    on = START + timedelta(days=45)
    state = replay(c, events, on)
    events.append(LoanEvent(2, EventKind.REPAYMENT, on, state.payoff + 500))
    closed = replay(c, events, on)
    assert closed.status.value == "closed"
    assert closed.overpayment == 500
    assert closed.principal_outstanding == 0
    assert balanced(closed)


def test_write_off_then_recovery() -> None:
    c = contract(product())
    events = [*disbursed(c), LoanEvent(2, EventKind.WRITE_OFF, START + timedelta(days=200))]
    events.append(LoanEvent(3, EventKind.REPAYMENT, START + timedelta(days=210), 10_000))
    state = replay(c, events, START + timedelta(days=220))
    assert state.status.value == "written-off"
    assert state.positions["principal"] == 0
    assert state.positions["interest_receivable"] == 0
    assert state.positions["recovery_income"] == 10_000
    assert state.positions["write_off_expense"] > 1_000_000
    assert balanced(state)


def test_flat_microloan_interest_is_rate_times_principal_times_years() -> None:
    p = product("microloan-weekly-flat")
    terms = p.terms(p.minor(p.principal.min) * 10, START, enforce_limits=False)
    c = LoanContract(1, p, terms, terms.principal_minor)
    state = replay(c, [LoanEvent(1, EventKind.DISBURSEMENT, START, terms.principal_minor)], START)
    from fractions import Fraction

    years = Fraction(terms.term) / terms.frequency.periods_per_year
    # The 2 % fee is financed: interest runs on what the borrower owes.
    assert state.disbursed == terms.principal_minor * 102 // 100
    expected = state.disbursed * Fraction(terms.annual_rate) * years
    assert abs(sum(i.interest for i in state.instalments) - expected) <= Fraction(1, 2)


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["pay", "pay", "pay", "reverse", "waive", "reschedule"]),
        st.integers(min_value=0, max_value=400),  # value day after disbursement
        st.integers(min_value=1, max_value=600_000),  # amount
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(
        [
            "consumer-annuity",
            "microloan-weekly-flat",
            "working-capital-bullet",
            "interest-only-balloon",
        ]
    ),
    steps=events_strategy,
    as_of_days=st.integers(min_value=0, max_value=800),
)
def test_any_sequence_of_events_keeps_the_loan_balanced(
    name: str, steps: list, as_of_days: int
) -> None:  # type: ignore[type-arg]
    from lendcore.products.model import Component

    p = product(name)
    principal = p.minor(p.principal.min) * 4
    terms = p.terms(principal, START, enforce_limits=False)
    c = LoanContract(1, p, terms, principal)
    events = [LoanEvent(1, EventKind.DISBURSEMENT, START, principal)]
    repayments: list[int] = []
    for seq, (kind, day, amount) in enumerate(steps, start=2):
        on = START + timedelta(days=day)
        if kind == "pay":
            events.append(LoanEvent(seq, EventKind.REPAYMENT, on, amount))
            repayments.append(seq)
        elif kind == "reverse" and repayments:
            events.append(
                LoanEvent(seq, EventKind.REPAYMENT_REVERSAL, on, reverses_seq=repayments.pop(0))
            )
        elif kind == "waive":
            events.append(
                LoanEvent(
                    seq, EventKind.WAIVER, on, amount % 5_000 + 1, component=Component.PENALTY
                )
            )
        elif kind == "reschedule" and p.amortization.value != "bullet":
            events.append(LoanEvent(seq, EventKind.RESCHEDULE, on, extend_by=amount % 3))
    as_of = START + timedelta(days=as_of_days)
    state = replay(c, events, as_of)
    assert balanced(state)
    for role in ("principal", "interest_receivable", "fee_receivable", "overpayment"):
        assert state.positions[role] >= 0, role
    for instalment in state.instalments:
        assert instalment.outstanding >= 0
        assert min(instalment.principal, instalment.interest, instalment.fees) >= 0
    # Paying the payoff settles everything due or accrued and closes the loan.
    if state.status.value == "active":
        payoff = LoanEvent(100, EventKind.REPAYMENT, as_of, max(state.payoff, 1))
        closed = replay(c, [*events, payoff], as_of)
        assert closed.status.value == "closed", (state.payoff, closed.principal_outstanding)
        assert balanced(closed)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(["consumer-annuity", "microloan-weekly-flat", "interest-only-balloon"]),
    steps=events_strategy,
    split=st.integers(min_value=0, max_value=12),
    backdate=st.booleans(),
)
def test_resuming_from_a_snapshot_equals_a_full_replay(
    name: str,
    steps: list,  # type: ignore[type-arg]
    split: int,
    backdate: bool,
) -> None:
    """Principle 7's shortcut changes nothing: state from a snapshot taken after
    the first events, then the rest, equals the replay of all of them; a
    backdated event (or reversal) invalidates the snapshot and is still right."""
    from lendcore.servicing.replay import resume

    p = product(name)
    principal = p.minor(p.principal.min) * 4
    c = LoanContract(1, p, p.terms(principal, START, enforce_limits=False), principal)
    events = [LoanEvent(1, EventKind.DISBURSEMENT, START, principal)]
    day = 0
    for seq, (kind, gap, amount) in enumerate(steps, start=2):
        day += gap % 60
        on = START + timedelta(days=day)
        if kind == "reverse" and len(events) > 1:
            events.append(
                LoanEvent(seq, EventKind.REPAYMENT_REVERSAL, on, reverses_seq=events[-1].seq)
            )
        else:
            events.append(LoanEvent(seq, EventKind.REPAYMENT, on, amount))
    as_of = START + timedelta(days=day + 30)
    head, tail = events[: split + 1], events[split + 1 :]
    if backdate and tail:
        tail = [LoanEvent(99, EventKind.REPAYMENT, START + timedelta(days=1), 12_345), *tail]
    _, snapshot = resume(c, head, as_of, None)
    resumed, _ = resume(c, [*head, *tail], as_of, snapshot)
    assert resumed == replay(c, [*head, *tail], as_of)


def test_suspense_larger_than_an_instalment_pays_the_next_ones_and_nothing_is_lost() -> None:
    """Regression: suspense applied as an instalment fell due used to drop
    whatever that instalment did not take, unbalancing the loan."""
    import yaml

    doc = yaml.safe_load((EXAMPLES / "consumer-annuity.yaml").read_text())
    doc["prepayment"] = "suspense"
    p = load_product_text(yaml.safe_dump(doc))
    c = contract(p, principal=1_200_000, term=12)
    events = [*disbursed(c), LoanEvent(2, EventKind.REPAYMENT, START + timedelta(days=3), 400_000)]
    state = replay(c, events, START + timedelta(days=100))
    assert balanced(state)
    paid_by_suspense = [i for i in state.instalments if i.fallen_due and i.outstanding == 0]
    assert len(paid_by_suspense) == 3
    assert state.overpayment == 400_000 - sum(i.total for i in paid_by_suspense)
