"""The command audit log and the event outbox, for auditors and integrators."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from lendcore.api.deps import ActingDb
from lendcore.api.routes.common import Cursor, Limit, after_from, next_cursor
from lendcore.api.routing import Route
from lendcore.api.schemas import AuditRecordPublic, EventPublic, IsoDate, Page
from lendcore.presentation import audit_doc
from lendcore.services import audit, events

router = APIRouter(prefix="/v1", tags=["audit"], route_class=Route)


class AuditVerifyPublic(BaseModel):
    ok: bool
    records_checked: int
    head_seq: int
    problems: list[str]


@router.get("/audit", response_model=Page[AuditRecordPublic])
def list_audit(
    db: ActingDb,
    actor: str | None = None,
    command: str | None = None,
    outcome: str | None = None,
    business_date: IsoDate | None = None,
    request_id: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AuditRecordPublic]:
    found = audit.list_audit(
        db,
        actor=actor,
        command_name=command,
        outcome=outcome,
        business_date=business_date,
        request_id=request_id,
        after_seq=after_from(cursor),
        limit=limit,
    )
    return Page[AuditRecordPublic](
        items=[AuditRecordPublic(**audit_doc(e)) for e in found],
        next_cursor=next_cursor(found[-1].seq if found else None, len(found), limit),
    )


@router.get("/audit/verify", response_model=AuditVerifyPublic)
def verify_audit(db: ActingDb) -> AuditVerifyPublic:
    result = audit.verify_audit(db)
    return AuditVerifyPublic(
        ok=result.ok,
        records_checked=result.records_checked,
        head_seq=result.head_seq,
        problems=result.problems,
    )


@router.get("/events", response_model=Page[EventPublic], tags=["events"])
def list_events(
    db: ActingDb,
    type: str | None = None,
    aggregate_type: str | None = None,
    aggregate_id: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[EventPublic]:
    found = events.list_events(
        db,
        after_id=after_from(cursor),
        limit=limit,
        event_type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
    )
    return Page[EventPublic](
        items=[EventPublic(**e.envelope()) for e in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )
