"""Reading and verifying the command audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from lendcore.audit import AuditRecord, verify_audit_chain
from lendcore.errors import InvalidInput
from lendcore.services.commands import query
from lendcore.store.database import Database
from lendcore.store.schema import audit_chain_head, audit_log

PAGE_SIZE_MAX = 1_000
PAGE_READ = 5_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    recorded_at: str
    business_date: date
    actor: str
    actor_kind: str
    roles: list[str]
    command: str
    request_id: str
    inputs: Mapping[str, Any]
    outcome: str
    error_code: str | None
    result: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AuditVerification:
    records_checked: int
    head_seq: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


@query("audit.read")
def list_audit(
    db: Database,
    *,
    actor: str | None = None,
    command_name: str | None = None,
    outcome: str | None = None,
    business_date: date | None = None,
    request_id: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[AuditEntry]:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    q = select(audit_log).where(audit_log.c.seq > after_seq)
    if actor is not None:
        q = q.where(audit_log.c.actor == actor)
    if command_name is not None:
        q = q.where(audit_log.c.command == command_name)
    if outcome is not None:
        q = q.where(audit_log.c.outcome == outcome)
    if business_date is not None:
        q = q.where(audit_log.c.business_date == business_date)
    if request_id is not None:
        q = q.where(audit_log.c.request_id == request_id)
    with db.reading() as conn:
        return [_to_entry(r) for r in conn.execute(q.order_by(audit_log.c.seq).limit(limit))]


def _to_entry(r: Any) -> AuditEntry:
    return AuditEntry(
        seq=r.seq,
        recorded_at=r.recorded_at,
        business_date=r.business_date,
        actor=r.actor,
        actor_kind=r.actor_kind,
        roles=[x for x in r.roles.split(",") if x],
        command=r.command,
        request_id=r.request_id,
        inputs=json.loads(r.inputs_json),
        outcome=r.outcome,
        error_code=r.error_code,
        result=json.loads(r.result_json),
    )


def verify_audit_on(conn: Connection) -> AuditVerification:
    head_seq, head_hash = conn.execute(
        select(audit_chain_head.c.seq, audit_chain_head.c.record_hash).where(
            audit_chain_head.c.id == 1
        )
    ).one()
    count, problems = verify_audit_chain(_stream(conn), int(head_seq), head_hash)
    return AuditVerification(count, int(head_seq), problems)


def _stream(conn: Connection) -> Iterator[tuple[AuditRecord, str, str]]:
    last = 0
    while True:
        rows = conn.execute(
            select(audit_log)
            .where(audit_log.c.seq > last)
            .order_by(audit_log.c.seq)
            .limit(PAGE_READ)
        ).all()
        if not rows:
            return
        for r in rows:
            record = AuditRecord(
                seq=r.seq,
                recorded_at=r.recorded_at,
                business_date=r.business_date,
                actor=r.actor,
                actor_kind=r.actor_kind,
                roles=r.roles,
                command=r.command,
                request_id=r.request_id,
                inputs_json=r.inputs_json,
                outcome=r.outcome,
                error_code=r.error_code,
                result_json=r.result_json,
            )
            yield record, r.prev_hash, r.record_hash
        last = rows[-1].seq


@query("audit.read")
def verify_audit(db: Database) -> AuditVerification:
    with db.reading() as conn:
        return verify_audit_on(conn)
