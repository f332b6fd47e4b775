"""Scoring models: register an artifact, list the registry, ask for an activation.

Registering is idempotent by content: the version is the artifact's content hash,
so the same artifact posted twice returns the first registration.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb
from lendcore.api.routing import Route
from lendcore.api.schemas import ApprovalPublic
from lendcore.presentation import approval_doc
from lendcore.services import models
from lendcore.services.models import ArtifactDocument, RegisteredModel

router = APIRouter(prefix="/v1", tags=["models"], route_class=Route)


class ModelCreate(BaseModel):
    artifact: dict[str, Any] = Field(
        description="The model artifact's JSON document (model.json as `lendcore model train` writes it)."
    )
    name: str | None = Field(default=None, max_length=200)


class ActivationCreate(BaseModel):
    role: Literal["champion", "challenger"]


class ModelPublic(BaseModel):
    version: str = Field(description="SHA-256 of the artifact's canonical JSON.")
    kind: str
    name: str
    features: list[str]
    roles: list[str] = Field(description="champion and/or challenger, when it holds the role now.")
    training: dict[str, Any]
    registered_by: str
    business_date: date
    created_at: str


def _public(m: RegisteredModel) -> ModelPublic:
    return ModelPublic(
        version=m.version,
        kind=m.kind,
        name=m.name,
        features=list(m.features),
        roles=list(m.roles),
        training=dict(m.training),
        registered_by=m.registered_by,
        business_date=m.business_date,
        created_at=m.created_at,
    )


@router.post("/models", response_model=ModelPublic, status_code=201)
def register_model(body: ModelCreate, db: ActingDb) -> ModelPublic:
    """Store a model artifact in the registry."""
    return _public(models.register_model(db, ArtifactDocument(body.artifact), body.name))


@router.get("/models", response_model=list[ModelPublic])
def list_models(db: ActingDb) -> list[ModelPublic]:
    return [_public(m) for m in models.list_models(db)]


@router.get("/models/{version}", response_model=ModelPublic)
def get_model(version: str, db: ActingDb) -> ModelPublic:
    return _public(models.get_model(db, version))


@router.post("/models/{version}/activations", response_model=ApprovalPublic, status_code=202)
def activate_model(version: str, body: ActivationCreate, db: ActingDb) -> ApprovalPublic:
    """Ask for the model to become champion or challenger: a second risk manager approves."""
    return ApprovalPublic(**approval_doc(models.activate_model(db, version, body.role)))
