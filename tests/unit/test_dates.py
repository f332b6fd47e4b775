"""Tests of lendcore.dates: day counts (QuantLib as oracle), calendars, date helpers."""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.dates import (
    BusinessDayConvention,
    Calendar,
    DayCount,
    add_months,
    adjust,
    business_day_convention,
    calendar,
    day_count,
    day_count_days,
    parse_date,
    year_fraction,
)
from lendcore.errors import (
    InvalidDate,
    InvalidInput,
    UnknownBusinessDayConvention,
    UnknownCalendar,
    UnknownDayCount,
)

D = date
ACT_360 = DayCount.ACT_360
ACT_365F = DayCount.ACT_365F
ACT_ACT = DayCount.ACT_ACT
THIRTY_360 = DayCount.THIRTY_360
THIRTY_E_360 = DayCount.THIRTY_E_360

# QuantLib's dates run from 1901 to 2199.
ql_dates = st.dates(min_value=D(1901, 1, 1), max_value=D(2199, 12, 31))


def ql_date(d: date) -> ql.Date:
    return ql.Date(d.day, d.month, d.year)


# --- day-count names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("act/360", ACT_360),
        ("ACT/360", ACT_360),
        ("Actual/360", ACT_360),
        ("ACT/365F", ACT_365F),
        ("Actual/365 (Fixed)", ACT_365F),
        ("act/365 fixed", ACT_365F),
        ("ACT/ACT", ACT_ACT),
        ("ACT/ACT ISDA", ACT_ACT),
        ("Actual/Actual (ISDA)", ACT_ACT),
        ("30/360", THIRTY_360),
        ("Bond Basis", THIRTY_360),
        ("360/360", THIRTY_360),
        ("30E/360", THIRTY_E_360),
        ("30/360E", THIRTY_E_360),
        ("Eurobond", THIRTY_E_360),
        ("  eurobond   basis ", THIRTY_E_360),
    ],
)
def test_day_count_names(name: str, expected: DayCount) -> None:
    assert day_count(name) is expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "act/365",  # ambiguous: Actual/Actual in ISDA 1991/2000, Actual/365F elsewhere
        "act/act icma",
        "30/360 us",  # carries the SIA end-of-February rules we do not apply
        "30e/360 isda",
        "30e+/360",
        "business/252",
    ],
)
def test_unknown_day_counts(name: str) -> None:
    with pytest.raises(UnknownDayCount) as info:
        day_count(name)
    for valid in ("act/360", "act/365f", "act/act", "30/360", "30e/360"):
        assert valid in str(info.value)


# --- day-count worked examples -----------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # ISDA, "EMU and market conventions: recent developments", Actual/Actual ISDA.
        (D(2003, 11, 1), D(2004, 5, 1), Fraction(61, 365) + Fraction(121, 366)),
        (D(1999, 2, 1), D(1999, 7, 1), Fraction(150, 365)),
        (D(2002, 8, 15), D(2003, 7, 15), Fraction(334, 365)),
        (D(2003, 7, 15), D(2004, 1, 15), Fraction(170, 365) + Fraction(14, 366)),
        (D(1999, 7, 30), D(2000, 1, 30), Fraction(155, 365) + Fraction(29, 366)),
        (D(2000, 1, 30), D(2000, 6, 30), Fraction(152, 366)),
        # A whole leap year, a whole common year, and several years.
        (D(2024, 1, 1), D(2025, 1, 1), Fraction(1)),
        (D(2023, 1, 1), D(2024, 1, 1), Fraction(1)),
        (D(2023, 7, 1), D(2026, 7, 1), Fraction(184, 365) + 2 + Fraction(181, 365)),
        (D(2024, 2, 28), D(2024, 3, 1), Fraction(2, 366)),
        (D(2023, 12, 31), D(2024, 1, 1), Fraction(1, 365)),
    ],
)
def test_act_act_isda_examples(start: date, end: date, expected: Fraction) -> None:
    assert year_fraction(start, end, ACT_ACT) == expected


def test_actual_fixed_denominators() -> None:
    # 2024 is a leap year: 366 actual days.
    assert year_fraction(D(2024, 1, 1), D(2025, 1, 1), ACT_360) == Fraction(366, 360)
    assert year_fraction(D(2024, 1, 1), D(2025, 1, 1), ACT_365F) == Fraction(366, 365)
    assert year_fraction(D(2023, 1, 1), D(2024, 1, 1), ACT_365F) == Fraction(1)
    assert year_fraction(D(2026, 1, 31), D(2026, 3, 1), ACT_360) == Fraction(29, 360)
    assert day_count_days(D(2024, 2, 1), D(2024, 3, 1), ACT_365F) == 29


@pytest.mark.parametrize(
    ("start", "end", "bond_basis", "eurobond"),
    [
        (D(2007, 1, 15), D(2007, 1, 30), 15, 15),
        (D(2007, 1, 15), D(2007, 2, 15), 30, 30),
        (D(2007, 1, 15), D(2007, 7, 15), 180, 180),
        (D(2007, 9, 30), D(2008, 3, 31), 180, 180),
        (D(2007, 9, 30), D(2007, 10, 31), 30, 30),
        (D(2007, 9, 30), D(2008, 9, 30), 360, 360),
        (D(2007, 1, 15), D(2007, 1, 31), 16, 15),  # D2=31 with D1<30 stays 31 in 30/360
        (D(2007, 1, 31), D(2007, 2, 28), 28, 28),
        (D(2007, 1, 31), D(2007, 3, 31), 60, 60),
        (D(2007, 2, 28), D(2007, 3, 31), 33, 32),  # no end-of-February rule
        (D(2006, 8, 31), D(2007, 2, 28), 178, 178),
        (D(2007, 2, 28), D(2007, 8, 31), 183, 182),
        (D(2007, 2, 28), D(2008, 2, 29), 361, 361),
        (D(2008, 2, 29), D(2009, 2, 28), 359, 359),
        (D(2008, 2, 29), D(2008, 3, 31), 32, 31),
        (D(2007, 2, 26), D(2008, 2, 29), 363, 363),
        (D(2008, 1, 30), D(2008, 3, 31), 60, 60),
        (D(2008, 1, 29), D(2008, 3, 31), 62, 61),
        (D(2008, 3, 31), D(2008, 3, 31), 0, 0),
    ],
)
def test_thirty_360_examples(start: date, end: date, bond_basis: int, eurobond: int) -> None:
    assert day_count_days(start, end, THIRTY_360) == bond_basis
    assert day_count_days(start, end, THIRTY_E_360) == eurobond
    assert year_fraction(start, end, THIRTY_360) == Fraction(bond_basis, 360)
    assert year_fraction(start, end, THIRTY_E_360) == Fraction(eurobond, 360)


def test_quantlib_usa_applies_february_rule_so_we_compare_with_bond_basis() -> None:
    # Documents why the oracle below is Thirty360.BondBasis: QuantLib's USA
    # variant applies the SIA end-of-February rule, which we do not.
    usa = ql.Thirty360(ql.Thirty360.USA)
    bond = ql.Thirty360(ql.Thirty360.BondBasis)
    start, end = ql_date(D(2007, 2, 28)), ql_date(D(2007, 3, 31))
    assert usa.dayCount(start, end) == 30
    assert bond.dayCount(start, end) == 33
    assert day_count_days(D(2007, 2, 28), D(2007, 3, 31), THIRTY_360) == 33


def test_year_fraction_accepts_names_and_rejects_datetimes() -> None:
    assert year_fraction(D(2026, 1, 1), D(2026, 7, 1), "ACT/360") == Fraction(181, 360)  # type: ignore[arg-type]
    with pytest.raises(UnknownDayCount):
        year_fraction(D(2026, 1, 1), D(2026, 7, 1), "act/365")  # type: ignore[arg-type]
    with pytest.raises(InvalidDate):
        year_fraction(datetime(2026, 1, 1, 12), D(2026, 7, 1), ACT_360)


QL_DAY_COUNTS = {
    ACT_360: ql.Actual360(),
    ACT_365F: ql.Actual365Fixed(),
    ACT_ACT: ql.ActualActual(ql.ActualActual.ISDA),
    THIRTY_360: ql.Thirty360(ql.Thirty360.BondBasis),
    THIRTY_E_360: ql.Thirty360(ql.Thirty360.European),
}


@settings(max_examples=300)
@given(ql_dates, ql_dates, st.sampled_from(list(DayCount)))
def test_day_counts_agree_with_quantlib(start: date, end: date, convention: DayCount) -> None:
    oracle = QL_DAY_COUNTS[convention]
    if start > end:
        start, end = end, start
    ours = year_fraction(start, end, convention)
    theirs = oracle.yearFraction(ql_date(start), ql_date(end))
    # Floats only here, in the oracle comparison. QuantLib sums floats, so
    # allow 1e-12 relative to the size of the fraction (up to ~300 years).
    assert abs(float(ours) - theirs) <= 1e-12 * max(1.0, abs(theirs))
    assert day_count_days(start, end, convention) == oracle.dayCount(ql_date(start), ql_date(end))


@given(ql_dates, ql_dates, st.sampled_from(list(DayCount)))
def test_reversed_dates_give_the_negative(start: date, end: date, convention: DayCount) -> None:
    assert year_fraction(end, start, convention) == -year_fraction(start, end, convention)
    assert day_count_days(end, start, convention) == -day_count_days(start, end, convention)
    assert isinstance(year_fraction(start, end, convention), Fraction)


@given(ql_dates, ql_dates, ql_dates)
def test_act_act_is_additive(a: date, b: date, c: date) -> None:
    a, b, c = sorted((a, b, c))
    assert year_fraction(a, b, ACT_ACT) + year_fraction(b, c, ACT_ACT) == year_fraction(
        a, c, ACT_ACT
    )


# --- calendars -------------------------------------------------------------------


def test_us_observed_independence_day() -> None:
    us = calendar("US")
    assert not us.is_business_day(D(2026, 7, 3))  # Friday, observed Independence Day
    assert us.is_holiday(D(2026, 7, 3))
    assert not us.is_business_day(D(2026, 7, 4))  # Saturday
    assert us.is_business_day(D(2026, 7, 2))
    assert us.is_business_day(D(2026, 7, 6))
    assert us.holidays_between(D(2026, 7, 1), D(2026, 7, 31)) == [D(2026, 7, 3), D(2026, 7, 4)]
    assert us.next_business_day(D(2026, 7, 2)) == D(2026, 7, 6)
    assert us.previous_business_day(D(2026, 7, 6)) == D(2026, 7, 2)


def test_calendar_specs_and_names() -> None:
    assert calendar("us").name == "US"
    assert calendar("us-ny").name == "US-NY"
    assert calendar("UK").country == "GB"
    assert calendar("GB-ENG").name == "GB-ENG"
    for code in ("DE", "KE", "NG", "IN"):
        assert calendar(code).country == code
    # Lincoln's Birthday is a New York holiday, not a federal one.
    assert not calendar("US-NY").is_business_day(D(2026, 2, 12))
    assert calendar("US").is_business_day(D(2026, 2, 12))
    # Mashujaa Day in Kenya.
    assert not calendar("KE").is_business_day(D(2026, 10, 20))


def test_none_and_weekends_calendars() -> None:
    none = calendar("none")
    assert calendar("") == none
    assert none.is_business_day(D(2026, 7, 4))  # a Saturday
    assert none.is_business_day(D(2026, 12, 25))
    weekends = calendar("weekends")
    assert not weekends.is_business_day(D(2026, 7, 4))
    assert weekends.is_business_day(D(2026, 12, 25))
    # A Friday/Saturday weekend.
    gulf = calendar("weekends", weekend=frozenset({4, 5}))
    assert not gulf.is_business_day(D(2026, 7, 3))
    assert gulf.is_business_day(D(2026, 7, 5))


@pytest.mark.parametrize("spec", ["ZZ", "US-XX", "US-", "-NY", "KE-NBO", "United States"])
def test_unknown_calendars(spec: str) -> None:
    with pytest.raises(UnknownCalendar) as info:
        calendar(spec)
    assert info.value.code == "CALENDAR_UNKNOWN"


def test_bad_weekends_are_refused() -> None:
    with pytest.raises(InvalidInput):
        calendar("weekends", weekend=frozenset({7}))
    with pytest.raises(InvalidInput):
        calendar("weekends", weekend=frozenset(range(7)))


def test_custom_holidays() -> None:
    closure = D(2026, 3, 2)  # a Monday
    custom = Calendar.custom([closure])
    assert custom.name == "custom"
    assert not custom.is_business_day(closure)
    assert not custom.is_business_day(D(2026, 3, 1))  # Sunday
    assert custom.is_business_day(D(2026, 3, 3))
    only_dates = Calendar.custom([closure], weekend=())
    assert only_dates.is_business_day(D(2026, 3, 1))
    assert not only_dates.is_business_day(closure)

    us = calendar("US")
    lender = us.with_holidays([D(2026, 7, 2)])
    assert not lender.is_business_day(D(2026, 7, 2))
    assert us.is_business_day(D(2026, 7, 2))  # the original is unchanged
    assert lender.holidays_between(D(2026, 7, 1), D(2026, 7, 5)) == [
        D(2026, 7, 2),
        D(2026, 7, 3),
        D(2026, 7, 4),
    ]
    assert calendar("US", extra_holidays=[D(2026, 7, 2)]) == lender
    with pytest.raises(InvalidDate):
        Calendar.custom([datetime(2026, 3, 2)])


def test_calendars_are_immutable_and_hashable() -> None:
    us = calendar("US")
    assert us == calendar("us")
    assert hash(us) == hash(calendar("US"))
    assert len({us, calendar("US"), calendar("GB")}) == 2
    with pytest.raises(AttributeError):
        us.name = "GB"  # type: ignore[misc]


def test_add_business_days() -> None:
    us = calendar("US")
    assert us.add_business_days(D(2026, 7, 2), 1) == D(2026, 7, 6)
    assert us.add_business_days(D(2026, 7, 6), -1) == D(2026, 7, 2)
    assert us.add_business_days(D(2026, 7, 1), 5) == D(2026, 7, 9)
    assert us.add_business_days(D(2026, 7, 3), 0) == D(2026, 7, 6)
    assert us.add_business_days(D(2026, 7, 2), 0) == D(2026, 7, 2)
    assert us.add_business_days(D(2026, 7, 4), 1) == D(2026, 7, 6)
    with pytest.raises(InvalidInput):
        us.add_business_days(D(2026, 7, 2), 10**6)


def test_business_day_conventions_at_month_end() -> None:
    us = calendar("US")
    sunday = D(2026, 5, 31)
    assert adjust(sunday, BusinessDayConvention.FOLLOWING, us) == D(2026, 6, 1)
    assert adjust(sunday, BusinessDayConvention.MODIFIED_FOLLOWING, us) == D(2026, 5, 29)
    assert adjust(sunday, BusinessDayConvention.PRECEDING, us) == D(2026, 5, 29)
    assert adjust(sunday, BusinessDayConvention.MODIFIED_PRECEDING, us) == D(2026, 5, 29)
    assert adjust(sunday, BusinessDayConvention.UNADJUSTED, us) == sunday
    # A Saturday on the 1st: preceding leaves the month, modified preceding does not.
    saturday = D(2026, 8, 1)
    assert adjust(saturday, BusinessDayConvention.PRECEDING, us) == D(2026, 7, 31)
    assert adjust(saturday, BusinessDayConvention.MODIFIED_PRECEDING, us) == D(2026, 8, 3)
    # England: the Late Summer Bank Holiday is Monday 2026-08-31, the month's
    # last weekday, so the weekend before it rolls back into August.
    england = calendar("GB-ENG")
    assert adjust(D(2026, 8, 31), BusinessDayConvention.FOLLOWING, england) == D(2026, 9, 1)
    modified = BusinessDayConvention.MODIFIED_FOLLOWING
    assert adjust(D(2026, 8, 31), modified, england) == D(2026, 8, 28)
    assert adjust(D(2026, 8, 29), modified, england) == D(2026, 8, 28)
    # A business day is never moved.
    assert adjust(D(2026, 8, 28), BusinessDayConvention.PRECEDING, england) == D(2026, 8, 28)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("following", BusinessDayConvention.FOLLOWING),
        ("Modified Following", BusinessDayConvention.MODIFIED_FOLLOWING),
        ("MODIFIED_FOLLOWING", BusinessDayConvention.MODIFIED_FOLLOWING),
        ("modified-preceding", BusinessDayConvention.MODIFIED_PRECEDING),
        ("Preceding", BusinessDayConvention.PRECEDING),
        ("unadjusted", BusinessDayConvention.UNADJUSTED),
    ],
)
def test_business_day_convention_names(name: str, expected: BusinessDayConvention) -> None:
    assert business_day_convention(name) is expected


@pytest.mark.parametrize("name", ["", "nearest", "modified", "follow"])
def test_unknown_business_day_conventions(name: str) -> None:
    with pytest.raises(UnknownBusinessDayConvention, match="modified-following"):
        business_day_convention(name)


calendar_dates = st.dates(min_value=D(2020, 1, 1), max_value=D(2030, 12, 31))
calendars = st.sampled_from(
    [calendar("US"), calendar("GB-ENG"), calendar("KE"), calendar("weekends"), calendar("none")]
)


@given(calendar_dates, calendars, st.sampled_from(list(BusinessDayConvention)))
def test_adjust_properties(d: date, cal: Calendar, convention: BusinessDayConvention) -> None:
    result = adjust(d, convention, cal)
    if convention is BusinessDayConvention.UNADJUSTED:
        assert result == d
        return
    assert cal.is_business_day(result)
    if cal.is_business_day(d):
        assert result == d
    if convention is BusinessDayConvention.FOLLOWING:
        assert result >= d
    if convention is BusinessDayConvention.PRECEDING:
        assert result <= d
    if convention in (
        BusinessDayConvention.MODIFIED_FOLLOWING,
        BusinessDayConvention.MODIFIED_PRECEDING,
    ):
        assert result.month == d.month
    # Nothing between d and the result is a business day.
    low, high = min(d, result), max(d, result)
    between = [low + timedelta(days=i) for i in range(1, (high - low).days)]
    if convention in (BusinessDayConvention.FOLLOWING, BusinessDayConvention.PRECEDING):
        assert not any(cal.is_business_day(day) for day in between)


@given(calendar_dates, calendars, st.integers(min_value=-40, max_value=40))
def test_add_business_days_round_trip(d: date, cal: Calendar, n: int) -> None:
    start = adjust(d, BusinessDayConvention.FOLLOWING, cal)
    moved = cal.add_business_days(start, n)
    assert cal.is_business_day(moved)
    assert cal.add_business_days(moved, -n) == start
    low, high = min(start, moved), max(start, moved)
    days = [low + timedelta(days=i) for i in range(1, (high - low).days + 1)]
    assert sum(1 for day in days if cal.is_business_day(day)) == abs(n)


# --- add_months and parse_date ----------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "end_of_month", "expected"),
    [
        (D(2026, 1, 31), 1, False, D(2026, 2, 28)),
        (D(2024, 1, 31), 1, False, D(2024, 2, 29)),
        (D(2026, 3, 31), -1, False, D(2026, 2, 28)),
        (D(2026, 1, 31), 3, False, D(2026, 4, 30)),
        (D(2026, 2, 28), 1, False, D(2026, 3, 28)),
        (D(2026, 2, 28), 1, True, D(2026, 3, 31)),
        (D(2024, 2, 29), 12, False, D(2025, 2, 28)),
        (D(2024, 2, 29), 48, True, D(2028, 2, 29)),
        (D(2026, 1, 30), 1, True, D(2026, 2, 28)),  # the 30th is not month end in January
        (D(2026, 4, 30), 1, True, D(2026, 5, 31)),
        (D(2026, 4, 30), 1, False, D(2026, 5, 30)),
        (D(2026, 11, 15), 2, False, D(2027, 1, 15)),
        (D(2026, 1, 15), -13, False, D(2024, 12, 15)),
        (D(2026, 7, 3), 0, True, D(2026, 7, 3)),
    ],
)
def test_add_months(start: date, months: int, end_of_month: bool, expected: date) -> None:
    assert add_months(start, months, end_of_month=end_of_month) == expected


def test_add_months_refuses_out_of_range() -> None:
    with pytest.raises(InvalidDate):
        add_months(D(9999, 12, 1), 1)
    with pytest.raises(InvalidDate):
        add_months(D(1, 1, 1), -1)


@given(ql_dates, st.integers(min_value=-600, max_value=600))
def test_add_months_agrees_with_quantlib(d: date, n: int) -> None:
    result = add_months(d, n)
    if D(1901, 1, 1) <= result <= D(2199, 12, 31):
        # Without end-of-month, QuantLib's month arithmetic clamps the same way.
        assert ql_date(result) == ql_date(d) + ql.Period(n, ql.Months)
    last = stdlib_calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(d.day, last)
    eom = add_months(d, n, end_of_month=True)
    if d.day == stdlib_calendar.monthrange(d.year, d.month)[1]:
        assert eom.day == last
    else:
        assert eom == result


def test_parse_date() -> None:
    assert parse_date("2026-07-03") == D(2026, 7, 3)
    assert parse_date("2024-02-29") == D(2024, 2, 29)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-7-3",
        "20260703",
        "2026-02-30",
        "2025-02-29",
        "2026-13-01",
        "0000-01-01",
        "2026-07-03T00:00",
        " 2026-07-03",
        "2026-07-03 ",
        "03/07/2026",
        "2026-W27-5",
        "\u0662\u0660\u0662\u0666-07-03",
    ],
)
def test_parse_date_refusals(text: str) -> None:
    with pytest.raises(InvalidDate) as info:
        parse_date(text)
    assert info.value.code == "DATE_INVALID"
    assert "YYYY-MM-DD" in str(info.value) or "not a valid date" in str(info.value)
