"""Applications, decisions and credit policy."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb, IdempotencyKey, respond
from lendcore.api.routes.common import Cursor, Limit, RecordId, after_from, next_cursor
from lendcore.api.routes.loans import LoanPublic
from lendcore.api.routing import Route
from lendcore.api.schemas import AMOUNT_PATTERN, ApprovalPublic, Page, Strict
from lendcore.presentation import (
    application_doc,
    approval_doc,
    decision_doc,
    loan_doc,
    policy_doc,
    replay_doc,
)
from lendcore.services import applications as app_service
from lendcore.services import policies as policy_service

router = APIRouter(prefix="/v1", tags=["applications"], route_class=Route)


class ApplicationCreate(Strict):
    borrower_id: int = Field(ge=1, le=2**63 - 1)
    product: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    amount: str = Field(pattern=AMOUNT_PATTERN, description='Major units, e.g. "10000.00".')
    term: int = Field(ge=1, le=2600)
    purpose: str = Field(min_length=1, max_length=200)
    monthly_income: str = Field(pattern=AMOUNT_PATTERN)
    monthly_obligations: str = Field(default="0", pattern=AMOUNT_PATTERN)
    credit_profile: dict[str, float | int | None] = Field(
        default_factory=dict, description="The scorecard's characteristics (bureau or declared)."
    )


class PersonDecision(Strict):
    note: str = Field(min_length=1, max_length=500)


class OverrideCreate(Strict):
    outcome: Literal["approve", "decline"]
    reason: str = Field(min_length=1, max_length=500)


class Withdrawal(Strict):
    reason: str = Field(min_length=1, max_length=500)


class ApplicationPublic(BaseModel):
    id: int
    borrower_id: int
    product: str
    product_version: int
    currency: str
    amount: str
    term: int
    purpose: str
    status: str
    outcome: str | None
    decision_id: int | None
    decided_by: str | None
    entered_by: str
    loan_id: int | None
    business_date: str | None
    expires_on: str | None
    created_at: str


class ReasonPublic(BaseModel):
    code: str
    text: str
    characteristic: str
    points_lost: int


class ModelResultPublic(BaseModel):
    role: Literal["champion", "challenger"]
    version: str = Field(description="The model's version (its artifact's content hash).")
    kind: str
    score: int
    pd: str = Field(description="Probability of default, a decimal string (6 places).")
    reasons: list[ReasonPublic] = Field(
        description="The characteristics that lowered this model's score most, most first."
    )


class ApplicationDetailPublic(ApplicationPublic):
    champion: ModelResultPublic | None = Field(
        description="The champion's result, which decided the application (null until decided)."
    )
    challenger: ModelResultPublic | None = Field(
        description="The challenger's result, scored in shadow beside it (null without one)."
    )


class DecisionPublic(BaseModel):
    id: int
    application_id: int
    kind: str
    outcome: str
    reasons: list[dict[str, str]]
    score: int | None
    pd: str | None
    band: str | None
    annual_rate: str | None
    instalment: str
    stress_payment_monthly: str
    dti: str | None
    pti: str | None
    policy_version: str
    model_version: str
    challenger: dict[str, Any] | None
    actor: str
    note: str | None
    business_date: str | None
    created_at: str
    inputs: dict[str, Any]


class ReplayPublic(BaseModel):
    decision_id: int
    reproduced: bool
    differences: list[str]
    stored: dict[str, Any]
    replayed: dict[str, Any]


class PolicyPublic(BaseModel):
    version: str
    name: str
    active: bool
    loaded_by: str
    approved_by: str
    business_date: str | None
    created_at: str
    document: dict[str, Any] | None = None


class PolicyCreate(BaseModel):
    document: dict[str, Any] = Field(description="The policy document (lendcore.policy/1).")


def _app(a: app_service.Application) -> ApplicationPublic:
    return ApplicationPublic(**application_doc(a))


@router.post("/applications", response_model=ApplicationPublic, status_code=201)
def submit(
    body: ApplicationCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """Enter an application; the engine decides it at once."""

    def produce() -> ApplicationPublic:
        return _app(
            app_service.submit_application(
                db,
                body.borrower_id,
                body.product,
                body.amount,
                body.term,
                purpose=body.purpose,
                monthly_income=body.monthly_income,
                monthly_obligations=body.monthly_obligations,
                credit_profile=body.credit_profile,
            )
        )

    return respond(request, db, key, body, produce)


@router.get("/applications", response_model=Page[ApplicationPublic])
def list_applications(
    db: ActingDb,
    status: str | None = Query(default=None, max_length=16),
    borrower_id: int | None = Query(default=None, ge=1, le=2**63 - 1),
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ApplicationPublic]:
    found = app_service.list_applications(
        db, status=status, borrower_id=borrower_id, after_id=after_from(cursor), limit=limit
    )
    return Page[ApplicationPublic](
        items=[_app(a) for a in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


@router.get("/applications/{application_id}", response_model=ApplicationDetailPublic)
def get_application(application_id: RecordId, db: ActingDb) -> ApplicationDetailPublic:
    """The application, with the champion's and the challenger's score, PD and reasons."""
    view = app_service.view_application(db, application_id)
    return ApplicationDetailPublic(**application_doc(view.application), **view.models_doc())


@router.get("/applications/{application_id}/decisions", response_model=list[DecisionPublic])
def application_decisions(application_id: RecordId, db: ActingDb) -> list[DecisionPublic]:
    return [DecisionPublic(**decision_doc(d)) for d in app_service.decisions_of(db, application_id)]


@router.post("/applications/{application_id}/approval", response_model=ApplicationPublic)
def approve(application_id: RecordId, body: PersonDecision, db: ActingDb) -> ApplicationPublic:
    """A credit approver who did not enter it approves a referred application."""
    return _app(app_service.approve_application(db, application_id, body.note))


@router.post("/applications/{application_id}/declination", response_model=ApplicationPublic)
def decline(application_id: RecordId, body: PersonDecision, db: ActingDb) -> ApplicationPublic:
    return _app(app_service.decline_application(db, application_id, body.note))


@router.post(
    "/applications/{application_id}/overrides", response_model=ApprovalPublic, status_code=202
)
def override(
    application_id: RecordId,
    body: OverrideCreate,
    request: Request,
    db: ActingDb,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Ask to override the engine's outcome: pending until a second person approves it."""

    def produce() -> ApprovalPublic:
        return ApprovalPublic(
            **approval_doc(
                app_service.override_decision(db, application_id, body.outcome, body.reason)
            )
        )

    return respond(request, db, key, body, produce, status_code=202)


@router.post("/applications/{application_id}/withdrawal", response_model=ApplicationPublic)
def withdraw(application_id: RecordId, body: Withdrawal, db: ActingDb) -> ApplicationPublic:
    return _app(app_service.withdraw_application(db, application_id, body.reason))


@router.post("/applications/{application_id}/booking", response_model=LoanPublic, status_code=201)
def book(
    application_id: RecordId, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """Book the loan of an approved application; the controls are checked again in this transaction."""

    def produce() -> LoanPublic:
        return LoanPublic(**loan_doc(app_service.book_application(db, application_id)))

    return respond(request, db, key, None, produce)


@router.get("/decisions/{decision_id}", response_model=DecisionPublic)
def get_decision(decision_id: RecordId, db: ActingDb) -> DecisionPublic:
    return DecisionPublic(**decision_doc(app_service.get_decision(db, decision_id)))


@router.post("/decisions/{decision_id}/replay", response_model=ReplayPublic)
def replay(decision_id: RecordId, db: ActingDb) -> ReplayPublic:
    """Run a stored decision again with its stored inputs, policy and model versions."""
    return ReplayPublic(**replay_doc(app_service.replay_decision(db, decision_id)))


@router.post("/policies", response_model=ApprovalPublic, status_code=202)
def submit_policy(
    body: PolicyCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """Submit a policy document; a second risk manager's approval activates it."""
    import json

    def produce() -> ApprovalPublic:
        return ApprovalPublic(
            **approval_doc(policy_service.submit_policy(db, json.dumps(body.document)))
        )

    return respond(request, db, key, body, produce, status_code=202)


@router.get("/policies", response_model=list[PolicyPublic])
def list_policies(db: ActingDb) -> list[PolicyPublic]:
    return [PolicyPublic(**policy_doc(p)) for p in policy_service.list_policies(db)]


@router.get("/policies/active", response_model=PolicyPublic)
def active_policy(db: ActingDb) -> PolicyPublic:
    return PolicyPublic(**policy_doc(policy_service.get_policy(db), with_document=True))
