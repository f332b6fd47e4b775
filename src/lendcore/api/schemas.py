"""Request and response bodies. Amounts are decimal strings in major units with
the currency beside them, never floats; the documents come from
lendcore.presentation so the CLI's --json and the API agree."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from lendcore.auth.actors import Role
from lendcore.ledger.model import AccountType, BalanceConstraint, NormalSide

AMOUNT_PATTERN = r"^[0-9]{1,18}(\.[0-9]{1,18})?$"
CODE_PATTERN = r"^[!-~]{1,64}$"
KEY_PATTERN = r"^[ -~]{1,128}$"

T = TypeVar("T")

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_only(value: Any) -> Any:
    # Pydantic's lax date parsing reads a number (or a numeric string) as Unix
    # time: `as_of=0` would silently mean 1970-01-01. Input dates are ISO 8601.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


# A date in a request: "YYYY-MM-DD" and nothing else.
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character (U+0000) in `value` is, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        found = nul_path(key, where) or nul_path(item, where)
        if found is not None:
            return found
    return None


class Strict(BaseModel):
    """A request body: no unknown fields, and no NUL in any text (PostgreSQL
    cannot store one, and no person means one)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        where = nul_path(data)
        if where is not None:
            raise ValueError(f"{where or 'text'} contains a NUL character (U+0000)")
        return data


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


# --- identity -----------------------------------------------------------------------


class TokenRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: str


class UserCreate(Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    roles: list[Role] = Field(min_length=1, max_length=7)
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=12, max_length=200)


class UserPublic(BaseModel):
    username: str
    display_name: str
    status: str
    roles: list[str]
    created_at: str
    has_password: bool


class ApiKeyCreate(Strict):
    username: str = Field(min_length=1, max_length=64)
    label: str = Field(default="", max_length=200)
    days: int = Field(default=90, ge=1, le=730)


class ApiKeyPublic(BaseModel):
    key_id: str
    username: str
    label: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    active: bool


class ApiKeyCreated(BaseModel):
    api_key: ApiKeyPublic
    token: str = Field(description="The key itself: shown once, never again.")


# --- ledger -------------------------------------------------------------------------


class AccountCreate(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    type: AccountType
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    parent: str | None = Field(default=None, pattern=CODE_PATTERN)
    balance_constraint: BalanceConstraint = BalanceConstraint.NONE
    normal_side: NormalSide | None = None


class AccountPublic(BaseModel):
    code: str
    name: str
    type: str
    currency: str
    normal_side: str
    parent: str | None
    status: str
    balance_constraint: str
    opened_on: date
    closed_on: date | None


class PostingIn(Strict):
    account: str = Field(pattern=CODE_PATTERN)
    side: Literal["debit", "credit"]
    amount: str = Field(pattern=AMOUNT_PATTERN, description='Major units, e.g. "250.00".')
    currency: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{3}$", description="Default: the account's currency."
    )


class PostingPublic(BaseModel):
    account: str
    side: Literal["debit", "credit"]
    amount: str
    currency: str


class EntryCreate(Strict):
    idempotency_key: str | None = Field(
        default=None,
        pattern=KEY_PATTERN,
        description="The entry's key; defaults to the Idempotency-Key header.",
    )
    postings: list[PostingIn] = Field(min_length=2, max_length=1000)
    description: str = Field(default="", max_length=500)
    value_date: IsoDate | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class EntryPublic(BaseModel):
    id: int
    idempotency_key: str
    business_date: date
    value_date: date
    recorded_at: str
    description: str
    metadata: dict[str, Any]
    reverses_entry_id: int | None
    hold_id: int | None
    replayed: bool
    postings: list[PostingPublic]


class ReversalCreate(Strict):
    idempotency_key: str | None = Field(default=None, pattern=KEY_PATTERN)
    description: str | None = Field(default=None, max_length=500)


class HoldCreate(Strict):
    idempotency_key: str | None = Field(default=None, pattern=KEY_PATTERN)
    debit_account: str = Field(pattern=CODE_PATTERN)
    credit_account: str = Field(pattern=CODE_PATTERN)
    amount: str = Field(pattern=AMOUNT_PATTERN)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    expires_on: IsoDate
    description: str = Field(default="", max_length=500)


class HoldPost(Strict):
    idempotency_key: str | None = Field(default=None, pattern=KEY_PATTERN)
    amount: str | None = Field(default=None, pattern=AMOUNT_PATTERN, description="Default: all.")


class HoldPublic(BaseModel):
    id: int
    idempotency_key: str
    debit_account: str
    credit_account: str
    amount: str
    currency: str
    status: str
    expires_on: date
    business_date: date
    resolved_on: date | None
    description: str


class BalancePublic(BaseModel):
    account: str
    currency: str
    normal_side: str
    as_of: date | None
    balance: str
    available: str
    debits_posted: str
    credits_posted: str
    debits_pending: str
    credits_pending: str


class TrialBalanceLine(BaseModel):
    code: str
    name: str
    type: str
    currency: str
    parent: str | None
    debit: str
    credit: str


class TrialBalanceTotal(BaseModel):
    currency: str
    debit: str
    credit: str


class TrialBalancePublic(BaseModel):
    as_of: date
    balanced: bool
    accounts: list[TrialBalanceLine]
    totals: list[TrialBalanceTotal]


class VerifyProblem(BaseModel):
    code: str
    message: str
    entry_id: int | None
    account: str | None
    seal_seq: int | None


class ChainHead(BaseModel):
    seq: int
    hash: str


class VerifyPublic(BaseModel):
    ok: bool
    entries_checked: int
    postings_checked: int
    seals_checked: int
    accounts_checked: int
    audit_records_checked: int
    chain_head: ChainHead
    first_bad_entry: int | None
    problems: list[VerifyProblem]


class BusinessDatePublic(BaseModel):
    business_date: date


class BusinessDateMove(Strict):
    business_date: IsoDate


# --- approvals, audit, events -----------------------------------------------------------


class ApprovalPublic(BaseModel):
    id: int
    command: str
    summary: str
    status: str
    maker: str
    business_date: date
    created_at: str
    checker: str | None
    decided_at: str | None
    note: str | None
    payload: dict[str, Any]
    result: dict[str, Any] | None


class ApprovalDecision(Strict):
    note: str = Field(default="", max_length=500)


class AuditRecordPublic(BaseModel):
    seq: int
    recorded_at: str
    business_date: date
    actor: str
    actor_kind: str
    roles: list[str]
    command: str
    request_id: str
    inputs: dict[str, Any]
    outcome: str
    error_code: str | None
    result: dict[str, Any]


class EventAggregate(BaseModel):
    type: str
    id: str


class EventPublic(BaseModel):
    event_id: str
    sequence: int
    type: str
    aggregate: EventAggregate
    business_date: str
    recorded_at: str
    data: dict[str, Any]


class FieldError(BaseModel):
    field: str = Field(description='Where the bad value is, e.g. "body.postings.0.amount".')
    message: str


class Problem(BaseModel):
    """An error, as an RFC 9457 problem document (application/problem+json)."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, for a person to act on.")
    code: str = Field(description="The stable error code: clients match on this.")
    instance: str = Field(description="The request path.")
    request_id: str | None
    errors: list[FieldError] | None = Field(
        default=None, description="Invalid input: one item per bad field."
    )


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    database: str
    schema_revision: str
    business_date: date
