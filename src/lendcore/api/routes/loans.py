"""Loans: book, disburse, repay, reverse, waive, reschedule, write off, read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb, IdempotencyKey, respond
from lendcore.api.routes.common import Cursor, Limit, RecordId, after_from, next_cursor
from lendcore.api.routing import Route
from lendcore.api.schemas import AMOUNT_PATTERN, ApprovalPublic, IsoDate, Page, Strict
from lendcore.presentation import approval_doc, loan_doc, loan_summary_doc
from lendcore.services import loans

router = APIRouter(prefix="/v1", tags=["loans"], route_class=Route)

RATE_PATTERN = r"^[0-9]{1,2}(\.[0-9]{1,10})?$"


class DisbursementCreate(Strict):
    amount: str | None = Field(
        default=None, pattern=AMOUNT_PATTERN, description="Default: all that is left."
    )
    value_date: IsoDate | None = None


class RepaymentCreate(Strict):
    amount: str = Field(pattern=AMOUNT_PATTERN)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    value_date: IsoDate | None = None


class RepaymentReversal(Strict):
    seq: int = Field(
        ge=1, le=2**31 - 1, description="The repayment's number in the loan's history."
    )
    reason: str = Field(min_length=1, max_length=500)


class WaiverCreate(Strict):
    component: Literal["penalty", "fee", "interest"]
    amount: str = Field(pattern=AMOUNT_PATTERN)


class RescheduleCreate(Strict):
    annual_rate: str | None = Field(default=None, pattern=RATE_PATTERN)
    extend_by: int = Field(default=0, ge=0, le=600)
    payment_holiday: int = Field(default=0, ge=0, le=24)


class WriteOffCreate(Strict):
    reason: str = Field(min_length=1, max_length=500)


class LoanSummaryPublic(BaseModel):
    id: int
    product: str
    product_version: int
    currency: str
    borrower: str | None
    approved: str
    status: str
    principal_outstanding: str
    overdue: str
    days_past_due: int
    state_as_of: str | None


class InstalmentPublic(BaseModel):
    number: int
    due_date: str | None
    principal: str
    interest: str
    fees: str
    penalties: str
    total: str
    paid: dict[str, str]
    waived: dict[str, str]
    outstanding: str
    status: Literal["paid", "due", "overdue", "future"]


class LoanPublic(BaseModel):
    id: int
    product: str
    product_version: int
    currency: str
    borrower: str | None
    approved: str
    terms: dict[str, Any]
    status: str
    as_of: str | None
    balances: dict[str, str]
    arrears: dict[str, Any]
    closed_on: str | None
    written_off_on: str | None
    instalments: list[InstalmentPublic]
    history: list[dict[str, Any]] = Field(
        description="A page of the loan's events, oldest first: the latest ones, or "
        "those before `history_cursor`."
    )
    history_next_cursor: str | None = Field(
        description="Pass as `history_cursor` to read the events before this page; "
        "null when the page starts at the first event."
    )
    allocations: list[dict[str, Any]] = Field(
        description="How each repayment in `history` was applied."
    )
    ledger: dict[str, dict[str, str]]


def _loan(view: loans.LoanView) -> LoanPublic:
    return LoanPublic(**loan_doc(view))


@router.get("/loans", response_model=Page[LoanSummaryPublic])
def list_loans(
    db: ActingDb,
    status: str | None = Query(default=None, max_length=16),
    product: str | None = Query(default=None, max_length=64),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[LoanSummaryPublic]:
    found = loans.list_loans(
        db, status=status, product_code=product, after_id=after_from(cursor), limit=limit
    )
    return Page[LoanSummaryPublic](
        items=[LoanSummaryPublic(**loan_summary_doc(s)) for s in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


HistoryCursor = Annotated[
    str | None,
    Query(
        description="A previous read's history_next_cursor: the events before it.",
        max_length=20,
    ),
]
HistoryLimit = Annotated[int, Query(ge=1, le=loans.HISTORY_PAGE_MAX)]


@router.get("/loans/{loan_id}", response_model=LoanPublic)
def get_loan(
    loan_id: RecordId,
    db: ActingDb,
    history_cursor: HistoryCursor = None,
    history_limit: HistoryLimit = loans.HISTORY_PAGE_DEFAULT,
) -> LoanPublic:
    """The loan whole: balances, arrears, schedule with paid and unpaid, and a page
    of its history (the latest events; older ones with `history_cursor`)."""
    before = None if history_cursor is None else after_from(history_cursor)
    return _loan(loans.get_loan(db, loan_id, history_before=before, history_limit=history_limit))


@router.post("/loans/{loan_id}/disbursements", response_model=LoanPublic, status_code=201)
def disburse(
    loan_id: RecordId,
    body: DisbursementCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def produce() -> LoanPublic:
        return _loan(
            loans.disburse(
                db, loan_id, body.amount, value_date=body.value_date, idempotency_key=key
            )
        )

    return respond(request, db, key, body, produce)


@router.post("/loans/{loan_id}/repayments", response_model=LoanPublic, status_code=201)
def repay(
    loan_id: RecordId,
    body: RepaymentCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A repayment, applied by the product's waterfall; a past value date replays the loan."""

    def produce() -> LoanPublic:
        return _loan(
            loans.repay(
                db,
                loan_id,
                body.amount,
                body.currency,
                value_date=body.value_date,
                idempotency_key=key,
            )
        )

    return respond(request, db, key, body, produce)


@router.post("/loans/{loan_id}/repayment-reversals", response_model=LoanPublic, status_code=201)
def reverse_repayment(
    loan_id: RecordId,
    body: RepaymentReversal,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def produce() -> LoanPublic:
        return _loan(loans.reverse_repayment(db, loan_id, body.seq, body.reason))

    return respond(request, db, key, body, produce)


def _pending(pending: Any) -> ApprovalPublic:
    return ApprovalPublic(**approval_doc(pending))


@router.post("/loans/{loan_id}/waivers", response_model=ApprovalPublic, status_code=202)
def waive(
    loan_id: RecordId,
    body: WaiverCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A waiver request: pending until a credit approver approves it."""

    def produce() -> ApprovalPublic:
        return _pending(loans.waive(db, loan_id, body.component, body.amount))

    return respond(request, db, key, body, produce, status_code=202)


@router.post("/loans/{loan_id}/reschedules", response_model=ApprovalPublic, status_code=202)
def reschedule(
    loan_id: RecordId,
    body: RescheduleCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A reschedule request: pending until a credit approver approves it."""

    def produce() -> ApprovalPublic:
        return _pending(
            loans.reschedule(
                db,
                loan_id,
                annual_rate=body.annual_rate,
                extend_by=body.extend_by,
                payment_holiday=body.payment_holiday,
            )
        )

    return respond(request, db, key, body, produce, status_code=202)


@router.post("/loans/{loan_id}/write-offs", response_model=ApprovalPublic, status_code=202)
def write_off(
    loan_id: RecordId,
    body: WriteOffCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A write-off request: pending until a credit approver or risk manager approves it."""

    def produce() -> ApprovalPublic:
        return _pending(loans.write_off(db, loan_id, body.reason))

    return respond(request, db, key, body, produce, status_code=202)


class AccrualRunPublic(BaseModel):
    business_date: str
    loans_seen: int
    loans_changed: int
    entry_ids: list[int]


@router.post("/loan-accruals", response_model=AccrualRunPublic, status_code=201)
def accrue(request: Request, db: ActingDb, key: IdempotencyKey = None) -> JSONResponse:
    """Recognise the whole book's accrual and dues up to the business date."""

    def produce() -> AccrualRunPublic:
        run = loans.accrue_book(db)
        return AccrualRunPublic(
            business_date=run.business_date.isoformat(),
            loans_seen=run.loans_seen,
            loans_changed=run.loans_changed,
            entry_ids=list(run.entry_ids),
        )

    return respond(request, db, key, None, produce)
