"""Dependencies: who is calling (API key or bearer token), and the database as them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from lendcore.auth.credentials import API_KEY_PREFIX
from lendcore.errors import InvalidInput
from lendcore.services import identity
from lendcore.services.idempotency import store_response, stored_response, validate_key
from lendcore.store.database import Database

bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from POST /v1/auth/token, or an API key"
)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


def base_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def refuse_nul(request: Request) -> None:
    """Refuse a NUL character (U+0000) in the path or the query: PostgreSQL
    cannot store or even compare one, so it would end as a 500, not a 422."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if "\x00" in name or "\x00" in str(value):
            raise InvalidInput(f"{name} contains a NUL character (U+0000)")


def acting_db(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Database:
    """The database as the authenticated caller; 401 when nobody is."""
    db = base_db(request)
    if api_key and (bearer is not None or request.headers.get("authorization")):
        # Two credentials are ambiguous: one may be stolen or stale. Refuse both.
        raise identity.Unauthenticated("send one credential: X-API-Key or Authorization, not both")
    if api_key:
        actor = identity.actor_for_api_key(db, api_key)
    elif bearer is not None and bearer.credentials.startswith(API_KEY_PREFIX + "_"):
        actor = identity.actor_for_api_key(db, bearer.credentials)
    elif bearer is not None:
        actor = identity.actor_for_token(db, bearer.credentials)
    else:
        raise identity.Unauthenticated("send an API key (X-API-Key) or a bearer token")
    request.state.actor = actor.label
    return db.acting_as(actor, request.state.request_id)


ActingDb = Annotated[Database, Depends(acting_db)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retrying a POST with the same key returns the first response.",
        max_length=128,
    ),
]


def fingerprint(method: str, path: str, body: BaseModel | None) -> str:
    content = json.dumps(
        [method, path, None if body is None else body.model_dump(mode="json")],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode()).hexdigest()


def respond(
    request: Request,
    db: Database,
    key: str | None,
    body: BaseModel | None,
    produce: Callable[[], BaseModel],
    status_code: int = 201,
) -> JSONResponse:
    """Run `produce` once per Idempotency-Key; a retry gets the stored response."""
    if key is None:
        return JSONResponse(produce().model_dump(mode="json"), status_code=status_code)
    validate_key(key)
    request_hash = fingerprint(request.method, request.url.path, body)
    stored = stored_response(db, key, request_hash)
    if stored is not None:
        return JSONResponse(
            stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )
    document: Any = produce().model_dump(mode="json")
    store_response(db, key, request_hash, status_code, document)
    return JSONResponse(document, status_code=status_code)
