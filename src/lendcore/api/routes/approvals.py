"""Maker-checker: pending approvals, approve, reject."""

from __future__ import annotations

from fastapi import APIRouter

from lendcore.api.deps import ActingDb
from lendcore.api.routes.common import Cursor, Limit, RecordId, after_from, next_cursor
from lendcore.api.routing import Route
from lendcore.api.schemas import ApprovalDecision, ApprovalPublic, Page
from lendcore.presentation import approval_doc
from lendcore.services import approvals

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], route_class=Route)


@router.get("", response_model=Page[ApprovalPublic])
def list_approvals(
    db: ActingDb,
    status: str | None = None,
    command: str | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ApprovalPublic]:
    found = approvals.list_approvals(
        db, status=status, command_name=command, after_id=after_from(cursor), limit=limit
    )
    return Page[ApprovalPublic](
        items=[ApprovalPublic(**approval_doc(a)) for a in found],
        next_cursor=next_cursor(found[-1].id if found else None, len(found), limit),
    )


@router.get("/{approval_id}", response_model=ApprovalPublic)
def get_approval(approval_id: RecordId, db: ActingDb) -> ApprovalPublic:
    return ApprovalPublic(**approval_doc(approvals.get_approval(db, approval_id)))


@router.post("/{approval_id}/approve", response_model=ApprovalPublic)
def approve(approval_id: RecordId, body: ApprovalDecision, db: ActingDb) -> ApprovalPublic:
    """Approve: the command executes now, exactly once. Never by its maker."""
    return ApprovalPublic(**approval_doc(approvals.approve(db, approval_id, body.note)))


@router.post("/{approval_id}/reject", response_model=ApprovalPublic)
def reject(approval_id: RecordId, body: ApprovalDecision, db: ActingDb) -> ApprovalPublic:
    """Reject with a reason: nothing executes."""
    return ApprovalPublic(**approval_doc(approvals.reject(db, approval_id, body.note)))
