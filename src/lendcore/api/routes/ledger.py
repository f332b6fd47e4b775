"""Accounts, journal entries, holds, balances, trial balance, verification, business date."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from lendcore.api.deps import ActingDb, IdempotencyKey, respond
from lendcore.api.routes.common import Cursor, Limit, RecordId, after_from, next_cursor
from lendcore.api.routing import Route
from lendcore.api.schemas import (
    AccountCreate,
    AccountPublic,
    ApprovalPublic,
    BalancePublic,
    BusinessDateMove,
    BusinessDatePublic,
    EntryCreate,
    EntryPublic,
    HoldCreate,
    HoldPost,
    HoldPublic,
    IsoDate,
    Page,
    ReversalCreate,
    TrialBalancePublic,
    VerifyPublic,
)
from lendcore.errors import InvalidInput
from lendcore.ledger.model import AccountSpec, EntrySpec
from lendcore.money import Money
from lendcore.presentation import (
    account_doc,
    approval_doc,
    balance_doc,
    entry_doc,
    hold_doc,
    trial_balance_doc,
    verify_doc,
)
from lendcore.services import business_date as business_date_service
from lendcore.services import ledger
from lendcore.services.manual_entries import submit_manual_entry, submit_reversal
from lendcore.services.verify import verify_ledger

router = APIRouter(prefix="/v1", tags=["ledger"], route_class=Route)


def _key(body_key: str | None, header_key: str | None, what: str) -> str:
    key = body_key or header_key
    if key is None:
        raise InvalidInput(
            f"{what} needs an idempotency key: the Idempotency-Key header or the body's idempotency_key"
        )
    return key


# --- accounts ------------------------------------------------------------------------


@router.post("/accounts", response_model=AccountPublic, status_code=201)
def open_account(
    body: AccountCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    def produce() -> AccountPublic:
        spec = AccountSpec(
            body.code,
            body.name,
            body.type,
            body.currency,
            body.normal_side,
            body.parent,
            body.balance_constraint,
        )
        return AccountPublic(**account_doc(ledger.open_account(db, spec)))

    return respond(request, db, key, body, produce)


@router.get("/accounts", response_model=list[AccountPublic])
def list_accounts(db: ActingDb) -> list[AccountPublic]:
    return [AccountPublic(**account_doc(a)) for a in ledger.list_accounts(db)]


@router.get("/accounts/{code}", response_model=AccountPublic)
def get_account(code: str, db: ActingDb) -> AccountPublic:
    return AccountPublic(**account_doc(ledger.get_account(db, code)))


@router.post("/accounts/{code}/close", response_model=AccountPublic)
def close_account(code: str, db: ActingDb) -> AccountPublic:
    return AccountPublic(**account_doc(ledger.close_account(db, code)))


@router.get("/accounts/{code}/balance", response_model=BalancePublic)
def account_balance(
    code: str,
    db: ActingDb,
    as_of: Annotated[IsoDate | None, Query(description="End of a past business date.")] = None,
) -> BalancePublic:
    return BalancePublic(**balance_doc(ledger.account_balance(db, code, as_of)))


# --- journal entries -------------------------------------------------------------------


@router.post("/journal-entries", response_model=ApprovalPublic, status_code=202)
def submit_entry(
    body: EntryCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """A manual journal entry: stored for a second accountant's approval (maker-checker)."""
    entry_key = _key(body.idempotency_key, key, "a journal entry")

    def produce() -> ApprovalPublic:
        lines = ledger.postings_from_text(
            db, [(p.side, p.account, p.amount, p.currency) for p in body.postings]
        )
        spec = EntrySpec(entry_key, lines, body.description, body.metadata, body.value_date)
        return ApprovalPublic(**approval_doc(submit_manual_entry(db, spec)))

    return respond(request, db, key, body, produce, status_code=202)


@router.get("/journal-entries", response_model=Page[EntryPublic])
def list_entries(
    db: ActingDb,
    account: str | None = None,
    business_date: IsoDate | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[EntryPublic]:
    found = ledger.list_entries(
        db, account=account, business_date=business_date, after_id=after_from(cursor), limit=limit
    )
    return Page[EntryPublic](
        items=[EntryPublic(**entry_doc(e)) for e in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


@router.get("/journal-entries/{entry_id}", response_model=EntryPublic)
def get_entry(entry_id: RecordId, db: ActingDb) -> EntryPublic:
    return EntryPublic(**entry_doc(ledger.get_entry(db, entry_id)))


@router.post("/journal-entries/{entry_id}/reversal", response_model=ApprovalPublic, status_code=202)
def submit_entry_reversal(
    entry_id: RecordId,
    body: ReversalCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Reverse an entry: stored for a second accountant's approval."""
    reversal_key = _key(body.idempotency_key, key, "a reversal")

    def produce() -> ApprovalPublic:
        return ApprovalPublic(
            **approval_doc(submit_reversal(db, entry_id, reversal_key, body.description))
        )

    return respond(request, db, key, body, produce, status_code=202)


# --- holds -----------------------------------------------------------------------------


@router.post("/holds", response_model=HoldPublic, status_code=201)
def place_hold(
    body: HoldCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    hold_key = _key(body.idempotency_key, key, "a hold")

    def produce() -> HoldPublic:
        hold = ledger.place_hold(
            db,
            idempotency_key=hold_key,
            debit_account=body.debit_account,
            credit_account=body.credit_account,
            amount_minor=Money.parse(body.amount, body.currency).amount_minor,
            currency=body.currency,
            expires_on=body.expires_on,
            description=body.description,
        )
        return HoldPublic(**hold_doc(hold))

    return respond(request, db, key, body, produce)


@router.get("/holds", response_model=Page[HoldPublic])
def list_holds(
    db: ActingDb, status: str | None = None, cursor: Cursor = None, limit: Limit = 50
) -> Page[HoldPublic]:
    found = ledger.list_holds(db, status=status, after_id=after_from(cursor), limit=limit)
    return Page[HoldPublic](
        items=[HoldPublic(**hold_doc(h)) for h in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


@router.get("/holds/{hold_id}", response_model=HoldPublic)
def get_hold(hold_id: RecordId, db: ActingDb) -> HoldPublic:
    return HoldPublic(**hold_doc(ledger.get_hold(db, hold_id)))


@router.post("/holds/{hold_id}/post", response_model=EntryPublic, status_code=201)
def post_hold(
    hold_id: RecordId, body: HoldPost, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    post_key = _key(body.idempotency_key, key, "posting a hold")

    def produce() -> EntryPublic:
        minor = None
        if body.amount is not None:
            minor = Money.parse(body.amount, ledger.get_hold(db, hold_id).currency).amount_minor
        entry = ledger.post_hold(db, hold_id, idempotency_key=post_key, amount_minor=minor)
        return EntryPublic(**entry_doc(entry))

    return respond(request, db, key, body, produce)


@router.post("/holds/{hold_id}/void", response_model=HoldPublic)
def void_hold(hold_id: RecordId, db: ActingDb) -> HoldPublic:
    return HoldPublic(**hold_doc(ledger.void_hold(db, hold_id)))


# --- reports ----------------------------------------------------------------------------


@router.get("/trial-balance", response_model=TrialBalancePublic)
def trial_balance(
    db: ActingDb, as_of: IsoDate | None = None, roll_up: bool = False
) -> TrialBalancePublic:
    return TrialBalancePublic(**trial_balance_doc(ledger.trial_balance(db, as_of, roll_up=roll_up)))


@router.get("/ledger/verify", response_model=VerifyPublic)
def verify(db: ActingDb) -> VerifyPublic:
    """Recompute the audit chain and every ledger invariant."""
    return VerifyPublic(**verify_doc(verify_ledger(db)))


@router.get("/business-date", response_model=BusinessDatePublic, tags=["calendar"])
def get_business_date(db: ActingDb) -> BusinessDatePublic:
    return BusinessDatePublic(business_date=business_date_service.business_date(db))


@router.post("/business-date", response_model=BusinessDatePublic, tags=["calendar"])
def move_business_date(body: BusinessDateMove, db: ActingDb) -> BusinessDatePublic:
    """Move the business date forward (never back)."""
    moved = business_date_service.set_business_date(db, body.business_date)
    return BusinessDatePublic(business_date=moved)
