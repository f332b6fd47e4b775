"""Schedule previews: POST /v1/schedules/preview, the same document as
`lendcore schedule preview --json`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb
from lendcore.api.routing import Route
from lendcore.api.schemas import AMOUNT_PATTERN, IsoDate, Strict
from lendcore.presentation import schedule_doc
from lendcore.services.schedules import PreviewRequest, preview_schedule

router = APIRouter(prefix="/v1", tags=["schedules"], route_class=Route)

Name = Annotated[str | None, Field(max_length=64)]
Periods = Annotated[int | None, Field(ge=0, le=2_600)]


class SchedulePreviewCreate(Strict):
    """Terms to preview; every field but `principal` overrides the product's own."""

    principal: str = Field(pattern=AMOUNT_PATTERN, description="Amount financed, major units.")
    product: dict[str, Any] | None = Field(
        default=None,
        description="A product definition (the YAML file's settings as JSON); "
        "default: the consumer-annuity example.",
    )
    currency: Name = None
    annual_rate: str | None = Field(
        default=None, pattern=r"^[0-9]{1,3}(\.[0-9]{1,12})?$", description="0.12 for 12 %."
    )
    term: int | None = Field(default=None, ge=1, le=2_600, description="Number of instalments.")
    frequency: Name = None
    start: IsoDate | None = Field(
        default=None, description="Disbursement date; default: the business date."
    )
    first_repayment: IsoDate | None = None
    day_count: Name = None
    method: Name = None
    amortization: Name = None
    grace_principal: Periods = None
    grace_interest: Periods = None
    calendar: Name = None
    convention: Name = None
    rounding: Name = None
    instalment_multiple: str | None = Field(default=None, pattern=AMOUNT_PATTERN)


class InstalmentPublic(BaseModel):
    number: int
    due_date: str
    principal: str
    interest: str
    fees: str
    total: str
    outstanding: str


class ScheduleTotalsPublic(BaseModel):
    principal: str
    interest: str
    fees: str
    total: str


class SchedulePublic(BaseModel):
    currency: str
    instalments: list[InstalmentPublic]
    totals: ScheduleTotalsPublic


@router.post("/schedules/preview", response_model=SchedulePublic)
def preview(body: SchedulePreviewCreate, db: ActingDb) -> dict[str, Any]:
    """The repayment schedule a loan would have on these terms; nothing is written.

    Explicit values may leave the product's limits (a preview shows what a
    product change would do); booking a loan never may.
    """
    request = PreviewRequest(
        principal=body.principal,
        product=body.product,
        currency=body.currency,
        annual_rate=body.annual_rate,
        term=body.term,
        frequency=body.frequency,
        start=body.start,
        first_repayment=body.first_repayment,
        day_count=body.day_count,
        method=body.method,
        amortization=body.amortization,
        grace_principal=body.grace_principal,
        grace_interest=body.grace_interest,
        calendar=body.calendar,
        convention=body.convention,
        rounding=body.rounding,
        instalment_multiple=body.instalment_multiple,
    )
    return schedule_doc(preview_schedule(db, request).schedule)
