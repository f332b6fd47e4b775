"""Origination on real databases: every decision stored and replayable, and every
attempt to skip a control refused with a typed error, writing nothing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from lendcore.auth.permissions import PermissionDenied
from lendcore.errors import InvalidInput, LendcoreError
from lendcore.origination.borrowers import KycEvidence, KycOutcome
from lendcore.origination.screening import read_watch_list
from lendcore.risk.policy import PolicyInvalid, default_policy_text
from lendcore.services import applications, approvals, borrowers, identity, lender, loans, policies
from lendcore.services.approvals import MakerCannotApprove
from lendcore.store.database import Database
from tests.integration.audit_helpers import table_contents
from tests.integration.loan_helpers import Lender, open_lender

PROFILE = dict(lender.GOOD_PROFILE)


@pytest.fixture
def bank(db: Database) -> Lender:
    return open_lender(db)


def apply(
    bank: Lender, borrower: int, amount: str = "4000.00", **extra: Any
) -> applications.Application:
    values: dict[str, Any] = {
        "purpose": "Car",
        "monthly_income": "6000.00",
        "credit_profile": PROFILE,
    }
    values.update(extra)
    return applications.submit_application(
        bank.staff.loan_officer, borrower, "consumer-annuity", amount, 12, **values
    )


def assert_refused_writes_nothing(db: Database, call: Any, error: type[Exception]) -> Exception:
    before = table_contents(db)
    with pytest.raises(error) as refused:
        call()
    assert table_contents(db) == before
    return refused.value


def test_a_good_application_is_approved_priced_and_replays_exactly(bank: Lender) -> None:
    borrower = lender.onboard(bank.staff, "Grace Hopper", "USD")
    submitted = apply(bank, borrower)
    assert submitted.status == "approved" and submitted.decided_by == "lendcore"
    decision = applications.get_decision(bank.operator, submitted.decision_id or 0)
    body = decision.decision
    assert decision.kind == "engine"
    assert body["band"] in ("A", "B", "C")
    product = bank.product
    assert (
        product.interest.rate.min
        <= __import__("decimal").Decimal(body["annual_rate"])
        <= product.interest.rate.max
    )
    assert (
        decision.inputs["kyc_status"] == "verified"
        and decision.inputs["screening_status"] == "clear"
    )
    assert len(decision.policy_version) == 64 and len(decision.model_version) == 64
    replay = applications.replay_decision(bank.operator, decision.id)
    assert replay.reproduced, replay.differences
    assert replay.replayed == dict(decision.decision)
    loan = applications.book_application(bank.servicing, submitted.id)
    assert str(loan.terms.annual_rate) == body["annual_rate"]
    assert applications.get_application(bank.operator, submitted.id).loan_id == loan.id


def test_a_decline_names_its_reasons_fit_for_an_adverse_action_notice(bank: Lender) -> None:
    borrower = lender.onboard(bank.staff, "Young Applicant", "USD", date_of_birth=date(2015, 1, 1))
    declined = apply(
        bank, borrower, monthly_income="500.00", credit_profile={**PROFILE, "times_90_days_late": 5}
    )
    assert declined.status == "declined"
    reasons = applications.get_decision(bank.operator, declined.decision_id or 0).decision[
        "reasons"
    ]
    codes = [r["code"] for r in reasons]
    assert "AGE_UNDER_18" in codes
    assert any(r["source"] == "score" for r in reasons)
    assert all(r["text"] for r in reasons)
    assert applications.replay_decision(bank.operator, declined.decision_id or 0).reproduced


def test_booking_is_refused_unless_approved(bank: Lender) -> None:
    old = lender.onboard(bank.staff, "Old Applicant", "USD", date_of_birth=date(1940, 1, 1))
    referred = apply(bank, old)
    assert referred.status == "referred"
    error = assert_refused_writes_nothing(
        bank.operator,
        lambda: applications.book_application(bank.servicing, referred.id),
        applications.BookingRefused,
    )
    assert error.code == "BOOKING_REFUSED"  # type: ignore[attr-defined]


def test_the_person_who_entered_an_application_cannot_approve_it(
    bank: Lender, db: Database
) -> None:
    both = identity.create_user(db, "two-hats", ["loan_officer", "credit_approver"])
    two_hats = db.acting_as(both.actor())
    old = lender.onboard(bank.staff, "Old Applicant", "USD", date_of_birth=date(1940, 1, 1))
    referred = applications.submit_application(
        two_hats,
        old,
        "consumer-annuity",
        "4000.00",
        12,
        purpose="Car",
        monthly_income="6000.00",
        credit_profile=PROFILE,
    )
    assert referred.status == "referred"
    assert_refused_writes_nothing(
        db,
        lambda: applications.approve_application(two_hats, referred.id, "looks fine"),
        applications.SelfApproval,
    )
    assert_refused_writes_nothing(
        db,
        lambda: applications.approve_application(bank.staff.loan_officer, referred.id, "ok"),
        PermissionDenied,
    )
    approved = applications.approve_application(
        bank.approver, referred.id, "pension income checked"
    )
    assert (approved.status, approved.decided_by) == ("approved", bank.approver.actor.label)


def test_an_override_needs_a_reason_and_a_second_person(bank: Lender, db: Database) -> None:
    borrower = lender.onboard(bank.staff, "Grace Hopper", "USD")
    approved = apply(bank, borrower)
    assert_refused_writes_nothing(
        db,
        lambda: applications.override_decision(bank.approver, approved.id, "decline", " "),
        InvalidInput,
    )
    pending = applications.override_decision(
        bank.approver, approved.id, "decline", "Fraud alert from the bank"
    )
    assert applications.get_application(db, approved.id).status == "approved"
    assert_refused_writes_nothing(
        db, lambda: approvals.approve(bank.approver, pending.id), MakerCannotApprove
    )
    second = db.acting_as(identity.create_user(db, "second-approver", ["credit_approver"]).actor())
    approvals.approve(second, pending.id)
    after = applications.get_application(db, approved.id)
    assert (after.status, after.outcome) == ("declined", "decline")
    kinds = [d.kind for d in applications.decisions_of(db, approved.id)]
    assert kinds == ["engine", "override"]
    assert_refused_writes_nothing(
        db,
        lambda: applications.book_application(bank.servicing, approved.id),
        applications.BookingRefused,
    )


def test_booking_rechecks_kyc_in_the_booking_transaction(bank: Lender, db: Database) -> None:
    borrower = lender.onboard(bank.staff, "Grace Hopper", "USD")
    approved = apply(bank, borrower)
    borrowers.record_kyc_check(
        bank.staff.loan_officer,
        borrower,
        KycEvidence(KycOutcome.REJECTED, "passport", "P-FORGED-1", note="forged"),
    )
    error = assert_refused_writes_nothing(
        db,
        lambda: applications.book_application(bank.servicing, approved.id),
        applications.BookingRefused,
    )
    assert error.details["control"] == "kyc"  # type: ignore[attr-defined]


def test_booking_rechecks_screening_in_the_booking_transaction(bank: Lender, db: Database) -> None:
    borrower = lender.onboard(
        bank.staff, "Quentin Quillfeather", "USD", date_of_birth=date(1993, 12, 12)
    )
    approved = apply(bank, borrower)
    risk = bank.staff.risk
    csv = "name,date_of_birth,country,list,reference\nQuentin Quillfeather,1993-12-12,XX,demo,SYN-T1\n"
    borrowers.load_watch_list(risk, read_watch_list(csv, "late.csv", "late-list"))
    assert borrowers.get_borrower(db, borrower).borrower.screening_status != "clear"
    error = assert_refused_writes_nothing(
        db,
        lambda: applications.book_application(bank.servicing, approved.id),
        applications.BookingRefused,
    )
    assert error.details["control"] == "screening"  # type: ignore[attr-defined]


def test_booking_rechecks_group_exposure_in_the_booking_transaction(
    bank: Lender, db: Database
) -> None:
    """Six approvals of 50,000.00 for three borrowers pass one by one; once the
    three are known to be one household, booking any would break the group limit."""
    family = [lender.onboard(bank.staff, f"Member {n}", "USD") for n in range(3)]
    approved = [
        apply(bank, member, "50000.00", monthly_income="90000.00")
        for member in family
        for _ in range(2)
    ]
    assert [a.status for a in approved] == ["approved"] * 6
    for member in family:
        borrowers.set_group(bank.staff.loan_officer, member, "Household Member")
    error = assert_refused_writes_nothing(
        db,
        lambda: applications.book_application(bank.servicing, approved[0].id),
        applications.BookingRefused,
    )
    assert error.details["control"] == "exposure"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"product_code": "no-such-product"}, LendcoreError),
        ({"amount": "100.00"}, LendcoreError),  # below the product's minimum
        ({"term": 1000}, LendcoreError),
        ({"credit_profile": {"shoe_size": 44}}, InvalidInput),
        ({"credit_profile": {"times_90_days_late": "many"}}, InvalidInput),
        ({"purpose": ""}, InvalidInput),
        ({"amount": "10.001"}, InvalidInput),
    ],
)
def test_bad_applications_are_refused_and_write_nothing(
    bank: Lender, db: Database, change: dict[str, Any], error: type[Exception]
) -> None:
    borrower = lender.onboard(bank.staff, "Grace Hopper", "USD")
    values: dict[str, Any] = {
        "borrower_id": borrower,
        "product_code": "consumer-annuity",
        "amount": "4000.00",
        "term": 12,
        "purpose": "Car",
        "monthly_income": "6000.00",
        "credit_profile": PROFILE,
    }
    values.update(change)
    assert_refused_writes_nothing(
        db, lambda: applications.submit_application(bank.staff.loan_officer, **values), error
    )


def test_a_policy_that_does_not_parse_is_refused_naming_the_field(
    bank: Lender, db: Database
) -> None:
    document = json.loads(default_policy_text())
    document["eligibility"]["nodes"][1]["content"]["inputs"][0]["field"] = "shoe_size"
    error = assert_refused_writes_nothing(
        db, lambda: policies.submit_policy(bank.staff.risk, json.dumps(document)), PolicyInvalid
    )
    assert "eligibility.inputs" in str(error)
    broken = json.loads(default_policy_text())
    broken["pricing"]["nodes"][1]["content"]["rules"][0]["in_score"] = ">>= 7 20"
    assert_refused_writes_nothing(
        db, lambda: policies.submit_policy(bank.staff.risk, json.dumps(broken)), PolicyInvalid
    )
    assert_refused_writes_nothing(
        db, lambda: policies.submit_policy(bank.staff.risk, "{not json"), PolicyInvalid
    )


def test_a_policy_change_needs_a_second_risk_manager_and_decisions_keep_their_version(
    bank: Lender, db: Database
) -> None:
    borrower = lender.onboard(bank.staff, "Grace Hopper", "USD")
    first = apply(bank, borrower, "2000.00")
    stricter = json.loads(default_policy_text())
    stricter["name"] = "stricter"
    rows = stricter["pricing"]["nodes"][1]["content"]["rules"]
    for row in rows:
        row["out_action"] = '"refer"' if row["out_action"] != '"decline"' else row["out_action"]
    pending = policies.submit_policy(bank.staff.risk, json.dumps(stricter))
    assert_refused_writes_nothing(
        db, lambda: approvals.approve(bank.staff.risk, pending.id), MakerCannotApprove
    )
    approvals.approve(bank.staff.risk_checker, pending.id)
    assert policies.get_policy(db).name == "stricter"
    second = apply(bank, borrower, "2000.00")
    assert second.status == "referred"
    # The first decision still replays under the version it ran.
    assert applications.replay_decision(db, first.decision_id or 0).reproduced
    versions = {
        applications.get_decision(db, a.decision_id or 0).policy_version for a in (first, second)
    }
    assert len(versions) == 2
    assert loans.list_loans(db) == []
