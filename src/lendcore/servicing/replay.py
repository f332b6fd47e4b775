"""Loan events to loan state: the one rule of servicing, pure and exact.

`replay(contract, events, as_of)` walks a loan's events in value-date order
together with the moments its instalments fall due and its late-fee checks
come round, and returns the state at the end of `as_of`'s day. The cost grows
with the loan's events and instalments, never with its days: interest and
penalty interest accrue by formula between those moments (DESIGN principle 7).
A backdated event, or the reversal of an old one, is just another replay.

Within one day: instalments fall due first, then the day's events in entry
order, then the end-of-day late-fee checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any, NamedTuple

from lendcore.dates import year_fraction
from lendcore.money import RoundingMode, round_fraction_to_minor
from lendcore.products.model import Component, PrepaymentPolicy, Product
from lendcore.schedules.engine import accrued_share, build_schedule
from lendcore.schedules.terms import Amortization, ScheduleTerms
from lendcore.servicing.contract import terms_from_doc, terms_to_doc
from lendcore.servicing.events import EventKind, LoanEvent, effective_events

_HALF_EVEN = RoundingMode.HALF_EVEN
COMPONENTS = (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL)
_NAMES = tuple(c.value for c in COMPONENTS)


class LoanStatus(StrEnum):
    APPROVED = "approved"  # booked, nothing disbursed yet
    ACTIVE = "active"
    CLOSED = "closed"
    WRITTEN_OFF = "written-off"


@dataclass(frozen=True, slots=True)
class LoanContract:
    """What was agreed when the loan was booked: the product version and the terms."""

    loan_id: int
    product: Product
    terms: ScheduleTerms  # principal = the approved amount
    approved_minor: int


@dataclass(slots=True)
class _Due:
    """One instalment while replaying (mutable here only)."""

    number: int
    period_start: date
    due_date: date
    unadjusted: date
    principal: int
    interest: int
    fee: int
    capitalised: int
    late_fee: int = 0
    penalty_exact: Fraction = Fraction(0)
    late_fee_checked: bool = False
    paid: dict[Component, int] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 0))
    waived: dict[Component, int] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 0))
    written_off: dict[Component, int] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 0))

    def penalty(self) -> int:
        if not self.penalty_exact:
            return self.late_fee
        return self.late_fee + round_fraction_to_minor(self.penalty_exact, 0, _HALF_EVEN)

    def amount(self, component: Component) -> int:
        if component is Component.PRINCIPAL:
            return self.principal
        if component is Component.INTEREST:
            return self.interest
        if component is Component.FEE:
            return self.fee
        return self.penalty()

    def unpaid(self, component: Component) -> int:
        return (
            self.amount(component)
            - self.paid[component]
            - self.waived[component]
            - self.written_off[component]
        )

    def unpaid_total(self) -> int:
        return sum(self.unpaid(c) for c in COMPONENTS)

    def unpaid_parts(self) -> tuple[int, int, int, int]:
        """`unpaid` of each component, in COMPONENTS order, in one go (a read
        computes it for every instalment)."""
        paid, waived, off = self.paid, self.waived, self.written_off
        pen, fee, interest, principal = COMPONENTS
        return (
            self.penalty() - paid[pen] - waived[pen] - off[pen],
            self.fee - paid[fee] - waived[fee] - off[fee],
            self.interest - paid[interest] - waived[interest] - off[interest],
            self.principal - paid[principal] - waived[principal] - off[principal],
        )


@dataclass(frozen=True, slots=True)
class InstalmentState:
    number: int
    period_start: date
    due_date: date
    principal: int
    interest: int
    fees: int
    penalties: int
    capitalised: int
    paid: dict[str, int]
    waived: dict[str, int]
    written_off: dict[str, int]
    outstanding: int  # unpaid of this instalment (all components)
    fallen_due: bool

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fees + self.penalties


class Allocation(NamedTuple):
    """How one repayment was applied. (An immutable record; a tuple, because a
    loan's read decodes every one of them from its snapshot.)"""

    seq: int
    value_date: date
    amount: int
    penalty: int = 0
    fee: int = 0
    interest: int = 0
    principal: int = 0
    prepaid_principal: int = 0
    overpayment: int = 0
    recovery: int = 0


# Ledger roles of a loan: the product's accounting mapping names their accounts.
ROLES_DEBIT = (
    "principal",
    "interest_receivable",
    "fee_receivable",
    "write_off_expense",
    "fund_source",
)
ROLES_CREDIT = ("overpayment", "interest_income", "fee_income", "penalty_income", "recovery_income")


@dataclass(frozen=True, slots=True)
class LoanState:
    as_of: date
    status: LoanStatus
    currency: str
    disbursed: int
    instalments: tuple[InstalmentState, ...]
    principal_outstanding: int
    interest_accrued: int  # recognised, not yet due
    overdue: int
    overdue_by_component: dict[str, int]
    days_past_due: int
    bucket: str | None
    overpayment: int
    closed_on: date | None
    written_off_on: date | None
    allocations: tuple[Allocation, ...]
    # Balance of each ledger role for this loan, on its normal side.
    positions: dict[str, int]
    # What settles the loan today: principal, interest accrued, and everything
    # fallen due (today's instalment included), less any overpayment held.
    payoff: int = 0
    # Events the replay could only partly apply (a waiver larger than what was due).
    notes: tuple[str, ...] = ()


class _Replay:
    def __init__(self, contract: LoanContract) -> None:
        self.contract = contract
        self.product = contract.product
        self.terms = contract.terms
        self.base_terms = contract.terms
        self.dues: list[_Due] = []
        self.fallen = 0  # dues[:fallen] have fallen due
        self.late_cursor = 0  # dues[:late_cursor] have had their late-fee check
        self.disbursed_gross = 0
        self.cash_out = 0
        self.disbursement_fees = 0
        self.received = 0
        self.recovered = 0
        self.suspense = 0
        self.written_off_on: date | None = None
        self.settled_on: date | None = None
        self.clock: date | None = None  # penalty interest accrued to here
        self.allocations: list[Allocation] = []
        self.notes: list[str] = []
        self.penalty_rate = Fraction(self.product.interest.penalty_rate)
        # Steps the loan's original due dates past any rebuilt schedule's end.
        self._stepper: ScheduleTerms | None = None

    # --- time ---------------------------------------------------------------------

    def _accrue_penalty(self, to: date) -> None:
        """Penalty interest on each fallen instalment's overdue principal, from
        the later of the last accrual and its due date to `to`, in one piece.
        It runs only where an overdue principal can change (an event, suspense
        applied as an instalment falls due) and at the end, so the amount does
        not depend on which other moments lie between: end of day computes it
        in one step from the snapshot (lendcore.eod.kernel)."""
        if self.clock is None or to <= self.clock:
            self.clock = to if self.clock is None else max(self.clock, to)
            return
        if self.penalty_rate and self.written_off_on is None:
            day_count = self.product.interest.day_count
            principal = Component.PRINCIPAL
            for due in self.dues[: self.fallen]:
                # due.unpaid(principal), inline: a read runs this for every fallen instalment.
                overdue_principal = (
                    due.principal
                    - due.paid[principal]
                    - due.waived[principal]
                    - due.written_off[principal]
                )
                if overdue_principal <= 0:
                    continue
                start = max(self.clock, due.due_date)
                if to > start:
                    due.penalty_exact += (
                        overdue_principal * self.penalty_rate * year_fraction(start, to, day_count)
                    )
        self.clock = to

    def _points_before(self, limit: tuple[date, int]) -> None:
        """Process due moments (rank 0) and end-of-day checks (rank 2) before `limit`."""
        while self.written_off_on is None:
            candidates: list[tuple[date, int]] = []
            if self.fallen < len(self.dues):
                candidates.append((self.dues[self.fallen].due_date, 0))
            check = self._next_late_check()
            if check is not None:
                candidates.append((check[0], 2))
            if not candidates:
                return
            moment = min(candidates)
            if moment >= limit:
                return
            if moment[1] == 0:
                self._fall_due()
            else:
                self._late_fee_check(moment[0])

    def _next_late_check(self) -> tuple[date, int] | None:
        late = self.product.fees.late
        if late is None:
            return None
        # Checks come round in due-date order: skip past those done.
        while self.late_cursor < self.fallen and self.dues[self.late_cursor].late_fee_checked:
            self.late_cursor += 1
        if self.late_cursor < self.fallen:
            due = self.dues[self.late_cursor]
            return due.due_date + timedelta(days=late.grace_days), self.late_cursor
        return None

    def _fall_due(self) -> None:
        due = self.dues[self.fallen]
        self.fallen += 1
        if self.suspense > 0 and self.product.prepayment is PrepaymentPolicy.SUSPENSE:
            self._accrue_penalty(due.due_date)
            # What the instalment does not take stays in suspense for the next.
            paid = self._pay_dues(due.due_date, self.suspense, None)
            self.suspense -= sum(paid.values())
        self._check_settled(due.due_date)

    def _late_fee_check(self, on: date) -> None:
        late = self.product.fees.late
        found = self._next_late_check()
        if late is None or found is None:
            return
        due = self.dues[found[1]]
        due.late_fee_checked = True
        unpaid = sum(
            due.unpaid(c) for c in (Component.PRINCIPAL, Component.INTEREST, Component.FEE)
        )
        if unpaid <= self._tolerance():
            return
        if late.kind == "flat":
            fee = self.product.minor(late.value)
        else:
            fee = round_fraction_to_minor(
                Fraction(late.value) * unpaid, 0, self.product.rounding.mode
            )
        due.late_fee += fee

    def _tolerance(self) -> int:
        return self.product.minor(self.product.arrears.tolerance)

    # --- events ---------------------------------------------------------------------

    def apply(self, event: LoanEvent) -> None:
        self._points_before((event.value_date, 1))
        self._accrue_penalty(event.value_date)
        kind = event.kind
        if kind is EventKind.DISBURSEMENT:
            self._disburse(event)
        elif kind is EventKind.REPAYMENT:
            self._repay(event)
        elif kind is EventKind.WAIVER:
            self._waive(event)
        elif kind is EventKind.RESCHEDULE:
            self._reschedule(event)
        elif kind is EventKind.WRITE_OFF:
            self._write_off(event.value_date)
        self._check_settled(event.value_date)

    def finish(self, as_of: date) -> LoanState:
        self._points_before((as_of, 3))
        self._accrue_penalty(as_of)
        return self._state(as_of)

    def _disburse(self, event: LoanEvent) -> None:
        first = self.disbursed_gross == 0
        fee = self.product.disbursement_fee_minor(event.amount_minor)
        if not first and self.product.fees.disbursement is not None:
            fee = fee if self.product.fees.disbursement.kind == "percent" else 0
        financed = (
            self.product.fees.disbursement is not None
            and self.product.fees.disbursement.treatment == "financed"
        )
        gross = event.amount_minor + (fee if financed else 0)
        self.disbursement_fees += fee
        self.cash_out += event.amount_minor - (0 if financed else fee)
        self.disbursed_gross += gross
        if first:
            self.terms = dataclasses.replace(
                self.terms, principal_minor=gross, start=event.value_date
            )
            self.base_terms = self.terms
            self._stepper = None
            self.dues = self._rows(self.terms, first_number=1)
            self.settled_on = None
            return
        self._rebuild(event.value_date, self._future_principal() + gross)

    def _rows(self, terms: ScheduleTerms, first_number: int) -> list[_Due]:
        rows = []
        for row in build_schedule(terms).instalments:
            number = first_number + row.number - 1
            rows.append(
                _Due(
                    number=number,
                    period_start=row.period_start,
                    due_date=row.due_date,
                    unadjusted=terms.unadjusted_due(row.number),
                    principal=row.principal,
                    interest=row.interest,
                    fee=row.fees,
                    capitalised=row.capitalised,
                )
            )
        return rows

    def _future_principal(self) -> int:
        return sum(d.unpaid(Component.PRINCIPAL) for d in self.dues[self.fallen :])

    def _current_accrued_exact(self, on: date) -> Fraction:
        """Interest of the current period accrued by `on` on today's principal."""
        if self.fallen >= len(self.dues):
            return Fraction(0)
        current = self.dues[self.fallen]
        share = accrued_share(self.terms, current.period_start, current.due_date, on)
        return (current.interest + current.capitalised) * share

    def _rebuild(
        self,
        on: date,
        principal: int,
        *,
        extend_by: int = 0,
        holiday: int = 0,
        keep_instalment: bool = False,
        terms: ScheduleTerms | None = None,
    ) -> None:
        """Replace the instalments not yet due with a schedule of `principal`
        from `on`, keeping the loan's due dates; the interest already accrued
        in the current period stays with the current instalment."""
        if self.fallen >= len(self.dues):
            return
        current = self.dues[self.fallen]
        accrued = round_fraction_to_minor(self._current_accrued_exact(on), 0, self.terms.rounding)
        count = len(self.dues) - self.fallen + extend_by
        first = current.number
        dates = tuple(self.base_terms_unadjusted(first + i) for i in range(count))
        base = terms or self.terms
        future = self.dues[self.fallen : -1]
        fixed = None
        if keep_instalment and base.amortization is Amortization.ANNUITY and future:
            # The regular instalment stays; the term shortens.
            fixed = max(d.principal + d.interest for d in future)
        if principal <= 0:
            del self.dues[self.fallen :]
            return
        if on >= dates[0]:
            # Paid after the unadjusted due date but before the adjusted one:
            # the period is treated as whole.
            on = current.period_start
        new_terms = dataclasses.replace(
            base,
            principal_minor=principal,
            start=on if on > current.period_start else current.period_start,
            term=count,
            first_repayment=dates[0],
            due_dates=dates,
            grace_principal=0,
            grace_interest=0,
            payment_holiday=holiday,
            instalment_minor=fixed,
        )
        rows = self._rows(new_terms, first_number=first)
        if on > current.period_start:
            rows[0].period_start = current.period_start
            rows[0].interest += accrued
        self.dues[self.fallen :] = rows
        self.terms = new_terms

    def base_terms_unadjusted(self, number: int) -> date:
        if self.base_terms.due_dates is not None and number <= len(self.base_terms.due_dates):
            return self.base_terms.due_dates[number - 1]
        if self._stepper is None:
            self._stepper = dataclasses.replace(self.base_terms, due_dates=None)
        return self._stepper.unadjusted_due(number)

    def _repay(self, event: LoanEvent) -> None:
        if self.written_off_on is not None:
            self.recovered += event.amount_minor
            self.allocations.append(
                Allocation(
                    event.seq, event.value_date, event.amount_minor, recovery=event.amount_minor
                )
            )
            return
        self.received += event.amount_minor
        paid = self._pay_dues(event.value_date, event.amount_minor, event)
        left = event.amount_minor - sum(paid.values())
        interest = prepaid = overpaid = 0
        if left > 0:
            interest, prepaid, overpaid = self._prepay(event.value_date, left)
        self.allocations.append(
            Allocation(
                event.seq,
                event.value_date,
                event.amount_minor,
                penalty=paid[Component.PENALTY],
                fee=paid[Component.FEE],
                interest=paid[Component.INTEREST] + interest,
                principal=paid[Component.PRINCIPAL],
                prepaid_principal=prepaid,
                overpayment=overpaid,
            )
        )

    def _pay_dues(self, on: date, amount: int, event: LoanEvent | None) -> dict[Component, int]:
        """Pay what has fallen due by the product's waterfall, oldest first."""
        paid = dict.fromkeys(COMPONENTS, 0)
        order = self.product.waterfall.components
        dues = self.dues[: self.fallen]
        if self.product.waterfall.instalment_by_instalment:
            steps = [(due, c) for due in dues for c in order]
        else:
            steps = [(due, c) for c in order for due in dues]
        left = amount
        for due, component in steps:
            if left == 0:
                break
            take = min(left, due.unpaid(component))
            if take > 0:
                due.paid[component] += take
                paid[component] += take
                left -= take
        return paid

    def _prepay(self, on: date, amount: int) -> tuple[int, int, int]:
        """What is left after the dues: a prepayment of principal (and, when it
        settles the loan, the interest accrued so far), or suspense.
        Returns (interest, principal, overpayment)."""
        future = self._future_principal()
        if self.product.prepayment is PrepaymentPolicy.SUSPENSE or future == 0:
            self.suspense += amount
            return 0, 0, amount
        accrued = round_fraction_to_minor(self._current_accrued_exact(on), 0, self.terms.rounding)
        if amount >= future + accrued:
            self._truncate(on, accrued)
            due = self.dues[-1]
            due.paid[Component.INTEREST] += accrued
            due.paid[Component.PRINCIPAL] += future
            overpaid = amount - future - accrued
            self.suspense += overpaid
            return accrued, future, overpaid
        keep = self.product.prepayment is PrepaymentPolicy.REDUCE_TERM
        self._rebuild(on, future - amount, keep_instalment=keep)
        return 0, amount, 0

    def _truncate(self, on: date, accrued_interest: int) -> None:
        """End the schedule at `on`: the current instalment takes all future
        principal and the interest accrued so far, and falls due now."""
        current = self.dues[self.fallen]
        future = self._future_principal()
        current.principal = future + current.paid[Component.PRINCIPAL]
        current.interest = accrued_interest + current.paid[Component.INTEREST]
        current.capitalised = 0
        current.fee = current.paid[Component.FEE]  # a periodic fee not yet charged falls away
        current.due_date = on
        del self.dues[self.fallen + 1 :]
        self.fallen += 1

    def _waive(self, event: LoanEvent) -> None:
        component = event.component or Component.PENALTY
        left = event.amount_minor
        for due in self.dues[: self.fallen]:
            take = min(left, due.unpaid(component))
            due.waived[component] += take
            left -= take
        if left:
            self.notes.append(
                f"waiver {event.seq}: {left} minor units more than was due were not applied"
            )

    def _reschedule(self, event: LoanEvent) -> None:
        terms = self.terms
        if event.annual_rate is not None:
            terms = dataclasses.replace(terms, annual_rate=event.annual_rate)
        start = self.dues[self.fallen].period_start if self.fallen < len(self.dues) else None
        if start is None:
            return
        self._rebuild(
            start,
            self._future_principal(),
            extend_by=event.extend_by,
            holiday=event.payment_holiday,
            terms=terms,
        )

    def _write_off(self, on: date) -> None:
        if self.fallen < len(self.dues):
            accrued = round_fraction_to_minor(
                self._current_accrued_exact(on), 0, self.terms.rounding
            )
            self._truncate(on, accrued)
        for due in self.dues:
            for component in COMPONENTS:
                due.written_off[component] += due.unpaid(component)
        self.written_off_on = on

    def _check_settled(self, on: date) -> None:
        if self.disbursed_gross == 0 or self.written_off_on is not None:
            return
        settled = self.fallen == len(self.dues) and all(d.unpaid_total() == 0 for d in self.dues)
        if settled and self.settled_on is None:
            self.settled_on = on
        elif not settled:
            self.settled_on = None

    # --- snapshots --------------------------------------------------------------------

    def to_doc(self, applied_count: int, applied_digest: str) -> dict[str, Any]:
        """Everything the replay knows, as JSON-safe data (exact: fractions as text),
        after `applied_count` events whose chain digest is `applied_digest`."""
        return {
            "applied_count": applied_count,
            "applied_digest": applied_digest,
            "terms": terms_to_doc(self.terms),
            "base_terms": terms_to_doc(self.base_terms),
            "dues": [_due_doc(d) for d in self.dues],
            "fallen": self.fallen,
            "late_cursor": self.late_cursor,
            "disbursed_gross": self.disbursed_gross,
            "cash_out": self.cash_out,
            "disbursement_fees": self.disbursement_fees,
            "received": self.received,
            "recovered": self.recovered,
            "suspense": self.suspense,
            "written_off_on": _iso(self.written_off_on),
            "settled_on": _iso(self.settled_on),
            "clock": _iso(self.clock),
            "allocations": [_allocation_doc(a) for a in self.allocations],
            "notes": list(self.notes),
        }

    @classmethod
    def from_doc(cls, contract: LoanContract, doc: dict[str, Any]) -> _Replay:
        run = cls(contract)
        run.terms = terms_from_doc(doc["terms"])
        run.base_terms = terms_from_doc(doc["base_terms"])
        run.dues = [_due_from(d) for d in doc["dues"]]
        run.fallen = int(doc["fallen"])
        run.late_cursor = int(doc["late_cursor"])
        run.disbursed_gross = int(doc["disbursed_gross"])
        run.cash_out = int(doc["cash_out"])
        run.disbursement_fees = int(doc["disbursement_fees"])
        run.received = int(doc["received"])
        run.recovered = int(doc["recovered"])
        run.suspense = int(doc["suspense"])
        run.written_off_on = _date(doc["written_off_on"])
        run.settled_on = _date(doc["settled_on"])
        run.clock = _date(doc["clock"])
        run.allocations = [_allocation_from(a) for a in doc["allocations"]]
        run.notes = list(doc["notes"])
        return run

    # --- the state ------------------------------------------------------------------

    def _state(self, as_of: date) -> LoanState:
        active = self.written_off_on is None
        fallen = self.dues[: self.fallen]
        accrued = 0
        if active and self.fallen < len(self.dues):
            accrued = round_fraction_to_minor(
                self._current_accrued_exact(as_of), 0, self.terms.rounding
            )
        # Each instalment's unpaid amount per component, computed once.
        unpaid = [d.unpaid_parts() for d in self.dues]
        pen, fee, interest, principal = range(4)  # positions in COMPONENTS
        # The fallen instalments' sums, in one pass (a read does this every time).
        past = [0, 0, 0, 0]  # unpaid per component, due before as_of
        fallen_unpaid_interest = fallen_unpaid_fee = fallen_unpaid_pen = 0
        fallen_interest = fallen_fee = fallen_penalty = 0
        for d, u in zip(fallen, unpaid, strict=False):
            if d.due_date < as_of:
                past[pen] += u[pen]
                past[fee] += u[fee]
                past[interest] += u[interest]
                past[principal] += u[principal]
            fallen_unpaid_interest += u[interest]
            fallen_unpaid_fee += u[fee]
            fallen_unpaid_pen += u[pen]
            fallen_interest += d.interest + d.capitalised
            fallen_fee += d.fee
            fallen_penalty += d.penalty()
        by_component = dict(zip(_NAMES, past, strict=True))
        overdue = sum(past)
        dpd = 0
        if overdue > self._tolerance():
            oldest = next(
                d for d, u in zip(fallen, unpaid, strict=False) if d.due_date < as_of and any(u)
            )
            dpd = (as_of - oldest.due_date).days
        principal_balance = sum(u[principal] for u in unpaid) - sum(
            d.capitalised for d in self.dues[self.fallen :]
        )
        interest_receivable = fallen_unpaid_interest + accrued
        fee_receivable = fallen_unpaid_fee + fallen_unpaid_pen
        waived = {c: sum(d.waived[c] for d in self.dues) for c in COMPONENTS}
        recognised_interest = fallen_interest + accrued
        positions = {
            "principal": principal_balance,
            "interest_receivable": interest_receivable,
            "fee_receivable": fee_receivable,
            "write_off_expense": sum(sum(d.written_off.values()) for d in self.dues),
            "fund_source": self.received + self.recovered - self.cash_out,
            "overpayment": self.suspense,
            "interest_income": recognised_interest - waived[Component.INTEREST],
            "fee_income": self.disbursement_fees + fallen_fee - waived[Component.FEE],
            "penalty_income": fallen_penalty - waived[Component.PENALTY],
            "recovery_income": self.recovered,
        }
        payoff = (
            principal_balance
            + accrued
            + fallen_unpaid_pen
            + fallen_unpaid_fee
            + fallen_unpaid_interest
            - self.suspense
        )
        if self.written_off_on is not None:
            status = LoanStatus.WRITTEN_OFF
        elif self.disbursed_gross == 0:
            status = LoanStatus.APPROVED
        elif self.settled_on is not None:
            status = LoanStatus.CLOSED
        else:
            status = LoanStatus.ACTIVE
        return LoanState(
            as_of=as_of,
            status=status,
            currency=self.terms.currency,
            disbursed=self.disbursed_gross,
            instalments=tuple(
                self._instalment(d, i < self.fallen, sum(u))
                for i, (d, u) in enumerate(zip(self.dues, unpaid, strict=True))
            ),
            principal_outstanding=principal_balance,
            interest_accrued=accrued,
            overdue=overdue,
            overdue_by_component=by_component,
            days_past_due=dpd,
            bucket=bucket_of(dpd, self.product.arrears.buckets),
            overpayment=self.suspense,
            closed_on=self.settled_on if status is LoanStatus.CLOSED else None,
            written_off_on=self.written_off_on,
            allocations=tuple(self.allocations),
            positions=positions,
            payoff=payoff,
            notes=tuple(self.notes),
        )

    @staticmethod
    def _instalment(due: _Due, fallen: bool, outstanding: int) -> InstalmentState:
        return InstalmentState(
            number=due.number,
            period_start=due.period_start,
            due_date=due.due_date,
            principal=due.principal,
            interest=due.interest,
            fees=due.fee,
            penalties=due.penalty(),
            capitalised=due.capitalised,
            paid=dict(zip(_NAMES, due.paid.values(), strict=True)),
            waived=dict(zip(_NAMES, due.waived.values(), strict=True)),
            written_off=dict(zip(_NAMES, due.written_off.values(), strict=True)),
            outstanding=outstanding,
            fallen_due=fallen,
        )


def bucket_of(dpd: int, buckets: Iterable[tuple[int, int | None]]) -> str | None:
    """The delinquency bucket label ("1-30", "91+") of `dpd` days past due."""
    if dpd <= 0:
        return None
    for low, high in buckets:
        if dpd >= low and (high is None or dpd <= high):
            return f"{low}+" if high is None else f"{low}-{high}"
    return None


def replay(contract: LoanContract, events: Sequence[LoanEvent], as_of: date) -> LoanState:
    """The loan's state at the end of `as_of`, from its events dated up to then."""
    return resume(contract, events, as_of, None, keep=False)[0]


def resume(
    contract: LoanContract,
    events: Sequence[LoanEvent],
    as_of: date,
    snapshot: dict[str, Any] | None,
    *,
    keep: bool = True,
) -> tuple[LoanState, dict[str, Any] | None]:
    """`replay`, starting from `snapshot` when it still holds for `events`.

    A snapshot is the replay just after a loan's last event. While no event
    sorts before it and none before it is reversed, the next read or command
    starts there, so its cost does not grow with the loan's history (DESIGN
    principle 7); otherwise the replay starts from the first event. Returns the
    state and the snapshot after the last event (None when an event is dated
    after `as_of`, or when `keep` is False: a read has no use for it).
    """
    ordered = effective_events(list(events))
    if snapshot is not None:
        count = int(snapshot["applied_count"])
        if count <= len(ordered):
            digest = _applied_digest(ordered[:count])
            if snapshot["applied_digest"] == digest:
                run = _Replay.from_doc(contract, snapshot)
                return _run(run, ordered[count:], count, digest, as_of, keep=keep)
    return _run(_Replay(contract), ordered, 0, _DIGEST_NONE, as_of, keep=keep)


def appends_to(snapshot: dict[str, Any] | None, event: LoanEvent) -> bool:
    """Whether `event` sorts after every event `snapshot` applied, so that
    `resume_after` may apply it to the snapshot without the loan's other events.

    A snapshot's clock is the value date of the last event it applied (penalty
    interest is accrued to each event's date, and due moments before an event
    are processed before it), and a new event has a higher `seq` than any
    before it, so an event dated on or after the clock sorts last. A reversal
    removes an applied event: it never appends."""
    if event.kind is EventKind.REPAYMENT_REVERSAL:
        return False
    if snapshot is None:
        return True
    clock = snapshot["clock"]
    return clock is None or event.value_date >= date.fromisoformat(clock)


def resume_after(
    contract: LoanContract,
    snapshot: dict[str, Any] | None,
    events: Sequence[LoanEvent],
    as_of: date,
    *,
    keep: bool = True,
) -> tuple[LoanState, dict[str, Any] | None]:
    """`resume` for a caller that holds the snapshot of all of a loan's events so
    far and only the `events` that came after it (none, for a read): no event
    before the snapshot is read, so the cost follows the new events alone.

    `snapshot` None means no event was applied yet. Each event must append
    (`appends_to`, checked here); the caller vouches that the snapshot is the
    replay of every earlier event (the loan row keeps it with the last event's
    seq, written in the event's transaction)."""
    ordered = sorted(events, key=lambda e: (e.value_date, e.seq))
    for event in ordered:
        if not appends_to(snapshot, event):
            raise ValueError(f"event {event.seq} sorts before the snapshot: replay it all")
    if snapshot is None:
        return _run(_Replay(contract), ordered, 0, _DIGEST_NONE, as_of, keep=keep)
    run = _Replay.from_doc(contract, snapshot)
    count = int(snapshot["applied_count"])
    return _run(run, ordered, count, str(snapshot["applied_digest"]), as_of, keep=keep)


def _run(
    run: _Replay,
    pending: Sequence[LoanEvent],
    done: int,
    digest: str,
    as_of: date,
    *,
    keep: bool,
) -> tuple[LoanState, dict[str, Any] | None]:
    """Apply `pending` (in replay order) after `done` events whose digest is
    `digest`; the state at the end of `as_of` and the snapshot after them."""
    dated_later = False
    for event in pending:
        if event.value_date > as_of:
            dated_later = True
            break
        run.apply(event)
        digest = _digest_step(digest, event)
        done += 1
    after = None if dated_later or not keep else run.to_doc(done, digest)
    return run.finish(as_of), after


# The digest of no events; each applied event chains onto the digest before it,
# so a snapshot's digest extends by the new events alone.
_DIGEST_NONE = hashlib.sha256(b"").hexdigest()


def _digest_step(digest: str, event: LoanEvent) -> str:
    text = f"{digest},{event.seq}:{event.value_date.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()


def _applied_digest(events: Sequence[LoanEvent]) -> str:
    digest = _DIGEST_NONE
    for event in events:
        digest = _digest_step(digest, event)
    return digest


def position_deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Per-role change between two positions; zero changes left out."""
    return {
        role: after.get(role, 0) - before.get(role, 0)
        for role in (*ROLES_DEBIT, *ROLES_CREDIT)
        if after.get(role, 0) != before.get(role, 0)
    }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _due_doc(d: _Due) -> dict[str, Any]:
    return {
        "number": d.number,
        "period_start": d.period_start.isoformat(),
        "due_date": d.due_date.isoformat(),
        "unadjusted": d.unadjusted.isoformat(),
        "principal": d.principal,
        "interest": d.interest,
        "fee": d.fee,
        "capitalised": d.capitalised,
        "late_fee": d.late_fee,
        "penalty_exact": f"{d.penalty_exact.numerator}/{d.penalty_exact.denominator}",
        "late_fee_checked": d.late_fee_checked,
        "paid": [d.paid[c] for c in COMPONENTS],
        "waived": [d.waived[c] for c in COMPONENTS],
        "written_off": [d.written_off[c] for c in COMPONENTS],
    }


_NO_PENALTY = "0/1"
_ZERO = Fraction(0)


def _due_from(doc: dict[str, Any]) -> _Due:
    exact = doc["penalty_exact"]
    if exact == _NO_PENALTY:
        penalty = _ZERO  # most instalments: no fraction to parse (Fractions are immutable)
    else:
        numerator, denominator = exact.split("/")
        penalty = Fraction(int(numerator), int(denominator))
    return _Due(
        doc["number"],
        date.fromisoformat(doc["period_start"]),
        date.fromisoformat(doc["due_date"]),
        date.fromisoformat(doc["unadjusted"]),
        doc["principal"],
        doc["interest"],
        doc["fee"],
        doc["capitalised"],
        doc["late_fee"],
        penalty,
        doc["late_fee_checked"],
        dict(zip(COMPONENTS, doc["paid"], strict=True)),
        dict(zip(COMPONENTS, doc["waived"], strict=True)),
        dict(zip(COMPONENTS, doc["written_off"], strict=True)),
    )


_ALLOCATION_FIELDS = Allocation._fields
if _ALLOCATION_FIELDS[:2] != ("seq", "value_date"):
    raise RuntimeError("_allocation_from decodes seq and value date first")


def _allocation_doc(a: Allocation) -> list[Any]:
    return [
        a.value_date.isoformat() if name == "value_date" else getattr(a, name)
        for name in _ALLOCATION_FIELDS
    ]


def _allocation_from(doc: list[Any]) -> Allocation:
    # Positional, in _ALLOCATION_FIELDS order (seq, value_date, then the amounts).
    if len(doc) != len(_ALLOCATION_FIELDS):
        raise ValueError(f"an allocation has {len(_ALLOCATION_FIELDS)} fields: {doc!r}")
    values = list(doc)
    values[1] = date.fromisoformat(values[1])
    return Allocation._make(values)  # the tuple directly: a read decodes every allocation
