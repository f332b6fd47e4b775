"""The schedule quote (the regular instalment, the total and the maturity
without building the schedule) equals the full build, to the minor unit.

Property tests (hypothesis) over the terms the quote covers (declining-balance
annuities, with every frequency, day count, interest period, first repayment,
calendar, convention, rounding mode, instalment multiple and fee) and over all
the terms the engine accepts (the others are built in full, and say so); the
decision's own products at their limits and beyond; and the annuity formula's
rounding against exact rational arithmetic.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from lendcore.dates import BusinessDayConvention, DayCount, calendar
from lendcore.money import RoundingMode, round_fraction_to_minor
from lendcore.products.model import load_product_text
from lendcore.schedules.engine import annuity_instalment, build_schedule
from lendcore.schedules.quote import quote, quote_gap, quote_instalment
from lendcore.schedules.terms import (
    Amortization,
    InterestMethod,
    InvalidTerms,
    ScheduleTerms,
    frequency,
)
from tests.unit.test_schedule_properties import schedule_terms

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
PRODUCTS = {p.stem: load_product_text(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))}
QUOTE_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def expected(t: ScheduleTerms) -> tuple[int, int, date] | None:
    """What the decision took from a built schedule: the largest instalment
    but the last, the total and the maturity (None: the engine refuses)."""
    try:
        schedule = build_schedule(t)
    except InvalidTerms as refused:
        assert "fold" in refused.message  # only a calendar folding two due dates
        return None
    rows = schedule.instalments
    return max(row.total for row in (rows[:-1] or rows)), schedule.total, schedule.maturity


def check(t: ScheduleTerms) -> str:
    """Quote and instalment quote equal the build; returns how the instalment came."""
    figures = expected(t)
    if figures is None:
        with pytest.raises(InvalidTerms):
            quote(t)
        assume(False)
        raise AssertionError("unreachable")
    # The same terms at the rate of another: built and kept, then taken as kept.
    other = replace(t, annual_rate=t.annual_rate / 2 + Decimal("0.0123"))
    for _ in range(2):
        assert quote_instalment(other, annual_rate=t.annual_rate).instalment_minor == figures[0]
    whole = quote(t)
    assert (whole.instalment_minor, whole.total_minor, whole.maturity) == figures
    instalment = quote_instalment(t)
    assert instalment.instalment_minor == figures[0]
    gap = quote_gap(t)
    if gap is None:
        assert whole.how == "recurrence"
        assert instalment.how in ("closed form", "recurrence")
    else:
        assert whole.how == instalment.how == f"full build: {gap}"
    return instalment.how


@st.composite
def covered_terms(draw: st.DrawFn) -> ScheduleTerms:
    """Declining-balance annuities, what the quote claims to compute without a
    build: the engine's random terms made so, with rates to 100 % and
    instalment multiples larger than small loans (where rows run out early)."""
    t = draw(schedule_terms())
    try:
        t = replace(
            t,
            method=InterestMethod.DECLINING,
            amortization=Amortization.ANNUITY,
            grace_principal=0,
            grace_interest=0,
            payment_holiday=0,
            annual_rate=Decimal(draw(st.integers(0, 10_000))) / 10_000,
            instalment_multiple_minor=draw(st.sampled_from([1, 1, 5, 100, 500, 10_000])),
        )
    except InvalidTerms:
        assume(False)
        raise
    assert quote_gap(t) is None
    return t


@QUOTE_SETTINGS
@given(covered_terms())
def test_the_quote_equals_the_build_on_the_terms_it_covers(t: ScheduleTerms) -> None:
    event(f"instalment: {check(t)}")


@QUOTE_SETTINGS
@given(schedule_terms())
def test_the_quote_equals_the_build_on_any_terms_building_what_it_does_not_cover(
    t: ScheduleTerms,
) -> None:
    event(f"instalment: {check(t)}")


@settings(max_examples=150, deadline=None)
@given(
    code=st.sampled_from(sorted(PRODUCTS)),
    amount=st.integers(1, 10**9),
    term=st.integers(1, 120),
    rate_bp=st.integers(0, 4_000),
    start=st.dates(date(2024, 1, 1), date(2040, 12, 31)),
)
def test_the_quote_equals_the_build_for_the_example_products_in_and_out_of_limits(
    code: str, amount: int, term: int, rate_bp: int, start: date
) -> None:
    product = PRODUCTS[code]
    rate = Decimal(rate_bp) / 10_000
    t = product.terms(amount, start, annual_rate=rate, term=term, enforce_limits=False)
    event(f"instalment: {check(t)}")


def test_the_decision_product_takes_the_closed_form_and_the_others_say_why_they_are_built() -> None:
    consumer = PRODUCTS["consumer-annuity"]
    hows = set()
    for amount in (50_000, 123_456, 5_000_000):
        for term in (1, 2, 12, 36, 84):
            for rate in ("0.05", "0.0899", "0.2999"):
                t = consumer.terms(
                    amount,
                    date(2026, 11, 26),
                    annual_rate=Decimal(rate),
                    term=term,
                    enforce_limits=False,
                )
                hows.add(check(t))
    assert hows == {"closed form"}
    gaps = {
        code: quote_gap(product.terms(product.minor(product.principal.min), date(2026, 11, 26)))
        for code, product in PRODUCTS.items()
    }
    assert gaps == {
        "consumer-annuity": None,
        "interest-only-balloon": "interest-only amortization",
        "microloan-weekly-flat": "flat interest",
        "working-capital-bullet": "bullet amortization",
    }


def test_where_the_bound_fails_the_rows_are_walked_and_still_equal() -> None:
    base: dict[str, Any] = {
        "principal_minor": 100_000,
        "currency": "USD",
        "exponent": 2,
        "annual_rate": Decimal("0.36"),
        "term": 84,
        "frequency": frequency("monthly"),
        "start": date(2026, 1, 30),
        "day_count": DayCount.ACT_365F,
        "calendar": calendar("US"),
        "convention": BusinessDayConvention.FOLLOWING,
    }
    # A long term at a high rate: a 33-day period's interest is more than the annuity.
    assert check(ScheduleTerms(**base)) == "recurrence"
    # A broken first period of 75 days: its interest alone is more than the instalment.
    long_first = {**base, "term": 60, "first_repayment": date(2026, 4, 15)}
    assert check(ScheduleTerms(**long_first)) == "recurrence"
    # An instalment multiple larger than the loan: the rows run out early.
    coarse = {**base, "term": 6, "instalment_multiple_minor": 500_000}
    assert check(ScheduleTerms(**coarse)) == "recurrence"
    # Flat interest is built, and says so.
    flat = ScheduleTerms(**{**base, "method": InterestMethod.FLAT})
    assert quote(flat).how == "full build: flat interest"


@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(1, 10**12),
    rate=st.fractions(
        min_value=Fraction(1, 10**7), max_value=Fraction(1, 2), max_denominator=10**8
    ),
    periods=st.integers(1, 48),
    multiple=st.sampled_from([1, 5, 100, 500]),
    mode=st.sampled_from(list(RoundingMode)),
)
def test_the_annuity_payment_is_the_exact_formula_rounded(
    principal: int, rate: Fraction, periods: int, multiple: int, mode: RoundingMode
) -> None:
    exact = principal * rate / (1 - (1 + rate) ** -periods)
    want = round_fraction_to_minor(exact / multiple, 0, mode) * multiple
    assert annuity_instalment(principal, rate, periods, multiple, mode) == want


@pytest.mark.parametrize("mode", list(RoundingMode))
def test_the_annuity_payment_at_exactly_a_half_rounds_by_the_mode(mode: RoundingMode) -> None:
    # 10,000.00 over one period at 5.25 %/24 is exactly 1,002,187.5 cents.
    rate = Fraction(Decimal("0.0525")) / 24
    exact = 1_000_000 * rate / (1 - (1 + rate) ** -1)
    assert exact == Fraction(2_004_375, 2)
    want = round_fraction_to_minor(exact, 0, mode)
    assert annuity_instalment(1_000_000, rate, 1, 1, mode) == want
