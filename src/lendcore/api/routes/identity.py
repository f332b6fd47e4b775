"""Login, users and API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lendcore.api.deps import ActingDb, IdempotencyKey, base_db, respond
from lendcore.api.routing import Route
from lendcore.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    TokenRequest,
    TokenResponse,
    UserCreate,
    UserPublic,
)
from lendcore.presentation import apikey_doc, user_doc
from lendcore.services import identity

router = APIRouter(prefix="/v1", tags=["identity"], route_class=Route)


@router.post("/auth/token", response_model=TokenResponse)
def issue_token(body: TokenRequest, request: Request) -> TokenResponse:
    """Log in with a password; returns a short-lived signed bearer token."""
    token, expires = identity.login(base_db(request), body.username, body.password)
    return TokenResponse(access_token=token, expires_at=expires.isoformat())


@router.post("/users", response_model=UserPublic, status_code=201)
def create_user(
    body: UserCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    def produce() -> UserPublic:
        user = identity.create_user(
            db,
            body.username,
            [r.value for r in body.roles],
            display_name=body.display_name,
            password=body.password,
        )
        return UserPublic(**user_doc(user))

    return respond(request, db, key, body, produce)


@router.get("/users", response_model=list[UserPublic])
def list_users(db: ActingDb) -> list[UserPublic]:
    return [UserPublic(**user_doc(u)) for u in identity.list_users(db)]


@router.get("/users/{username}", response_model=UserPublic)
def get_user(username: str, db: ActingDb) -> UserPublic:
    return UserPublic(**user_doc(identity.get_user(db, username)))


@router.post("/users/{username}/disable", response_model=UserPublic)
def disable_user(username: str, db: ActingDb) -> UserPublic:
    return UserPublic(**user_doc(identity.disable_user(db, username)))


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(
    body: ApiKeyCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    def produce() -> ApiKeyCreated:
        issued = identity.create_api_key(db, body.username, label=body.label, days=body.days)
        return ApiKeyCreated(api_key=ApiKeyPublic(**apikey_doc(issued.key)), token=issued.token)

    return respond(request, db, key, body, produce)


@router.get("/api-keys", response_model=list[ApiKeyPublic])
def list_api_keys(db: ActingDb, username: str | None = None) -> list[ApiKeyPublic]:
    return [ApiKeyPublic(**apikey_doc(k)) for k in identity.list_api_keys(db, username)]


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyPublic)
def revoke_api_key(key_id: str, db: ActingDb) -> ApiKeyPublic:
    return ApiKeyPublic(**apikey_doc(identity.revoke_api_key(db, key_id)))
