"""Webhooks: where the publisher delivers domain events, and the dead-letter view.

An admin registers a webhook (an http(s) URL, the event types it wants, and a
shared secret that signs every delivery; see lendcore.events_signing). The
publisher (lendcore.services.publisher) queues one delivery per matching outbox
event and webhook, and works each delivery to `delivered` or, after its
attempts run out, to `dead`. Dead deliveries are listed here and put back with
`redeliver` once the receiver is fixed.

Webhook management is deliberately kept out of the outbox: registering a
webhook is configuration, not a business fact, and an event about webhooks
would be delivered to the webhooks themselves. It is still a command, so the
audit log records who registered or disabled what (the secret is redacted
there by its name).

The secret is stored as given: the publisher needs it in clear to compute each
HMAC. It is returned once, by `register_webhook`, and never again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from lendcore.errors import Conflict, InvalidInput, NotFound
from lendcore.services.clock import utc_timestamp
from lendcore.services.commands import command, note_result, query
from lendcore.store.database import Database
from lendcore.store.schema import outbox_events, webhook_deliveries, webhooks

# Column sizes in store.schema, checked here so a too-long value is a clear
# InvalidInput rather than a database error (or silent truncation on SQLite).
URL_LENGTH_MAX = 500
EVENT_TYPES_TEXT_LENGTH_MAX = 500
EVENT_TYPE_LENGTH_MAX = 64
SECRET_LENGTH_MIN = 16
SECRET_LENGTH_MAX = 200
LAST_ERROR_LENGTH_MAX = 500

EVENT_TYPES_MAX = 50
PAGE_SIZE_MAX = 1_000

# Stored in webhooks.event_types when the webhook wants every event.
ALL_EVENTS = "*"

DELIVERY_STATUSES = ("pending", "delivered", "dead")

# Exact names (`account.opened`) or a prefix pattern (`account.*`, meaning
# every type that starts with `account.`). Lower case, like the emitted types.
_EVENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$")

# "whsec_" marks the value as a webhook secret in logs and secret scanners.
SECRET_PREFIX = "whsec_"
SECRET_RANDOM_BYTES = 32


class WebhookNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"


class DeliveryNotFound(NotFound):
    code = "WEBHOOK_DELIVERY_NOT_FOUND"


class WebhookDisabled(Conflict):
    code = "WEBHOOK_DISABLED"


class DeliveryNotDead(Conflict):
    code = "WEBHOOK_DELIVERY_NOT_DEAD"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered webhook, without its secret."""

    id: int
    url: str
    # None: every event type.
    event_types: tuple[str, ...] | None
    active: bool
    # Outbox id up to which events have been queued for it.
    queued_through: int
    created_at: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one webhook."""

    webhook_id: int
    outbox_id: int
    event_id: str
    event_type: str
    aggregate_key: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    delivered_at: str | None


# --- pure rules ----------------------------------------------------------------------


def validate_webhook_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials and no fragment."""
    text = url.strip()
    if not text or len(text) > URL_LENGTH_MAX:
        raise InvalidInput(f"a webhook URL needs 1 to {URL_LENGTH_MAX} characters")
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidInput(f"{text!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidInput(f"a webhook URL must start with http:// or https://, not {text!r}")
    if not parsed.host:
        raise InvalidInput(f"webhook URL {text!r} has no host")
    if parsed.userinfo:
        # The URL is shown to every reader of the webhook list; credentials in
        # it would leak. The signature authenticates lendcore to the receiver.
        raise InvalidInput(
            "a webhook URL cannot carry a user name or password: receivers "
            "authenticate lendcore by the X-Lendcore-Signature header"
        )
    if parsed.fragment:
        raise InvalidInput("a webhook URL cannot have a #fragment (it is never sent)")
    return text


def normalise_event_types(event_types: list[str] | None) -> tuple[str, ...] | None:
    """Validate and sort the wanted event types; None or an empty list means all."""
    if not event_types:
        return None
    cleaned = sorted({t.strip() for t in event_types})
    if len(cleaned) > EVENT_TYPES_MAX:
        raise InvalidInput(f"a webhook takes at most {EVENT_TYPES_MAX} event types")
    for pattern in cleaned:
        if len(pattern) > EVENT_TYPE_LENGTH_MAX or not _EVENT_PATTERN.match(pattern):
            raise InvalidInput(
                f"{pattern!r} is not an event type: use a name such as account.opened "
                "or a prefix such as account.*"
            )
    if len(encode_event_types(tuple(cleaned))) > EVENT_TYPES_TEXT_LENGTH_MAX:
        raise InvalidInput(
            f"the event types of one webhook fit in {EVENT_TYPES_TEXT_LENGTH_MAX} characters"
        )
    return tuple(cleaned)


def encode_event_types(event_types: tuple[str, ...] | None) -> str:
    return ALL_EVENTS if event_types is None else ",".join(event_types)


def decode_event_types(text: str) -> tuple[str, ...] | None:
    return None if text == ALL_EVENTS else tuple(text.split(","))


def event_type_matches(event_type: str, wanted: tuple[str, ...] | None) -> bool:
    """Whether a webhook that wants `wanted` receives an event of `event_type`."""
    if wanted is None:
        return True
    for pattern in wanted:
        if pattern.endswith(".*"):
            if event_type.startswith(pattern[:-1]):
                return True
        elif event_type == pattern:
            return True
    return False


def new_webhook_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def validate_secret(secret: str) -> str:
    if not SECRET_LENGTH_MIN <= len(secret) <= SECRET_LENGTH_MAX:
        raise InvalidInput(
            f"a webhook secret needs {SECRET_LENGTH_MIN} to {SECRET_LENGTH_MAX} characters"
        )
    if not secret.isascii() or not secret.isprintable() or secret != secret.strip():
        # Receivers key their HMAC with these bytes: keep them unambiguous.
        raise InvalidInput("a webhook secret must be printable ASCII without surrounding spaces")
    return secret


def aggregate_key(aggregate_type: str, aggregate_id: str) -> str:
    """The unit of ordering: events of one aggregate reach a webhook in outbox order."""
    return f"{aggregate_type}:{aggregate_id}"


def utc_text(moment: datetime) -> str:
    """A timestamp in the stored form (fixed width, so text order is time order)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- commands and queries ----------------------------------------------------------------


def _to_webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        event_types=decode_event_types(row.event_types),
        active=bool(row.active),
        queued_through=int(row.queued_through),
        created_at=row.created_at,
    )


_WEBHOOK_COLUMNS = (
    webhooks.c.id,
    webhooks.c.url,
    webhooks.c.event_types,
    webhooks.c.active,
    webhooks.c.queued_through,
    webhooks.c.created_at,
)


def _load_webhook(conn: Connection, webhook_id: int) -> Webhook:
    # The secret column is never selected here: nothing that returns a Webhook
    # can leak it.
    row = conn.execute(select(*_WEBHOOK_COLUMNS).where(webhooks.c.id == webhook_id)).first()
    if row is None:
        raise WebhookNotFound(f"no webhook {webhook_id}", webhook_id=webhook_id)
    return _to_webhook(row)


@command("events.webhook.manage")
def register_webhook(
    db: Database,
    url: str,
    event_types: list[str] | None = None,
    secret: str | None = None,
    *,
    start_after: int | None = None,
) -> tuple[Webhook, str]:
    """Register a webhook; returns it with its secret, which is never shown again.

    `event_types`: exact types or `prefix.*` patterns; None or empty means every
    event. `secret`: the HMAC key; one is generated when None. The webhook gets
    the events recorded after it is registered; `start_after=OUTBOX_ID` instead
    starts after that outbox id (0: the whole history, to backfill a receiver).
    """
    clean_url = validate_webhook_url(url)
    wanted = normalise_event_types(event_types)
    key = new_webhook_secret() if secret is None else validate_secret(secret)
    if start_after is not None and start_after < 0:
        raise InvalidInput(f"start_after must be 0 or an outbox id, not {start_after}")
    with db.transaction() as conn:
        head = conn.execute(select(func.coalesce(func.max(outbox_events.c.id), 0))).scalar_one()
        webhook_id = conn.execute(
            insert(webhooks)
            .values(
                url=clean_url,
                secret=key,
                event_types=encode_event_types(wanted),
                active=1,
                queued_through=int(head) if start_after is None else min(start_after, int(head)),
                created_at=utc_timestamp(),
            )
            .returning(webhooks.c.id)
        ).scalar_one()
        webhook = _load_webhook(conn, webhook_id)
    note_result(webhook_id=webhook.id)
    return webhook, key


@command("events.webhook.manage")
def deactivate_webhook(db: Database, webhook_id: int) -> Webhook:
    """Stop delivering to a webhook. Its queued deliveries stay as they are, unattempted."""
    with db.transaction() as conn:
        webhook = _load_webhook(conn, webhook_id)
        if webhook.active:
            conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(active=0))
            webhook = _load_webhook(conn, webhook_id)
    note_result(webhook_id=webhook_id)
    return webhook


@query("events.read")
def list_webhooks(db: Database, *, include_inactive: bool = True) -> list[Webhook]:
    q = select(*_WEBHOOK_COLUMNS).order_by(webhooks.c.id)
    if not include_inactive:
        q = q.where(webhooks.c.active == 1)
    with db.reading() as conn:
        return [_to_webhook(r) for r in conn.execute(q)]


def _delivery_query() -> Any:
    return select(
        webhook_deliveries,
        outbox_events.c.event_id,
        outbox_events.c.event_type,
    ).join(outbox_events, outbox_events.c.id == webhook_deliveries.c.outbox_id)


def _to_delivery(row: Any) -> Delivery:
    return Delivery(
        webhook_id=row.webhook_id,
        outbox_id=row.outbox_id,
        event_id=row.event_id,
        event_type=row.event_type,
        aggregate_key=row.aggregate_key,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


@query("events.read")
def list_deliveries(
    db: Database,
    *,
    status: str | None = None,
    webhook_id: int | None = None,
    after: tuple[int, int] = (0, 0),
    limit: int = 100,
) -> list[Delivery]:
    """Deliveries in outbox order; `status="dead"` is the dead-letter view.

    Paging is by the cursor `after = (outbox_id, webhook_id)` of the last row
    of the previous page, so a page boundary inside one event's deliveries to
    several webhooks loses nothing.
    """
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(DELIVERY_STATUSES)}, not {status!r}")
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    after_outbox, after_webhook = after
    d = webhook_deliveries.c
    q = _delivery_query().where(
        or_(
            d.outbox_id > after_outbox,
            and_(d.outbox_id == after_outbox, d.webhook_id > after_webhook),
        )
    )
    if status is not None:
        q = q.where(d.status == status)
    if webhook_id is not None:
        q = q.where(d.webhook_id == webhook_id)
    with db.reading() as conn:
        rows = conn.execute(q.order_by(d.outbox_id, d.webhook_id).limit(limit))
        return [_to_delivery(r) for r in rows]


def _load_delivery(conn: Connection, webhook_id: int, outbox_id: int) -> Delivery:
    d = webhook_deliveries.c
    row = conn.execute(
        _delivery_query().where(d.webhook_id == webhook_id, d.outbox_id == outbox_id)
    ).first()
    if row is None:
        raise DeliveryNotFound(
            f"webhook {webhook_id} has no delivery of outbox event {outbox_id}",
            webhook_id=webhook_id,
            outbox_id=outbox_id,
        )
    return _to_delivery(row)


@command("events.webhook.manage")
def redeliver(db: Database, webhook_id: int, outbox_id: int) -> Delivery:
    """Put a dead delivery back to pending with a fresh set of attempts.

    Redelivering one that is already pending changes nothing (so a retried
    request is harmless); one that was delivered is refused. Pending later
    events of the same aggregate wait behind it again, as they would have had
    it never died.
    """
    d = webhook_deliveries.c
    with db.transaction() as conn:
        webhook = _load_webhook(conn, webhook_id)
        delivery = _load_delivery(conn, webhook_id, outbox_id)
        if delivery.status == "pending":
            return delivery
        if delivery.status != "dead":
            raise DeliveryNotDead(
                f"outbox event {outbox_id} was delivered to webhook {webhook_id} already",
                webhook_id=webhook_id,
                outbox_id=outbox_id,
            )
        if not webhook.active:
            raise WebhookDisabled(
                f"webhook {webhook_id} is disabled: nothing would be delivered to it",
                webhook_id=webhook_id,
            )
        conn.execute(
            update(webhook_deliveries)
            .where(d.webhook_id == webhook_id, d.outbox_id == outbox_id, d.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=utc_timestamp())
        )
        delivery = _load_delivery(conn, webhook_id, outbox_id)
    note_result(webhook_id=webhook_id, outbox_id=outbox_id)
    return delivery
