"""The schedule engine against expectations computed independently of it.

Oracles: QuantLib for day counts and unadjusted schedule dates, numpy-financial
for the annuity instalment, and hand-worked figures for small cases. The
reference schedules below replay each period from those oracles alone; they
share no code with `lendcore.schedules.engine`.

Pitfalls of other loan systems are regression tests at the end of this file;
the random-terms properties live in test_schedule_properties.py.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import numpy_financial as npf
import pytest
import QuantLib as ql

from lendcore.dates import BusinessDayConvention, DayCount, calendar
from lendcore.errors import InvalidInput
from lendcore.money import RoundingMode
from lendcore.schedules.engine import (
    Schedule,
    accrued_share,
    annuity_instalment,
    build_schedule,
    flat_interest_total,
)
from lendcore.schedules.terms import (
    Amortization,
    Frequency,
    InterestMethod,
    InterestPeriod,
    InvalidTerms,
    ScheduleTerms,
    frequency,
)

D = date
ANNUITY = Amortization.ANNUITY
EQUAL = Amortization.EQUAL_PRINCIPAL
INTEREST_ONLY = Amortization.INTEREST_ONLY
BULLET = Amortization.BULLET
DECLINING = InterestMethod.DECLINING
FLAT = InterestMethod.FLAT

FREQUENCIES = (
    "weekly",
    "bi-weekly",
    "semi-monthly",
    "monthly",
    "quarterly",
    "semi-annual",
    "annual",
    "every-10-days",
)
# What a year holds of each frequency (the market's count: 52 weeks, 26 fortnights).
PERIODS_PER_YEAR = {
    "weekly": 52,
    "bi-weekly": 26,
    "semi-monthly": 24,
    "monthly": 12,
    "quarterly": 4,
    "semi-annual": 2,
    "annual": 1,
    "every-10-days": Fraction(365, 10),
}
QL_PERIOD = {
    "weekly": ql.Period(ql.Weekly),
    "bi-weekly": ql.Period(ql.Biweekly),
    "monthly": ql.Period(ql.Monthly),
    "quarterly": ql.Period(ql.Quarterly),
    "semi-annual": ql.Period(ql.Semiannual),
    "annual": ql.Period(ql.Annual),
    "every-10-days": ql.Period(10, ql.Days),
}
QL_DAY_COUNT = {
    DayCount.ACT_360: (ql.Actual360(), 360),
    DayCount.ACT_365F: (ql.Actual365Fixed(), 365),
    DayCount.ACT_ACT: (ql.ActualActual(ql.ActualActual.ISDA), None),
    DayCount.THIRTY_360: (ql.Thirty360(ql.Thirty360.BondBasis), 360),
    DayCount.THIRTY_E_360: (ql.Thirty360(ql.Thirty360.European), 360),
}


def qd(d: date) -> ql.Date:
    return ql.Date(d.day, d.month, d.year)


def py(d: ql.Date) -> date:
    return date(d.year(), d.month(), d.dayOfMonth())


def half_even(value: Fraction | Decimal | float) -> int:
    """Round to a whole minor unit, half to even, exactly."""
    if isinstance(value, Fraction):
        return round(value)  # Python's round of a Fraction is half-to-even
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def oracle_year_fraction(start: date, end: date, dc: DayCount) -> Fraction:
    """The year fraction from QuantLib, as an exact fraction.

    QuantLib gives the day-count numerator exactly; ACT/ACT ISDA is a sum of
    per-calendar-year fractions, built here from QuantLib's day counts of each
    year's part and checked against its (float) year fraction.
    """
    counter, basis = QL_DAY_COUNT[dc]
    if basis is not None:
        return Fraction(counter.dayCount(qd(start), qd(end)), basis)
    exact = Fraction(0)
    for year in range(start.year, end.year + 1):
        part_start, part_end = max(start, D(year, 1, 1)), min(end, D(year + 1, 1, 1))
        days_in_year = 366 if stdlib_calendar.isleap(year) else 365
        exact += Fraction(counter.dayCount(qd(part_start), qd(part_end)), days_in_year)
    assert abs(float(exact) - counter.yearFraction(qd(start), qd(end))) < 1e-12
    return exact


def oracle_dates(freq: str, start: date, count: int) -> list[date]:
    """`start` and the next `count` unadjusted due dates, from QuantLib's schedule
    generator (each date is start + i periods, month ends kept at month end)."""
    if freq == "semi-monthly":
        # QuantLib has no semi-monthly tenor: every half month is a whole month
        # from the anchor, or that plus 15 days.
        dates = [start]
        for i in range(1, count + 1):
            months = ql.Period(i // 2, ql.Months)
            eom = start.day == stdlib_calendar.monthrange(start.year, start.month)[1]
            base = py(ql.NullCalendar().advance(qd(start), months, ql.Unadjusted, eom))
            dates.append(base + timedelta(days=15) if i % 2 else base)
        return dates
    eom = start.day == stdlib_calendar.monthrange(start.year, start.month)[1]
    tenor = QL_PERIOD[freq]
    far = qd(start) + ql.Period(tenor.length() * (count + 1), tenor.units())
    schedule = ql.Schedule(
        qd(start),
        far,
        QL_PERIOD[freq],
        ql.NullCalendar(),
        ql.Unadjusted,
        ql.Unadjusted,
        ql.DateGeneration.Forward,
        eom and freq in ("monthly", "quarterly", "semi-annual", "annual"),
    )
    return [py(d) for d in list(schedule)[: count + 1]]


def npf_instalment(principal: int, rate: Decimal, ppy: Fraction | int, periods: int) -> int:
    """numpy-financial's annuity payment, in minor units, half to even."""
    periodic = float(Fraction(rate) / ppy)
    if periodic == 0:
        return half_even(Fraction(principal, periods))
    return half_even(float(npf.pmt(periodic, periods, -principal)))


def exact_instalment(principal: int, periodic: Fraction, periods: int) -> Fraction:
    """The annuity formula P r / (1 - (1 + r)^-n) in exact rational arithmetic."""
    if periodic == 0:
        return Fraction(principal, periods)
    return principal * periodic / (1 - (1 + periodic) ** -periods)


@dataclass(frozen=True)
class Row:
    due: date
    principal: int
    interest: int
    outstanding: int


def reference_declining(
    principal: int,
    rate: Decimal,
    dates: list[date],
    dc: DayCount,
    amortization: Amortization,
    ppy: Fraction | int,
) -> list[Row]:
    """A declining-balance schedule replayed from the oracles alone."""
    n = len(dates) - 1
    instalment = npf_instalment(principal, rate, ppy, n)
    equal_share = half_even(Fraction(principal, n))
    outstanding = principal
    rows: list[Row] = []
    for k in range(1, n + 1):
        interest = half_even(
            outstanding * Fraction(rate) * oracle_year_fraction(dates[k - 1], dates[k], dc)
        )
        if k == n:
            paid = outstanding
        elif amortization is ANNUITY:
            paid = min(max(instalment - interest, 0), outstanding)
        elif amortization is EQUAL:
            paid = min(equal_share, outstanding)
        else:
            paid = 0
        outstanding -= paid
        rows.append(Row(dates[k], paid, interest, outstanding))
    return rows


def reference_flat(
    principal: int, rate: Decimal, dates: list[date], amortization: Amortization, years: Fraction
) -> list[Row]:
    """Flat interest: rate x principal x years in total, spread evenly; for an
    annuity, level instalments of (principal + interest) / n."""
    n = len(dates) - 1
    total_interest = half_even(principal * Fraction(rate) * years)
    interest_each = half_even(Fraction(total_interest, n))
    if amortization is ANNUITY:
        principal_each = half_even(Fraction(principal + total_interest, n)) - interest_each
    elif amortization is EQUAL:
        principal_each = half_even(Fraction(principal, n))
    else:
        principal_each = 0
    outstanding, interest_left = principal, total_interest
    rows = []
    for k in range(1, n + 1):
        interest = interest_left if k == n else interest_each
        paid = outstanding if k == n else min(principal_each, outstanding)
        outstanding -= paid
        interest_left -= interest
        rows.append(Row(dates[k], paid, interest, outstanding))
    return rows


def terms(**values: Any) -> ScheduleTerms:
    base: dict[str, Any] = {
        "principal_minor": 1_000_000,
        "currency": "USD",
        "exponent": 2,
        "annual_rate": Decimal("0.12"),
        "term": 12,
        "frequency": frequency("monthly"),
        "start": D(2026, 1, 15),
        "day_count": DayCount.THIRTY_360,
    }
    base.update(values)
    return ScheduleTerms(**base)


def rows(schedule: Schedule) -> list[Row]:
    return [Row(i.due_date, i.principal, i.interest, i.outstanding) for i in schedule.instalments]


def table(schedule: Schedule) -> list[tuple[str, int, int, int]]:
    return [
        (i.due_date.isoformat(), i.principal, i.interest, i.outstanding)
        for i in schedule.instalments
    ]


# --- hand-worked small cases ---------------------------------------------------------


def test_the_issue_example_first_instalment() -> None:
    """10,000.00 at 12 % over 12 months on 30/360: 1 % a month, pmt 888.49."""
    schedule = build_schedule(terms())
    first = schedule.instalments[0]
    assert (first.due_date, first.principal, first.interest, first.fees, first.total) == (
        D(2026, 2, 15),
        78_849,
        10_000,
        0,
        88_849,
    )
    assert first.outstanding == 921_151
    assert round(float(npf.pmt(0.01, 12, -10_000)), 2) == 888.49
    # Every instalment but the last is the annuity payment; the last settles the rest.
    assert {i.total for i in schedule.instalments[:-1]} == {88_849}
    assert schedule.principal == 1_000_000
    assert schedule.instalments[-1].outstanding == 0


def test_equal_principal_by_hand() -> None:
    schedule = build_schedule(terms(principal_minor=120_000, term=3, amortization=EQUAL))
    assert table(schedule) == [
        ("2026-02-15", 40_000, 1_200, 80_000),
        ("2026-03-15", 40_000, 800, 40_000),
        ("2026-04-15", 40_000, 400, 0),
    ]


def test_interest_only_with_balloon_by_hand() -> None:
    schedule = build_schedule(terms(principal_minor=100_000, term=3, amortization=INTEREST_ONLY))
    assert table(schedule) == [
        ("2026-02-15", 0, 1_000, 100_000),
        ("2026-03-15", 0, 1_000, 100_000),
        ("2026-04-15", 100_000, 1_000, 0),
    ]


def test_bullet_by_hand() -> None:
    # 2026-01-01 to 2027-01-01 is 365 days: exactly one year on ACT/365F.
    schedule = build_schedule(
        terms(
            amortization=BULLET,
            start=D(2026, 1, 1),
            day_count=DayCount.ACT_365F,
            annual_rate=Decimal("0.10"),
        )
    )
    assert table(schedule) == [("2027-01-01", 1_000_000, 100_000, 0)]


@pytest.mark.parametrize(
    ("amortization", "expected"),
    [
        # 1,200.00 at 10 % flat for a year: 120.00 interest, 10.00 a month.
        (ANNUITY, [(10_000, 1_000)] * 12),
        (EQUAL, [(10_000, 1_000)] * 12),
        (INTEREST_ONLY, [(0, 1_000)] * 11 + [(120_000, 1_000)]),
        (BULLET, [(120_000, 12_000)]),
    ],
)
def test_flat_by_hand(amortization: Amortization, expected: list[tuple[int, int]]) -> None:
    schedule = build_schedule(
        terms(
            principal_minor=120_000,
            annual_rate=Decimal("0.10"),
            method=FLAT,
            amortization=amortization,
        )
    )
    assert [(i.principal, i.interest) for i in schedule.instalments] == expected
    assert schedule.interest == 12_000


def test_equal_periods_interest_ignores_the_day_count() -> None:
    """Interest per equal periods: each month is 1/12 of a year whatever its days."""
    for dc in DayCount:
        schedule = build_schedule(
            terms(
                principal_minor=100_000,
                term=3,
                amortization=INTEREST_ONLY,
                day_count=dc,
                interest_period=InterestPeriod.EQUAL_PERIODS,
                start=D(2026, 1, 31),
            )
        )
        assert [i.interest for i in schedule.instalments] == [1_000, 1_000, 1_000], dc


# --- every amortization x method x frequency x day count ------------------------------

STARTS = (D(2027, 11, 30), D(2026, 1, 15))


@pytest.mark.parametrize("start", STARTS, ids=str)
@pytest.mark.parametrize("dc", list(DayCount), ids=str)
@pytest.mark.parametrize("freq", FREQUENCIES)
@pytest.mark.parametrize("amortization", list(Amortization), ids=str)
@pytest.mark.parametrize("method", list(InterestMethod), ids=str)
def test_schedule_matches_the_oracles(
    method: InterestMethod, amortization: Amortization, freq: str, dc: DayCount, start: date
) -> None:
    term = 7
    rate = Decimal("0.1875")
    principal = 1_234_567
    t = terms(
        principal_minor=principal,
        annual_rate=rate,
        term=term,
        frequency=frequency(freq),
        start=start,
        day_count=dc,
        method=method,
        amortization=amortization,
    )
    schedule = build_schedule(t)
    dates = oracle_dates(freq, start, term)
    assert len(dates) == term + 1
    ppy = PERIODS_PER_YEAR[freq]
    assert t.frequency.periods_per_year == ppy
    if amortization is BULLET:
        dates = [start, dates[-1]]
    if method is DECLINING:
        if amortization is BULLET:
            years = oracle_year_fraction(start, dates[-1], dc)
            expected = [Row(dates[-1], principal, half_even(principal * Fraction(rate) * years), 0)]
        else:
            expected = reference_declining(principal, rate, dates, dc, amortization, ppy)
    else:
        years = Fraction(term) / ppy
        expected = reference_flat(principal, rate, dates, amortization, years)
    assert rows(schedule) == expected
    # Each period runs from the previous due date.
    assert [i.period_start for i in schedule.instalments] == dates[:-1]
    assert schedule.principal == principal
    assert all(i.fees == 0 and i.capitalised == 0 for i in schedule.instalments)


@pytest.mark.parametrize("freq", FREQUENCIES)
@pytest.mark.parametrize("periods", [1, 12, 60, 360])
@pytest.mark.parametrize("rate", ["0", "0.0001", "0.0525", "0.1299", "0.36", "2.5"])
def test_annuity_instalment_is_numpy_financials(freq: str, periods: int, rate: str) -> None:
    ppy = PERIODS_PER_YEAR[freq]
    for principal in (1, 99_999, 1_000_000, 123_456_789_012):
        periodic = Fraction(Decimal(rate)) / ppy
        got = annuity_instalment(principal, periodic, periods, 1, RoundingMode.HALF_EVEN)
        assert got == half_even(exact_instalment(principal, periodic, periods)), principal
        # numpy-financial, in floats, agrees to its precision (a float cannot
        # tell an exact half from a hair below it, hence one unit either way).
        assert (
            abs(got - npf_instalment(principal, Decimal(rate), ppy, periods))
            <= 1 + principal // 10**9
        )


def test_flat_interest_total_is_rate_times_principal_times_years() -> None:
    for freq in FREQUENCIES:
        ppy = PERIODS_PER_YEAR[freq]
        for term in (1, 13, 52, 104):
            t = terms(frequency=frequency(freq), term=term, method=FLAT)
            assert flat_interest_total(t) == half_even(1_000_000 * Fraction("0.12") * term / ppy)


def test_accrued_share_follows_the_day_count() -> None:
    t = terms(day_count=DayCount.ACT_365F)
    start, end = D(2026, 1, 15), D(2026, 2, 15)
    assert accrued_share(t, start, end, D(2026, 1, 14)) == 0
    assert accrued_share(t, start, end, D(2026, 1, 25)) == Fraction(10, 31)
    assert accrued_share(t, start, end, D(2026, 3, 1)) == 1


# --- pitfalls other loan systems had ------------------------------------------------


def test_365_day_year_across_29_february_2028() -> None:
    """ACT/365F divides by 365 even in a leap year: February 2028 has 29 days of
    interest and a year from 2028-01-01 is 366/365 of the rate."""
    monthly = build_schedule(
        terms(
            start=D(2028, 2, 15),
            day_count=DayCount.ACT_365F,
            amortization=INTEREST_ONLY,
            annual_rate=Decimal("0.365"),
            term=2,
        )
    )
    # 10,000.00 x 36.5 % x 29/365 = 290.00; then March 15 to April 15 is 31 days.
    assert [i.interest for i in monthly.instalments] == [29_000, 31_000]
    year = build_schedule(
        terms(
            start=D(2028, 1, 1),
            day_count=DayCount.ACT_365F,
            amortization=BULLET,
            annual_rate=Decimal("0.10"),
        )
    )
    assert year.maturity == D(2029, 1, 1)
    assert year.interest == 100_274  # 1,000.00 x 366/365 = 1,002.7397 -> 1,002.74
    act_act = build_schedule(
        terms(
            start=D(2028, 1, 1),
            day_count=DayCount.ACT_ACT,
            amortization=BULLET,
            annual_rate=Decimal("0.10"),
        )
    )
    assert act_act.interest == 100_000  # ACT/ACT: 366/366 of the leap year


def test_365_day_year_leap_day_is_one_days_interest() -> None:
    # A 1-day period on the 29th of February accrues one day, not zero or two.
    daily = build_schedule(
        terms(
            start=D(2028, 2, 28),
            frequency=frequency("every-1-days"),
            term=2,
            day_count=DayCount.ACT_365F,
            amortization=INTEREST_ONLY,
            annual_rate=Decimal("0.365"),
        )
    )
    assert [(i.due_date, i.interest) for i in daily.instalments] == [
        (D(2028, 2, 29), 1_000),
        (D(2028, 3, 1), 1_000),
    ]


@pytest.mark.parametrize(
    ("principal", "rate", "freq", "term", "expected"),
    [
        (100_000, "0.24", "monthly", 6, 12_000),  # 1,000 x 24 % x 1/2 = 120.00
        (50_000, "0.30", "weekly", 26, 7_500),  # 500 x 30 % x 26/52 = 75.00
        (1_000_000, "0.18", "bi-weekly", 52, 360_000),  # two years
        (300_000, "0.15", "quarterly", 8, 90_000),
        (777_700, "0.0365", "every-10-days", 73, 56_772),  # 73 x 10 days = 2 years
    ],
)
def test_flat_interest_totals_exactly_rate_principal_years(
    principal: int, rate: str, freq: str, term: int, expected: int
) -> None:
    for amortization in Amortization:
        schedule = build_schedule(
            terms(
                principal_minor=principal,
                annual_rate=Decimal(rate),
                frequency=frequency(freq),
                term=term,
                method=FLAT,
                amortization=amortization,
                day_count=DayCount.ACT_365F,
            )
        )
        assert schedule.interest == expected, amortization
        assert schedule.principal == principal
        if amortization is ANNUITY:
            # Level instalments; only the last may differ by rounding.
            totals = {i.total for i in schedule.instalments[:-1]}
            assert len(totals) <= 1
            assert abs(schedule.instalments[-1].total - next(iter(totals), 0)) <= term


def test_disbursed_on_the_31st_falls_due_at_each_months_end() -> None:
    schedule = build_schedule(terms(start=D(2027, 10, 31), term=18))
    assert [i.due_date for i in schedule.instalments] == [
        D(2027, 11, 30),
        D(2027, 12, 31),
        D(2028, 1, 31),
        D(2028, 2, 29),
        D(2028, 3, 31),
        D(2028, 4, 30),
        D(2028, 5, 31),
        D(2028, 6, 30),
        D(2028, 7, 31),
        D(2028, 8, 31),
        D(2028, 9, 30),
        D(2028, 10, 31),
        D(2028, 11, 30),
        D(2028, 12, 31),
        D(2029, 1, 31),
        D(2029, 2, 28),
        D(2029, 3, 31),
        D(2029, 4, 30),
    ]
    # A first repayment on the 31st anchors the month ends the same way.
    anchored = build_schedule(terms(start=D(2026, 1, 20), first_repayment=D(2026, 3, 31), term=4))
    assert [i.due_date for i in anchored.instalments] == [
        D(2026, 3, 31),
        D(2026, 4, 30),
        D(2026, 5, 31),
        D(2026, 6, 30),
    ]
    # Disbursed on the 30th (not a month end): the 30th, or February's last day.
    thirtieth = build_schedule(terms(start=D(2026, 1, 30), term=3))
    assert [i.due_date for i in thirtieth.instalments] == [
        D(2026, 2, 28),
        D(2026, 3, 30),
        D(2026, 4, 30),
    ]


@pytest.mark.parametrize(
    ("convention", "expected_due"),
    [
        (BusinessDayConvention.FOLLOWING, D(2026, 12, 28)),  # Christmas is a Friday
        (BusinessDayConvention.MODIFIED_FOLLOWING, D(2026, 12, 28)),
        (BusinessDayConvention.PRECEDING, D(2026, 12, 24)),
        (BusinessDayConvention.UNADJUSTED, D(2026, 12, 25)),
    ],
)
def test_due_date_on_a_holiday(convention: BusinessDayConvention, expected_due: date) -> None:
    us = calendar("US")
    assert us.is_holiday(D(2026, 12, 25))
    schedule = build_schedule(
        terms(
            start=D(2026, 11, 25),
            term=3,
            calendar=us,
            convention=convention,
            day_count=DayCount.ACT_365F,
            amortization=INTEREST_ONLY,
            annual_rate=Decimal("0.365"),
        )
    )
    first, second, third = schedule.instalments
    assert first.due_date == expected_due
    # Interest runs to the adjusted date and the next period starts there;
    # later dates keep stepping from the anchor (2027-01-25, 2027-02-25).
    assert first.interest == (expected_due - D(2026, 11, 25)).days * 1_000
    assert (second.period_start, second.due_date) == (expected_due, D(2027, 1, 25))
    assert second.interest == (D(2027, 1, 25) - expected_due).days * 1_000
    assert third.due_date == D(2027, 2, 25)


def test_modified_following_stays_in_the_month() -> None:
    # 2026-05-31 is a Sunday: following would be June 1, modified following is Friday May 29.
    schedule = build_schedule(
        terms(
            start=D(2026, 3, 31),
            term=3,
            calendar=calendar("weekends"),
            convention=BusinessDayConvention.MODIFIED_FOLLOWING,
        )
    )
    assert [i.due_date for i in schedule.instalments] == [
        D(2026, 4, 30),
        D(2026, 5, 29),
        D(2026, 6, 30),
    ]


def test_holidays_of_the_lender_are_honoured() -> None:
    closed = calendar("none", extra_holidays=[D(2026, 2, 15)])
    schedule = build_schedule(
        terms(calendar=closed, convention=BusinessDayConvention.FOLLOWING, term=2)
    )
    assert schedule.instalments[0].due_date == D(2026, 2, 16)


def test_broken_first_period_with_a_first_repayment_date() -> None:
    # Disbursed 2026-01-10, first repayment 2026-03-01: a 50-day first period.
    actual = build_schedule(
        terms(
            start=D(2026, 1, 10),
            first_repayment=D(2026, 3, 1),
            term=3,
            day_count=DayCount.ACT_365F,
            amortization=INTEREST_ONLY,
            annual_rate=Decimal("0.365"),
        )
    )
    assert [(i.period_start, i.due_date, i.interest) for i in actual.instalments] == [
        (D(2026, 1, 10), D(2026, 3, 1), 50_000),  # 10,000 x 36.5 % x 50/365
        (D(2026, 3, 1), D(2026, 4, 1), 31_000),
        (D(2026, 4, 1), D(2026, 5, 1), 30_000),
    ]
    # Per equal periods: the broken period is 50 days of a 28-day regular
    # period (2026-02-01 to 03-01), so 50/28 of a month's 1 %.
    equal = build_schedule(
        terms(
            start=D(2026, 1, 10),
            first_repayment=D(2026, 3, 1),
            term=3,
            amortization=INTEREST_ONLY,
            interest_period=InterestPeriod.EQUAL_PERIODS,
        )
    )
    assert [i.interest for i in equal.instalments] == [
        half_even(Fraction(10_000 * 50, 28)),
        10_000,
        10_000,
    ]
    # A short first period (2026-01-20 to 02-01: 12 of January's 31 days).
    short = build_schedule(
        terms(
            start=D(2026, 1, 20),
            first_repayment=D(2026, 2, 1),
            term=2,
            amortization=INTEREST_ONLY,
            interest_period=InterestPeriod.EQUAL_PERIODS,
        )
    )
    assert [i.interest for i in short.instalments] == [half_even(Fraction(10_000 * 12, 31)), 10_000]
    # An annuity with a broken period still repays exactly.
    annuity = build_schedule(
        terms(start=D(2026, 1, 10), first_repayment=D(2026, 3, 1), day_count=DayCount.ACT_365F)
    )
    assert annuity.principal == 1_000_000
    assert annuity.instalments[0].interest == half_even(
        1_000_000 * Fraction("0.12") * Fraction(50, 365)
    )


def test_principal_grace() -> None:
    schedule = build_schedule(terms(grace_principal=3))
    graced, amortizing = schedule.instalments[:3], schedule.instalments[3:]
    assert [(i.principal, i.interest) for i in graced] == [(0, 10_000)] * 3
    pmt = npf_instalment(1_000_000, Decimal("0.12"), 12, 9)
    assert {i.total for i in amortizing[:-1]} == {pmt}
    assert schedule.principal == 1_000_000
    equal = build_schedule(terms(grace_principal=2, term=4, amortization=EQUAL))
    assert [i.principal for i in equal.instalments] == [0, 0, 500_000, 500_000]
    flat = build_schedule(terms(grace_principal=2, term=4, method=FLAT))
    assert [i.principal for i in flat.instalments] == [0, 0, 500_000, 500_000]
    assert [i.interest for i in flat.instalments] == [10_000] * 4


def test_interest_free_grace() -> None:
    schedule = build_schedule(terms(grace_interest=2, amortization=EQUAL, term=4))
    assert table(schedule) == [
        ("2026-02-15", 250_000, 0, 750_000),
        ("2026-03-15", 250_000, 0, 500_000),
        ("2026-04-15", 250_000, 5_000, 250_000),
        ("2026-05-15", 250_000, 2_500, 0),
    ]
    flat = build_schedule(terms(grace_interest=2, term=4, method=FLAT, amortization=EQUAL))
    # Flat interest for the 2 charged months only: 10,000 x 12 % x 2/12 = 200.00.
    assert [i.interest for i in flat.instalments] == [0, 0, 10_000, 10_000]


@pytest.mark.parametrize("dc", [DayCount.THIRTY_360, DayCount.ACT_365F])
@pytest.mark.parametrize("grace", [1, 6, 12])
def test_interest_free_grace_on_a_bullet(dc: DayCount, grace: int) -> None:
    """A bullet loan's interest-free months are free, and only those: the rest
    of the term bears interest (declining like flat)."""
    start = D(2026, 1, 15)
    declining = build_schedule(
        terms(amortization=BULLET, grace_interest=grace, start=start, day_count=dc)
    )
    grace_end = start.replace(year=2026 + (grace // 12), month=1 + grace % 12)
    charged = oracle_year_fraction(grace_end, D(2027, 1, 15), dc)
    assert declining.interest == half_even(1_000_000 * Fraction("0.12") * charged)
    equal_periods = build_schedule(
        terms(
            amortization=BULLET,
            grace_interest=grace,
            start=start,
            interest_period=InterestPeriod.EQUAL_PERIODS,
        )
    )
    assert equal_periods.interest == 10_000 * (12 - grace)
    flat = build_schedule(
        terms(amortization=BULLET, grace_interest=grace, start=start, method=FLAT)
    )
    assert flat.interest == half_even(1_000_000 * Fraction("0.12") * Fraction(12 - grace, 12))


def test_payment_holiday_capitalises_interest() -> None:
    schedule = build_schedule(terms(payment_holiday=2))
    first, second = schedule.instalments[:2]
    # Nothing due; the month's 1 % joins the principal and bears interest after.
    assert (first.total, first.capitalised, first.outstanding) == (0, 10_000, 1_010_000)
    assert (second.total, second.capitalised, second.outstanding) == (0, 10_100, 1_020_100)
    rest = schedule.instalments[2:]
    assert rest[0].interest == 10_201
    pmt = npf_instalment(1_020_100, Decimal("0.12"), 12, 10)
    assert {i.total for i in rest[:-1]} == {pmt}
    assert schedule.capitalised == 20_100
    assert schedule.principal == 1_000_000 + 20_100
    assert schedule.instalments[-1].outstanding == 0


def test_instalments_rounded_to_whole_units_last_absorbs_the_rest() -> None:
    schedule = build_schedule(terms(instalment_multiple_minor=100))
    # pmt 888.49 rounds (half even, to whole dollars) to 888.00.
    assert {i.total for i in schedule.instalments[:-1]} == {88_800}
    last = schedule.instalments[-1]
    assert last.total != 88_800 and last.total % 100 != 0
    assert schedule.principal == 1_000_000
    # Rounding up instead: 889.00, and the last is the smaller one.
    up = build_schedule(terms(instalment_multiple_minor=100, rounding=RoundingMode.UP))
    assert {i.total for i in up.instalments[:-1]} == {88_900}
    assert up.instalments[-1].total < 88_900
    assert up.principal == 1_000_000
    # Equal principal: the principal part is whole units.
    equal = build_schedule(
        terms(principal_minor=1_000_050, amortization=EQUAL, instalment_multiple_minor=100, term=3)
    )
    assert [i.principal for i in equal.instalments] == [333_400, 333_400, 333_250]
    flat = build_schedule(
        terms(method=FLAT, instalment_multiple_minor=100, principal_minor=1_000_001)
    )
    assert {i.total for i in flat.instalments[:-1]} == {93_300}  # (10,000.01 + 1,200.00) / 12
    assert flat.principal == 1_000_001


def test_periodic_fees_are_on_each_instalment() -> None:
    schedule = build_schedule(terms(periodic_fee_minor=500, term=3))
    assert [i.fees for i in schedule.instalments] == [500, 500, 500]
    assert schedule.total == schedule.principal + schedule.interest + 1_500


def test_zero_rate() -> None:
    for method in InterestMethod:
        schedule = build_schedule(terms(annual_rate=Decimal(0), method=method, term=3))
        assert [(i.principal, i.interest) for i in schedule.instalments] == [
            (333_333, 0),
            (333_333, 0),
            (333_334, 0),
        ]


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"grace_principal": 12}, "principal grace"),
        ({"grace_interest": 13}, "interest-free grace"),
        ({"payment_holiday": 12}, "payment holiday"),
        ({"amortization": BULLET, "grace_principal": 1}, "bullet"),
        ({"method": FLAT, "payment_holiday": 1}, "flat"),
        ({"principal_minor": 0}, "positive"),
        ({"annual_rate": Decimal("-0.01")}, "outside"),
        ({"term": 0}, "term"),
        ({"first_repayment": D(2026, 1, 15)}, "after the start"),
    ],
)
def test_contradictory_terms_are_refused(values: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidTerms) as refused:
        terms(**values)
    assert fragment in refused.value.message
    assert refused.value.code == "TERMS_INVALID"


def test_folded_due_dates_are_refused() -> None:
    # Daily instalments on a weekends calendar, preceding: Saturday and Sunday fold onto Friday.
    t = terms(
        frequency=frequency("every-1-days"),
        start=D(2026, 1, 15),
        term=5,
        calendar=calendar("weekends"),
        convention=BusinessDayConvention.PRECEDING,
    )
    with pytest.raises(InvalidTerms, match="fold"):
        build_schedule(t)


def test_frequency_names() -> None:
    assert frequency("Fortnightly") == frequency("bi-weekly")
    assert frequency("every-30-days") == Frequency("every-30-days", days=30)
    for bad in ("daily", "every-0-days", "every-400-days", "monthly-ish"):
        with pytest.raises(InvalidTerms):
            frequency(bad)


@pytest.mark.parametrize("freq", ["weekly", "monthly", "semi-monthly", "every-30-days"])
def test_a_schedule_past_the_year_9999_is_refused(freq: str) -> None:
    t = terms(start=D(9999, 6, 1), frequency=frequency(freq), term=52)
    with pytest.raises(InvalidInput) as refused:
        build_schedule(t)
    assert "9999" in refused.value.message
