"""Borrowers, KYC and screening on SQLite and PostgreSQL: the national id at rest,
duplicates by keyed hash, KYC expiry by business date, screening referral and
its maker-checker resolution, bad input that writes nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from lendcore.auth.permissions import PermissionDenied
from lendcore.origination.borrowers import (
    BorrowerInvalid,
    BorrowerUpdate,
    KycEvidence,
    KycOutcome,
)
from lendcore.services import approvals, audit, borrowers, business_date, events
from lendcore.services.approvals import MakerCannotApprove
from lendcore.services.borrowers import (
    BorrowerDuplicate,
    BorrowerNotFound,
    ScreeningHitResolved,
    ScreeningHitUnderReview,
    borrower_on,
    group_members_on,
)
from lendcore.store.database import Database
from tests.integration.audit_helpers import count, table_contents, text_values
from tests.integration.borrower_helpers import LISTED, as_user, demo_list, person

NATIONAL_ID = "ZX-987 6543"


def today(db: Database) -> date:
    return business_date.business_date(db)


def test_the_national_id_is_encrypted_hashed_and_shown_masked(db: Database) -> None:
    created = borrowers.create_borrower(db, person(national_id=NATIONAL_ID))
    assert created.national_id_masked == "*****543"
    with db.reading() as conn:
        assert borrowers.national_id_on(conn, created.id, borrowers.data_keys(db)) == NATIONAL_ID
    # Nowhere in the database in clear: not in the row, the audit log or the outbox.
    for needle in (NATIONAL_ID, "ZX9876543", "9876543"):
        assert [v for v in text_values(db) if needle in v[2]] == []
    records = audit.list_audit(db, command_name="borrower.change")
    assert records[-1].inputs["details"]["national_id"] == "***"
    assert all(NATIONAL_ID not in json.dumps(e.payload) for e in events.list_events(db))


def test_a_second_borrower_with_the_same_national_id_is_refused(db: Database) -> None:
    first = borrowers.create_borrower(db, person(national_id=NATIONAL_ID))
    before = table_contents(db)
    with pytest.raises(BorrowerDuplicate) as refused:
        # The same id typed differently is the same id.
        borrowers.create_borrower(db, person("Someone Else", national_id="zx9876543"))
    assert refused.value.code == "BORROWER_DUPLICATE"
    assert refused.value.details == {"existing_borrower_id": first.id}
    assert table_contents(db) == before
    other = borrowers.create_borrower(db, person("Someone Else", national_id="QQ1234567"))
    with pytest.raises(BorrowerDuplicate):
        borrowers.update_borrower(db, other.id, BorrowerUpdate(national_id="ZX 9876543"))
    # Changing one's own id to itself is no duplicate.
    again = borrowers.update_borrower(db, first.id, BorrowerUpdate(national_id="ZX9876543"))
    assert again.national_id_masked == "*****543"


def test_kyc_expires_by_the_business_date(db: Database) -> None:
    b = borrowers.create_borrower(db, person())
    assert borrower_on_db(db, b.id).kyc_status == "pending"
    start = today(db)
    check = borrowers.record_kyc_check(
        db,
        b.id,
        KycEvidence(
            KycOutcome.VERIFIED, "passport", "P 5566778", valid_until=start + timedelta(days=2)
        ),
    )
    assert (check.document_number_masked, check.checked_on) == ("*****778", start)
    assert borrower_on_db(db, b.id).kyc_status == "verified"
    assert [x.id for x in borrowers.list_borrowers(db, kyc="verified")] == [b.id]
    business_date.set_business_date(db, start + timedelta(days=2))
    assert borrower_on_db(db, b.id).kyc_status == "verified"
    business_date.set_business_date(db, start + timedelta(days=3))
    assert borrower_on_db(db, b.id).kyc_status == "expired"
    assert [x.id for x in borrowers.list_borrowers(db, kyc="expired")] == [b.id]
    assert borrowers.list_borrowers(db, kyc="verified") == []
    # A new check decides; the evidence before it stays.
    borrowers.record_kyc_check(
        db, b.id, KycEvidence(KycOutcome.REJECTED, "passport", "P 5566778", note="forged")
    )
    view = borrowers.get_borrower(db, b.id)
    assert view.borrower.kyc_status == "rejected"
    assert [c.outcome.value for c in view.kyc_checks] == ["rejected", "verified"]
    assert "P 5566778" not in str(text_values(db))


def borrower_on_db(db: Database, borrower_id: int) -> borrowers.Borrower:
    with db.reading() as conn:
        return borrower_on(conn, borrower_id)


def test_screening_refers_a_hit_and_a_second_person_clears_it(db: Database) -> None:
    officer = as_user(db, "olive", "loan_officer")
    approver = as_user(db, "carl", "credit_approver")
    risk = as_user(db, "rita", "risk_manager")
    # No list yet: not screened (never "clear" by default).
    early = borrowers.create_borrower(officer, person("Nadia Notreal", LISTED[1]))
    assert early.screening_status == "not-screened"
    loaded = borrowers.load_watch_list(risk, demo_list())
    assert (loaded.outcome, loaded.watch_list.version, loaded.watch_list.entry_count) == (
        "loaded",
        1,
        10,
    )
    assert loaded.screened is not None and loaded.screened.new_hits == 1
    assert borrower_on_db(db, early.id).screening_status == "pending"

    plain = borrowers.create_borrower(officer, person("Jane Ordinary"))
    assert plain.screening_status == "clear"
    [hit] = borrowers.list_hits(db, status="pending")
    assert (hit.borrower_id, hit.entry_reference, hit.score, hit.dob_match) == (
        early.id,
        "SYN-0009",
        100,
        "exact",
    )
    # A risk manager may make and approve, never both for one hit.
    pending = borrowers.submit_resolution(risk, hit.id, "clear", "passport shows another DOB")
    assert (pending.command, pending.status, pending.maker) == (
        "screening.resolve",
        "pending",
        "rita",
    )
    with pytest.raises(ScreeningHitUnderReview):
        borrowers.submit_resolution(officer, hit.id, "confirm", "second thoughts")
    with pytest.raises(MakerCannotApprove):
        approvals.approve(risk, pending.id)
    with pytest.raises(PermissionDenied):
        approvals.approve(officer, pending.id)
    assert borrower_on_db(db, early.id).screening_status == "pending"
    decided = approvals.approve(approver, pending.id)
    assert decided.result == {
        "hit_id": hit.id,
        "status": "cleared",
        "borrower_id": early.id,
        "screening_status": "clear",
    }
    [cleared] = borrowers.list_hits(db, borrower_id=early.id)
    assert (cleared.status, cleared.resolved_by, cleared.approved_by) == (
        "cleared",
        "rita",
        "carl",
    )
    assert borrower_on_db(db, early.id).screening_status == "clear"
    with pytest.raises(ScreeningHitResolved):
        borrowers.submit_resolution(officer, hit.id, "confirm", "again")
    # Screening again (the same list, or the name's words in another order) refers nothing new.
    assert borrowers.screen_borrower(officer, early.id).new_hits == ()
    borrowers.update_borrower(officer, early.id, BorrowerUpdate(name="Notreal Nadia"))
    assert borrowers.list_hits(db, status="pending") == []
    # The same entries again: no new version, nobody screened.
    again = borrowers.load_watch_list(db, demo_list())
    assert (again.outcome, again.watch_list.version, again.screened) == ("unchanged", 1, None)


def test_a_confirmed_hit_marks_the_borrower(db: Database) -> None:
    borrowers.load_watch_list(db, demo_list())
    officer = as_user(db, "olive", "loan_officer")
    risk = as_user(db, "rita", "risk_manager")
    listed = borrowers.create_borrower(officer, person(*LISTED))
    assert listed.screening_status == "pending"
    [hit] = borrowers.list_hits(db, borrower_id=listed.id)
    pending = borrowers.submit_resolution(officer, hit.id, "confirm", "same person, same DOB")
    rejected = approvals.reject(risk, pending.id, "look again")
    assert rejected.status == "rejected"
    # After a rejection a new proposal may be made.
    pending = borrowers.submit_resolution(officer, hit.id, "confirm", "same person, checked")
    approvals.approve(risk, pending.id)
    assert borrower_on_db(db, listed.id).screening_status == "hit"
    assert [b.id for b in borrowers.list_borrowers(db, screening="hit")] == [listed.id]


def test_a_name_change_is_screened_again(db: Database) -> None:
    borrowers.load_watch_list(db, demo_list())
    b = borrowers.create_borrower(db, person("Grace Hopper", LISTED[1]))
    assert b.screening_status == "clear"
    changed = borrowers.update_borrower(db, b.id, BorrowerUpdate(name="Nadia Notreal"))
    assert changed.screening_status == "pending"
    # An income change is no reason to screen again.
    results = count(db, "screening_results")
    borrowers.update_borrower(db, b.id, BorrowerUpdate(monthly_income_minor=1))
    assert count(db, "screening_results") == results


def test_groups_and_the_decision_engine_reads(db: Database) -> None:
    a = borrowers.create_borrower(db, person("Ann Household"))
    b = borrowers.create_borrower(db, person("Ben Household"))
    c = borrowers.create_borrower(db, person("Cat Alone"))
    borrowers.set_group(db, a.id, "Household 12")
    joined = borrowers.set_group(db, b.id, "Household 12")
    assert (joined.group_name, joined.group_id) == (
        "Household 12",
        borrower_on_db(db, a.id).group_id,
    )
    with pytest.raises(BorrowerInvalid) as refused:
        borrowers.set_group(db, c.id, "Household 12", "companies")
    assert refused.value.details == {"field": "group_kind"}
    assert joined.group_id is not None
    with db.reading() as conn:
        assert group_members_on(conn, joined.group_id) == [a.id, b.id]
        seen = borrower_on(conn, a.id)
    assert (seen.kind, seen.monthly_income_minor, seen.monthly_obligations_minor) == (
        "person",
        450_000,
        50_000,
    )
    assert (seen.currency, seen.kyc_status, seen.screening_status) == (
        "USD",
        "pending",
        "not-screened",
    )
    assert borrowers.get_borrower(db, a.id).group_members == (a.id, b.id)
    left = borrowers.set_group(db, b.id, None)
    assert left.group_id is None
    assert [x.id for x in borrowers.list_borrowers(db, group_id=joined.group_id)] == [a.id]
    assert [x.id for x in borrowers.list_borrowers(db, name="HOUSE")] == [a.id, b.id]
    assert borrowers.list_borrowers(db, name="%") == []


def test_bad_input_is_one_typed_error_and_writes_nothing(db: Database) -> None:
    b = borrowers.create_borrower(db, person())
    before = table_contents(db)
    future = today(db) + timedelta(days=1)
    for attempt, code in (
        (lambda: borrowers.get_borrower(db, 999), "BORROWER_NOT_FOUND"),
        (lambda: borrowers.create_borrower(db, person(date_of_birth=future)), "BORROWER_INVALID"),
        (
            lambda: borrowers.update_borrower(db, b.id, BorrowerUpdate(date_of_birth=future)),
            "BORROWER_INVALID",
        ),
        (
            lambda: borrowers.update_borrower(db, 999, BorrowerUpdate(name="X")),
            "BORROWER_NOT_FOUND",
        ),
        (lambda: borrowers.update_borrower(db, b.id, BorrowerUpdate()), "BORROWER_INVALID"),
        (
            lambda: borrowers.record_kyc_check(
                db, 999, KycEvidence(KycOutcome.PENDING, "passport", "P1")
            ),
            "BORROWER_NOT_FOUND",
        ),
        (
            lambda: borrowers.record_kyc_check(
                db, b.id, KycEvidence(KycOutcome.VERIFIED, "passport", "P1")
            ),
            "KYC_EVIDENCE_INVALID",
        ),
        (lambda: borrowers.screen_borrower(db, 999), "BORROWER_NOT_FOUND"),
        (lambda: borrowers.submit_resolution(db, 999, "clear", "x"), "SCREENING_HIT_NOT_FOUND"),
        (lambda: borrowers.submit_resolution(db, 1, "clear", "  "), "INVALID_INPUT"),
        (lambda: borrowers.list_borrowers(db, kyc="golden"), "INVALID_INPUT"),
    ):
        with pytest.raises(Exception) as refused:
            attempt()
        assert getattr(refused.value, "code", None) == code, (code, refused.value)
        assert table_contents(db) == before, code
    with pytest.raises(BorrowerNotFound):
        borrower_on_db(db, 999)
