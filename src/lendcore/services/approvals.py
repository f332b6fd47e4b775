"""Maker-checker: commands that need a second person.

A command declared with `approvers` in the permission table is not executed
when its maker runs it: it is stored as a pending approval with its maker and
its payload. A different user whose role may approve it approves (the command
then executes, exactly once, in the approval's transaction) or rejects it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lendcore.audit import canonical, to_plain
from lendcore.auth.permissions import PermissionDenied, authorize_approval, rule_for
from lendcore.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database
from lendcore.store.schema import pending_approvals

PAGE_SIZE_MAX = 500
NOTE_LENGTH_MAX = 500

# Runs an approved command inside the approval's transaction; returns facts about it.
Executor = Callable[[Connection, Mapping[str, Any]], Mapping[str, Any]]
_EXECUTORS: dict[str, Executor] = {}


class ApprovalNotFound(NotFound):
    code = "APPROVAL_NOT_FOUND"


class ApprovalDecided(Conflict):
    code = "APPROVAL_ALREADY_DECIDED"


class MakerCannotApprove(PermissionDenied):
    code = "MAKER_CANNOT_APPROVE"


@dataclass(frozen=True, slots=True)
class PendingApproval:
    id: int
    command: str
    summary: str
    payload: Mapping[str, Any]
    status: str
    maker: str
    business_date: date
    created_at: str
    checker: str | None
    decided_at: str | None
    note: str | None
    result: Mapping[str, Any] | None


def executes(command_name: str) -> Callable[[Executor], Executor]:
    """Register what an approved `command_name` does."""

    def register(fn: Executor) -> Executor:
        if not rule_for(command_name).needs_approval:
            raise ValueError(f"{command_name} is not declared with approvers")
        _EXECUTORS[command_name] = fn
        return fn

    return register


def submit(
    conn: Connection,
    db: Database,
    command_name: str,
    payload: Mapping[str, Any],
    summary: str,
    idempotency_key: str | None = None,
) -> PendingApproval:
    """Store a maker's command as pending (inside the maker's command transaction)."""
    if command_name not in _EXECUTORS:
        raise InvalidInput(f"{command_name} cannot be submitted for approval")
    payload_json = canonical(to_plain(dict(payload)))
    if idempotency_key is not None:
        found = conn.execute(
            select(pending_approvals.c.id, pending_approvals.c.payload_json).where(
                pending_approvals.c.idempotency_key == idempotency_key
            )
        ).first()
        if found is not None:
            if found.payload_json != payload_json:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} was used for approval {found.id} "
                    "with other content",
                    idempotency_key=idempotency_key,
                )
            return _load(conn, found.id)
    approval_id = conn.execute(
        insert(pending_approvals)
        .values(
            command=command_name,
            payload_json=payload_json,
            summary=summary[:NOTE_LENGTH_MAX],
            idempotency_key=idempotency_key,
            status="pending",
            maker=db.actor.label,
            maker_user_id=db.actor.user_id,
            business_date=current_business_date(conn),
            created_at=utc_timestamp(),
        )
        .returning(pending_approvals.c.id)
    ).scalar_one()
    emit(
        conn,
        "approval.requested",
        "approval",
        approval_id,
        {"command": command_name, "summary": summary, "maker": db.actor.label},
    )
    note_result(approval_id=approval_id)
    return _load(conn, approval_id)


def _lock_pending(conn: Connection, approval_id: int) -> tuple[PendingApproval, Any]:
    """Lock a pending approval's row until commit: two checkers cannot both decide it."""
    row = conn.execute(
        select(pending_approvals).where(pending_approvals.c.id == approval_id).with_for_update()
    ).first()
    if row is None:
        raise ApprovalNotFound(f"no approval {approval_id}", approval_id=approval_id)
    approval = _to_approval(row)
    if approval.status != "pending":
        raise ApprovalDecided(
            f"approval {approval_id} is {approval.status} already", approval_id=approval_id
        )
    return approval, row


def _check_checker(db: Database, row: Any, approval: PendingApproval) -> None:
    authorize_approval(db.actor, approval.command)
    same_user = row.maker_user_id is not None and row.maker_user_id == db.actor.user_id
    if same_user or (row.maker_user_id is None and row.maker == db.actor.label):
        raise MakerCannotApprove(
            f"{db.actor.label} made approval {approval.id} and cannot also decide it",
            approval_id=approval.id,
        )


def _validate_note(note: str) -> None:
    if len(note) > NOTE_LENGTH_MAX:
        raise InvalidInput(f"a note has at most {NOTE_LENGTH_MAX} characters")


@command("approvals.approve", check=False)
def approve(db: Database, approval_id: int, note: str = "") -> PendingApproval:
    """A second person approves: the command executes now, exactly once."""
    _validate_note(note)
    with db.transaction() as conn:
        approval, row = _lock_pending(conn, approval_id)
        _check_checker(db, row, approval)
        result = _EXECUTORS[approval.command](conn, approval.payload)
        conn.execute(
            update(pending_approvals)
            .where(pending_approvals.c.id == approval_id)
            .values(
                status="executed",
                checker=db.actor.label,
                checker_user_id=db.actor.user_id,
                decided_at=utc_timestamp(),
                note=note or None,
                result_json=canonical(to_plain(dict(result))),
            )
        )
        emit(
            conn,
            "approval.executed",
            "approval",
            approval_id,
            {"command": approval.command, "checker": db.actor.label, "result": dict(result)},
        )
        note_result(approval_id=approval_id, command=approval.command, **dict(result))
        return _load(conn, approval_id)


@command("approvals.reject", check=False)
def reject(db: Database, approval_id: int, note: str) -> PendingApproval:
    """A second person rejects: nothing executes."""
    _validate_note(note)
    if not note.strip():
        raise InvalidInput("a rejection needs a reason")
    with db.transaction() as conn:
        approval, row = _lock_pending(conn, approval_id)
        _check_checker(db, row, approval)
        conn.execute(
            update(pending_approvals)
            .where(pending_approvals.c.id == approval_id)
            .values(
                status="rejected",
                checker=db.actor.label,
                checker_user_id=db.actor.user_id,
                decided_at=utc_timestamp(),
                note=note,
            )
        )
        emit(
            conn,
            "approval.rejected",
            "approval",
            approval_id,
            {"command": approval.command, "checker": db.actor.label, "note": note},
        )
        return _load(conn, approval_id)


@query("approvals.read")
def get_approval(db: Database, approval_id: int) -> PendingApproval:
    with db.reading() as conn:
        return _load(conn, approval_id)


@query("approvals.read")
def list_approvals(
    db: Database,
    *,
    status: str | None = None,
    command_name: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[PendingApproval]:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    q = select(pending_approvals).where(pending_approvals.c.id > after_id)
    if status is not None:
        q = q.where(pending_approvals.c.status == status)
    if command_name is not None:
        q = q.where(pending_approvals.c.command == command_name)
    with db.reading() as conn:
        return [
            _to_approval(r) for r in conn.execute(q.order_by(pending_approvals.c.id).limit(limit))
        ]


def _load(conn: Connection, approval_id: int) -> PendingApproval:
    row = conn.execute(
        select(pending_approvals).where(pending_approvals.c.id == approval_id)
    ).first()
    if row is None:
        raise ApprovalNotFound(f"no approval {approval_id}", approval_id=approval_id)
    return _to_approval(row)


def _to_approval(row: Any) -> PendingApproval:
    return PendingApproval(
        id=row.id,
        command=row.command,
        summary=row.summary,
        payload=json.loads(row.payload_json),
        status=row.status,
        maker=row.maker,
        business_date=row.business_date,
        created_at=row.created_at,
        checker=row.checker,
        decided_at=row.decided_at,
        note=row.note,
        result=None if row.result_json is None else json.loads(row.result_json),
    )
