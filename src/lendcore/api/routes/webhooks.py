"""Webhooks and their deliveries: the dead-letter queue is visible here."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb, IdempotencyKey, respond
from lendcore.api.routes.common import ID_MAX, Cursor, Limit, RecordId
from lendcore.api.routing import Route
from lendcore.api.schemas import Page, Strict
from lendcore.errors import InvalidInput
from lendcore.presentation import delivery_doc, webhook_doc
from lendcore.services import webhooks
from lendcore.services.webhooks import Delivery, Webhook

router = APIRouter(prefix="/v1/webhooks", tags=["events"], route_class=Route)


class WebhookCreate(Strict):
    url: str = Field(min_length=8, max_length=500)
    event_types: list[str] | None = Field(
        default=None, max_length=50, description="Exact types or `prefix.*`; null: every event."
    )
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class WebhookPublic(BaseModel):
    id: int
    url: str
    event_types: list[str] | None
    active: bool
    queued_through: int
    created_at: str


class WebhookCreated(BaseModel):
    webhook: WebhookPublic
    secret: str = Field(description="The HMAC-SHA256 signing secret: shown once, never again.")


class DeliveryPublic(BaseModel):
    webhook_id: int
    outbox_id: int
    event_id: str
    event_type: str
    aggregate_key: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: str
    last_error: str | None
    delivered_at: str | None


def _webhook(w: Webhook) -> WebhookPublic:
    return WebhookPublic(**webhook_doc(w))


def _delivery(d: Delivery) -> DeliveryPublic:
    return DeliveryPublic(**delivery_doc(d))


@router.post("", response_model=WebhookCreated, status_code=201)
def register(
    body: WebhookCreate, request: Request, db: ActingDb, key: IdempotencyKey = None
) -> JSONResponse:
    def produce() -> WebhookCreated:
        hook, secret = webhooks.register_webhook(db, body.url, body.event_types, body.secret)
        return WebhookCreated(webhook=_webhook(hook), secret=secret)

    return respond(request, db, key, body, produce)


@router.get("", response_model=list[WebhookPublic])
def list_webhooks(db: ActingDb) -> list[WebhookPublic]:
    return [_webhook(w) for w in webhooks.list_webhooks(db)]


@router.post("/{webhook_id}/disable", response_model=WebhookPublic)
def disable(webhook_id: RecordId, db: ActingDb) -> WebhookPublic:
    return _webhook(webhooks.deactivate_webhook(db, webhook_id))


def _delivery_cursor(cursor: str | None) -> tuple[int, int]:
    if cursor is None:
        return (0, 0)
    outbox, _, hook = cursor.partition("-")
    if not (outbox.isdigit() and hook.isdigit()) or max(int(outbox), int(hook)) > ID_MAX:
        raise InvalidInput("cursor is not one this API gave out")
    return (int(outbox), int(hook))


@router.get("/deliveries", response_model=Page[DeliveryPublic])
def list_deliveries(
    db: ActingDb,
    status: Literal["pending", "delivered", "dead"] | None = None,
    webhook_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DeliveryPublic]:
    """Deliveries in outbox order; `status=dead` is the dead-letter queue."""
    found = webhooks.list_deliveries(
        db, status=status, webhook_id=webhook_id, after=_delivery_cursor(cursor), limit=limit
    )
    last = found[-1] if found and len(found) == limit else None
    return Page[DeliveryPublic](
        items=[_delivery(d) for d in found],
        next_cursor=None if last is None else f"{last.outbox_id}-{last.webhook_id}",
    )


@router.post("/{webhook_id}/deliveries/{outbox_id}/redeliver", response_model=DeliveryPublic)
def redeliver(webhook_id: RecordId, outbox_id: RecordId, db: ActingDb) -> DeliveryPublic:
    """Put a dead delivery back in the queue."""
    return _delivery(webhooks.redeliver(db, webhook_id, outbox_id))
