"""The schedule engine: terms in, instalments out. Pure and exact.

Interest is computed as an exact fraction of a minor unit and rounded once per
instalment with the terms' rounding mode; whatever rounding leaves (principal
and flat interest) goes to the last instalment, so totals always reconcile.
`period_interest` is the one rule for a period's interest: the schedule uses
it, and so does daily accrual in servicing and end of day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Context, Decimal
from fractions import Fraction
from functools import lru_cache

from lendcore.dates import year_fraction

# The exact integer-ratio rounding behind round_fraction_to_minor, used on the
# schedule's hot loop so both round the same way by construction.
from lendcore.money import RoundingMode, _round_ratio, round_fraction_to_minor
from lendcore.schedules.terms import (
    Amortization,
    InterestMethod,
    InterestPeriod,
    InvalidTerms,
    ScheduleTerms,
)


@dataclass(frozen=True, slots=True)
class Instalment:
    number: int
    period_start: date
    due_date: date
    principal: int
    interest: int
    fees: int
    # Interest added to the principal instead of being paid (payment holiday).
    capitalised: int
    # Principal outstanding once this instalment is paid.
    outstanding: int

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fees


@dataclass(frozen=True, slots=True)
class Schedule:
    currency: str
    exponent: int
    financed: int
    instalments: tuple[Instalment, ...]

    @property
    def principal(self) -> int:
        return sum(i.principal for i in self.instalments)

    @property
    def interest(self) -> int:
        return sum(i.interest for i in self.instalments)

    @property
    def fees(self) -> int:
        return sum(i.fees for i in self.instalments)

    @property
    def capitalised(self) -> int:
        return sum(i.capitalised for i in self.instalments)

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fees

    @property
    def maturity(self) -> date:
        return self.instalments[-1].due_date


# --- the period-interest rule ------------------------------------------------------


def period_interest(
    t: ScheduleTerms, outstanding_minor: int, start: date, end: date, number: int
) -> Fraction:
    """Exact interest (in minor units) on `outstanding_minor` for instalment
    `number`'s period from `start` to `end`, before rounding.

    A bullet loan's one period spans the whole term: its interest-free grace
    (the first `grace_interest` periods of the term) is taken out of it here,
    so only the rest of the term bears interest.
    """
    rate = Fraction(t.annual_rate)
    bullet = t.amortization is Amortization.BULLET
    if t.interest_period is InterestPeriod.ACTUAL_DAYS:
        if bullet and t.grace_interest:
            start = max(start, t.due(t.grace_interest))
            if start >= end:
                return Fraction(0)
        return outstanding_minor * rate * year_fraction(start, end, t.day_count)
    if bullet:
        return outstanding_minor * t.periodic_rate * (t.term - t.grace_interest)
    regular = outstanding_minor * t.periodic_rate
    if number == 1 and t.first_repayment is not None:
        return regular * broken_period_share(t)
    return regular


def broken_period_share(t: ScheduleTerms) -> Fraction:
    """The first period's length as a share of a regular period, when the first
    repayment date makes it irregular (1 when it is regular)."""
    if t.first_repayment is None:
        return Fraction(1)
    regular_start = t.frequency.due_date(t.first_repayment, -1)
    if regular_start == t.start:
        return Fraction(1)
    return Fraction((t.first_repayment - t.start).days, (t.first_repayment - regular_start).days)


def accrued_share(t: ScheduleTerms, start: date, end: date, on: date) -> Fraction:
    """How much of a period's interest has accrued by the end of `on`'s day
    count (0 at `start`, 1 at `end`): the day count's own measure for actual
    days, calendar days for equal periods."""
    if on <= start:
        return Fraction(0)
    if on >= end:
        return Fraction(1)
    if t.interest_period is InterestPeriod.ACTUAL_DAYS:
        whole = year_fraction(start, end, t.day_count)
        if whole == 0:
            return Fraction(1)
        return year_fraction(start, on, t.day_count) / whole
    return Fraction((on - start).days, (end - start).days)


# --- rounding helpers --------------------------------------------------------------


def _round(value: Fraction, mode: RoundingMode) -> int:
    return round_fraction_to_minor(value, 0, mode)


def _round_to_multiple(value: Fraction, multiple: int, mode: RoundingMode) -> int:
    return _round(value / multiple, mode) * multiple


def annuity_instalment(
    outstanding_minor: int, periodic_rate: Fraction, periods: int, multiple: int, mode: RoundingMode
) -> int:
    """The standard annuity payment O·r / (1 - (1 + r)^-n), rounded to `multiple`.

    Computed in 60-digit decimal arithmetic, fast for 360 periods (exact
    fractions are not): the factor r / (1 - (1 + r)^-n) once per rate and
    number of periods (`_annuity_factor`), then one product. Only the final
    rounding must come out as the exact value's would: when the decimal result
    lies within a hair of a rounding boundary (a half for the half modes, a
    whole multiple for the directed ones) the exact rational value decides.
    P·(1 + r) for one period is often exactly a half: 10,000.00 at 5.25 %/24
    is 1,002,187.5 cents.
    """
    if periods <= 0:
        raise InvalidTerms("an annuity needs at least one amortizing period")
    if periodic_rate == 0:
        return _round_to_multiple(Fraction(outstanding_minor, periods), multiple, mode)
    digits = _DIGITS_60
    payment = digits.multiply(Decimal(outstanding_minor), _annuity_factor(periodic_rate, periods))
    units = digits.divide(payment, multiple)
    # How far the value is from the whole multiple below it, in multiples.
    part = digits.subtract(units, units.to_integral_value(rounding=ROUND_FLOOR))
    if min(part, digits.subtract(part, _HALF).copy_abs(), 1 - part) < _NEAR_BOUNDARY:
        exact = outstanding_minor * periodic_rate / (1 - (1 + periodic_rate) ** -periods)
        return _round_to_multiple(exact, multiple, mode)
    # Away from every boundary, rounding the 60-digit value gives what
    # rounding the exact one would.
    return int(units.to_integral_value(rounding=mode.decimal_rounding)) * multiple


@lru_cache(maxsize=1024)
def _annuity_factor(periodic_rate: Fraction, periods: int) -> Decimal:
    """r / (1 - (1 + r)^-n) to 60 digits: its relative error (a few units of the
    60th digit, after the cancellation in 1 - (1 + r)^-n for the smallest
    rates) leaves a payment's error under 10^-30 of a minor unit."""
    digits = _DIGITS_60
    r = digits.divide(Decimal(periodic_rate.numerator), Decimal(periodic_rate.denominator))
    return digits.divide(r, digits.subtract(1, digits.power(digits.add(1, r), -periods)))


_DIGITS_60 = Context(prec=60)
_HALF = Decimal("0.5")
# The 60-digit result's error is far below this for any amount a loan can have
# (under 10^-30 of a minor unit); closer to a boundary than this, compute exactly.
_NEAR_BOUNDARY = Decimal("1e-20")


# --- the schedule ---------------------------------------------------------------------


def periods(t: ScheduleTerms) -> list[tuple[date, date]]:
    """(period start, due date) of each instalment, business-day adjusted."""
    try:
        dues = (
            [t.due(t.term)]
            if t.amortization is Amortization.BULLET
            else [t.due(k) for k in range(1, t.term + 1)]
        )
    except OverflowError:  # days stepped past 9999-12-31 (months refuse by themselves)
        raise InvalidTerms(
            f"the schedule from {t.start} runs past the last date there is (9999-12-31)"
        ) from None
    result: list[tuple[date, date]] = []
    start = t.start
    for due in dues:
        if due <= start:
            raise InvalidTerms(
                f"due date {due} does not fall after the period start {start}: the calendar "
                "and business-day convention fold two due dates together",
                due_date=due.isoformat(),
            )
        result.append((start, due))
        start = due
    return result


def build_schedule(t: ScheduleTerms) -> Schedule:
    """The schedule of `t`: due dates, principal, interest, fees, outstanding."""
    spans = periods(t)
    rows = _flat(t, spans) if t.method is InterestMethod.FLAT else _declining(t, spans)
    return Schedule(t.currency, t.exponent, t.principal_minor, tuple(rows))


def _interest_rule(t: ScheduleTerms) -> Callable[[int, date, date, int], int]:
    """Rounded period interest, as `_round(period_interest(...))` gives it.

    The common case (interest by actual days, not a bullet's grace) is the
    schedule's hot loop: it is computed here as one integer ratio rounded
    once, the same exact value without building three Fractions per
    instalment (a 360-instalment schedule is several times faster).
    """
    if t.interest_period is not InterestPeriod.ACTUAL_DAYS or (
        t.amortization is Amortization.BULLET and t.grace_interest
    ):
        return lambda outstanding, start, due, number: _round(
            period_interest(t, outstanding, start, due, number), t.rounding
        )
    rate = Fraction(t.annual_rate)
    rate_n, rate_d = rate.numerator, rate.denominator
    day_count, mode = t.day_count, t.rounding

    def rule(outstanding: int, start: date, due: date, number: int) -> int:
        years = year_fraction(start, due, day_count)
        return _round_ratio(
            outstanding * rate_n * years.numerator, rate_d * years.denominator, mode
        )

    return rule


def _declining(t: ScheduleTerms, spans: list[tuple[date, date]]) -> list[Instalment]:
    interest_for = _interest_rule(t)
    outstanding = t.principal_minor
    deferred = max(t.grace_principal, t.payment_holiday)
    instalment = t.instalment_minor
    equal_principal: int | None = None
    rows: list[Instalment] = []
    for number, (start, due) in enumerate(spans, start=1):
        # (A bullet's grace is inside its one period: period_interest takes it out.)
        free = number <= t.grace_interest and t.amortization is not Amortization.BULLET
        interest = 0 if free else interest_for(outstanding, start, due, number)
        if number <= t.payment_holiday:
            outstanding += interest
            rows.append(Instalment(number, start, due, 0, 0, 0, interest, outstanding))
            continue
        remaining = len(spans) - number + 1
        if number == len(spans):
            principal = outstanding
        elif number <= deferred or t.amortization is Amortization.INTEREST_ONLY:
            principal = 0
        elif t.amortization is Amortization.ANNUITY:
            if instalment is None:
                instalment = annuity_instalment(
                    outstanding,
                    t.periodic_rate,
                    remaining,
                    t.instalment_multiple_minor,
                    t.rounding,
                )
            principal = min(max(instalment - interest, 0), outstanding)
        else:  # equal principal
            if equal_principal is None:
                equal_principal = _round_to_multiple(
                    Fraction(outstanding, remaining), t.instalment_multiple_minor, t.rounding
                )
            principal = min(equal_principal, outstanding)
        outstanding -= principal
        rows.append(
            Instalment(
                number, start, due, principal, interest, t.periodic_fee_minor, 0, outstanding
            )
        )
        if outstanding == 0 and t.instalment_minor is not None:
            break  # a fixed instalment (reduce-term prepayment) ends the loan early
    return rows


def flat_interest_total(t: ScheduleTerms) -> int:
    """Flat interest: rate x original principal x years, for the interest-bearing periods."""
    charged_periods = t.term - t.grace_interest
    years = Fraction(charged_periods) / t.frequency.periods_per_year
    return _round(t.principal_minor * Fraction(t.annual_rate) * years, t.rounding)


def _flat(t: ScheduleTerms, spans: list[tuple[date, date]]) -> list[Instalment]:
    count = len(spans)
    total_interest = flat_interest_total(t)
    first_charged = t.grace_interest + 1 if t.amortization is not Amortization.BULLET else 1
    charged = max(count - first_charged + 1, 1)
    interest_each = _round(Fraction(total_interest, charged), t.rounding)
    first_amortizing = t.grace_principal + 1
    amortizing = count - t.grace_principal
    principal_each = _round_to_multiple(
        Fraction(t.principal_minor, amortizing), t.instalment_multiple_minor, t.rounding
    )
    if t.amortization is Amortization.ANNUITY and t.grace_principal == 0 and t.grace_interest == 0:
        # Equal instalments: round the whole instalment, then take the interest out.
        level = _round_to_multiple(
            Fraction(t.principal_minor + total_interest, count),
            t.instalment_multiple_minor,
            t.rounding,
        )
        principal_each = max(level - interest_each, 0)
    outstanding = t.principal_minor
    interest_left = total_interest
    rows: list[Instalment] = []
    for number, (start, due) in enumerate(spans, start=1):
        last = number == count
        if last:
            interest = interest_left
            principal = outstanding
        else:
            interest = min(interest_each, interest_left) if number >= first_charged else 0
            balloon = t.amortization in (Amortization.INTEREST_ONLY, Amortization.BULLET)
            principal = (
                0 if balloon or number < first_amortizing else min(principal_each, outstanding)
            )
        interest_left -= interest
        outstanding -= principal
        rows.append(
            Instalment(
                number, start, due, principal, interest, t.periodic_fee_minor, 0, outstanding
            )
        )
    return rows
