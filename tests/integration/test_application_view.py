"""The application read shows the champion's result and the challenger's, scored in
shadow, side by side: score, PD and the reasons that lowered each one's score."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from lendcore.services import applications, lender
from lendcore.store.database import Database
from tests.integration.loan_helpers import Lender, open_lender
from tests.integration.model_helpers import adopt_challenger

RISKY: dict[str, Any] = {
    **lender.GOOD_PROFILE,
    "revolving_utilization": 0.97,
    "times_30_59_days_late": 3,
    "times_90_days_late": 1,
}


@pytest.fixture
def bank(db: Database) -> Lender:
    return open_lender(db)


def submit(
    bank: Lender, name: str, profile: dict[str, Any], born: date = date(1984, 5, 17)
) -> applications.Application:
    borrower = lender.onboard(bank.staff, name, "USD", date_of_birth=born)
    return applications.submit_application(
        bank.staff.loan_officer,
        borrower,
        "consumer-annuity",
        "4000.00",
        12,
        purpose="Car",
        monthly_income="6000.00",
        credit_profile=profile,
    )


def test_champion_and_challenger_side_by_side(bank: Lender) -> None:
    challenger = adopt_challenger(bank.staff)
    submitted = submit(bank, "Rory Risky", RISKY)
    view = applications.view_application(bank.staff.approver, submitted.id)
    stored = applications.get_decision(bank.operator, submitted.decision_id or 0)
    assert view.application == applications.get_application(bank.operator, submitted.id)

    champion, shadow = view.champion, view.challenger
    assert champion is not None and shadow is not None
    # Score and PD are the ones stored with the decision, for both models.
    assert (champion.role, champion.kind, champion.version, champion.score, champion.pd) == (
        "champion",
        "scorecard",
        stored.model_version,
        stored.decision["score"],
        stored.decision["pd"],
    )
    beside = stored.decision["challenger"]
    assert (shadow.role, shadow.kind, shadow.version, shadow.score, shadow.pd) == (
        "challenger",
        "lightgbm",
        challenger,
        beside["score"],
        beside["pd"],
    )
    # Each model names its own reasons, the costliest first; both see the utilisation.
    for result in (champion, shadow):
        lost = [r.points_lost for r in result.reasons]
        assert lost and lost == sorted(lost, reverse=True) and min(lost) > 0
        assert "RC_UTIL_HIGH" in {r.code for r in result.reasons}
    # The champion's reasons are those the decision gave (it was not approved).
    assert submitted.outcome != "approve"
    assert [r.code for r in champion.reasons] == [
        r["code"] for r in stored.decision["reasons"] if r["source"] == "score"
    ]
    doc = view.models_doc()
    assert doc["challenger"]["reasons"][0] == {
        "code": shadow.reasons[0].code,
        "text": shadow.reasons[0].text,
        "characteristic": shadow.reasons[0].characteristic,
        "points_lost": shadow.reasons[0].points_lost,
    }
    # Reading it changed nothing: the decision still replays exactly.
    assert applications.replay_decision(bank.operator, stored.id).reproduced


def test_without_a_challenger_the_champion_stands_alone(bank: Lender) -> None:
    submitted = submit(bank, "Grace Good", dict(lender.GOOD_PROFILE))
    view = applications.view_application(bank.staff.loan_officer, submitted.id)
    assert view.champion is not None and view.challenger is None
    assert view.models_doc()["challenger"] is None
    # A person's decision on a referral keeps the engine's scores in the read.
    referred = submit(bank, "Ruth Referred", dict(lender.GOOD_PROFILE), born=date(1941, 3, 3))
    assert referred.status == "referred"
    engine = applications.get_decision(bank.operator, referred.decision_id or 0)
    approved = applications.approve_application(bank.approver, referred.id, "checked by hand")
    assert approved.decision_id != engine.id
    after = applications.view_application(bank.operator, referred.id)
    assert after.champion is not None
    assert (after.champion.score, after.champion.pd) == (
        engine.decision["score"],
        engine.decision["pd"],
    )
