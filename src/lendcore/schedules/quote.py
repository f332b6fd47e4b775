"""Two figures of a schedule without building it: its regular instalment and its total.

A credit decision asks a schedule for two numbers and keeps neither the
schedule nor its rows: the instalment it will ask for (the largest one but the
last, fees included) and all it asks for over the term (with the maturity, to
spread it over months). `quote` gives both, equal to the minor unit to what
`build_schedule` gives, for the terms it covers, and builds the schedule for
the others.

Covered (`quote_gap(t)` is None): a declining-balance annuity without grace
periods, payment holiday or fixed instalment; any frequency, day count,
interest period (actual days or equal periods), first repayment date, explicit
due dates, calendar and business-day convention, rounding mode, instalment
multiple and periodic fee. Not covered, so built in full: flat interest, equal
principal, interest-only and bullet amortization, principal or interest grace,
payment holidays and a fixed instalment (each shifts which row the annuity is
computed on, or the rows' shape; `quote_gap` names which).

How, for covered terms:

- **The regular instalment, closed form.** A = the annuity payment on the
  principal over the term (`annuity_instalment`: the formula, the product's
  rounding mode and instalment multiple). Each row but the last pays
  min(max(A - I, 0), O) of principal, where I is its period's interest and O
  the principal outstanding, so its total is at most A + fee as long as no
  I exceeds A, and exactly A + fee when the first row's principal A - I1 lies
  in 0..P. After the first row the outstanding never grows (no
  capitalisation) and rounding is monotone, so each later I is at most the
  interest on the first row's outstanding P - (A - I1) over the dearest
  period: when the first row is regular and that bound is at most A, the
  instalment is A + fee without looking at any other row. Otherwise (a long
  broken first period, a long term at a high rate where a 34-day period
  costs more than A, an instalment multiple larger than the loan) the rows
  are walked as below.
- **The total, an integer recurrence.** Each period's interest is rounded on
  the outstanding that the rounding of the previous periods left, so the
  total has no exact closed form (the annuity formula's total is off by the
  accumulated roundings, one minor unit or more). The rows are walked with
  integers only: each period's exact interest factor (`period_interest` on one
  minor unit: the one rule for a period's interest) and the due dates are
  computed once per date-and-rate shape and kept, so a walk is a multiply,
  a divide and a comparison per period, without dates, fractions or rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from threading import Lock
from typing import Final

from lendcore.money import RoundingMode, _round_ratio
from lendcore.schedules.engine import (
    annuity_instalment,
    build_schedule,
    period_interest,
    periods,
)
from lendcore.schedules.terms import Amortization, InterestMethod, ScheduleTerms

# How many date-and-rate shapes are kept (a decision day uses a few dozen:
# terms x priced rates); past this the cache starts afresh, so memory is bounded.
SHAPES_MAX: Final = 512


@dataclass(frozen=True, slots=True)
class ScheduleQuote:
    # The largest instalment but the last (the only one of a one-row schedule).
    instalment_minor: int
    total_minor: int  # principal + interest + fees of all rows
    maturity: date
    how: str  # "recurrence" or "full build: <why>"


@dataclass(frozen=True, slots=True)
class InstalmentQuote:
    instalment_minor: int  # as ScheduleQuote's
    how: str  # "closed form", "recurrence" or "full build: <why>"


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the rows of a covered schedule need besides the principal: each
    period's exact interest per minor unit, as (numerator, denominator)."""

    factors: tuple[tuple[int, int], ...]
    halves: tuple[tuple[int, int, int], ...]  # (2 numerator, 2 denominator, denominator)
    dearest: tuple[int, int]  # the largest factor of the rows after the first but the last
    maturity: date
    periodic_rate: Fraction


_shapes: dict[tuple[object, ...], _Shape] = {}
_shapes_lock = Lock()


def quote_gap(t: ScheduleTerms) -> str | None:
    """Why `t` is outside what the quote computes without building the
    schedule (None when it is inside)."""
    if t.method is not InterestMethod.DECLINING:
        return f"{t.method.value} interest"
    if t.amortization is not Amortization.ANNUITY:
        return f"{t.amortization.value} amortization"
    if t.grace_principal or t.grace_interest or t.payment_holiday:
        return "grace or payment holiday"
    if t.instalment_minor is not None:
        return "a fixed instalment"
    return None


def quote(t: ScheduleTerms) -> ScheduleQuote:
    """The regular instalment, the total and the maturity of `t`'s schedule:
    exactly `build_schedule(t)`'s."""
    gap = quote_gap(t)
    if gap is not None:
        return _from_build(t, gap)
    shape = _shape(t)
    instalment, total = _walk(t, shape)
    return ScheduleQuote(instalment, total, shape.maturity, "recurrence")


def quote_instalment(t: ScheduleTerms, annual_rate: Decimal | None = None) -> InstalmentQuote:
    """`quote(t).instalment_minor`, in closed form when the bound of the
    module's docstring holds. With `annual_rate`, of the same terms at that
    rate (what `replace(t, annual_rate=...)` would give, without building and
    checking new terms when this shape at this rate has been seen: it was
    checked then)."""
    rate = t.annual_rate if annual_rate is None else annual_rate
    shape = _shapes.get(_key(t, rate)) if quote_gap(t) is None else None
    if shape is None:
        if rate != t.annual_rate:
            t = replace(t, annual_rate=rate)
        if quote_gap(t) is not None:
            whole = quote(t)
            return InstalmentQuote(whole.instalment_minor, whole.how)
        shape = _shape(t)
    closed = _closed_form(t, shape)
    if closed is not None:
        return InstalmentQuote(closed, "closed form")
    return InstalmentQuote(_walk(t, shape)[0], "recurrence")


def _from_build(t: ScheduleTerms, why: str) -> ScheduleQuote:
    schedule = build_schedule(t)
    rows = schedule.instalments
    instalment = max(row.total for row in (rows[:-1] or rows))
    return ScheduleQuote(instalment, schedule.total, schedule.maturity, f"full build: {why}")


def _key(t: ScheduleTerms, annual_rate: Decimal) -> tuple[object, ...]:
    """What a covered schedule's shape depends on: its dates and its rate."""
    return (
        t.start,
        t.term,
        t.frequency,
        t.first_repayment,
        t.due_dates,
        t.calendar,
        t.convention,
        t.day_count,
        t.interest_period,
        annual_rate,
    )


def _shape(t: ScheduleTerms) -> _Shape:
    key = _key(t, t.annual_rate)
    shape = _shapes.get(key)
    if shape is not None:
        return shape
    spans = periods(t)  # raises InvalidTerms as the build would
    exact = [
        period_interest(t, 1, start, due, number)
        for number, (start, due) in enumerate(spans, start=1)
    ]
    factors = tuple((f.numerator, f.denominator) for f in exact)
    dearest = max(exact[1:-1] or [Fraction(0)])
    shape = _Shape(
        factors,
        tuple((2 * n, 2 * d, d) for n, d in factors),
        (dearest.numerator, dearest.denominator),
        spans[-1][1],
        t.periodic_rate,
    )
    with _shapes_lock:
        if len(_shapes) >= SHAPES_MAX:
            _shapes.clear()
        _shapes[key] = shape
    return shape


def _annuity(t: ScheduleTerms, shape: _Shape) -> int:
    return annuity_instalment(
        t.principal_minor, shape.periodic_rate, t.term, t.instalment_multiple_minor, t.rounding
    )


def _closed_form(t: ScheduleTerms, shape: _Shape) -> int | None:
    """A + fee (see the module's docstring), or None when the bound does not hold.
    The rate is the shape's (`t`'s may be another: `quote_instalment`)."""
    principal, mode, fee = t.principal_minor, t.rounding, t.periodic_fee_minor
    first_n, first_d = shape.factors[0]
    first_interest = _round_ratio(principal * first_n, first_d, mode)
    if t.term == 1:
        return principal + first_interest + fee
    payment = _annuity(t, shape)
    if not 0 <= payment - first_interest <= principal:
        return None
    after_first = principal - (payment - first_interest)
    dearest_n, dearest_d = shape.dearest
    if _round_ratio(after_first * dearest_n, dearest_d, mode) > payment:
        return None
    return payment + fee


def _walk(t: ScheduleTerms, shape: _Shape) -> tuple[int, int]:
    """The rows as `build_schedule` computes them, as integers: (the largest
    instalment but the last, the total). The rate is the shape's."""
    outstanding, mode, fee = t.principal_minor, t.rounding, t.periodic_fee_minor
    half = mode in _HALF_MODES
    last = len(shape.factors) - 1
    payment = _annuity(t, shape) if last else 0
    largest = interest_total = 0
    for twice_numerator, twice_denominator, denominator in shape.halves[:last]:
        # The period's interest as `_round_ratio` rounds it. Inline, the hot
        # loop of a decision: floor(x + 1/2) is every half mode's rounding
        # of x but at a tie (x + 1/2 whole), which `_round_ratio` decides,
        # as it does every directed mode.
        interest, remainder = divmod(outstanding * twice_numerator + denominator, twice_denominator)
        if remainder == 0 or not half:
            interest = _round_ratio(outstanding * twice_numerator, twice_denominator, mode)
        principal = payment - interest
        if principal < 0:
            principal = 0
        elif principal > outstanding:
            principal = outstanding
        outstanding -= principal
        interest_total += interest
        if principal + interest > largest:
            largest = principal + interest
    numerator, denominator = shape.factors[last]
    interest = _round_ratio(outstanding * numerator, denominator, mode)
    # Every row's principal adds up to the principal: the last row takes
    # what the others left.
    total = t.principal_minor + interest_total + interest + fee * len(shape.factors)
    return (largest + fee if last else outstanding + interest + fee), total


_HALF_MODES: Final = frozenset(
    {RoundingMode.HALF_EVEN, RoundingMode.HALF_UP, RoundingMode.HALF_DOWN}
)
