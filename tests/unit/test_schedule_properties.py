"""Properties of the schedule engine for random terms (hypothesis).

For any terms the engine accepts: the principal repaid is exactly the financed
amount plus the interest capitalised, no component is negative, the
outstanding reaches zero after the last instalment and only grows by
capitalisation, due dates strictly increase, and every annuity instalment but
the last is the annuity formula's payment (checked against numpy-financial).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy_financial as npf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lendcore.dates import BusinessDayConvention, DayCount, calendar
from lendcore.money import RoundingMode
from lendcore.schedules.engine import Schedule, build_schedule
from lendcore.schedules.terms import (
    Amortization,
    InterestMethod,
    InterestPeriod,
    InvalidTerms,
    ScheduleTerms,
    frequency,
)

FREQUENCY_NAMES = (
    "weekly",
    "bi-weekly",
    "semi-monthly",
    "monthly",
    "quarterly",
    "semi-annual",
    "annual",
    "every-1-days",
    "every-10-days",
    "every-30-days",
)
CALENDARS = (calendar("none"), calendar("weekends"), calendar("US"))


@st.composite
def schedule_terms(draw: st.DrawFn) -> ScheduleTerms:
    method = draw(st.sampled_from(list(InterestMethod)))
    amortization = draw(st.sampled_from(list(Amortization)))
    term = draw(st.integers(1, 120))
    start = draw(st.dates(date(2000, 1, 1), date(2080, 12, 31)))
    bullet = amortization is Amortization.BULLET
    values: dict[str, Any] = {
        "principal_minor": draw(st.integers(1, 10**11)),
        "currency": "USD",
        "exponent": 2,
        "annual_rate": Decimal(draw(st.integers(0, 6_000))) / 10_000,
        "term": term,
        "frequency": frequency(draw(st.sampled_from(FREQUENCY_NAMES))),
        "start": start,
        "day_count": draw(st.sampled_from(list(DayCount))),
        "method": method,
        "amortization": amortization,
        "interest_period": draw(st.sampled_from(list(InterestPeriod))),
        "grace_principal": 0 if bullet else draw(st.integers(0, term - 1)),
        "grace_interest": draw(st.integers(0, term)),
        "payment_holiday": (
            0 if bullet or method is InterestMethod.FLAT else draw(st.integers(0, term - 1))
        ),
        "calendar": draw(st.sampled_from(CALENDARS)),
        "convention": draw(st.sampled_from(list(BusinessDayConvention))),
        "rounding": draw(st.sampled_from(list(RoundingMode))),
        "instalment_multiple_minor": draw(st.sampled_from([1, 1, 100, 500])),
        "periodic_fee_minor": draw(st.sampled_from([0, 0, 250])),
    }
    if draw(st.booleans()):
        values["first_repayment"] = start + timedelta(days=draw(st.integers(1, 75)))
    try:
        return ScheduleTerms(**values)
    except InvalidTerms:
        assume(False)
        raise


def built(t: ScheduleTerms) -> Schedule:
    try:
        return build_schedule(t)
    except InvalidTerms as refused:
        # Only a calendar that folds two due dates together may refuse valid terms.
        assert "fold" in refused.message
        assume(False)
        raise


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


@PROPERTY_SETTINGS
@given(schedule_terms())
def test_schedule_invariants(t: ScheduleTerms) -> None:
    schedule = built(t)
    rows = schedule.instalments
    assert len(rows) == (1 if t.amortization is Amortization.BULLET else t.term)
    assert [i.number for i in rows] == list(range(1, len(rows) + 1))
    # Principal sums exactly to the financed amount plus capitalised interest.
    assert schedule.principal == t.principal_minor + schedule.capitalised
    assert schedule.total == schedule.principal + schedule.interest + schedule.fees
    # No component is negative.
    for i in rows:
        assert min(i.principal, i.interest, i.fees, i.capitalised, i.outstanding) >= 0, i
    # The outstanding reaches zero, and moves only by principal repaid and
    # interest capitalised, so never grows except by capitalisation.
    assert rows[-1].outstanding == 0
    before = t.principal_minor
    for i in rows:
        assert i.outstanding == before + i.capitalised - i.principal
        if i.capitalised == 0:
            assert i.outstanding <= before
        before = i.outstanding
    # Due dates strictly increase, each period starting at the previous due date.
    assert rows[0].period_start == t.start
    for previous, current in itertools.pairwise(rows):
        assert current.period_start == previous.due_date
    assert all(i.period_start < i.due_date for i in rows)
    # Due dates are business days whenever the convention adjusts them.
    if t.convention is not BusinessDayConvention.UNADJUSTED:
        assert all(t.calendar.is_business_day(i.due_date) for i in rows)
    # Interest-free grace periods charge no interest (a bullet's grace is inside its one period).
    if t.amortization is not Amortization.BULLET:
        assert all(i.interest == 0 for i in rows[: t.grace_interest])
    # A payment holiday asks for nothing.
    assert all(i.total == 0 for i in rows[: t.payment_holiday])


@st.composite
def annuity_terms(draw: st.DrawFn) -> ScheduleTerms:
    term = draw(st.integers(2, 360))
    start = draw(st.dates(date(2000, 1, 1), date(2060, 12, 31)))
    multiple = draw(st.sampled_from([1, 100]))
    values: dict[str, Any] = {
        # Large enough that rounding to the multiple leaves a real instalment.
        "principal_minor": draw(st.integers(1_000 * term * multiple, 10**10)),
        "currency": "USD",
        "exponent": 2,
        "annual_rate": Decimal(draw(st.integers(0, 4_000))) / 10_000,
        "term": term,
        "frequency": frequency(draw(st.sampled_from(FREQUENCY_NAMES))),
        "start": start,
        "day_count": draw(st.sampled_from(list(DayCount))),
        "interest_period": draw(st.sampled_from(list(InterestPeriod))),
        "grace_principal": draw(st.integers(0, min(term - 1, 6))),
        "payment_holiday": draw(st.integers(0, min(term - 1, 3))),
        "instalment_multiple_minor": multiple,
    }
    try:
        return ScheduleTerms(**values)
    except InvalidTerms:
        assume(False)
        raise


@PROPERTY_SETTINGS
@given(annuity_terms())
def test_annuity_instalment_is_the_formula(t: ScheduleTerms) -> None:
    schedule = built(t)
    deferred = max(t.grace_principal, t.payment_holiday)
    amortizing = schedule.instalments[deferred:]
    outstanding = schedule.instalments[deferred - 1].outstanding if deferred else t.principal_minor
    periods = len(amortizing)
    rate = Fraction(t.annual_rate) / t.frequency.periods_per_year
    if rate == 0:
        expected = outstanding / periods
    else:
        expected = float(npf.pmt(float(rate), periods, -outstanding))
    for i in amortizing[:-1]:
        if i.outstanding == 0:
            # Interest by actual days can run below the formula's equal periods
            # (52 weeks are 364 days): the principal ran out before the last
            # instalment, and what is left is smaller.
            assert i.principal + i.interest <= expected + t.instalment_multiple_minor
            continue
        if i.principal == 0:
            # The period's interest alone is more than the instalment (a long
            # broken first period at a high rate): the instalment is the interest.
            assert i.interest + t.instalment_multiple_minor > expected
            continue
        # Within rounding to the multiple (plus numpy-financial's float error).
        assert abs(i.principal + i.interest - expected) <= t.instalment_multiple_minor / 2 + 1e-3
    assert schedule.instalments[-1].outstanding == 0
