"""Loan events: the facts a loan's state is computed from.

A loan's state is never edited in place: it is the replay of its events
(`servicing.replay`). A correction is another event (a repayment reversal), so
a backdated fact simply sorts into place and the replay gives the new truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lendcore.products.model import Component


class EventKind(StrEnum):
    DISBURSEMENT = "disbursement"
    REPAYMENT = "repayment"
    REPAYMENT_REVERSAL = "repayment-reversal"
    WAIVER = "waiver"
    RESCHEDULE = "reschedule"
    WRITE_OFF = "write-off"


@dataclass(frozen=True, slots=True)
class LoanEvent:
    """One fact about a loan. `seq` orders events entered on the same value
    date; `amount_minor` is in the loan's currency."""

    seq: int
    kind: EventKind
    value_date: date
    amount_minor: int = 0
    # repayment reversal: the seq of the repayment it reverses
    reverses_seq: int | None = None
    # waiver: which component
    component: Component | None = None
    # reschedule: the new annual rate, extra instalments, payment holiday periods
    annual_rate: Decimal | None = None
    extend_by: int = 0
    payment_holiday: int = 0


def effective_events(events: list[LoanEvent]) -> list[LoanEvent]:
    """Events in replay order, reversed repayments and the reversals left out."""
    reversed_seqs = {e.reverses_seq for e in events if e.kind is EventKind.REPAYMENT_REVERSAL}
    kept = [
        e
        for e in events
        if e.kind is not EventKind.REPAYMENT_REVERSAL and e.seq not in reversed_seqs
    ]
    return sorted(kept, key=lambda e: (e.value_date, e.seq))
