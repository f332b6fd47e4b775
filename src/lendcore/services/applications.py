"""Applications and credit decisions: the controls that cannot be skipped.

An application is entered by a loan officer and decided at once by the engine
(`risk.decision.decide`: policy rules, scorecard, pricing) under the active
policy and champion model; the decision is stored with everything it used.
Referred applications are approved or declined by a credit approver who did
not enter them; overriding the engine's outcome needs a reason and a second
person (maker-checker). Booking turns an approved application into a loan,
and re-checks in the booking transaction that the borrower is KYC-verified and
screening-clear and that the exposure limits still hold.

States: submitted -> approved | referred | declined (the engine) -> approved |
declined (a person, for referred ones) -> booked; withdrawn; expired.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Connection, case, func, insert, select, update

from lendcore.auth.permissions import PermissionDenied
from lendcore.errors import Conflict, InvalidInput, NotFound
from lendcore.products.model import Product
from lendcore.risk.decision import Decision, DecisionInputs, decide, policy_facts
from lendcore.risk.model import CANONICAL_FEATURES, ReasonCode
from lendcore.risk.policy import Policy
from lendcore.services import approvals, loans, policies
from lendcore.services.approvals import PendingApproval
from lendcore.services.borrowers import borrower_on, group_members_on
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, current_actor, note_result, query
from lendcore.services.events import emit
from lendcore.services.models import active_models, model_by_version
from lendcore.services.products import product_on
from lendcore.store.database import Database
from lendcore.store.schema import applications, decisions
from lendcore.store.schema import loans as loans_table

PAGE_SIZE_MAX: Final = 500
VALID_DAYS: Final = 30  # an undecided or unbooked application lapses after this
OVERRIDE: Final = "application.override"
PURPOSE_LENGTH_MAX: Final = 200


class ApplicationNotFound(NotFound):
    code = "APPLICATION_NOT_FOUND"


class ApplicationState(Conflict):
    code = "APPLICATION_STATE"


class SelfApproval(PermissionDenied):
    code = "SELF_APPROVAL"


class BookingRefused(Conflict):
    """A control failed in the booking transaction: the loan is not booked."""

    code = "BOOKING_REFUSED"


class DecisionNotFound(NotFound):
    code = "DECISION_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Application:
    id: int
    borrower_id: int
    product_code: str
    product_version: int
    currency: str
    amount_minor: int
    term: int
    purpose: str
    status: str
    entered_by: str
    decision_id: int | None
    outcome: str | None
    decided_by: str | None
    loan_id: int | None
    business_date: date
    expires_on: date
    created_at: str


@dataclass(frozen=True, slots=True)
class StoredDecision:
    id: int
    application_id: int
    kind: str  # engine | person | override
    outcome: str
    inputs: Mapping[str, Any]
    decision: Mapping[str, Any]
    policy_version: str
    model_version: str
    actor: str
    note: str | None
    business_date: date
    created_at: str


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One model's result on an application: the champion's (which decided it) or the
    challenger's (scored in shadow beside it)."""

    role: str  # champion | challenger
    version: str
    kind: str  # scorecard | lightgbm
    score: int
    pd: str
    reasons: tuple[ReasonCode, ...]  # the characteristics that lowered the score most

    def to_doc(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "version": self.version,
            "kind": self.kind,
            "score": self.score,
            "pd": self.pd,
            "reasons": [
                {
                    "code": r.code,
                    "text": r.text,
                    "characteristic": r.characteristic,
                    "points_lost": r.points_lost,
                }
                for r in self.reasons
            ],
        }


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """An application with its champion's and challenger's results side by side."""

    application: Application
    champion: ModelResult | None  # None until the engine has decided it
    challenger: ModelResult | None  # None when no challenger was active then

    def models_doc(self) -> dict[str, Any]:
        return {
            "champion": None if self.champion is None else self.champion.to_doc(),
            "challenger": None if self.challenger is None else self.challenger.to_doc(),
        }


@dataclass(frozen=True, slots=True)
class Replay:
    decision_id: int
    reproduced: bool
    stored: Mapping[str, Any]
    replayed: Mapping[str, Any]
    differences: tuple[str, ...]


# --- reading --------------------------------------------------------------------------


def _to_application(row: Any) -> Application:
    return Application(
        id=row.id,
        borrower_id=row.borrower_id,
        product_code=row.product_code,
        product_version=row.product_version,
        currency=row.currency,
        amount_minor=row.amount_minor,
        term=row.term,
        purpose=row.purpose,
        status=row.status,
        entered_by=row.entered_by,
        decision_id=row.decision_id,
        outcome=row.outcome,
        decided_by=row.decided_by,
        loan_id=row.loan_id,
        business_date=row.business_date,
        expires_on=row.expires_on,
        created_at=row.created_at,
    )


def _row(conn: Connection, application_id: int, *, lock: bool = False) -> Any:
    query_ = select(applications).where(applications.c.id == application_id)
    if lock:
        query_ = query_.with_for_update()
    row = conn.execute(query_).first()
    if row is None:
        raise ApplicationNotFound(f"no application {application_id}", application_id=application_id)
    return row


def _to_decision(row: Any) -> StoredDecision:
    return StoredDecision(
        id=row.id,
        application_id=row.application_id,
        kind=row.kind,
        outcome=row.outcome,
        inputs=json.loads(row.inputs_json),
        decision=json.loads(row.decision_json),
        policy_version=row.policy_version,
        model_version=row.model_version,
        actor=row.actor,
        note=row.note,
        business_date=row.business_date,
        created_at=row.created_at,
    )


@query("application.read")
def get_application(db: Database, application_id: int) -> Application:
    with db.reading() as conn:
        return _to_application(_row(conn, application_id))


@query("application.read")
def view_application(db: Database, application_id: int) -> ApplicationView:
    """An application with the champion's and the challenger's score, PD and reasons.

    Score and PD are the ones stored with the application's decision (the
    challenger's were stored beside the champion's when it scored in shadow).
    The reasons are the characteristics that lowered each model's score most,
    whatever the outcome: the stored model versions scoring the stored
    features again, which gives the same result every time.
    """
    with db.reading() as conn:
        row = _row(conn, application_id)
        application = _to_application(row)
        if row.decision_id is None:
            return ApplicationView(application, None, None)
        decision = _to_decision(
            conn.execute(select(decisions).where(decisions.c.id == row.decision_id)).one()
        )
        features = dict(decision.inputs.get("features") or {})
        body = decision.decision
        champion = _model_result(
            conn, "champion", decision.model_version, body.get("score"), body.get("pd"), features
        )
        shadow = body.get("challenger")
        challenger = (
            _model_result(
                conn, "challenger", str(shadow["version"]), shadow["score"], shadow["pd"], features
            )
            if isinstance(shadow, Mapping)
            else None
        )
    return ApplicationView(application, champion, challenger)


def _model_result(
    conn: Connection,
    role: str,
    version: str,
    score: Any,
    pd: Any,
    features: Mapping[str, Any],
) -> ModelResult:
    model = model_by_version(conn, version)
    again = model.score(features)
    return ModelResult(
        role=role,
        version=version,
        kind=model.kind,
        score=int(score) if score is not None else again.score,
        pd=str(pd) if pd is not None else str(again.pd),
        reasons=again.reasons,
    )


@query("application.read")
def list_applications(
    db: Database,
    *,
    status: str | None = None,
    borrower_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Application]:
    query_ = select(applications).where(applications.c.id > after_id)
    if status is not None:
        query_ = query_.where(applications.c.status == status)
    if borrower_id is not None:
        query_ = query_.where(applications.c.borrower_id == borrower_id)
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    with db.reading() as conn:
        rows = conn.execute(query_.order_by(applications.c.id).limit(limit))
        return [_to_application(r) for r in rows]


@query("decision.read")
def get_decision(db: Database, decision_id: int) -> StoredDecision:
    with db.reading() as conn:
        row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
        if row is None:
            raise DecisionNotFound(f"no decision {decision_id}", decision_id=decision_id)
        return _to_decision(row)


@query("decision.read")
def decisions_of(db: Database, application_id: int) -> list[StoredDecision]:
    with db.reading() as conn:
        _row(conn, application_id)
        rows = conn.execute(
            select(decisions)
            .where(decisions.c.application_id == application_id)
            .order_by(decisions.c.id)
        )
        return [_to_decision(r) for r in rows]


# --- the facts a decision uses ----------------------------------------------------------


def _age(born: date | None, on: date) -> int | None:
    if born is None:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _outstanding(conn: Connection, currency: str, **where: Any) -> int:
    """What booked, unsettled loans in `currency` owe in principal (for limits);
    a loan booked but not yet disbursed counts at its approved amount."""
    owed = case(
        (loans_table.c.status == "approved", loans_table.c.approved_minor),
        else_=loans_table.c.principal_outstanding_minor,
    )
    query_ = select(func.coalesce(func.sum(owed), 0)).where(
        loans_table.c.currency == currency,
        loans_table.c.status.in_(("approved", "active")),
    )
    if "borrower_ids" in where:
        query_ = query_.join(applications, applications.c.loan_id == loans_table.c.id).where(
            applications.c.borrower_id.in_(where["borrower_ids"])
        )
    if "product_code" in where:
        query_ = query_.where(loans_table.c.product_code == where["product_code"])
    return int(conn.execute(query_).scalar_one())


def _approved_unbooked(conn: Connection, currency: str, borrower_ids: list[int]) -> int:
    """Loans approved but not booked yet count against the limits too."""
    return int(
        conn.execute(
            select(func.coalesce(func.sum(applications.c.amount_minor), 0)).where(
                applications.c.currency == currency,
                applications.c.borrower_id.in_(borrower_ids),
                applications.c.status == "approved",
            )
        ).scalar_one()
    )


def _exposure(
    conn: Connection, borrower_id: int, group_id: int | None, currency: str
) -> tuple[int, int]:
    own = [borrower_id]
    group = group_members_on(conn, group_id) if group_id is not None else own
    borrower = _outstanding(conn, currency, borrower_ids=own) + _approved_unbooked(
        conn, currency, own
    )
    total = _outstanding(conn, currency, borrower_ids=group) + _approved_unbooked(
        conn, currency, group
    )
    return borrower, total


def _inputs(conn: Connection, row: Any, product: Product) -> DecisionInputs:
    borrower = borrower_on(conn, row.borrower_id)
    today = current_business_date(conn)
    own, group = _exposure(conn, row.borrower_id, borrower.group_id, row.currency)
    if row.status == "approved":  # this very application is counted once, as the new loan
        own -= row.amount_minor
        group -= row.amount_minor
    return DecisionInputs(
        application_id=row.id,
        business_date=today,
        product_code=row.product_code,
        product_version=row.product_version,
        currency=row.currency,
        amount_minor=row.amount_minor,
        term=row.term,
        age_years=_age(borrower.date_of_birth, today),
        kyc_status=borrower.kyc_status,
        screening_status=borrower.screening_status,
        employment_status=borrower.employment_status or "unknown",
        monthly_income_minor=row.monthly_income_minor,
        monthly_obligations_minor=row.monthly_obligations_minor,
        borrower_exposure_minor=own,
        group_exposure_minor=group,
        product_book_minor=_outstanding(conn, row.currency, product_code=row.product_code),
        total_book_minor=_outstanding(conn, row.currency),
        features=json.loads(row.features_json),
    )


def _features(
    profile: Mapping[str, Any],
    age: int | None,
    income_minor: int,
    obligations_minor: int,
    exponent: int,
) -> dict[str, Any]:
    """The scorecard's characteristics: the credit profile the officer entered,
    with age, income and debt ratio taken from the application itself."""
    unknown = set(profile) - set(CANONICAL_FEATURES)
    if unknown:
        raise InvalidInput(
            f"credit profile field {sorted(unknown)[0]!r} is not one the scorecard knows "
            f"({', '.join(CANONICAL_FEATURES)})",
            field=sorted(unknown)[0],
        )
    features: dict[str, Any] = {}
    for name in CANONICAL_FEATURES:
        value = profile.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidInput(f"credit profile field {name!r} must be a number", field=name)
        features[name] = value
    income = income_minor / 10**exponent
    features["age_years"] = age
    features["monthly_income"] = income
    features["debt_ratio"] = round(obligations_minor / income_minor, 6) if income_minor else None
    return features


# --- submit and decide ---------------------------------------------------------------------


@command("application.submit")
def submit_application(
    db: Database,
    borrower_id: int,
    product_code: str,
    amount: str | int,
    term: int,
    *,
    purpose: str,
    monthly_income: str | int,
    monthly_obligations: str | int = 0,
    credit_profile: Mapping[str, Any] | None = None,
) -> Application:
    """Enter an application and decide it at once with the active policy and scorecard."""
    if not purpose or not purpose.strip() or len(purpose) > PURPOSE_LENGTH_MAX:
        raise InvalidInput(f"purpose: 1 to {PURPOSE_LENGTH_MAX} characters", field="purpose")
    with db.transaction() as conn:
        stored = product_on(conn, product_code)
        product = stored.product
        today = current_business_date(conn)
        borrower = borrower_on(conn, borrower_id)
        minor = loans.amount_minor(amount, product.currency)
        if not isinstance(term, int) or isinstance(term, bool) or term < 1:
            raise InvalidInput("term: a number of instalments, at least 1", field="term")
        product.check_limits(minor, product.interest.rate.default, term)
        income = loans.amount_minor(monthly_income, product.currency, allow_zero=True)
        obligations = loans.amount_minor(monthly_obligations, product.currency, allow_zero=True)
        features = _features(
            credit_profile or {},
            _age(borrower.date_of_birth, today),
            income,
            obligations,
            product.exponent,
        )
        application_id = conn.execute(
            insert(applications)
            .values(
                borrower_id=borrower_id,
                product_code=product.code,
                product_version=stored.version,
                currency=product.currency,
                amount_minor=minor,
                term=term,
                purpose=purpose.strip(),
                monthly_income_minor=income,
                monthly_obligations_minor=obligations,
                features_json=json.dumps(features, sort_keys=True),
                status="submitted",
                entered_by=db.actor.label,
                entered_by_user_id=db.actor.user_id,
                business_date=today,
                expires_on=today + timedelta(days=VALID_DAYS),
                created_at=utc_timestamp(),
            )
            .returning(applications.c.id)
        ).scalar_one()
        row = _row(conn, application_id, lock=True)
        decision = _decide(conn, row, product)
        note_result(application_id=application_id, outcome=decision.outcome)
        return _to_application(_row(conn, application_id))


def _decide(conn: Connection, row: Any, product: Product) -> Decision:
    policy = policies.active_policy_on(conn)
    champion, challenger = active_models(conn)
    inputs = _inputs(conn, row, product)
    decision = decide(inputs, product, policy, champion, challenger)
    status = {"approve": "approved", "refer": "referred", "decline": "declined"}[decision.outcome]
    decision_id = _store_decision(
        conn,
        row.id,
        "engine",
        decision.outcome,
        inputs.to_doc(),
        decision.to_doc(),
        "lendcore",
        None,
    )
    conn.execute(
        update(applications)
        .where(applications.c.id == row.id)
        .values(
            status=status, outcome=decision.outcome, decision_id=decision_id, decided_by="lendcore"
        )
    )
    emit(
        conn,
        "application.decided",
        "application",
        row.id,
        {"outcome": decision.outcome, "decision_id": decision_id},
    )
    return decision


def _store_decision(
    conn: Connection,
    application_id: int,
    kind: str,
    outcome: str,
    inputs: Mapping[str, Any],
    decision: Mapping[str, Any],
    actor: str,
    note: str | None,
) -> int:
    return int(
        conn.execute(
            insert(decisions)
            .values(
                application_id=application_id,
                kind=kind,
                outcome=outcome,
                inputs_json=json.dumps(dict(inputs), sort_keys=True),
                decision_json=json.dumps(dict(decision), sort_keys=True),
                policy_version=decision.get("policy_version", ""),
                model_version=decision.get("model_version", ""),
                actor=actor,
                note=note,
                business_date=current_business_date(conn),
                created_at=utc_timestamp(),
            )
            .returning(decisions.c.id)
        ).scalar_one()
    )


# --- a person's decision on a referral ------------------------------------------------------


def _not_the_maker(db: Database, row: Any, what: str) -> None:
    if (
        db.actor.user_id is not None and db.actor.user_id == row.entered_by_user_id
    ) or db.actor.label == row.entered_by:
        raise SelfApproval(
            f"{db.actor.label} entered application {row.id}: another credit approver must {what} it",
            application_id=row.id,
        )


def _person_decides(db: Database, application_id: int, outcome: str, note: str) -> Application:
    if not note or not note.strip():
        raise InvalidInput("a credit approver's decision needs a note", field="note")
    with db.transaction() as conn:
        row = _row(conn, application_id, lock=True)
        _not_the_maker(db, row, "decide")
        if row.status != "referred":
            raise ApplicationState(
                f"application {application_id} is {row.status}: only a referred one is decided by a person "
                "(an override changes the engine's approve or decline)",
                application_id=application_id,
            )
        engine = _to_decision(
            conn.execute(select(decisions).where(decisions.c.id == row.decision_id)).one()
        )
        doc = {**engine.decision, "outcome": outcome}
        decision_id = _store_decision(
            conn, row.id, "person", outcome, engine.inputs, doc, db.actor.label, note.strip()
        )
        status = "approved" if outcome == "approve" else "declined"
        conn.execute(
            update(applications)
            .where(applications.c.id == row.id)
            .values(
                status=status, outcome=outcome, decision_id=decision_id, decided_by=db.actor.label
            )
        )
        emit(conn, f"application.{status}", "application", row.id, {"decision_id": decision_id})
        note_result(application_id=application_id, outcome=outcome)
        return _to_application(_row(conn, application_id))


@command("application.approve")
def approve_application(db: Database, application_id: int, note: str) -> Application:
    """A credit approver (not the one who entered it) approves a referred application."""
    return _person_decides(db, application_id, "approve", note)


@command("application.decline")
def decline_application(db: Database, application_id: int, note: str) -> Application:
    """A credit approver (not the one who entered it) declines a referred application."""
    return _person_decides(db, application_id, "decline", note)


@command(OVERRIDE)
def override_decision(
    db: Database, application_id: int, outcome: str, reason: str
) -> PendingApproval:
    """Ask to override the engine's approve or decline; a second person approves the override."""
    if outcome not in ("approve", "decline"):
        raise InvalidInput("an override approves or declines", field="outcome")
    if not reason or not reason.strip():
        raise InvalidInput("an override needs a reason", field="reason")
    with db.transaction() as conn:
        row = _row(conn, application_id)
        if row.status not in ("approved", "declined") or row.outcome == outcome:
            raise ApplicationState(
                f"application {application_id} is {row.status}: an override changes an approved or "
                "declined application to the other outcome",
                application_id=application_id,
            )
        return approvals.submit(
            conn,
            db,
            OVERRIDE,
            {"application_id": application_id, "outcome": outcome, "reason": reason.strip()},
            f"Override application {application_id} to {outcome}: {reason.strip()}",
        )


@approvals.executes(OVERRIDE)
def _approved_override(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    application_id = int(payload["application_id"])
    row = _row(conn, application_id, lock=True)
    outcome = str(payload["outcome"])
    if row.status not in ("approved", "declined") or row.outcome == outcome:
        raise ApplicationState(
            f"application {application_id} is {row.status} now: the override no longer applies"
        )
    engine = _to_decision(
        conn.execute(select(decisions).where(decisions.c.id == row.decision_id)).one()
    )
    actor = current_actor()
    label = actor.label if actor else "lendcore"
    doc = {**engine.decision, "outcome": outcome}
    decision_id = _store_decision(
        conn, row.id, "override", outcome, engine.inputs, doc, label, str(payload["reason"])
    )
    status = "approved" if outcome == "approve" else "declined"
    conn.execute(
        update(applications)
        .where(applications.c.id == row.id)
        .values(status=status, outcome=outcome, decision_id=decision_id, decided_by=label)
    )
    emit(
        conn,
        "application.overridden",
        "application",
        row.id,
        {"outcome": outcome, "decision_id": decision_id},
    )
    return {"application_id": application_id, "outcome": outcome, "decision_id": decision_id}


@command("application.withdraw")
def withdraw_application(db: Database, application_id: int, reason: str) -> Application:
    if not reason or not reason.strip():
        raise InvalidInput("a withdrawal needs a reason", field="reason")
    with db.transaction() as conn:
        row = _row(conn, application_id, lock=True)
        if row.status in ("booked", "withdrawn", "expired"):
            raise ApplicationState(
                f"application {application_id} is {row.status}", application_id=application_id
            )
        conn.execute(
            update(applications).where(applications.c.id == row.id).values(status="withdrawn")
        )
        emit(conn, "application.withdrawn", "application", row.id, {"reason": reason.strip()})
        return _to_application(_row(conn, application_id))


# --- booking -----------------------------------------------------------------------------


@command("application.book")
def book_application(
    db: Database, application_id: int, *, start: date | None = None
) -> loans.LoanView:
    """Book the loan of an approved application. In this transaction: the
    application is approved and not lapsed, the borrower is KYC-verified and
    screening-clear, and the exposure and concentration rules of the decision's
    policy still hold with today's book."""
    with db.transaction() as conn:
        row = _row(conn, application_id, lock=True)
        today = current_business_date(conn)
        if row.status != "approved":
            raise BookingRefused(
                f"application {application_id} is {row.status}: only an approved application is booked",
                application_id=application_id,
                control="approval",
            )
        if row.expires_on < today:
            raise BookingRefused(
                f"application {application_id} lapsed on {row.expires_on}", control="expiry"
            )
        stored = product_on(conn, row.product_code, row.product_version)
        decision = _to_decision(
            conn.execute(select(decisions).where(decisions.c.id == row.decision_id)).one()
        )
        _check_at_booking(conn, row, stored.product, decision)
        loan = loans.book_loan_on(
            conn,
            db.actor.label,
            stored.product,
            stored.version,
            row.amount_minor,
            annual_rate=Decimal(decision.decision["annual_rate"]),
            term=row.term,
            start=start or today,
            application_id=row.id,
            borrower=borrower_on(conn, row.borrower_id).name,
            pd_origination=decision.decision.get("pd"),
            risk_band=decision.decision.get("band"),
        )
        conn.execute(
            update(applications)
            .where(applications.c.id == row.id)
            .values(status="booked", loan_id=loan.id)
        )
        emit(conn, "application.booked", "application", row.id, {"loan_id": loan.id})
        note_result(application_id=application_id, loan_id=loan.id)
        return loan


_BOOKING_CONTROLS: Final = {
    "KYC": "kyc",
    "SCREENING": "screening",
    "EXPOSURE": "exposure",
    "CONCENTRATION": "concentration",
    "AGE_UNDER": "eligibility",
    "PRODUCT_LIMITS": "eligibility",
}


def _check_at_booking(
    conn: Connection, row: Any, product: Product, decision: StoredDecision
) -> None:
    borrower = borrower_on(conn, row.borrower_id)
    if borrower.kyc_status != "verified":
        raise BookingRefused(
            f"borrower {borrower.id} is not KYC-verified ({borrower.kyc_status}) on {current_business_date(conn)}",
            control="kyc",
        )
    if borrower.screening_status != "clear":
        raise BookingRefused(
            f"borrower {borrower.id} is not screening-clear ({borrower.screening_status})",
            control="screening",
        )
    # The same rules the decision ran, on today's exposure: one rule, one place.
    policy = policies.policy_by_version_on(conn, decision.policy_version)
    inputs = _inputs(conn, row, product)
    stress = int(decision.decision.get("stress_payment_monthly_minor", 0))
    hits = policy.eligibility(policy_facts(product, inputs, stress))
    limits = [
        h
        for h in hits
        if h.action == "decline" and h.code.startswith(("EXPOSURE", "CONCENTRATION"))
    ]
    if limits:
        raise BookingRefused(
            f"booking would break a limit: {limits[0].code}: {limits[0].text}",
            control="exposure",
            reasons=[h.code for h in limits],
        )


# --- replay ------------------------------------------------------------------------------


@query("decision.replay")
def replay_decision(db: Database, decision_id: int) -> Replay:
    """Run a stored engine decision again with its stored inputs, policy version
    and model versions; it must come out the same to the last digit."""
    with db.reading() as conn:
        row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
        if row is None:
            raise DecisionNotFound(f"no decision {decision_id}", decision_id=decision_id)
        stored = _to_decision(row)
        inputs = DecisionInputs.from_doc(dict(stored.inputs))
        product = product_on(conn, inputs.product_code, inputs.product_version).product
        policy: Policy = policies.policy_by_version_on(conn, stored.policy_version)
        champion = model_by_version(conn, stored.model_version)
        shadow = stored.decision.get("challenger")
        challenger = model_by_version(conn, shadow["version"]) if shadow else None
        replayed = decide(inputs, product, policy, champion, challenger).to_doc()
    original = dict(stored.decision)
    if stored.kind != "engine":
        original = {
            **original,
            "outcome": replayed["outcome"],
        }  # a person's outcome is not the engine's
    differences = tuple(
        f"{key}: stored {original.get(key)!r}, replayed {replayed.get(key)!r}"
        for key in sorted(set(original) | set(replayed))
        if original.get(key) != replayed.get(key)
    )
    return Replay(decision_id, not differences, original, replayed, differences)


def expire_applications(conn: Connection, today: date) -> int:
    """Lapse applications past their date (end of day calls this)."""
    result = conn.execute(
        update(applications)
        .where(
            applications.c.expires_on < today,
            applications.c.status.in_(("submitted", "referred", "approved")),
        )
        .values(status="expired")
    )
    return int(result.rowcount or 0)
