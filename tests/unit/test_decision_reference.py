"""The decision with compiled tables and quoted schedules is the decision as
it was made before: zen-engine for every table and full schedule builds.

For random applications (in and out of the product's limits, at the policy's
boundaries, every status) with the demo scorecard: the instalment is the built
schedule's first regular instalment at the priced rate, the affordability
figure is the built schedule's total at the stress rate spread over its months,
and the whole decision (outcome, reasons, score, band, rate, ratios) equals the
one a zen-engine-only policy gives.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from lendcore.products.model import load_product_text
from lendcore.risk.decision import (
    DecisionInputs,
    decide,
    monthly_payment_minor,
    schedule_terms,
)
from lendcore.risk.model import load_model
from lendcore.risk.policy import Policy, default_policy_text, policy_from_text
from lendcore.schedules.engine import build_schedule
from tests.unit.test_decision import inputs

SOURCE = Path(__file__).resolve().parents[2] / "src" / "lendcore"
PRODUCT = load_product_text(
    (SOURCE / "products" / "examples" / "consumer-annuity.yaml").read_text()
)
CARD = load_model(SOURCE / "risk" / "demo_model")
COMPILED = policy_from_text(default_policy_text())
REFERENCE = Policy(COMPILED.document, compile_tables=False)
BASE = inputs()  # every field is drawn below


def mostly(usual: Any, *others: Any) -> st.SearchStrategy[Any]:
    """The usual value four times in five, else one of the others."""
    return st.sampled_from([usual] * 4 * len(others) + list(others))


@st.composite
def applications(draw: st.DrawFn) -> DecisionInputs:
    income = draw(st.integers(150_000, 2_000_000) | st.integers(0, 150_000))
    features: dict[str, Any] = {
        "age_years": draw(st.integers(17, 85)),
        "monthly_income": income / 100,
        "debt_ratio": draw(st.floats(0, 0.6) | st.floats(0, 1.5)),
        "revolving_utilization": draw(st.floats(0, 0.5) | st.floats(0, 1.5)),
        "open_credit_lines": draw(st.integers(0, 25)),
        "real_estate_loans": draw(st.integers(0, 4)),
        "times_30_59_days_late": draw(mostly(0, 1, 3)),
        "times_60_89_days_late": draw(mostly(0, 1, 2)),
        "times_90_days_late": draw(mostly(0, 1, 2)),
        "dependents": draw(st.integers(0, 5)),
    }
    return replace(
        BASE,
        business_date=draw(st.dates(date(2025, 1, 1), date(2032, 12, 31))),
        currency=draw(mostly("USD", "EUR")),
        amount_minor=draw(st.integers(50_000, 5_000_000) | st.integers(10_000, 6_000_000)),
        term=draw(st.integers(6, 84) | st.integers(3, 96)),
        age_years=draw(mostly(40, None, 15, 17, 18, 75, 76, 90) | st.integers(18, 75)),
        kyc_status=draw(mostly("verified", "pending", "rejected", "expired")),
        screening_status=draw(mostly("clear", "hit", "pending", "not-screened")),
        employment_status=draw(mostly("employed", "self-employed", "unemployed")),
        monthly_income_minor=income,
        monthly_obligations_minor=draw(st.integers(0, income // 3) | st.integers(0, income + 1)),
        borrower_exposure_minor=draw(mostly(0, 5_000_000, 9_990_000, 10_000_000)),
        group_exposure_minor=draw(mostly(0, 24_990_000, 25_000_000)),
        product_book_minor=draw(st.integers(0, 300_000_000)),
        total_book_minor=draw(st.integers(1, 400_000_000)),
        features=features,
    )


@settings(max_examples=150, deadline=None)
@given(applications())
def test_the_decision_is_the_one_zen_engine_and_full_schedules_give(x: DecisionInputs) -> None:
    fast = decide(x, PRODUCT, COMPILED, CARD)
    event(f"{fast.outcome}, band {fast.band}")
    assert fast.to_doc() == decide(x, PRODUCT, REFERENCE, CARD).to_doc()
    eligible = x.currency == "USD" and 50_000 <= x.amount_minor <= 5_000_000 and 6 <= x.term <= 84
    if not eligible:
        assert (fast.instalment_minor, fast.stress_payment_monthly_minor) == (0, 0)
        return
    stressed = build_schedule(schedule_terms(PRODUCT, x, PRODUCT.interest.rate.max))
    assert fast.stress_payment_monthly_minor == monthly_payment_minor(
        stressed.total, stressed.maturity, x.business_date
    )
    priced = build_schedule(schedule_terms(PRODUCT, x, fast.annual_rate)).instalments
    assert fast.instalment_minor == max(row.total for row in priced[:-1] or priced)
