"""Borrower details, KYC status by date, masking and the data key (pure)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from lendcore.audit import redact, to_plain
from lendcore.origination.borrowers import (
    BorrowerDetails,
    BorrowerInvalid,
    BorrowerKind,
    BorrowerUpdate,
    KycEvidence,
    KycEvidenceInvalid,
    KycOutcome,
    KycStatus,
    amount_minor,
    apply_update,
    kyc_status,
    mask,
    normalise_national_id,
    validate_details,
    validate_evidence,
)
from lendcore.origination.protect import (
    DataKeyError,
    DataKeys,
    generate_key,
    load_or_create_key_file,
    parse_key,
)

TODAY = date(2026, 6, 30)


def person(**changes: object) -> BorrowerDetails:
    values: dict[str, object] = {
        "kind": BorrowerKind.PERSON,
        "name": "  Ada   Lovelace ",
        "currency": "usd",
        "date_of_birth": date(1990, 12, 10),
        "national_id": "AB-123 456",
        "monthly_income_minor": 500_000,
        "email": "ada@example.org",
    }
    values.update(changes)
    return BorrowerDetails(**values)  # type: ignore[arg-type]


def test_details_are_cleaned() -> None:
    valid = validate_details(person(country="ke"), TODAY)
    assert (valid.name, valid.currency, valid.country) == ("Ada Lovelace", "USD", "KE")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "   "}, "name"),
        ({"date_of_birth": None}, "date_of_birth"),
        ({"date_of_birth": date(2026, 7, 1)}, "date_of_birth"),
        ({"date_of_birth": date(1899, 12, 31)}, "date_of_birth"),
        ({"registered_on": date(2000, 1, 1)}, "registered_on"),
        ({"currency": "XYZ"}, "currency"),
        ({"monthly_income_minor": -1}, "monthly_income_minor"),
        ({"monthly_obligations_minor": 1.5}, "monthly_obligations_minor"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"country": "Kenya"}, "country"),
        ({"national_id": "A1"}, "national_id"),
        ({"national_id": "ÄB123456"}, "national_id"),
        ({"employment_status": "astronaut"}, "employment_status"),
        ({"employed_since": date(2027, 1, 1)}, "employed_since"),
        ({"kind": "robot"}, "kind"),
    ],
)
def test_bad_details_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(BorrowerInvalid) as refused:
        validate_details(person(**changes), TODAY)
    assert refused.value.code == "BORROWER_INVALID"
    assert refused.value.details == {"field": field}
    assert field in refused.value.message


def test_a_business_has_a_registration_date_and_no_birth_or_employment() -> None:
    business = BorrowerDetails(
        BorrowerKind.BUSINESS, "Acme Ltd", "KES", registered_on=date(2010, 1, 1)
    )
    assert validate_details(business, TODAY).kind is BorrowerKind.BUSINESS
    for bad, field in (
        (BorrowerDetails(BorrowerKind.BUSINESS, "Acme", "KES"), "registered_on"),
        (
            BorrowerDetails(
                BorrowerKind.BUSINESS,
                "Acme",
                "KES",
                registered_on=date(2010, 1, 1),
                date_of_birth=date(1990, 1, 1),
            ),
            "date_of_birth",
        ),
    ):
        with pytest.raises(BorrowerInvalid) as refused:
            validate_details(bad, TODAY)
        assert refused.value.details["field"] == field


def test_update_changes_only_the_fields_given() -> None:
    current = validate_details(person(), TODAY)
    change = BorrowerUpdate(name="Ada King", monthly_obligations_minor=20_000)
    assert change.changed_fields() == ("name", "monthly_obligations_minor")
    updated = apply_update(current, change)
    assert (updated.name, updated.monthly_obligations_minor, updated.date_of_birth) == (
        "Ada King",
        20_000,
        current.date_of_birth,
    )


def test_amounts_parse_in_the_currency_and_name_the_field() -> None:
    assert amount_minor("3000.50", "usd", "monthly_income") == 300_050
    assert amount_minor("3000", "JPY", "monthly_income") == 3000
    with pytest.raises(BorrowerInvalid) as refused:
        amount_minor("30.001", "USD", "monthly_income")
    assert refused.value.details == {"field": "monthly_income"}


def test_kyc_status_as_of_the_business_date() -> None:
    assert kyc_status(None, None, TODAY) is KycStatus.PENDING
    assert kyc_status("pending", None, TODAY) is KycStatus.PENDING
    assert kyc_status("rejected", None, TODAY) is KycStatus.REJECTED
    assert kyc_status("verified", TODAY, TODAY) is KycStatus.VERIFIED
    # Valid until yesterday: expired today.
    assert kyc_status("verified", date(2026, 6, 29), TODAY) is KycStatus.EXPIRED


def test_evidence_rules() -> None:
    good = KycEvidence(KycOutcome.VERIFIED, "passport", " P 123 ", valid_until=date(2030, 1, 1))
    valid = validate_evidence(good, TODAY)
    assert (valid.checked_on, valid.document_number) == (TODAY, "P 123")
    for bad, field in (
        (KycEvidence(KycOutcome.VERIFIED, "passport", "P1"), "valid_until"),
        (KycEvidence(KycOutcome.VERIFIED, "selfie", "P1", valid_until=TODAY), "document_type"),
        (KycEvidence(KycOutcome.REJECTED, "passport", ""), "document_number"),
        (
            KycEvidence(KycOutcome.PENDING, "passport", "P1", checked_on=date(2026, 7, 1)),
            "checked_on",
        ),
        (
            KycEvidence(
                KycOutcome.VERIFIED,
                "passport",
                "P1",
                checked_on=TODAY,
                valid_until=date(2026, 6, 1),
            ),
            "valid_until",
        ),
    ):
        with pytest.raises(KycEvidenceInvalid) as refused:
            validate_evidence(bad, TODAY)
        assert refused.value.details == {"field": field}


def test_masking_shows_the_last_three_characters_only() -> None:
    assert mask(normalise_national_id("ab-123 4567")) == "*****567"
    assert mask("123456") == "*****"
    assert mask(None) is None


def test_the_audit_record_never_holds_the_identifiers() -> None:
    evidence = KycEvidence(KycOutcome.VERIFIED, "passport", "P9988", valid_until=TODAY)
    inputs = redact(to_plain({"details": person(), "evidence": evidence}))
    assert inputs["details"]["national_id"] == "***"
    assert inputs["evidence"]["document_number"] == "***"
    assert "AB-123" not in str(inputs) and "P9988" not in str(inputs)


# --- the data key ------------------------------------------------------------------------


def test_encryption_round_trip_binds_purpose_and_key() -> None:
    keys = parse_key(generate_key(), "test")
    token = keys.encrypt("AB-123 456", "national_id")
    assert token.startswith(f"v1.{keys.key_id}.") and "AB-123" not in token
    assert keys.decrypt(token, "national_id") == "AB-123 456"
    # A fresh nonce each time: the same id never encrypts to the same text.
    assert keys.encrypt("AB-123 456", "national_id") != token
    with pytest.raises(DataKeyError, match="altered or is not for this use"):
        keys.decrypt(token, "document_number")
    other = parse_key(generate_key(), "other")
    with pytest.raises(DataKeyError, match="encrypted with data key"):
        other.decrypt(token, "national_id")


def test_keyed_hash_is_stable_per_key_and_differs_between_keys() -> None:
    master = os.urandom(32)
    a, b = DataKeys.from_master(master), DataKeys.from_master(master)
    assert a.keyed_hash("AB123456") == b.keyed_hash("AB123456")
    assert a.keyed_hash("AB123456") != DataKeys.from_master(os.urandom(32)).keyed_hash("AB123456")
    assert len(a.keyed_hash("AB123456")) == 64


def test_bad_keys_are_refused() -> None:
    with pytest.raises(DataKeyError):
        parse_key("not base64!!", "env")
    with pytest.raises(DataKeyError):
        parse_key("c2hvcnQ=", "env")


def test_key_file_is_created_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "lendcore.db.key"
    first = load_or_create_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key_file(path).key_id == first.key_id
    assert [p.name for p in path.parent.iterdir()] == ["lendcore.db.key"]
    path.chmod(0o644)
    with pytest.raises(DataKeyError, match="chmod 600"):
        load_or_create_key_file(path)
