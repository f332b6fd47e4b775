"""The simulator's pure parts: applicants, repayment behaviour, and the vintage
arithmetic of the portfolio report."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.products.model import Product, load_product_text
from lendcore.risk.model import CANONICAL_FEATURES
from lendcore.services.portfolio import add_months, first_bad_day, ratio, vintage_curves
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import LoanContract, replay
from lendcore.simulate.behaviour import (
    FIRST_YEAR_ONSET_DAYS,
    PER_MILLE,
    Behaviour,
    Loan,
    Payment,
    PaymentKind,
    Persona,
    Situation,
    acts_on,
    default_chances,
    draw_applicant,
    draw_behaviour,
    onset_day,
    payment,
    persona_shares,
    recovery,
    stream,
    suspended,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
START = date(2026, 3, 2)
PRODUCTS = ("consumer-annuity", "microloan-weekly-flat", "working-capital-bullet")


def product(name: str) -> Product:
    return load_product_text((EXAMPLES / f"{name}.yaml").read_text())


def monthly(n: int = 12, start: date = START) -> tuple[date, ...]:
    return tuple(add_months(start, k) for k in range(1, n + 1))


def loan(pd: str = "0.03", due_dates: tuple[date, ...] | None = None, period: int = 30) -> Loan:
    return Loan(Decimal(pd), START, due_dates or monthly(), period)


pds = st.decimals(min_value=0, max_value=1, places=4)
seeds = st.integers(min_value=0, max_value=2**32)


# --- streams and applicants ---------------------------------------------------------------


def test_a_stream_is_the_same_for_the_same_seed_and_purpose_only() -> None:
    first = [stream(7, "applicant", 1).random() for _ in range(3)]
    assert first == [stream(7, "applicant", 1).random() for _ in range(3)]
    assert first != [stream(8, "applicant", 1).random() for _ in range(3)]
    assert first != [stream(7, "applicant", 2).random() for _ in range(3)]
    assert first != [stream(7, "behaviour", 1).random() for _ in range(3)]


@settings(max_examples=60, deadline=None)
@given(seed=seeds, name=st.sampled_from(PRODUCTS))
def test_an_applicant_is_drawn_within_the_products_limits(seed: int, name: str) -> None:
    p = product(name)
    cap = p.minor(p.principal.min) * 7
    applicant = draw_applicant(stream(seed, "a"), p, START, amount_max_minor=cap)
    assert applicant == draw_applicant(stream(seed, "a"), p, START, amount_max_minor=cap)
    assert p.minor(p.principal.min) <= applicant.amount_minor <= cap
    assert applicant.amount_minor % 10 ** (p.exponent + 1) == 0
    assert p.term.min <= applicant.term <= p.term.max
    assert applicant.monthly_income_minor > 0
    assert 0 <= applicant.monthly_obligations_minor < applicant.monthly_income_minor
    assert set(applicant.credit_profile) <= set(CANONICAL_FEATURES)
    age = (START - applicant.date_of_birth).days // 365
    assert 21 <= age <= 84


# --- default onset: exact, monotone in PD ------------------------------------------------


lives = st.integers(min_value=2, max_value=4_000)
stresses = st.decimals(min_value=0, max_value=100, places=2)


@given(low=pds, high=pds, life=lives, longer=lives, stress=stresses)
def test_the_chances_of_default_grow_with_pd_stress_and_life(
    low: Decimal, high: Decimal, life: int, longer: int, stress: Decimal
) -> None:
    low, high = min(low, high), max(low, high)
    life, longer = min(life, longer), max(life, longer)
    first, total = default_chances(low, life, stress)
    assert 0.0 <= first <= total <= 1.0
    for other in (
        default_chances(high, life, stress),
        default_chances(low, longer, stress),
        default_chances(low, life, stress + 1),
    ):
        assert other[0] >= first and other[1] >= total


def test_a_12_month_pd_is_the_chance_of_stopping_in_the_first_year() -> None:
    first, total = default_chances(Decimal("0.05"), 730)
    assert first == pytest.approx(0.05)
    assert total == pytest.approx(1 - 0.95**2)
    assert default_chances(Decimal("0.05"), 365, Decimal(2)) == pytest.approx((0.10, 0.10))
    # A loan of a quarter of a year: a quarter of a year's hazard.
    assert default_chances(Decimal("0.19"), 73)[1] == pytest.approx(1 - 0.81**0.2)
    assert default_chances(Decimal(0), 3_000, Decimal(50)) == (0.0, 0.0)


@given(
    draws=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    onsets=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    pd=pds,
    life=lives,
)
def test_the_onset_is_within_the_loans_life_and_never_later_for_more_risk(
    draws: tuple[float, float], onsets: tuple[float, float], pd: Decimal, life: int
) -> None:
    low_draw, high_draw = sorted(draws)
    early, late = sorted(onsets)
    day = onset_day(low_draw, early, pd, life)
    if day is None:
        assert onset_day(high_draw, early, pd, life) is None
        return
    assert 1 <= day < life
    first, _total = default_chances(pd, life)
    if low_draw <= first:
        assert day <= FIRST_YEAR_ONSET_DAYS
    else:
        assert day >= 365
    later = onset_day(low_draw, late, pd, life)
    assert later is not None and later >= day


def test_first_year_defaults_stop_paying_early() -> None:
    days = [onset_day(0.0, k / 1000, Decimal("0.5"), 1095) for k in range(1001)]
    assert days[0] == 1 and days[-1] == FIRST_YEAR_ONSET_DAYS
    stopped_in_a_quarter = sum(d is not None and d <= 91 for d in days) / len(days)
    assert 0.4 < stopped_in_a_quarter < 0.5


@settings(max_examples=200)
@given(seed=seeds, low=pds, high=pds)
def test_the_same_stream_with_a_higher_pd_never_stops_paying_later(
    seed: int, low: Decimal, high: Decimal
) -> None:
    low, high = min(low, high), max(low, high)
    quiet = draw_behaviour(stream(seed, "b"), loan(str(low)))
    risky = draw_behaviour(stream(seed, "b"), loan(str(high)))
    assert quiet == draw_behaviour(stream(seed, "b"), loan(str(low)))
    if quiet.stops_on is not None:
        assert risky.stops_on is not None
        assert risky.stops_on <= quiet.stops_on


@given(pd=pds)
def test_persona_shares_are_a_distribution_that_worsens_with_pd(pd: Decimal) -> None:
    shares = persona_shares(pd)
    assert all(0 <= s <= 1 for s in shares.values())
    assert sum(shares.values()) == pytest.approx(1.0)
    safer = persona_shares(pd / 2)
    assert shares[Persona.LATE] >= safer[Persona.LATE]
    assert shares[Persona.ON_TIME] <= safer[Persona.ON_TIME]


@settings(max_examples=200)
@given(seed=seeds, pd=pds, weekly=st.booleans())
def test_a_drawn_behaviour_is_consistent(seed: int, pd: Decimal, weekly: bool) -> None:
    dues = tuple(START + timedelta(days=7 * k) for k in range(1, 17)) if weekly else monthly()
    subject = loan(str(pd), dues, 7 if weekly else 30)
    b = draw_behaviour(stream(seed, "b"), subject)
    if b.persona in (Persona.DEFAULT, Persona.CURE):
        assert b.stops_on is not None and START < b.stops_on < subject.maturity
    else:
        assert b.stops_on is None
    assert (b.resumes_on is not None) == (b.persona is Persona.CURE)
    if b.resumes_on is not None and b.stops_on is not None:
        assert b.resumes_on > b.stops_on
    if b.prepays_on is not None:
        assert b.persona is Persona.EARLY and START < b.prepays_on < subject.maturity
    assert 0 < b.share_per_mille <= PER_MILLE
    assert 0 <= b.lag_days <= (6 if weekly else 50)
    assert 0 <= b.recovery_per_mille <= 500
    if b.recovery_per_mille:
        assert b.persona is Persona.DEFAULT


# --- what a borrower pays --------------------------------------------------------------------

dates = st.dates(min_value=START, max_value=START + timedelta(days=500))
behaviours = st.builds(
    Behaviour,
    persona=st.sampled_from(Persona),
    lag_days=st.integers(0, 60),
    share_per_mille=st.integers(1, PER_MILLE),
    catch_up_every=st.integers(0, 5),
    stops_on=st.none() | dates,
    resumes_on=st.none() | dates,
    prepays_on=st.none() | dates,
    recovery_per_mille=st.integers(0, PER_MILLE),
    recovery_after_days=st.integers(0, 120),
)


@st.composite
def situations(draw: st.DrawFn) -> Situation:
    payoff = draw(st.integers(0, 10**9))
    return Situation(
        today=draw(dates),
        due_dates=monthly(draw(st.integers(1, 24))),
        fallen_due_minor=draw(st.integers(0, payoff)),
        payoff_minor=payoff,
    )


@settings(max_examples=500)
@given(b=behaviours, s=situations())
def test_a_payment_is_never_more_than_the_payoff_nor_on_a_day_off(
    b: Behaviour, s: Situation
) -> None:
    paid = payment(b, s)
    assert paid == payment(b, s)
    if paid is None:
        return
    assert 0 < paid.amount_minor <= s.payoff_minor
    assert paid.amount_minor <= s.fallen_due_minor or paid.kind is PaymentKind.PREPAYMENT
    assert acts_on(b, s.today, s.due_dates)
    assert not suspended(b, s.today)


def situation(today: date, fallen_due: int = 10_000, payoff: int = 100_000) -> Situation:
    return Situation(today, monthly(), fallen_due, payoff)


def test_an_on_time_borrower_pays_what_has_fallen_due_on_each_due_date_only() -> None:
    b = Behaviour(Persona.ON_TIME)
    due = monthly()[2]
    assert payment(b, situation(due)) == Payment(PaymentKind.INSTALMENT, 10_000)
    assert payment(b, situation(due + timedelta(days=1))) is None
    assert payment(b, situation(due, fallen_due=0)) is None
    # Never more than settles the loan.
    assert payment(b, situation(due, 10_000, 4_000)) == Payment(PaymentKind.INSTALMENT, 4_000)


def test_a_late_borrower_pays_the_lag_after_each_due_date() -> None:
    b = Behaviour(Persona.LATE, lag_days=33)
    due = monthly()[0]
    assert payment(b, situation(due)) is None
    assert payment(b, situation(due + timedelta(days=33))) == Payment(
        PaymentKind.INSTALMENT, 10_000
    )


def test_a_partial_payer_pays_a_share_and_catches_up_every_few_instalments() -> None:
    b = Behaviour(Persona.PARTIAL, share_per_mille=600, catch_up_every=3)
    dues = monthly()
    assert payment(b, situation(dues[0], 10_001)) == Payment(PaymentKind.PARTIAL, 6_000)
    assert payment(b, situation(dues[1], 10_001)) == Payment(PaymentKind.PARTIAL, 6_000)
    assert payment(b, situation(dues[2], 10_001)) == Payment(PaymentKind.INSTALMENT, 10_001)


def test_a_defaulter_pays_nothing_from_the_day_they_stop_and_a_cure_pays_all_arrears() -> None:
    dues = monthly()
    stopped = Behaviour(Persona.DEFAULT, stops_on=dues[1] - timedelta(days=3))
    assert payment(stopped, situation(dues[0])) == Payment(PaymentKind.INSTALMENT, 10_000)
    assert all(payment(stopped, situation(d)) is None for d in dues[1:])
    cure = replace(stopped, persona=Persona.CURE, resumes_on=dues[3] + timedelta(days=9))
    assert payment(cure, situation(dues[2])) is None
    assert payment(cure, situation(dues[3] + timedelta(days=9), 31_000)) == Payment(
        PaymentKind.CURE, 31_000
    )
    assert payment(cure, situation(dues[4])) == Payment(PaymentKind.INSTALMENT, 10_000)


def test_an_early_borrower_settles_the_whole_loan_on_the_day() -> None:
    b = Behaviour(Persona.EARLY, prepays_on=START + timedelta(days=100))
    assert payment(b, situation(START + timedelta(days=100), 0, 77_777)) == Payment(
        PaymentKind.PREPAYMENT, 77_777
    )


def test_a_recovery_comes_once_as_a_share_of_the_balance_written_off() -> None:
    b = Behaviour(Persona.DEFAULT, recovery_per_mille=250, recovery_after_days=30)
    off = date(2026, 9, 1)
    assert recovery(b, off, off + timedelta(days=30), 40_003) == Payment(
        PaymentKind.RECOVERY, 10_000
    )
    assert recovery(b, off, off + timedelta(days=29), 40_003) is None
    assert recovery(b, off, off + timedelta(days=31), 40_003) is None
    assert recovery(Behaviour(Persona.DEFAULT), off, off, 40_003) is None


# --- the report's arithmetic ------------------------------------------------------------------


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert add_months(date(2028, 1, 30), 1) == date(2028, 2, 29)


def test_ratio_is_exact_to_six_places_and_zero_without_a_whole() -> None:
    assert ratio(1, 3) == Decimal("0.333333")
    assert ratio(5, 0) == Decimal(0)


def test_vintage_curves_count_each_cohort_bad_within_m_months_of_booking() -> None:
    rows = [
        (date(2026, 1, 10), date(2026, 3, 1)),  # bad in its second month on book
        (date(2026, 1, 20), None),
        (date(2026, 1, 25), date(2026, 5, 30)),  # bad in its fifth month
        (date(2026, 1, 31), None),
        (date(2026, 3, 3), date(2026, 4, 1)),
    ]
    jan, mar = vintage_curves(rows, date(2026, 5, 1))
    assert (jan.cohort, jan.loans, mar.cohort, mar.loans) == ("2026-01", 4, "2026-03", 1)
    assert [(p.months_on_book, p.bad) for p in jan.points] == [(1, 0), (2, 1), (3, 1), (4, 1)]
    assert jan.points[1].share == Decimal("0.25")
    assert [(p.months_on_book, p.bad) for p in mar.points] == [(1, 1), (2, 1)]


def _contract(name: str, principal: int, term: int) -> LoanContract:
    p = product(name)
    return LoanContract(1, p, p.terms(principal, START, term=term, enforce_limits=False), principal)


def test_the_first_bad_day_is_the_first_due_date_plus_90_still_unpaid() -> None:
    c = _contract("consumer-annuity", 1_000_000, 12)
    events = [LoanEvent(1, EventKind.DISBURSEMENT, START, 1_000_000)]
    schedule = replay(c, events, START).instalments
    as_of = START + timedelta(days=400)
    # Never paid: bad 90 days after the first due date.
    assert first_bad_day(c, events, as_of) == schedule[0].due_date + timedelta(days=90)
    assert first_bad_day(c, events, schedule[0].due_date + timedelta(days=89)) is None
    # Every instalment paid on its day: never bad.
    on_time = events + [
        LoanEvent(n, EventKind.REPAYMENT, i.due_date, i.total) for n, i in enumerate(schedule, 2)
    ]
    assert first_bad_day(c, on_time, as_of) is None
    # Nothing paid until 100 days after the first due date, then all arrears: bad all the same.
    caught_up = [
        *events,
        LoanEvent(
            2,
            EventKind.REPAYMENT,
            schedule[0].due_date + timedelta(days=100),
            sum(i.total for i in schedule[:5]),
        ),
    ]
    assert replay(c, caught_up, schedule[0].due_date + timedelta(days=101)).days_past_due < 30
    assert first_bad_day(c, caught_up, as_of) == schedule[0].due_date + timedelta(days=90)
    # Written off before 90 days past due: bad on the day of the write-off.
    off = schedule[0].due_date + timedelta(days=40)
    written_off = [*events, LoanEvent(2, EventKind.WRITE_OFF, off)]
    assert first_bad_day(c, written_off, as_of) == off
