"""The credit decision, pure: policy tables (zen-engine), a scorecard, pricing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lendcore.products.model import load_product_text
from lendcore.risk.decision import DecisionInputs, decide
from lendcore.risk.model import load_model, seal
from lendcore.risk.policy import PolicyInvalid, default_policy_text, policy_from_text

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
PRODUCT = load_product_text((EXAMPLES / "consumer-annuity.yaml").read_text())
POLICY = policy_from_text(default_policy_text())


def scorecard(**points: int) -> Any:
    """A two-characteristic scorecard: late payments and utilisation."""
    late = points.get("late", 0)
    document = {
        "format": "lendcore.scorecard/1",
        "name": "unit test card",
        "scaling": {"base_score": 600, "base_odds": 50.0, "pdo": 20},
        "calibration": {"intercept": "7.0", "slope": "-0.0175"},
        "characteristics": [
            {
                "name": "times_90_days_late",
                "kind": "numeric",
                "edges": [1.0],
                "points": [380, 250 + late],
                "labels": ["<1", ">=1", "missing"],
                "missing_points": 300,
                "reason_code": "RC_LATE_90",
                "reason_text": "Payments 90 or more days late on record.",
            },
            {
                "name": "revolving_utilization",
                "kind": "numeric",
                "edges": [0.5, 0.9],
                "points": [340, 300, 260],
                "labels": ["<0.5", "0.5-0.9", ">=0.9", "missing"],
                "missing_points": 300,
                "reason_code": "RC_UTIL_HIGH",
                "reason_text": "Revolving credit utilisation is high.",
            },
        ],
    }
    return load_model(seal(document))


def inputs(**change: Any) -> DecisionInputs:
    base = DecisionInputs(
        application_id=1,
        business_date=date(2026, 11, 26),
        product_code="consumer-annuity",
        product_version=1,
        currency="USD",
        amount_minor=500_000,
        term=12,
        age_years=40,
        kyc_status="verified",
        screening_status="clear",
        employment_status="employed",
        monthly_income_minor=600_000,
        monthly_obligations_minor=40_000,
        borrower_exposure_minor=0,
        group_exposure_minor=0,
        product_book_minor=1_000_000,
        total_book_minor=10_000_000,
        features={"times_90_days_late": 0, "revolving_utilization": 0.2},
    )
    return replace(base, **change)


def test_a_clean_application_is_approved_in_the_best_band_at_the_product_rate_floor() -> None:
    d = decide(inputs(), PRODUCT, POLICY, scorecard())
    assert (d.outcome, d.score, d.band) == ("approve", 720, "A")
    assert d.annual_rate == Decimal("0.0899")
    assert d.reasons == ()
    assert d.policy_version == POLICY.version and len(d.model_version) == 64
    # PTI from the real schedule at the product's highest rate (the stress rate).
    assert d.stress_payment_monthly_minor > d.instalment_minor > 500_000 // 12
    assert d.pti == (Decimal(d.stress_payment_monthly_minor) / 600_000).quantize(
        Decimal("0.000001")
    )


def test_rules_decline_and_refer_with_reasons_and_score_reasons() -> None:
    d = decide(
        inputs(age_years=17, features={"times_90_days_late": 3, "revolving_utilization": 0.95}),
        PRODUCT,
        POLICY,
        scorecard(),
    )
    assert d.outcome == "decline"
    codes = [r.code for r in d.reasons]
    assert codes[0] == "AGE_UNDER_18"
    assert codes[-2:] == ["RC_LATE_90", "RC_UTIL_HIGH"]  # most points lost first
    referred = decide(inputs(kyc_status="pending"), PRODUCT, POLICY, scorecard())
    assert referred.outcome == "refer"
    assert [r.code for r in referred.reasons] == ["KYC_NOT_VERIFIED"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"screening_status": "hit"}, "SCREENING_HIT"),
        ({"amount_minor": 10_000}, "PRODUCT_LIMITS"),
        ({"monthly_income_minor": 100_000}, "PTI_TOO_HIGH"),
        ({"monthly_obligations_minor": 400_000}, "DTI_TOO_HIGH"),
        ({"borrower_exposure_minor": 9_800_000}, "EXPOSURE_BORROWER_USD"),
        ({"group_exposure_minor": 24_800_000}, "EXPOSURE_GROUP_USD"),
    ],
)
def test_each_policy_rule_fires_on_its_fact(change: dict[str, Any], code: str) -> None:
    d = decide(inputs(**change), PRODUCT, POLICY, scorecard())
    assert code in [r.code for r in d.reasons]
    assert d.outcome == "decline"


def test_a_low_score_declines_in_the_last_band() -> None:
    d = decide(
        inputs(features={"times_90_days_late": 2, "revolving_utilization": 0.95}),
        PRODUCT,
        POLICY,
        scorecard(),
    )
    assert (d.band, d.outcome) == ("E", "decline")
    assert "SCORE_TOO_LOW" in [r.code for r in d.reasons]


def test_the_same_inputs_and_versions_give_the_same_decision_to_the_last_digit() -> None:
    card = scorecard()
    first = decide(inputs(), PRODUCT, POLICY, card, challenger=scorecard(late=10))
    again = decide(
        DecisionInputs.from_doc(json.loads(json.dumps(inputs().to_doc()))),
        PRODUCT,
        POLICY,
        card,
        scorecard(late=10),
    )
    assert first.to_doc() == again.to_doc()
    assert first.challenger is not None and first.challenger["version"] != first.model_version


def test_policy_documents_are_checked_when_loaded() -> None:
    with pytest.raises(PolicyInvalid, match="format"):
        policy_from_text("{}")
    document = json.loads(default_policy_text())
    document["pricing"]["nodes"][1]["content"]["hitPolicy"] = "collect"
    with pytest.raises(PolicyInvalid, match=r"pricing\.hitPolicy"):
        policy_from_text(json.dumps(document))
    document = json.loads(default_policy_text())
    document["eligibility"]["nodes"][1]["content"]["rules"][0]["in_age_years"] = "< < 18"
    with pytest.raises(PolicyInvalid):
        policy_from_text(json.dumps(document))
    document = json.loads(default_policy_text())
    del document["pricing"]["nodes"][1]["content"]["rules"][-1]  # no row for low scores
    with pytest.raises(PolicyInvalid, match="cover every score"):
        policy_from_text(json.dumps(document))
