"""Manual journal entries and reversals: an accountant makes, another checks.

Entries booked by lendcore's own processes (servicing, end of day) go through
the ledger directly; an entry a person types goes through maker-checker.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import Connection

from lendcore.errors import InvalidEntry
from lendcore.ledger.model import (
    EntrySpec,
    PostingSpec,
    Side,
    validate_entry,
    validate_idempotency_key,
)
from lendcore.money import currency, format_minor
from lendcore.services import approvals, ledger
from lendcore.services.approvals import PendingApproval
from lendcore.services.commands import command
from lendcore.store.database import Database

MANUAL_ENTRY = "ledger.manual_entry"
REVERSAL = "ledger.reversal"


def entry_payload(spec: EntrySpec) -> dict[str, Any]:
    return {
        "idempotency_key": spec.idempotency_key,
        "description": spec.description,
        "metadata": dict(spec.metadata),
        "value_date": spec.value_date.isoformat() if spec.value_date else None,
        "postings": [
            {
                "account": p.account,
                "side": p.side.value,
                "amount_minor": p.amount_minor,
                "currency": p.currency.upper(),
            }
            for p in spec.postings
        ],
    }


def spec_from_payload(payload: Mapping[str, Any]) -> EntrySpec:
    try:
        return EntrySpec(
            idempotency_key=payload["idempotency_key"],
            postings=tuple(
                PostingSpec(p["account"], Side(p["side"]), int(p["amount_minor"]), p["currency"])
                for p in payload["postings"]
            ),
            description=payload["description"],
            metadata=dict(payload["metadata"]),
            value_date=date.fromisoformat(payload["value_date"]) if payload["value_date"] else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEntry(f"stored manual entry is malformed: {exc}") from exc


def _summary(spec: EntrySpec) -> str:
    lines = ", ".join(
        f"{p.side.value} {p.account} {format_minor(p.amount_minor, currency(p.currency).exponent)}"
        for p in spec.postings
    )
    return f"{spec.description or 'Manual entry'}: {lines}"


@command(MANUAL_ENTRY)
def submit_manual_entry(db: Database, spec: EntrySpec) -> PendingApproval:
    """The maker's step: checked now, booked when another accountant approves."""
    validate_entry(spec)
    with db.transaction() as conn:
        ledger.check_entry_accounts(conn, spec)
        return approvals.submit(
            conn,
            db,
            MANUAL_ENTRY,
            entry_payload(spec),
            _summary(spec),
            f"entry:{spec.idempotency_key}",
        )


@approvals.executes(MANUAL_ENTRY)
def _book_approved_entry(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    entry = ledger.book_entry_on(conn, spec_from_payload(payload))
    return {"entry_id": entry.id}


@command(REVERSAL)
def submit_reversal(
    db: Database, entry_id: int, idempotency_key: str, description: str | None = None
) -> PendingApproval:
    """The maker's step of a reversal; the reversal is booked on approval."""
    validate_idempotency_key(idempotency_key)
    original = ledger.get_entry(db, entry_id)
    if original.reverses_entry_id is not None:
        raise InvalidEntry(f"entry {entry_id} is a reversal itself; book a new entry instead")
    payload = {"entry_id": entry_id, "idempotency_key": idempotency_key, "description": description}
    with db.transaction() as conn:
        return approvals.submit(
            conn,
            db,
            REVERSAL,
            payload,
            description or f"Reverse entry {entry_id}",
            f"reversal:{idempotency_key}",
        )


@approvals.executes(REVERSAL)
def _book_approved_reversal(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    entry = ledger.reverse_entry_on(
        conn, int(payload["entry_id"]), str(payload["idempotency_key"]), payload.get("description")
    )
    return {"entry_id": entry.id, "reverses_entry_id": payload["entry_id"]}
