"""The command audit log (pure): redaction of inputs and the record hash chain."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from hashlib import sha256
from typing import Any

GENESIS_HASH = "0" * 64
REDACTED = "***"

# Input names whose values never reach the audit log or a log line.
SECRET_MARKERS = (
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "national_id",
    "credential",
    "document_number",
)


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def to_plain(value: Any) -> Any:
    """Turn inputs into JSON-able data: dataclasses, enums, dates, decimals, mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def redact(value: Any) -> Any:
    """Replace every value stored under a secret-looking name with "***"."""
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    recorded_at: str
    business_date: date
    actor: str
    actor_kind: str
    roles: str
    command: str
    request_id: str
    inputs_json: str
    outcome: str
    error_code: str | None
    result_json: str


def record_hash(prev_hash: str, record: AuditRecord) -> str:
    content = [
        record.seq,
        prev_hash,
        record.recorded_at,
        record.business_date.isoformat(),
        record.actor,
        record.actor_kind,
        record.roles,
        record.command,
        record.request_id,
        record.inputs_json,
        record.outcome,
        record.error_code,
        record.result_json,
    ]
    return sha256(canonical(content).encode()).hexdigest()


def verify_audit_chain(
    rows: Iterable[tuple[AuditRecord, str, str]], head_seq: int, head_hash: str
) -> tuple[int, list[str]]:
    """Walk (record, prev_hash, record_hash) rows in seq order; return (count, problems)."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for record, prev_hash, stored_hash in rows:
        count += 1
        if record.seq != expected_seq:
            problems.append(f"audit record {expected_seq} is missing before record {record.seq}")
        if prev_hash != expected_prev:
            problems.append(f"audit record {record.seq} does not follow the record before it")
        if record_hash(prev_hash, record) != stored_hash:
            problems.append(f"audit record {record.seq} was altered")
        expected_prev = stored_hash
        expected_seq = record.seq + 1
    if (head_seq, head_hash) != (expected_seq - 1, expected_prev):
        problems.append(f"the audit chain head (record {head_seq}) is not the last record")
    return count, problems
