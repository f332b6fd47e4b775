"""The publisher: delivers outbox events to webhooks and to NATS JetStream.

Commands write their events to `outbox_events` in their own transaction
(lendcore.services.events). The publisher reads them afterwards and delivers
them **at least once** and **in order per aggregate**; consumers de-duplicate
by the event id. It is infrastructure, like end of day: it runs as lendcore
itself, is not a command in the permission table, and writes no audit records
(a delivery attempt is not a business fact); its state is readable through
`lendcore.services.webhooks.list_deliveries`.

Each step is one explicit, bounded call; nothing runs at import time:

- `queue_deliveries`: one `webhook_deliveries` row per (active webhook,
  matching outbox event), advancing `webhooks.queued_through`.
- `deliver_due`: POST due deliveries, mark them delivered, schedule a retry
  with exponential backoff, or after `RetryPolicy.max_attempts` leave them
  `dead` (the dead-letter state).
- `publish_to_nats`: publish the outbox in order to a JetStream stream,
  advancing the cursor `publisher_cursors["nats"]` after the acks.
- `run_publisher`: the loop of the three, for `lendcore events publish`.

How the guarantees are kept
---------------------------
*No event is skipped.* Both cursors move over outbox ids. On PostgreSQL an id
is drawn from a sequence when the row is inserted, but transactions commit in
their own order: id 10 can become visible after id 11. A cursor moved to 11 on
seeing 11 would skip 10 for ever. So the publisher moves a cursor only over
ids that are final: the gap-free run of ids right after the cursor (every id
in it is committed), and, at a gap, everything visible once it holds a SHARE
lock on `outbox_events`. That lock waits for every transaction that has
inserted into the outbox to end (inserting takes ROW EXCLUSIVE, which SHARE
conflicts with, before the id is drawn), so afterwards a missing id belongs to
a rolled-back transaction and will never appear. The lock is taken only at a
gap, held for one short read, and given up after `PG_LOCK_TIMEOUT_MS` (the
cursor then waits at the gap until a later round). On SQLite writers are
serialised, so every visible id is final.

*In order per aggregate.* A delivery is attempted only when no earlier (lower
outbox id) delivery of the same webhook and the same aggregate
(`aggregate_type:aggregate_id`) is still pending. A failing event therefore
holds back the later events of its own aggregate, and only those. A `dead`
delivery no longer blocks: once an event is dead-lettered, the later events of
its aggregate are delivered, so a receiver can see them out of order relative
to the dead one until it is redelivered. That is the price of not letting one
poison event stop an aggregate for ever; the dead-letter list is where to look.
JetStream gets the whole outbox in id order, one message at a time.

*At least once.* A delivery is marked delivered only after a 2xx response; a
crash between the response and that write means one more delivery of the same
event id. Before each attempt the publisher claims the delivery (counts the
attempt and pushes `next_attempt_at` a lease ahead), so a second publisher does
not send it at the same time and an attempt cut short by a crash is retried.
JetStream messages carry `Nats-Msg-Id: <event_id>`, so re-publishing within the
stream's duplicate window (`NATS_DUPLICATE_WINDOW_S`) stores nothing twice; the
cursor moves only over acknowledged messages.

*No transaction spans a network call.* Due work is read in one short read
transaction; each attempt is claimed, sent, and recorded in short transactions
of its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import nats.errors
import nats.js.errors
from sqlalchemy import Connection, Row, Select, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from lendcore.audit import canonical
from lendcore.errors import InvalidInput, LendcoreError
from lendcore.events_signing import HEADER_EVENT_ID, HEADER_EVENT_TYPE, sign
from lendcore.services.events import Event, to_event
from lendcore.services.webhooks import (
    LAST_ERROR_LENGTH_MAX,
    aggregate_key,
    decode_event_types,
    event_type_matches,
    utc_text,
)
from lendcore.store.database import Database
from lendcore.store.schema import outbox_events, publisher_cursors, webhook_deliveries, webhooks

log = logging.getLogger(__name__)

# --- limits ---------------------------------------------------------------------------

# Outbox events examined per webhook by one queue_deliveries call.
QUEUE_BATCH_MAX = 1_000
# Deliveries read per webhook by one deliver_due call.
DELIVERY_BATCH_MAX = 100
# deliver_due starts no new attempt after this long, so one slow receiver
# cannot stretch a round (and delay every other webhook) without bound.
DELIVERY_ROUND_BUDGET_S = 30.0
# Of a failed response, only this much body is read (for last_error).
RESPONSE_BYTES_MAX = 512
# A claimed attempt is retried after this many request timeouts if the
# publisher dies during it (one timeout per phase: connect, write, read, and room).
LEASE_TIMEOUTS = 4
# At a gap in outbox ids on PostgreSQL, wait at most this long for the lock that
# proves the gap final (writers queue behind the request while it waits).
PG_LOCK_TIMEOUT_MS = 500
PG_LOCK_NOT_AVAILABLE = "55P03"

NATS_BATCH_MAX = 1_000
NATS_CONNECT_TIMEOUT_S = 2
NATS_ACK_TIMEOUT_S = 5.0
NATS_CLOSE_TIMEOUT_S = 5.0
# JetStream drops a message whose Nats-Msg-Id it has seen within this window.
NATS_DUPLICATE_WINDOW_S = 120.0
NATS_CURSOR = "nats"
NATS_STREAM_DEFAULT = "LENDCORE"
NATS_SUBJECT_PREFIX_DEFAULT = "lendcore.events"
NATS_URL_ENV = "LENDCORE_NATS_URL"

INTERVAL_S_MIN = 0.05
INTERVAL_S_MAX = 300.0
# `once` runs rounds until one finds no immediate work, but never more than this.
ONCE_ROUNDS_MAX = 100

USER_AGENT = "lendcore-webhooks/1"

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SUBJECT_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_SUBJECT_PREFIX_LENGTH_MAX = 100
_NOT_SUBJECT_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


class PublishFailed(LendcoreError):
    """The stream could not be reached or refused a message; nothing was skipped."""

    code = "EVENT_PUBLISH_FAILED"
    http_status = 503


# --- the retry policy (pure) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a delivery is retried.

    The defaults retry for about 68 minutes (2 s, 4 s, ... 2048 s apart) over
    12 attempts before a delivery is dead-lettered; `delay_cap_s` bounds the
    gap if `max_attempts` is raised. `jitter` takes up to that fraction off each
    delay, so deliveries that failed together (a receiver outage) come back
    spread out rather than all at once.
    """

    max_attempts: int = 12
    base_delay_s: float = 2.0
    factor: float = 2.0
    delay_cap_s: float = 3_600.0
    jitter: float = 0.2
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 100:
            raise ValueError(f"max_attempts must be 1 to 100, got {self.max_attempts}")
        if not 0 < self.base_delay_s <= self.delay_cap_s <= 86_400:
            raise ValueError("need 0 < base_delay_s <= delay_cap_s <= one day")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"timeout_s must be in (0, 60], got {self.timeout_s}")


DEFAULT_POLICY = RetryPolicy()


def backoff_delay_s(attempts: int, policy: RetryPolicy, unit_random: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1 for the first).

    `unit_random` in [0, 1) draws the jitter; 0 gives the plain exponential delay.
    """
    if attempts < 1:
        raise ValueError(f"attempts counts from 1, got {attempts}")
    if not 0 <= unit_random < 1:
        raise ValueError(f"unit_random must be in [0, 1), got {unit_random}")
    # The exponent is clamped so a large attempt count cannot overflow a float.
    raw = policy.base_delay_s * policy.factor ** min(attempts - 1, 64)
    return min(raw, policy.delay_cap_s) * (1 - policy.jitter * unit_random)


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """What one deliver_due call did."""

    attempted: int = 0
    delivered: int = 0
    # Failed and scheduled for another attempt.
    retrying: int = 0
    # Failed for the last time: now in the dead-letter state.
    dead: int = 0
    # Due but not attempted this round: behind an earlier event of the same
    # aggregate, behind an unreachable receiver, claimed by another publisher,
    # or past the round's time budget.
    skipped: int = 0


# --- reading the outbox safely -----------------------------------------------------------


@dataclass(slots=True)
class _OutboxReader:
    """Reads outbox rows after a cursor, returning only those whose ids are final.

    See "No event is skipped" in the module docstring.
    """

    conn: Connection
    locked: bool = False

    def rows_after(self, query: Select[Any], after_id: int, limit: int) -> list[Row[Any]]:
        ordered = query.where(outbox_events.c.id > after_id).order_by(outbox_events.c.id)
        rows = list(self.conn.execute(ordered.limit(limit)))
        if self.locked or self.conn.dialect.name != "postgresql":
            return rows
        expected = after_id + 1
        for index, row in enumerate(rows):
            if row.id != expected:
                if not self._lock():
                    return rows[:index]
                # Every transaction that inserted before the lock has ended:
                # what is visible now is final, gaps included.
                return list(self.conn.execute(ordered.limit(limit)))
            expected += 1
        return rows

    def _lock(self) -> bool:
        table = self.conn.dialect.identifier_preparer.format_table(outbox_events)
        previous = self.conn.exec_driver_sql("SHOW lock_timeout").scalar()
        try:
            with self.conn.begin_nested():
                self.conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT_MS}ms'")
                self.conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE MODE")
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != PG_LOCK_NOT_AVAILABLE:
                raise
            log.info("outbox gap not yet final (a writer holds the table); retrying later")
            return False
        # The lock stays until the transaction ends; the timeout goes back to
        # what it was for the rest of the transaction.
        self.conn.execute(select(func.set_config("lock_timeout", str(previous), True)))
        self.locked = True
        return True


@contextmanager
def _outbox_transaction(db: Database) -> Iterator[Connection]:
    """A transaction fit for _OutboxReader: PostgreSQL refuses LOCK ... SHARE in a
    read-only one, and SQLite needs no lock (so it need not take the write lock)."""
    if db.is_postgres:
        with db.transaction() as conn:
            yield conn
    else:
        with db.reading() as conn:
            yield conn


# --- queueing ------------------------------------------------------------------------------


def _clock(now: datetime | None) -> Callable[[], datetime]:
    if now is None:
        return lambda: datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return lambda: now


@dataclass(frozen=True, slots=True)
class _Queued:
    created: int
    # Whether any webhook's cursor moved (events examined, matching or not).
    advanced: bool
    # Whether some webhook filled its batch (more may be waiting).
    full: bool


def queue_deliveries(
    db: Database, *, batch_size: int = QUEUE_BATCH_MAX, now: datetime | None = None
) -> int:
    """Create pending deliveries for new outbox events; returns how many.

    For each active webhook, the first `batch_size` outbox events after its
    `queued_through` are examined, the matching ones queued (due at once), and
    `queued_through` moved past all of them, in one transaction. Each webhook
    has its own window, so a lagging webhook does not hold back the others.
    """
    return _queue(db, batch_size, _clock(now)()).created


def _queue(db: Database, batch_size: int, now: datetime) -> _Queued:
    if not 1 <= batch_size <= QUEUE_BATCH_MAX:
        raise InvalidInput(f"batch_size must be 1 to {QUEUE_BATCH_MAX}")
    due_at = utc_text(now)
    summary = select(
        outbox_events.c.id,
        outbox_events.c.event_type,
        outbox_events.c.aggregate_type,
        outbox_events.c.aggregate_id,
    )
    created = 0
    advanced = full = False
    with db.transaction() as conn:
        # Locked so two publishers cannot queue the same window twice (SQLite's
        # BEGIN IMMEDIATE already serialises them).
        hooks = conn.execute(
            select(webhooks.c.id, webhooks.c.event_types, webhooks.c.queued_through)
            .where(webhooks.c.active == 1)
            .order_by(webhooks.c.id)
            .with_for_update()
        ).all()
        reader = _OutboxReader(conn)
        for hook in hooks:
            rows = reader.rows_after(summary, int(hook.queued_through), batch_size)
            if not rows:
                continue
            wanted = decode_event_types(hook.event_types)
            values = [
                {
                    "webhook_id": hook.id,
                    "outbox_id": r.id,
                    "aggregate_key": aggregate_key(r.aggregate_type, r.aggregate_id),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": due_at,
                }
                for r in rows
                if event_type_matches(r.event_type, wanted)
            ]
            if values:
                conn.execute(insert(webhook_deliveries), values)
            conn.execute(
                update(webhooks).where(webhooks.c.id == hook.id).values(queued_through=rows[-1].id)
            )
            created += len(values)
            advanced = True
            full = full or len(rows) == batch_size
    return _Queued(created, advanced, full)


# --- delivering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Due:
    webhook_id: int
    url: str
    secret: str
    outbox_id: int
    aggregate_key: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    # Pending deliveries of the same webhook and aggregate with lower outbox ids.
    earlier_pending: int
    event: Event


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivered: bool
    error: str | None = None
    # The receiver could not be reached at all (connection refused, timeout):
    # its other deliveries are not attempted in this round.
    unreachable: bool = False


def _read_due(db: Database, now_text: str, batch_size: int) -> list[list[_Due]]:
    """Due deliveries, one list per active webhook, each in outbox order.

    A delivery is read only if every earlier pending delivery of its aggregate
    (same webhook) is due too; whether those earlier ones succeed first is
    checked while the round runs (`earlier_pending`).
    """
    d = webhook_deliveries.c
    earlier = webhook_deliveries.alias("earlier")
    same_aggregate_pending = (
        earlier.c.webhook_id == d.webhook_id,
        earlier.c.aggregate_key == d.aggregate_key,
        earlier.c.status == "pending",
        earlier.c.outbox_id < d.outbox_id,
    )
    earlier_count = (
        select(func.count()).select_from(earlier).where(*same_aggregate_pending).scalar_subquery()
    )
    blocked = (
        select(earlier.c.outbox_id)
        .where(*same_aggregate_pending, earlier.c.next_attempt_at > now_text)
        .exists()
    )
    with db.reading() as conn:
        hooks = conn.execute(
            select(webhooks.c.id, webhooks.c.url, webhooks.c.secret)
            .where(webhooks.c.active == 1)
            .order_by(webhooks.c.id)
        ).all()
        found: list[list[_Due]] = []
        for hook in hooks:
            rows = conn.execute(
                select(
                    d.outbox_id,
                    d.aggregate_key,
                    d.attempts,
                    d.next_attempt_at,
                    d.last_error,
                    earlier_count.label("earlier_pending"),
                    outbox_events,
                )
                .join(outbox_events, outbox_events.c.id == d.outbox_id)
                .where(
                    d.webhook_id == hook.id,
                    d.status == "pending",
                    d.next_attempt_at <= now_text,
                    ~blocked,
                )
                .order_by(d.outbox_id)
                .limit(batch_size)
            ).all()
            if rows:
                found.append(
                    [
                        _Due(
                            webhook_id=hook.id,
                            url=hook.url,
                            secret=hook.secret,
                            outbox_id=r.outbox_id,
                            aggregate_key=r.aggregate_key,
                            attempts=r.attempts,
                            next_attempt_at=r.next_attempt_at,
                            last_error=r.last_error,
                            earlier_pending=r.earlier_pending,
                            event=to_event(r),
                        )
                        for r in rows
                    ]
                )
        return found


def _round_robin(queues: Sequence[Sequence[_Due]]) -> Iterator[_Due]:
    """One delivery of each webhook in turn, so a slow one cannot starve the rest."""
    for index in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if index < len(queue):
                yield queue[index]


def _pk(item: _Due) -> tuple[Any, ...]:
    d = webhook_deliveries.c
    return (d.webhook_id == item.webhook_id, d.outbox_id == item.outbox_id)


_EXHAUSTED = -1


def _claim(db: Database, item: _Due, now: datetime, policy: RetryPolicy) -> int | None:
    """Count the attempt and lease the delivery; returns the attempt number.

    None: the delivery changed since it was read (another publisher has it).
    _EXHAUSTED: its attempts were used up by a publisher that died mid-attempt;
    it is dead-lettered instead of attempted again.
    """
    d = webhook_deliveries.c
    unchanged = (
        *_pk(item),
        d.status == "pending",
        d.attempts == item.attempts,
        d.next_attempt_at == item.next_attempt_at,
    )
    with db.transaction() as conn:
        if item.attempts >= policy.max_attempts:
            done = conn.execute(
                update(webhook_deliveries)
                .where(*unchanged)
                .values(
                    status="dead",
                    last_error=item.last_error or "the publisher stopped during the last attempt",
                )
            )
            return _EXHAUSTED if done.rowcount == 1 else None
        lease = timedelta(seconds=policy.timeout_s * LEASE_TIMEOUTS)
        claimed = conn.execute(
            update(webhook_deliveries)
            .where(*unchanged)
            .values(attempts=item.attempts + 1, next_attempt_at=utc_text(now + lease))
        )
        return item.attempts + 1 if claimed.rowcount == 1 else None


def _one_line(text: str) -> str:
    return " ".join(_CONTROL_CHARS.sub(" ", text).split())


def _describe_exception(exc: Exception, url: str) -> str:
    # The URL may carry a token in its query string: keep it out of last_error.
    detail = _one_line(str(exc))
    if url:
        detail = detail.replace(url, "<webhook url>")
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


def _read_some(response: httpx.Response) -> str:
    """At most RESPONSE_BYTES_MAX bytes of the body, as one line of text."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= RESPONSE_BYTES_MAX:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass
    return _one_line(b"".join(chunks)[:RESPONSE_BYTES_MAX].decode("utf-8", "replace"))


def _post(
    client: httpx.Client, item: _Due, attempt: int, sent_at: datetime, policy: RetryPolicy
) -> _Outcome:
    body = canonical(item.event.envelope()).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER_EVENT_ID: item.event.event_id,
        HEADER_EVENT_TYPE: item.event.event_type,
        "X-Lendcore-Delivery-Attempt": str(attempt),
        **sign(item.secret, int(sent_at.timestamp()), body),
    }
    try:
        # Streamed so a failed response's body is read only up to a bound
        # (a misbehaving receiver cannot make the publisher read gigabytes).
        with client.stream(
            "POST", item.url, content=body, headers=headers, timeout=policy.timeout_s
        ) as response:
            if response.is_success:
                return _Outcome(delivered=True)
            snippet = _read_some(response)
            error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
            return _Outcome(delivered=False, error=error)
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        return _Outcome(delivered=False, error=_describe_exception(exc, item.url), unreachable=True)


def _record(
    db: Database,
    item: _Due,
    attempt: int,
    outcome: _Outcome,
    now: datetime,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> str:
    """Write an attempt's result; returns the delivery's new status."""
    d = webhook_deliveries.c
    # Only the claim this publisher holds is updated.
    ours = (*_pk(item), d.status == "pending", d.attempts == attempt)
    if outcome.delivered:
        # next_attempt_at (NOT NULL) is set to when the delivery was settled,
        # so no finished delivery shows a future attempt.
        values: dict[str, Any] = {
            "status": "delivered",
            "delivered_at": utc_text(now),
            "next_attempt_at": utc_text(now),
        }
    else:
        error = (outcome.error or "failed")[:LAST_ERROR_LENGTH_MAX]
        if attempt >= policy.max_attempts:
            values = {"status": "dead", "last_error": error, "next_attempt_at": utc_text(now)}
        else:
            delay = backoff_delay_s(attempt, policy, rand())
            values = {
                "status": "pending",
                "last_error": error,
                "next_attempt_at": utc_text(now + timedelta(seconds=delay)),
            }
    with db.transaction() as conn:
        conn.execute(update(webhook_deliveries).where(*ours).values(**values))
    status: str = values["status"]
    if status == "dead":
        log.warning(
            "webhook %s: outbox event %s dead after %s attempts: %s",
            item.webhook_id,
            item.outbox_id,
            attempt,
            values["last_error"],
        )
    return status


@dataclass(slots=True)
class _Tally:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    skipped: int = 0

    def frozen(self) -> DeliveryStats:
        return DeliveryStats(self.attempted, self.delivered, self.retrying, self.dead, self.skipped)


def deliver_due(
    db: Database,
    client: httpx.Client,
    now: datetime | None = None,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    rand: Callable[[], float] = random.random,
    batch_size: int = DELIVERY_BATCH_MAX,
    budget_s: float = DELIVERY_ROUND_BUDGET_S,
) -> DeliveryStats:
    """Attempt the deliveries that are due, in order per aggregate (module docstring).

    Each attempt POSTs the event envelope, signed (lendcore.events_signing),
    with `policy.timeout_s` per phase of the request (connect, write, each
    read). A 2xx marks it delivered; anything else counts a failed attempt,
    records `last_error` (one line, bounded, without the URL or any secret) and
    schedules the next attempt after `backoff_delay_s`, or dead-letters it after
    `policy.max_attempts`. Once a receiver is unreachable, its other deliveries
    wait for the next round. `now` fixes the clock (tests); `rand` draws jitter.
    """
    if not 1 <= batch_size <= DELIVERY_BATCH_MAX:
        raise InvalidInput(f"batch_size must be 1 to {DELIVERY_BATCH_MAX}")
    clock = _clock(now)
    started = time.monotonic()
    tally = _Tally()
    # Per (webhook, aggregate): deliveries of this round that are no longer
    # pending, and the groups stopped by a failure.
    resolved: dict[tuple[int, str], int] = {}
    stopped: set[tuple[int, str]] = set()
    unreachable: set[int] = set()
    for item in _round_robin(_read_due(db, utc_text(clock()), batch_size)):
        group = (item.webhook_id, item.aggregate_key)
        if (
            group in stopped
            or item.webhook_id in unreachable
            or item.earlier_pending != resolved.get(group, 0)
            or time.monotonic() - started > budget_s
        ):
            stopped.add(group)
            tally.skipped += 1
            continue
        attempt = _claim(db, item, clock(), policy)
        if attempt is None:
            stopped.add(group)
            tally.skipped += 1
            continue
        if attempt == _EXHAUSTED:
            resolved[group] = resolved.get(group, 0) + 1
            tally.dead += 1
            continue
        tally.attempted += 1
        outcome = _post(client, item, attempt, clock(), policy)
        status = _record(db, item, attempt, outcome, clock(), policy, rand)
        if outcome.unreachable:
            unreachable.add(item.webhook_id)
        if status == "pending":
            tally.retrying += 1
            stopped.add(group)
            continue
        # Delivered or dead: either way no longer pending, so the next event of
        # the aggregate may go (a dead one does not block its successors).
        resolved[group] = resolved.get(group, 0) + 1
        if status == "delivered":
            tally.delivered += 1
        else:
            tally.dead += 1
    return tally.frozen()


def new_http_client(policy: RetryPolicy = DEFAULT_POLICY) -> httpx.Client:
    """The client run_publisher uses: bounded timeouts and pool, no redirects
    (a redirect is a failed delivery: the registered URL is the contract)."""
    return httpx.Client(
        timeout=policy.timeout_s,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        headers={"User-Agent": USER_AGENT},
    )


# --- NATS JetStream ------------------------------------------------------------------------------


def _validate_stream_names(stream: str, subject_prefix: str) -> None:
    if not _STREAM_NAME.match(stream):
        raise InvalidInput(f"stream name {stream!r}: use 1 to 64 letters, digits, '_' or '-'")
    if len(subject_prefix) > _SUBJECT_PREFIX_LENGTH_MAX or not _SUBJECT_PREFIX.match(
        subject_prefix
    ):
        raise InvalidInput(
            f"subject prefix {subject_prefix!r}: use dot-separated tokens of letters, "
            "digits, '_' or '-', e.g. lendcore.events"
        )


def event_subject(subject_prefix: str, event_type: str) -> str:
    """`lendcore.events.journal_entry.booked`: one subject token per part of the type."""
    tokens = [_NOT_SUBJECT_CHAR.sub("_", t) or "_" for t in event_type.split(".")]
    return ".".join([subject_prefix, *tokens])


def _read_cursor(conn: Connection, name: str) -> int:
    value = conn.execute(
        select(publisher_cursors.c.published_through).where(publisher_cursors.c.name == name)
    ).scalar()
    return 0 if value is None else int(value)


def _advance_cursor(db: Database, name: str, through: int) -> None:
    """Move the cursor forward to `through`; never back (another publisher may be ahead)."""
    c = publisher_cursors.c
    with db.transaction() as conn:
        current = conn.execute(
            select(c.published_through).where(c.name == name).with_for_update()
        ).scalar()
        if current is None:
            conn.execute(insert(publisher_cursors).values(name=name, published_through=through))
        elif int(current) < through:
            conn.execute(
                update(publisher_cursors).where(c.name == name).values(published_through=through)
            )


@dataclass(slots=True)
class _Published:
    count: int = 0
    # Outbox id of the last acknowledged message (0: none).
    through: int = 0
    error: str | None = None


async def _publish_batch(
    nats_url: str, stream: str, subject_prefix: str, events: Sequence[Event]
) -> _Published:
    errors: list[Exception] = []

    async def keep_error(exc: Exception) -> None:
        # nats-py reports connection errors here (and would print tracebacks
        # by default); the last one is what the caller is told.
        errors.append(exc)

    result = _Published()
    try:
        nc = await nats.connect(
            nats_url,
            connect_timeout=NATS_CONNECT_TIMEOUT_S,
            allow_reconnect=False,
            # nats-py loops for ever at 0; 1 means one try (and at most one retry).
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=keep_error,
        )
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        cause = errors[-1] if errors else exc
        result.error = f"cannot connect to NATS at {nats_url}: {_describe_exception(cause, '')}"
        return result
    try:
        js = nc.jetstream(timeout=NATS_ACK_TIMEOUT_S)
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                name=stream,
                subjects=[f"{subject_prefix}.>"],
                duplicate_window=NATS_DUPLICATE_WINDOW_S,
            )
        for event in events:
            # One at a time, in order: a failure stops the batch there, so
            # nothing after the failed event is in the stream before it.
            await js.publish(
                event_subject(subject_prefix, event.event_type),
                canonical(event.envelope()).encode("utf-8"),
                stream=stream,
                headers={"Nats-Msg-Id": event.event_id, "Lendcore-Event-Type": event.event_type},
            )
            result.count += 1
            result.through = event.id
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        result.error = f"JetStream stream {stream}: {_describe_exception(exc, '')}"
    finally:
        # Closing is best effort: the acks are in hand, a slow close changes nothing.
        with suppress(TimeoutError, nats.errors.Error, OSError):
            await asyncio.wait_for(nc.close(), NATS_CLOSE_TIMEOUT_S)
    return result


def publish_to_nats(
    db: Database,
    nats_url: str,
    stream: str = NATS_STREAM_DEFAULT,
    subject_prefix: str = NATS_SUBJECT_PREFIX_DEFAULT,
    *,
    batch_size: int = NATS_BATCH_MAX,
    cursor: str = NATS_CURSOR,
) -> int:
    """Publish the outbox events after the cursor to JetStream; returns how many were acked.

    Creates `stream` (subjects `<subject_prefix>.>`) when it does not exist;
    an existing stream is used as it is configured. Each event goes to
    `<subject_prefix>.<event type>` with header `Nats-Msg-Id: <event_id>`, in
    outbox order; the cursor moves over the acknowledged ones only. Raises
    PublishFailed (after keeping the progress made) when NATS is unreachable
    or refuses a message. Runs its own event loop: call it from sync code.
    """
    _validate_stream_names(stream, subject_prefix)
    if not 1 <= batch_size <= NATS_BATCH_MAX:
        raise InvalidInput(f"batch_size must be 1 to {NATS_BATCH_MAX}")
    with _outbox_transaction(db) as conn:
        after = _read_cursor(conn, cursor)
        rows = _OutboxReader(conn).rows_after(select(outbox_events), after, batch_size)
        events = [to_event(r) for r in rows]
    if not events:
        return 0
    result = asyncio.run(_publish_batch(nats_url, stream, subject_prefix, events))
    if result.through > after:
        _advance_cursor(db, cursor, result.through)
    if result.error is not None:
        raise PublishFailed(result.error, published=result.count)
    return result.count


# --- the loop ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round of the publisher did."""

    queued: int
    deliveries: DeliveryStats
    nats_published: int
    nats_error: str | None
    # Whether the round found work; an idle round is followed by a sleep.
    busy: bool


@dataclass(slots=True)
class PublisherTotals:
    rounds: int = 0
    queued: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    nats_published: int = 0
    nats_errors: int = 0
    last_nats_error: str | None = None

    def add(self, report: RoundReport) -> None:
        self.rounds += 1
        self.queued += report.queued
        self.attempted += report.deliveries.attempted
        self.delivered += report.deliveries.delivered
        self.retrying += report.deliveries.retrying
        self.dead += report.deliveries.dead
        self.nats_published += report.nats_published
        if report.nats_error is not None:
            self.nats_errors += 1
            self.last_nats_error = report.nats_error


def run_round(
    db: Database,
    client: httpx.Client,
    *,
    nats_url: str | None,
    nats_stream: str = NATS_STREAM_DEFAULT,
    nats_subject_prefix: str = NATS_SUBJECT_PREFIX_DEFAULT,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> RoundReport:
    """Queue, deliver, publish: once each. A NATS failure is reported, not raised,
    so webhooks keep flowing while the stream is down (its cursor waits)."""
    queued = _queue(db, QUEUE_BATCH_MAX, datetime.now(UTC))
    stats = deliver_due(db, client, policy=policy)
    published = 0
    nats_error = None
    if nats_url:
        try:
            published = publish_to_nats(db, nats_url, nats_stream, nats_subject_prefix)
        except PublishFailed as exc:
            published = int(exc.details.get("published", 0))
            nats_error = exc.message
    busy = queued.advanced or stats.attempted > 0 or stats.dead > 0 or published > 0
    return RoundReport(queued.created, stats, published, nats_error, busy)


def run_publisher(
    db: Database,
    *,
    once: bool,
    interval_s: float,
    nats_url: str | None,
    stop_event: threading.Event,
    client: httpx.Client | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    nats_stream: str = NATS_STREAM_DEFAULT,
    nats_subject_prefix: str = NATS_SUBJECT_PREFIX_DEFAULT,
    on_round: Callable[[RoundReport], None] | None = None,
) -> PublisherTotals:
    """Run rounds until `stop_event` is set (or, with `once`, until a round finds
    no work, at most ONCE_ROUNDS_MAX rounds). A busy round is followed at once
    by the next, to drain a backlog; an idle one by a sleep of `interval_s`
    that `stop_event` cuts short. Database errors propagate: the state is all
    in the database, so a supervisor restarting the process loses nothing.
    """
    if not INTERVAL_S_MIN <= interval_s <= INTERVAL_S_MAX:
        raise InvalidInput(f"interval must be {INTERVAL_S_MIN} to {INTERVAL_S_MAX} seconds")
    if nats_url:
        _validate_stream_names(nats_stream, nats_subject_prefix)
    own_client = client is None
    http = client if client is not None else new_http_client(policy)
    totals = PublisherTotals()
    try:
        while not stop_event.is_set():
            report = run_round(
                db,
                http,
                nats_url=nats_url,
                nats_stream=nats_stream,
                nats_subject_prefix=nats_subject_prefix,
                policy=policy,
            )
            totals.add(report)
            if on_round is not None:
                on_round(report)
            if once and (not report.busy or totals.rounds >= ONCE_ROUNDS_MAX):
                break
            if not report.busy:
                stop_event.wait(interval_s)
    finally:
        if own_client:
            http.close()
    return totals
