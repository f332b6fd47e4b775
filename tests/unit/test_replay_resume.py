"""Resuming from a snapshot with only the events after it (how a loan command and
a loan read use the replay) gives exactly the full replay, and the snapshot it
leaves is the one a full replay leaves."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.products.model import Component, Product, load_product_text
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import LoanContract, appends_to, replay, resume, resume_after

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
START = date(2026, 1, 15)

steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(["pay", "pay", "pay", "backdated", "reverse", "waive", "reschedule"]),
        st.integers(min_value=0, max_value=70),  # days the business date moves first
        st.integers(min_value=1, max_value=600_000),  # amount
    ),
    max_size=14,
)


def _product(name: str) -> Product:
    return load_product_text((EXAMPLES / f"{name}.yaml").read_text())


def _event(
    kind: str, seq: int, today: date, amount: int, repayments: list[int], first: date
) -> LoanEvent | None:
    if kind == "pay":
        return LoanEvent(seq, EventKind.REPAYMENT, today, amount)
    if kind == "backdated":
        back = max(first, today - timedelta(days=amount % 90))
        return LoanEvent(seq, EventKind.REPAYMENT, back, amount)
    if kind == "reverse" and repayments:
        return LoanEvent(seq, EventKind.REPAYMENT_REVERSAL, today, reverses_seq=repayments[0])
    if kind == "waive":
        return LoanEvent(
            seq, EventKind.WAIVER, today, amount % 5_000 + 1, component=Component.PENALTY
        )
    if kind == "reschedule":
        return LoanEvent(seq, EventKind.RESCHEDULE, today, extend_by=amount % 3)
    return None


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(["consumer-annuity", "microloan-weekly-flat", "interest-only-balloon"]),
    steps=steps_strategy,
    read_after=st.integers(min_value=0, max_value=400),
)
def test_a_loan_lived_command_by_command_equals_its_full_replay(
    name: str,
    steps: list[tuple[str, int, int]],
    read_after: int,
) -> None:
    p = _product(name)
    principal = p.minor(p.principal.min) * 4
    c = LoanContract(1, p, p.terms(principal, START, enforce_limits=False), principal)
    events: list[LoanEvent] = []
    snapshot = None
    today = START
    repayments: list[int] = []
    for seq, (kind, gap, amount) in enumerate([("disburse", 0, principal), *steps], start=1):
        today += timedelta(days=gap)
        if kind == "disburse":
            event: LoanEvent | None = LoanEvent(seq, EventKind.DISBURSEMENT, START, amount)
        else:
            event = _event(kind, seq, today, amount, repayments, START)
        if event is None:
            continue
        if event.kind is EventKind.REPAYMENT:
            repayments.append(seq)
        elif event.kind is EventKind.REPAYMENT_REVERSAL:
            repayments.pop(0)
        events.append(event)
        if appends_to(snapshot, event):
            state, snapshot = resume_after(c, snapshot, [event], today)
        else:
            state, snapshot = resume(c, events, today, snapshot)
        full_state, full_snapshot = resume(c, events, today, None)
        assert state == full_state
        assert snapshot == full_snapshot
    # A read later on: the snapshot alone, finished at the read's date.
    later = today + timedelta(days=read_after)
    read, _ = resume_after(c, snapshot, [], later, keep=False)
    assert read == replay(c, events, later)


def test_an_event_before_the_snapshot_does_not_append() -> None:
    p = _product("consumer-annuity")
    principal = p.minor(p.principal.min) * 4
    c = LoanContract(1, p, p.terms(principal, START, enforce_limits=False), principal)
    paid_on = START + timedelta(days=40)
    events = [
        LoanEvent(1, EventKind.DISBURSEMENT, START, principal),
        LoanEvent(2, EventKind.REPAYMENT, paid_on, 10_000),
    ]
    _, snapshot = resume(c, events, paid_on, None)
    same_day = LoanEvent(3, EventKind.REPAYMENT, paid_on, 5_000)
    backdated = LoanEvent(3, EventKind.REPAYMENT, paid_on - timedelta(days=1), 5_000)
    reversal = LoanEvent(3, EventKind.REPAYMENT_REVERSAL, paid_on, reverses_seq=2)
    assert appends_to(snapshot, same_day)
    assert not appends_to(snapshot, backdated)
    assert not appends_to(snapshot, reversal)
    with pytest.raises(ValueError, match="sorts before the snapshot"):
        resume_after(c, snapshot, [backdated], paid_on)
