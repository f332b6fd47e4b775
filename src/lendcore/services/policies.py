"""Credit policies: versioned decision tables that a risk manager changes with a
second risk manager's approval; who changed what and when is on record.

A policy version is stored once (its SHA-256 names it); making a version the
active one is an activation record. Both are append-only. A new database has no
policy until one is loaded and approved: no application is decided without one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import Connection, insert, select

from lendcore.errors import Conflict, NotFound
from lendcore.risk.policy import Policy, PolicyInvalid, canonical, policy_from_text
from lendcore.services import approvals
from lendcore.services.approvals import PendingApproval
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, current_actor, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database
from lendcore.store.schema import policies, policy_activations

POLICY_CHANGE: Final = "policy.change"


class PolicyNotFound(NotFound):
    code = "POLICY_NOT_FOUND"


class NoActivePolicy(Conflict):
    code = "POLICY_NOT_ACTIVE"


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: str
    name: str
    document: Mapping[str, Any]
    loaded_by: str
    approved_by: str
    business_date: date
    created_at: str
    active: bool


def _policy(document_json: str) -> Policy:
    return policy_from_text(document_json)


def policy_by_version_on(conn: Connection, version: str) -> Policy:
    row = conn.execute(
        select(policies.c.document_json).where(policies.c.version == version)
    ).first()
    if row is None:
        raise PolicyNotFound(f"no policy version {version}", version=version)
    return _policy(row.document_json)


def _active_version(conn: Connection) -> str | None:
    return conn.execute(
        select(policy_activations.c.version).order_by(policy_activations.c.id.desc()).limit(1)
    ).scalar()


def active_policy_on(conn: Connection) -> Policy:
    """The policy applications are decided by now (in the caller's transaction)."""
    version = _active_version(conn)
    if version is None:
        raise NoActivePolicy("no credit policy is active: load one and have it approved")
    return policy_by_version_on(conn, version)


@command(POLICY_CHANGE)
def submit_policy(db: Database, text: str) -> PendingApproval:
    """The maker's step: the policy is validated now and becomes the active one
    when a second risk manager approves it."""
    policy = policy_from_text(text)  # refuses a table that does not parse, naming the field
    with db.transaction() as conn:
        payload = {
            "version": policy.version,
            "name": policy.name,
            "document": policy.document,
            "loaded_by": db.actor.label,
        }
        pending = approvals.submit(
            conn,
            db,
            POLICY_CHANGE,
            payload,
            f"Activate credit policy {policy.name!r} ({policy.version[:12]})",
        )
        note_result(version=policy.version)
        return pending


@approvals.executes(POLICY_CHANGE)
def _activate(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    document = dict(payload["document"])
    policy = Policy(document)
    if policy.version != payload["version"]:
        raise PolicyInvalid("the stored policy does not match its version")
    actor = current_actor()
    label = actor.label if actor else "lendcore"
    exists = conn.execute(select(policies.c.id).where(policies.c.version == policy.version)).first()
    if exists is None:
        conn.execute(
            insert(policies).values(
                version=policy.version,
                name=policy.name,
                document_json=canonical(document),
                loaded_by=str(payload["loaded_by"]),
                approved_by=label,
                business_date=current_business_date(conn),
                created_at=utc_timestamp(),
            )
        )
    conn.execute(
        insert(policy_activations).values(
            version=policy.version,
            approved_by=label,
            business_date=current_business_date(conn),
            created_at=utc_timestamp(),
        )
    )
    emit(conn, "policy.activated", "policy", policy.version, {"name": policy.name})
    return {"version": policy.version, "created": exists is None}


def _to_version(row: Any, active: str | None) -> PolicyVersion:
    return PolicyVersion(
        version=row.version,
        name=row.name,
        document=json.loads(row.document_json),
        loaded_by=row.loaded_by,
        approved_by=row.approved_by,
        business_date=row.business_date,
        created_at=row.created_at,
        active=row.version == active,
    )


@query("policy.read")
def list_policies(db: Database) -> list[PolicyVersion]:
    with db.reading() as conn:
        active = _active_version(conn)
        rows = conn.execute(select(policies).order_by(policies.c.id))
        return [_to_version(r, active) for r in rows]


@query("policy.read")
def get_policy(db: Database, version: str | None = None) -> PolicyVersion:
    """A stored policy version (the active one when `version` is None)."""
    with db.reading() as conn:
        active = _active_version(conn)
        wanted = version or active
        if wanted is None:
            raise NoActivePolicy("no credit policy is active")
        row = conn.execute(select(policies).where(policies.c.version.startswith(wanted))).first()
        if row is None:
            raise PolicyNotFound(f"no policy version {wanted}", version=wanted)
        return _to_version(row, active)
