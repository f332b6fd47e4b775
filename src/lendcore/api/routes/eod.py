"""End of day: close the business date, its status, and the loans behind a posting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb, IdempotencyKey, respond
from lendcore.api.routes.common import RecordId
from lendcore.api.routing import Route
from lendcore.api.schemas import IsoDate, Strict
from lendcore.presentation import amount
from lendcore.services import eod, provisions

router = APIRouter(prefix="/v1", tags=["end of day"], route_class=Route)


class EodRunCreate(Strict):
    engine: str = Field(default="local", pattern="^(local|spark)$")


class EodRunPublic(BaseModel):
    business_date: str
    summary: dict[str, Any]


class EodStatusPublic(BaseModel):
    business_date: str
    under_way: bool
    last_run: dict[str, Any] | None


class DrillLinePublic(BaseModel):
    loan_id: int
    amounts: dict[str, str]


class DrillPublic(BaseModel):
    entry_id: int
    description: str
    currency: str
    loans: list[DrillLinePublic]


@router.post("/eod/runs", response_model=EodRunPublic, status_code=201)
def run(
    request: Request, body: EodRunCreate, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    """Close today's business date for the whole book and advance it by a day."""

    def produce() -> EodRunPublic:
        close = eod.run_day(db, engine=body.engine)
        return EodRunPublic(business_date=close.business_date.isoformat(), summary=close.doc())

    return respond(request, db, key, body, produce)


@router.get("/eod/status", response_model=EodStatusPublic)
def status(db: ActingDb) -> EodStatusPublic:
    """The business date, the last closed date and whether a run is under way."""
    current = eod.status(db)
    return EodStatusPublic(
        business_date=current.business_date.isoformat(),
        under_way=current.under_way,
        last_run=current.last_run,
    )


@router.get("/gl/entries/{entry_id}/drill", response_model=DrillPublic)
def drill(entry_id: RecordId, db: ActingDb) -> DrillPublic:
    """The loans behind a summarised end-of-day journal entry, each with its part."""
    entry, lines = eod.drill(db, entry_id)
    currency = entry["currency"]
    return DrillPublic(
        entry_id=entry["id"],
        description=entry["description"],
        currency=currency,
        loans=[
            DrillLinePublic(
                loan_id=line.loan_id,
                amounts={role: amount(v, currency) for role, v in line.deltas.items()},
            )
            for line in lines
        ],
    )


@router.get("/reports/provision")
def provision_report(
    db: ActingDb,
    on: IsoDate = Query(alias="date"),
    since: IsoDate | None = Query(default=None, alias="from"),
) -> dict[str, Any]:
    """IFRS 9: stage mix, ECL by stage and product, and the loss allowance's
    movements from `from` (default: the 1st of the month) to `date`."""
    return provisions.report_doc(provisions.provision_report(db, on, since))
