"""The terms a schedule is computed from: pure values, no storage.

A product gives defaults and limits; an application or a preview overrides
some of them; `ScheduleTerms` is what is left once both are settled, the one
input of the schedule engine and of the accrual rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Final

from lendcore.dates import BusinessDayConvention, Calendar, DayCount, add_months, adjust, calendar
from lendcore.errors import InvalidInput
from lendcore.money import RoundingMode

# Limits: a schedule longer than this is a data error, not a loan (50 years weekly).
TERM_MAX: Final = 2_600
RATE_MAX: Final = Decimal(10)  # 1,000 % a year: above it a rate is a typo


class InvalidTerms(InvalidInput):
    """Settings that contradict each other or are out of range."""

    code = "TERMS_INVALID"


class InterestMethod(StrEnum):
    DECLINING = "declining"  # interest on the outstanding principal of each period
    FLAT = "flat"  # interest on the original principal for the whole term


class Amortization(StrEnum):
    ANNUITY = "annuity"  # equal instalments
    EQUAL_PRINCIPAL = "equal-principal"
    INTEREST_ONLY = "interest-only"  # interest each period, principal as a balloon
    BULLET = "bullet"  # one instalment at maturity


class InterestPeriod(StrEnum):
    ACTUAL_DAYS = "actual-days"  # each period's interest from its day count
    EQUAL_PERIODS = "equal-periods"  # each regular period is 1/periods-per-year


def _choice(enum: type[StrEnum], text: str, what: str) -> StrEnum:
    key = str(text).strip().lower().replace("_", "-").replace(" ", "-")
    aliases = {"declining-balance": "declining", "equal-instalments": "annuity"}
    key = aliases.get(key, key)
    for member in enum:
        if member.value == key:
            return member
    valid = ", ".join(m.value for m in enum)
    raise InvalidTerms(f"unknown {what} {text!r}: expected one of {valid}", name=repr(text))


def interest_method(text: str) -> InterestMethod:
    return InterestMethod(_choice(InterestMethod, text, "interest method"))


def amortization(text: str) -> Amortization:
    return Amortization(_choice(Amortization, text, "amortization"))


def interest_period(text: str) -> InterestPeriod:
    return InterestPeriod(_choice(InterestPeriod, text, "interest period"))


@dataclass(frozen=True, slots=True)
class Frequency:
    """How often instalments fall due.

    Monthly-type frequencies step whole months from one anchor date (so a loan
    disbursed on the 31st falls due on each month's last day, never drifting
    to the 28th); day-type ones step days.
    """

    name: str
    months: int = 0
    days: int = 0

    @property
    def periods_per_year(self) -> Fraction:
        if self.name == "semi-monthly":
            return Fraction(24)
        if self.months:
            return Fraction(12, self.months)
        if self.days in (7, 14):
            return Fraction(364, self.days)  # 52 weeks, 26 fortnights: the market's count
        return Fraction(365, self.days)

    def due_date(self, anchor: date, k: int) -> date:
        """The k-th unadjusted date after `anchor` (k = 0 is the anchor itself)."""
        if self.name == "semi-monthly":
            base = add_months(anchor, k // 2, end_of_month=_is_month_end(anchor))
            return base + timedelta(days=15) if k % 2 else base
        if self.months:
            return add_months(anchor, self.months * k, end_of_month=_is_month_end(anchor))
        return anchor + timedelta(days=self.days * k)

    def __str__(self) -> str:
        return self.name


def _is_month_end(d: date) -> bool:
    return (d + timedelta(days=1)).month != d.month


_NAMED: Final = {
    "weekly": Frequency("weekly", days=7),
    "bi-weekly": Frequency("bi-weekly", days=14),
    "semi-monthly": Frequency("semi-monthly"),
    "monthly": Frequency("monthly", months=1),
    "quarterly": Frequency("quarterly", months=3),
    "semi-annual": Frequency("semi-annual", months=6),
    "annual": Frequency("annual", months=12),
}
_ALIASES: Final = {
    "biweekly": "bi-weekly",
    "fortnightly": "bi-weekly",
    "semimonthly": "semi-monthly",
    "semi-annually": "semi-annual",
    "semiannual": "semi-annual",
    "annually": "annual",
    "yearly": "annual",
}
_EVERY_N_DAYS: Final = re.compile(r"^every-(\d{1,3})-days?$")


def frequency(text: str) -> Frequency:
    """Parse "monthly", "bi-weekly", ..., or "every-10-days"."""
    key = str(text).strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key in _NAMED:
        return _NAMED[key]
    match = _EVERY_N_DAYS.match(key)
    if match and 1 <= int(match.group(1)) <= 366:
        n = int(match.group(1))
        return Frequency(f"every-{n}-days", days=n)
    valid = ", ".join([*_NAMED, "every-N-days"])
    raise InvalidTerms(f"unknown frequency {text!r}: expected one of {valid}", name=repr(text))


@dataclass(frozen=True, slots=True)
class ScheduleTerms:
    """Everything the schedule engine needs, settled and checked.

    Amounts are minor units of `currency`; `exponent` is its ISO 4217 exponent.
    `principal_minor` is the financed amount (a financed fee included).
    `instalment_multiple_minor` rounds instalments to a multiple (100 for
    whole units of a two-decimal currency); the last instalment absorbs the rest.
    """

    principal_minor: int
    currency: str
    exponent: int
    annual_rate: Decimal
    term: int
    frequency: Frequency
    start: date
    day_count: DayCount
    method: InterestMethod = InterestMethod.DECLINING
    amortization: Amortization = Amortization.ANNUITY
    interest_period: InterestPeriod = InterestPeriod.ACTUAL_DAYS
    first_repayment: date | None = None
    grace_principal: int = 0
    grace_interest: int = 0
    payment_holiday: int = 0
    calendar: Calendar = field(default_factory=lambda: calendar("none"))
    convention: BusinessDayConvention = BusinessDayConvention.UNADJUSTED
    rounding: RoundingMode = RoundingMode.HALF_EVEN
    instalment_multiple_minor: int = 1
    periodic_fee_minor: int = 0
    # A fixed annuity instalment (a prepayment that keeps the instalment and
    # shortens the term); None computes it from the annuity formula.
    instalment_minor: int | None = None
    # Explicit unadjusted due dates (a rebuilt schedule keeps the loan's
    # original dates); None steps `frequency` from the anchor.
    due_dates: tuple[date, ...] | None = None

    def __post_init__(self) -> None:
        check_terms(self)

    @property
    def amortizing_periods(self) -> int:
        if self.amortization is Amortization.BULLET:
            return 1
        return self.term - max(self.grace_principal, self.payment_holiday)

    @property
    def periodic_rate(self) -> Fraction:
        return Fraction(self.annual_rate) / self.frequency.periods_per_year

    def unadjusted_due(self, k: int) -> date:
        """The k-th due date before business-day adjustment (k >= 1)."""
        if self.due_dates is not None:
            return self.due_dates[k - 1]
        if self.first_repayment is not None:
            return self.frequency.due_date(self.first_repayment, k - 1)
        return self.frequency.due_date(self.start, k)

    def due(self, k: int) -> date:
        return adjust(self.unadjusted_due(k), self.convention, self.calendar)


def check_terms(t: ScheduleTerms) -> None:
    """Refuse terms that contradict each other, with the setting named."""

    def refuse(message: str, **details: object) -> None:
        raise InvalidTerms(message, **details)

    if isinstance(t.principal_minor, bool) or not isinstance(t.principal_minor, int):
        refuse("the principal must be an integer amount in minor units")
    if t.principal_minor <= 0:
        refuse("the principal must be positive", principal_minor=t.principal_minor)
    if not isinstance(t.annual_rate, Decimal) or not t.annual_rate.is_finite():
        refuse("the annual rate must be a finite decimal (0.12 for 12 %)")
    if t.annual_rate < 0 or t.annual_rate > RATE_MAX:
        refuse(f"the annual rate {t.annual_rate} is outside 0 to {RATE_MAX}")
    if not 1 <= t.term <= TERM_MAX:
        refuse(f"the term must be 1 to {TERM_MAX} instalments, got {t.term}", term=t.term)
    for name in ("grace_principal", "grace_interest", "payment_holiday"):
        value = getattr(t, name)
        if value < 0:
            refuse(f"{name.replace('_', ' ')} cannot be negative", **{name: value})
    if t.grace_principal >= t.term:
        refuse(
            f"a principal grace of {t.grace_principal} periods leaves no instalment of a "
            f"{t.term}-instalment term to repay the principal",
            grace_principal=t.grace_principal,
            term=t.term,
        )
    if t.payment_holiday >= t.term:
        refuse(
            f"a payment holiday of {t.payment_holiday} periods is as long as the term",
            payment_holiday=t.payment_holiday,
        )
    if t.grace_interest > t.term:
        refuse("the interest-free grace is longer than the term", grace_interest=t.grace_interest)
    if t.amortization is Amortization.BULLET and (t.grace_principal or t.payment_holiday):
        refuse("a bullet loan repays everything at maturity: it has no grace or holiday periods")
    if t.instalment_multiple_minor < 1:
        refuse("the instalment rounding multiple must be at least one minor unit")
    if t.periodic_fee_minor < 0:
        refuse("the periodic fee cannot be negative")
    if t.method is InterestMethod.FLAT and t.payment_holiday:
        refuse("a flat-rate loan charges interest on the original principal: it cannot capitalise")
    if t.instalment_minor is not None and (
        t.amortization is not Amortization.ANNUITY or t.instalment_minor <= 0
    ):
        refuse("a fixed instalment needs annuity amortization and a positive amount")
    if t.due_dates is not None and (
        len(t.due_dates) != t.term
        or any(a >= b for a, b in zip((t.start, *t.due_dates), t.due_dates, strict=False))
    ):
        refuse("explicit due dates must be one per instalment, increasing, after the start")
    if t.first_repayment is not None and t.first_repayment <= t.start:
        refuse(
            f"the first repayment {t.first_repayment} must fall after the start {t.start}",
            first_repayment=t.first_repayment.isoformat(),
        )
