"""Scoring models: register an artifact, list the registry, ask for an activation.

Registering is idempotent by content: the version is the artifact's content hash,
so the same artifact posted twice returns the first registration.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb
from lendcore.api.routing import Route
from lendcore.api.schemas import ApprovalPublic, IsoDate
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


class StabilityPublic(BaseModel):
    quantity: str = Field(description='"score" or a characteristic\'s name.')
    psi: float
    status: Literal["stable", "watch", "warning"]
    expected: list[float] = Field(description="Training population's share in each bin.")
    actual: list[float] = Field(description="The window's share in each bin.")


class MonitoringWindow(BaseModel):
    from_: date = Field(alias="from")
    to: date


class MonitoringPublic(BaseModel):
    model: dict[str, Any] = Field(description="version, kind, name and the roles it holds now.")
    window: MonitoringWindow | None
    source: str | None
    applications: int = Field(description="Applications decided by the engine in the window.")
    truncated: bool = Field(description="More were decided in the window than were compared.")
    thresholds: dict[str, float]
    rows: list[StabilityPublic]
    warnings: list[str] = Field(description="Quantities whose PSI is above the warning threshold.")
    watch: list[str]


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


@router.get("/models/monitoring", response_model=MonitoringPublic)
def monitor_model(
    db: ActingDb,
    version: str | None = Query(
        default=None, max_length=64, description="A registered model (default: the role's)."
    ),
    role: Literal["champion", "challenger"] = "champion",
    date_from: IsoDate | None = Query(default=None, alias="from"),
    date_to: IsoDate | None = Query(default=None, alias="to"),
    days: int | None = Query(default=None, ge=1, le=models.MONITOR_DAYS_MAX),
) -> MonitoringPublic:
    """Population stability: the PSI of the model's score and of each characteristic,
    the applications decided from `from` to `to` (or the last `days`, 90 by default,
    up to the business date) against the model's training population; watch above
    0.10, warning above 0.25."""
    report = models.monitor_model(
        db, version=version, role=role, date_from=date_from, date_to=date_to, days=days
    )
    return MonitoringPublic(**report.to_doc())


@router.get("/models/{version}", response_model=ModelPublic)
def get_model(version: str, db: ActingDb) -> ModelPublic:
    return _public(models.get_model(db, version))


@router.post("/models/{version}/activations", response_model=ApprovalPublic, status_code=202)
def activate_model(version: str, body: ActivationCreate, db: ActingDb) -> ApprovalPublic:
    """Ask for the model to become champion or challenger: a second risk manager approves."""
    return ApprovalPublic(**approval_doc(models.activate_model(db, version, body.role)))
