"""Borrowers, KYC checks, watch lists and screening hits.

The national id is accepted on POST and never returned but masked; the
Idempotency-Key fingerprint of a borrower is taken over the keyed hash of the id,
never the id itself.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb, IdempotencyKey, respond
from lendcore.api.routes.common import Cursor, Limit, RecordId, after_from, next_cursor
from lendcore.api.routing import Route
from lendcore.api.schemas import AMOUNT_PATTERN, ApprovalPublic, IsoDate, Page, Strict
from lendcore.origination.borrowers import (
    BorrowerDetails,
    BorrowerKind,
    EmploymentStatus,
    KycEvidence,
    KycOutcome,
    amount_minor,
    check_national_id,
)
from lendcore.origination.screening import CSV_BYTES_MAX, read_watch_list
from lendcore.presentation import (
    approval_doc,
    borrower_doc,
    borrower_view_doc,
    kyc_check_doc,
    screening_hit_doc,
    watch_list_doc,
    watch_list_load_doc,
)
from lendcore.services import borrowers
from lendcore.store.database import Database

router = APIRouter(prefix="/v1", tags=["borrowers"], route_class=Route)

CURRENCY_PATTERN = r"^[A-Za-z]{3}$"


class EmploymentIn(Strict):
    status: EmploymentStatus | None = None
    employer: str | None = Field(default=None, max_length=200)
    since: IsoDate | None = None


class BorrowerCreate(Strict):
    kind: BorrowerKind = BorrowerKind.PERSON
    name: str = Field(min_length=1, max_length=200)
    date_of_birth: IsoDate | None = Field(default=None, description="A person's.")
    registered_on: IsoDate | None = Field(default=None, description="A business's.")
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    national_id: str | None = Field(
        default=None,
        max_length=80,
        description="Stored encrypted; responses show `national_id_masked` only.",
    )
    currency: str = Field(pattern=CURRENCY_PATTERN)
    monthly_income: str = Field(default="0", pattern=AMOUNT_PATTERN)
    monthly_obligations: str = Field(default="0", pattern=AMOUNT_PATTERN)
    employment: EmploymentIn = Field(default_factory=EmploymentIn)


class KycCheckCreate(Strict):
    outcome: KycOutcome
    document_type: str = Field(max_length=32)
    document_number: str = Field(min_length=1, max_length=80, description="Stored encrypted.")
    checked_on: IsoDate | None = Field(default=None, description="Default: the business date.")
    valid_until: IsoDate | None = Field(default=None, description="Required when verified.")
    note: str = Field(default="", max_length=500)


class WatchListCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    csv: str = Field(
        max_length=CSV_BYTES_MAX,
        description="The CSV text: a header with name (required), date_of_birth, country, "
        "list, reference.",
    )
    source: str = Field(default="api", max_length=300)
    rescreen: bool = True


class HitResolution(Strict):
    decision: Literal["clear", "confirm"]
    note: str = Field(min_length=1, max_length=500)


class GroupPublic(BaseModel):
    id: int
    name: str | None


class EmploymentPublic(BaseModel):
    status: str | None
    employer: str | None
    since: str | None


class BorrowerPublic(BaseModel):
    id: int
    kind: str
    name: str
    date_of_birth: str | None
    registered_on: str | None
    email: str | None
    phone: str | None
    address: str | None
    country: str | None
    national_id_masked: str | None
    currency: str
    monthly_income: str
    monthly_obligations: str
    employment: EmploymentPublic
    group: GroupPublic | None
    kyc_status: str
    kyc_valid_until: str | None
    screening_status: str
    created_by: str
    created_on: str | None
    updated_at: str


class KycCheckPublic(BaseModel):
    id: int
    borrower_id: int
    outcome: str
    document_type: str
    document_number_masked: str
    checked_by: str
    checked_on: str | None
    valid_until: str | None
    note: str
    recorded_at: str


class HitEntryPublic(BaseModel):
    name: str
    reference: str | None
    date_of_birth: str | None
    birth_year: int | None
    country: str | None


class ScreeningHitPublic(BaseModel):
    id: int
    borrower_id: int
    borrower_name: str
    list: str
    entry: HitEntryPublic
    score: str = Field(description="0.00 to 100.00")
    name_score: str
    dob_match: str
    status: str
    approval_id: int | None
    resolved_by: str | None
    approved_by: str | None
    resolved_at: str | None
    resolution_note: str | None
    business_date: str | None
    created_at: str


class BorrowerDetailPublic(BorrowerPublic):
    group_members: list[int]
    kyc_checks: list[KycCheckPublic]
    screening_hits: list[ScreeningHitPublic]


class WatchListPublic(BaseModel):
    id: int
    name: str
    version: int
    source: str
    digest: str
    entry_count: int
    loaded_by: str
    business_date: str | None
    loaded_at: str


class ScreeningSummaryPublic(BaseModel):
    borrowers_screened: int
    new_hits: int
    by_status: dict[str, int]


class WatchListLoadPublic(BaseModel):
    outcome: Literal["loaded", "unchanged"]
    watch_list: WatchListPublic
    screened: ScreeningSummaryPublic | None


def _details(body: BorrowerCreate) -> BorrowerDetails:
    return BorrowerDetails(
        kind=body.kind,
        name=body.name,
        currency=body.currency,
        date_of_birth=body.date_of_birth,
        registered_on=body.registered_on,
        email=body.email,
        phone=body.phone,
        address=body.address,
        country=body.country,
        national_id=body.national_id,
        monthly_income_minor=amount_minor(body.monthly_income, body.currency, "monthly_income"),
        monthly_obligations_minor=amount_minor(
            body.monthly_obligations, body.currency, "monthly_obligations"
        ),
        employment_status=body.employment.status,
        employer=body.employment.employer,
        employed_since=body.employment.since,
    )


def _without_secret(db: Database, body: BorrowerCreate) -> BorrowerCreate:
    """The body as the idempotency fingerprint sees it: the national id as its keyed hash."""
    if body.national_id is None:
        return body
    hashed = borrowers.data_keys(db).keyed_hash(check_national_id(body.national_id))
    return body.model_copy(update={"national_id": hashed})


@router.post("/borrowers", response_model=BorrowerPublic, status_code=201)
def create_borrower(
    body: BorrowerCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """Onboard a borrower; screened against the watch lists in the same transaction."""
    details = _details(body)
    fingerprinted = _without_secret(db, body)

    def produce() -> BorrowerPublic:
        return BorrowerPublic(**borrower_doc(borrowers.create_borrower(db, details)))

    return respond(request, db, key, fingerprinted, produce)


@router.get("/borrowers", response_model=Page[BorrowerPublic])
def list_borrowers(
    db: ActingDb,
    kind: Literal["person", "business"] | None = None,
    kyc_status: Literal["pending", "verified", "rejected", "expired"] | None = None,
    screening_status: Literal["not-screened", "clear", "pending", "hit"] | None = None,
    group_id: int | None = Query(default=None, ge=1, le=2**63 - 1),
    name: str | None = Query(default=None, max_length=200, description="A part, any case."),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BorrowerPublic]:
    found = borrowers.list_borrowers(
        db,
        kind=kind,
        kyc=kyc_status,
        screening=screening_status,
        group_id=group_id,
        name=name,
        after_id=after_from(cursor),
        limit=limit,
    )
    return Page[BorrowerPublic](
        items=[BorrowerPublic(**borrower_doc(b)) for b in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


@router.get("/borrowers/{borrower_id}", response_model=BorrowerDetailPublic)
def get_borrower(borrower_id: RecordId, db: ActingDb) -> BorrowerDetailPublic:
    """A borrower whole: details, KYC evidence (newest first), screening hits, group members."""
    return BorrowerDetailPublic(**borrower_view_doc(borrowers.get_borrower(db, borrower_id)))


@router.post("/borrowers/{borrower_id}/kyc-checks", response_model=KycCheckPublic, status_code=201)
def record_kyc_check(
    borrower_id: RecordId,
    body: KycCheckCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record one KYC check with its evidence; the latest check decides the status."""
    evidence = KycEvidence(
        outcome=body.outcome,
        document_type=body.document_type,
        document_number=body.document_number,
        checked_on=body.checked_on,
        valid_until=body.valid_until,
        note=body.note,
    )
    hashed = borrowers.data_keys(db).keyed_hash(body.document_number)
    fingerprinted = body.model_copy(update={"document_number": hashed})

    def produce() -> KycCheckPublic:
        return KycCheckPublic(
            **kyc_check_doc(borrowers.record_kyc_check(db, borrower_id, evidence))
        )

    return respond(request, db, key, fingerprinted, produce)


@router.post("/watch-lists", response_model=WatchListLoadPublic, status_code=201)
def load_watch_list(
    body: WatchListCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """Load a watch list from CSV text as the next version of its name and screen
    every borrower again (unless `rescreen` is false)."""
    parsed = read_watch_list(body.csv, body.source, body.name)

    def produce() -> WatchListLoadPublic:
        return WatchListLoadPublic(
            **watch_list_load_doc(borrowers.load_watch_list(db, parsed, body.rescreen))
        )

    return respond(request, db, key, body, produce)


@router.get("/watch-lists", response_model=list[WatchListPublic])
def list_watch_lists(db: ActingDb) -> list[WatchListPublic]:
    """The latest version of every watch list."""
    return [WatchListPublic(**watch_list_doc(w)) for w in borrowers.list_watch_lists(db)]


@router.get("/screening-hits", response_model=Page[ScreeningHitPublic])
def list_hits(
    db: ActingDb,
    status: Literal["pending", "cleared", "confirmed"] | None = None,
    borrower_id: int | None = Query(default=None, ge=1, le=2**63 - 1),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ScreeningHitPublic]:
    found = borrowers.list_hits(
        db, status=status, borrower_id=borrower_id, after_id=after_from(cursor), limit=limit
    )
    return Page[ScreeningHitPublic](
        items=[ScreeningHitPublic(**screening_hit_doc(h)) for h in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


@router.post("/screening-hits/{hit_id}/resolution", response_model=ApprovalPublic, status_code=202)
def resolve_hit(
    hit_id: RecordId,
    body: HitResolution,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Propose to clear or confirm a hit: a credit approver or risk manager who is not
    the maker approves it (POST /v1/approvals/{id}/approve)."""

    def produce() -> ApprovalPublic:
        return ApprovalPublic(
            **approval_doc(borrowers.submit_resolution(db, hit_id, body.decision, body.note))
        )

    return respond(request, db, key, body, produce, status_code=202)
