"""Borrowers and their KYC (pure).

A borrower is a person or a business. Income and obligations are integer minor
units in the borrower's currency. KYC is a list of recorded checks (evidence);
the status as of a business date is a function of the latest check and that
date: a verified check whose evidence ran out before the business date counts
as expired.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from lendcore.errors import InvalidInput, LendcoreError
from lendcore.money import currency, is_currency, parse_minor

# Limits: what a person types in a form, not a document.
NAME_LENGTH_MAX: Final = 200
TEXT_LENGTH_MAX: Final = 200
ADDRESS_LENGTH_MAX: Final = 500
NATIONAL_ID_LENGTH_MAX: Final = 64
NATIONAL_ID_LENGTH_MIN: Final = 4
NOTE_LENGTH_MAX: Final = 500
# Nobody alive was born before this; a registration this old is a typo.
EARLIEST_DATE: Final = date(1900, 1, 1)
# 10^15 minor units: a trillion dollars a month is nobody's income.
AMOUNT_MINOR_MAX: Final = 10**15
# Masked identifiers show their last characters only.
MASK_VISIBLE: Final = 3
MASK_PREFIX: Final = "*****"


class BorrowerInvalid(InvalidInput):
    """A borrower field is missing or wrong; `details["field"]` names it."""

    code = "BORROWER_INVALID"


class KycEvidenceInvalid(InvalidInput):
    code = "KYC_EVIDENCE_INVALID"


class BorrowerKind(StrEnum):
    PERSON = "person"
    BUSINESS = "business"


class EmploymentStatus(StrEnum):
    EMPLOYED = "employed"
    SELF_EMPLOYED = "self_employed"
    UNEMPLOYED = "unemployed"
    RETIRED = "retired"
    STUDENT = "student"
    OTHER = "other"


class KycStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    EXPIRED = "expired"


class KycOutcome(StrEnum):
    """What one check found (expiry is a matter of date, never recorded)."""

    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class ScreeningStatus(StrEnum):
    NOT_SCREENED = "not-screened"
    CLEAR = "clear"
    # Referred: at least one hit awaits a person's decision.
    PENDING = "pending"
    # A person confirmed a hit: the borrower is on a list.
    HIT = "hit"


class GroupKind(StrEnum):
    HOUSEHOLD = "household"
    COMPANIES = "companies"


DOCUMENT_TYPES: Final = frozenset(
    {"passport", "national_id_card", "driving_licence", "residence_permit", "company_registry"}
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{5,32}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class BorrowerDetails:
    """What a loan officer enters for a new borrower."""

    kind: BorrowerKind
    name: str
    currency: str
    date_of_birth: date | None = None
    registered_on: date | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    country: str | None = None
    national_id: str | None = None
    monthly_income_minor: int = 0
    monthly_obligations_minor: int = 0
    employment_status: EmploymentStatus | None = None
    employer: str | None = None
    employed_since: date | None = None


# Fields `update` may change; None in BorrowerUpdate leaves a field as it is.
UPDATABLE_FIELDS: Final = (
    "name",
    "date_of_birth",
    "registered_on",
    "email",
    "phone",
    "address",
    "country",
    "national_id",
    "monthly_income_minor",
    "monthly_obligations_minor",
    "currency",
    "employment_status",
    "employer",
    "employed_since",
)


@dataclass(frozen=True, slots=True)
class BorrowerUpdate:
    """A partial change: every field left None stays as it is."""

    name: str | None = None
    date_of_birth: date | None = None
    registered_on: date | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    country: str | None = None
    national_id: str | None = None
    monthly_income_minor: int | None = None
    monthly_obligations_minor: int | None = None
    currency: str | None = None
    employment_status: EmploymentStatus | None = None
    employer: str | None = None
    employed_since: date | None = None

    def changed_fields(self) -> tuple[str, ...]:
        return tuple(f for f in UPDATABLE_FIELDS if getattr(self, f) is not None)


@dataclass(frozen=True, slots=True)
class KycEvidence:
    """One KYC check as a loan officer records it."""

    outcome: KycOutcome
    document_type: str
    document_number: str
    checked_on: date | None = None  # default: the business date
    valid_until: date | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class KycCheck:
    """A recorded check (append-only), with the document number masked."""

    id: int
    borrower_id: int
    outcome: KycOutcome
    document_type: str
    document_number_masked: str
    checked_by: str
    checked_on: date
    valid_until: date | None
    note: str
    recorded_at: str


@dataclass(frozen=True, slots=True)
class Borrower:
    """A borrower as the decision engine and the screens read it.

    `kyc_status` and `screening_status` are as of the business date of the read.
    The national id appears only masked.
    """

    id: int
    kind: str
    name: str
    date_of_birth: date | None
    registered_on: date | None
    monthly_income_minor: int
    monthly_obligations_minor: int
    currency: str
    employment_status: str | None
    group_id: int | None
    kyc_status: str
    screening_status: str
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    country: str | None = None
    national_id_masked: str | None = None
    employer: str | None = None
    employed_since: date | None = None
    group_name: str | None = None
    kyc_valid_until: date | None = None
    created_by: str = ""
    created_on: date | None = None
    updated_at: str = ""


# --- validation --------------------------------------------------------------------------


def _fail(field: str, message: str) -> BorrowerInvalid:
    return BorrowerInvalid(f"borrower {field}: {message}", field=field)


def clean_text(value: str | None, field: str, length_max: int = TEXT_LENGTH_MAX) -> str | None:
    """Trimmed text with inner runs of whitespace made one space; None for blank."""
    if value is None:
        return None
    if "\x00" in value:
        raise _fail(field, "contains a NUL character")
    cleaned = " ".join(value.split())
    if len(cleaned) > length_max:
        raise _fail(field, f"has at most {length_max} characters")
    return cleaned or None


def normalise_national_id(value: str) -> str:
    """The form that is hashed for matching: upper case, no spaces, dashes, dots or slashes."""
    return re.sub(r"[\s./-]", "", value).upper()


def check_national_id(value: str) -> str:
    normalised = normalise_national_id(value)
    if not NATIONAL_ID_LENGTH_MIN <= len(normalised) <= NATIONAL_ID_LENGTH_MAX:
        raise _fail(
            "national_id",
            f"needs {NATIONAL_ID_LENGTH_MIN} to {NATIONAL_ID_LENGTH_MAX} letters or digits",
        )
    if not normalised.isalnum() or not normalised.isascii():
        raise _fail("national_id", "has letters and digits only (and spaces, dashes, dots)")
    return normalised


def mask(value: str | None) -> str | None:
    """`*****123`: the last three characters, and only when there are enough to hide."""
    if value is None:
        return None
    if len(value) <= 2 * MASK_VISIBLE:
        return MASK_PREFIX
    return MASK_PREFIX + value[-MASK_VISIBLE:]


def amount_minor(text: str, currency_code: str, field: str) -> int:
    """A decimal amount in major units ("3000.00") as minor units of the currency;
    a bad amount or currency is refused naming `field`."""
    code = currency_code.upper()
    if not is_currency(code):
        raise _fail("currency", f"{currency_code!r} is not an ISO 4217 currency")
    try:
        return parse_minor(text, currency(code).exponent, currency_code=code)
    except LendcoreError as exc:
        raise _fail(field, exc.message) from None


def _check_amount(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, "is an integer number of minor units")
    if not 0 <= value <= AMOUNT_MINOR_MAX:
        raise _fail(field, f"is between 0 and {AMOUNT_MINOR_MAX} minor units")


def _check_past_date(value: date | None, field: str, business_date: date) -> None:
    if value is None:
        return
    if value > business_date:
        raise _fail(field, f"{value.isoformat()} is after the business date {business_date}")
    if value < EARLIEST_DATE:
        raise _fail(field, f"{value.isoformat()} is before {EARLIEST_DATE.isoformat()}")


def validate_details(details: BorrowerDetails, business_date: date) -> BorrowerDetails:
    """The details cleaned and checked (raises BorrowerInvalid naming the field).

    An adult-age rule is policy, for the decision engine: here a date of birth
    need only be a real date in the past.
    """
    try:
        kind = BorrowerKind(details.kind)
    except ValueError:
        raise _fail("kind", "is person or business") from None
    name = clean_text(details.name, "name", NAME_LENGTH_MAX)
    if name is None:
        raise _fail("name", "is required")
    if kind is BorrowerKind.PERSON:
        if details.date_of_birth is None:
            raise _fail("date_of_birth", "is required for a person")
        if details.registered_on is not None:
            raise _fail("registered_on", "is for a business, not a person")
    else:
        if details.registered_on is None:
            raise _fail("registered_on", "is required for a business")
        if details.date_of_birth is not None:
            raise _fail("date_of_birth", "is for a person, not a business")
        if details.employment_status is not None or details.employer is not None:
            raise _fail("employment_status", "is for a person, not a business")
    _check_past_date(details.date_of_birth, "date_of_birth", business_date)
    _check_past_date(details.registered_on, "registered_on", business_date)
    _check_past_date(details.employed_since, "employed_since", business_date)
    code = (details.currency or "").upper()
    if not is_currency(code):
        raise _fail("currency", f"{details.currency!r} is not an ISO 4217 currency")
    _check_amount(details.monthly_income_minor, "monthly_income_minor")
    _check_amount(details.monthly_obligations_minor, "monthly_obligations_minor")
    email = clean_text(details.email, "email")
    if email is not None and not _EMAIL.match(email):
        raise _fail("email", f"{email!r} is not an email address")
    phone = clean_text(details.phone, "phone")
    if phone is not None and not _PHONE.match(phone):
        raise _fail("phone", "has digits, spaces, dashes, brackets and a leading + only")
    country = clean_text(details.country, "country")
    if country is not None:
        country = country.upper()
        if not _COUNTRY.match(country):
            raise _fail("country", "is an ISO 3166 two-letter code")
    national_id = None
    if details.national_id is not None and details.national_id.strip():
        check_national_id(details.national_id)
        national_id = details.national_id.strip()
    employment = None
    if details.employment_status is not None:
        try:
            employment = EmploymentStatus(details.employment_status)
        except ValueError:
            allowed = ", ".join(e.value for e in EmploymentStatus)
            raise _fail("employment_status", f"is one of {allowed}") from None
    return BorrowerDetails(
        kind=kind,
        name=name,
        currency=code,
        date_of_birth=details.date_of_birth,
        registered_on=details.registered_on,
        email=email,
        phone=phone,
        address=clean_text(details.address, "address", ADDRESS_LENGTH_MAX),
        country=country,
        national_id=national_id,
        monthly_income_minor=details.monthly_income_minor,
        monthly_obligations_minor=details.monthly_obligations_minor,
        employment_status=employment,
        employer=clean_text(details.employer, "employer"),
        employed_since=details.employed_since,
    )


def apply_update(current: BorrowerDetails, change: BorrowerUpdate) -> BorrowerDetails:
    """The details after a partial change (validate the result with validate_details)."""
    values = {f: getattr(current, f) for f in ("kind", *UPDATABLE_FIELDS)}
    for field in change.changed_fields():
        values[field] = getattr(change, field)
    return BorrowerDetails(**values)


def validate_evidence(evidence: KycEvidence, business_date: date) -> KycEvidence:
    def fail(field: str, message: str) -> KycEvidenceInvalid:
        return KycEvidenceInvalid(f"KYC evidence {field}: {message}", field=field)

    try:
        outcome = KycOutcome(evidence.outcome)
    except ValueError:
        raise fail("outcome", "is pending, verified or rejected") from None
    if evidence.document_type not in DOCUMENT_TYPES:
        raise fail("document_type", f"is one of {', '.join(sorted(DOCUMENT_TYPES))}")
    number = " ".join((evidence.document_number or "").split())
    if not 1 <= len(number) <= NATIONAL_ID_LENGTH_MAX or "\x00" in number:
        raise fail("document_number", f"has 1 to {NATIONAL_ID_LENGTH_MAX} characters")
    checked_on = evidence.checked_on or business_date
    if checked_on > business_date:
        raise fail("checked_on", f"{checked_on} is after the business date {business_date}")
    if checked_on < EARLIEST_DATE:
        raise fail("checked_on", f"{checked_on} is before {EARLIEST_DATE}")
    if outcome is KycOutcome.VERIFIED:
        if evidence.valid_until is None:
            raise fail("valid_until", "is required when the check verified the borrower")
        if evidence.valid_until < checked_on:
            raise fail("valid_until", "is before the check")
    if len(evidence.note) > NOTE_LENGTH_MAX or "\x00" in evidence.note:
        raise fail("note", f"has at most {NOTE_LENGTH_MAX} characters")
    return KycEvidence(
        outcome=outcome,
        document_type=evidence.document_type,
        document_number=number,
        checked_on=checked_on,
        valid_until=evidence.valid_until,
        note=evidence.note.strip(),
    )


# --- status as of a date ----------------------------------------------------------------


def kyc_status(outcome: str | None, valid_until: date | None, business_date: date) -> KycStatus:
    """The KYC status of the latest check as of `business_date`: no check is pending;
    verified evidence valid until a day before the business date is expired."""
    if outcome is None or outcome == KycOutcome.PENDING:
        return KycStatus.PENDING
    if outcome == KycOutcome.REJECTED:
        return KycStatus.REJECTED
    if valid_until is None or valid_until < business_date:
        return KycStatus.EXPIRED
    return KycStatus.VERIFIED


def latest_check(checks: Sequence[KycCheck]) -> KycCheck | None:
    """The check that decides the status: the last one recorded."""
    return max(checks, key=lambda c: c.id, default=None)
