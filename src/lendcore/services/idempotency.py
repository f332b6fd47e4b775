"""Stored responses for the HTTP `Idempotency-Key` header.

A POST retried with the same key by the same actor gets the first response
back instead of running again; the same key with another body is refused.
Stored responses are redacted: a retried API-key creation does not hand the
secret out a second time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from lendcore.audit import REDACTED, canonical, is_secret
from lendcore.errors import IdempotencyConflict, InvalidInput
from lendcore.services.clock import utc_timestamp
from lendcore.store.database import Database
from lendcore.store.schema import idempotency_records

KEY_LENGTH_MAX = 128


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: Any


def validate_key(key: str) -> None:
    if not key or len(key) > KEY_LENGTH_MAX or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {KEY_LENGTH_MAX} printable characters")


def redact_response(value: Any) -> Any:
    """Replace the secret text of a response body with "***", keeping its shape.

    Unlike the audit log's redaction, only text stored under a secret-looking
    name is replaced: a mapping under one (`api_key`, the key's public record)
    is redacted inside, and a flag (`has_password`) is kept, so a replayed
    response still matches its response schema.
    """
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(v, str) and is_secret(str(k)) else redact_response(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_response(v) for v in value]
    return value


def stored_response(db: Database, key: str, request_hash: str) -> StoredResponse | None:
    with db.reading() as conn:
        row = conn.execute(
            select(idempotency_records).where(
                idempotency_records.c.actor == db.actor.label, idempotency_records.c.key == key
            )
        ).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was used for another request", idempotency_key=key
        )
    return StoredResponse(row.status_code, json.loads(row.response_json))


def store_response(db: Database, key: str, request_hash: str, status_code: int, body: Any) -> None:
    try:
        with db.transaction() as conn:
            conn.execute(
                insert(idempotency_records).values(
                    actor=db.actor.label,
                    key=key,
                    request_hash=request_hash,
                    status_code=status_code,
                    response_json=canonical(redact_response(body)),
                    created_at=utc_timestamp(),
                )
            )
    except IntegrityError:
        # A concurrent retry stored it first; both ran the same idempotent command.
        return
