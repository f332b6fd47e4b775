"""The publisher on real databases, against a real local HTTP receiver and, when
it is reachable, a real NATS JetStream server.

Events come from real commands (opening and closing accounts, creating users).
Time is injected (`now`), so retries with backoff are checked to the
microsecond without sleeping; jitter is switched off with `rand=lambda: 0.0`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import Connection, select, text, update
from typer.testing import CliRunner

from lendcore.auth.permissions import PermissionDenied
from lendcore.cli import root
from lendcore.cli.events import events_app, webhook_app
from lendcore.errors import InvalidInput
from lendcore.events_signing import (
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    verify,
)
from lendcore.ledger.model import AccountSpec, AccountType
from lendcore.services import events, identity, ledger, publisher, webhooks
from lendcore.services.publisher import DeliveryStats, RetryPolicy
from lendcore.services.webhooks import Delivery, utc_text
from lendcore.store.database import Database, before_this_commit, flush_queued, open_database
from lendcore.store.schema import audit_log, publisher_cursors

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
NATS_URL = "nats://127.0.0.1:4222"
BODY_BYTES_MAX = 1_000_000


def no_jitter() -> float:
    return 0.0


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- a real HTTP receiver -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    def header(self, name: str) -> str:
        """Header names are case-insensitive in HTTP; they are stored lower-cased."""
        return self.headers[name.lower()]

    @property
    def event_id(self) -> str:
        return self.header(HEADER_EVENT_ID)

    @property
    def aggregate(self) -> str:
        a = self.envelope["aggregate"]
        return f"{a['type']}:{a['id']}"


@dataclass
class Receiver:
    """Records every POST; `respond(request, attempt_of_this_event)` picks the status."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received, int], int] = lambda _r, _n: 200
    # Runs inside the request, while the publisher waits for the response.
    on_request: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, request: Received) -> int:
        with self.lock:
            self.requests.append(request)
            attempt = sum(1 for r in self.requests if r.event_id == request.event_id)
        if self.on_request is not None:
            self.on_request(request)
        return self.respond(request, attempt)

    def types(self) -> list[str]:
        return [r.header(HEADER_EVENT_TYPE) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", "0")), BODY_BYTES_MAX)
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Received(self.path, headers, self.rfile.read(length))
            status = state.handle(request)
            reply = b"ok" if status < 300 else b"receiver says no"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """For tests whose subject does not depend on the database engine."""
    database = open_database(sqlite_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    database = open_database(pg_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


def signature_ok(request: Received, secret: str, now: datetime = T0) -> bool:
    return verify(
        secret,
        timestamp=request.header(HEADER_TIMESTAMP),
        body=request.body,
        signature_header_value=request.header(HEADER_SIGNATURE),
        now_s=now.timestamp(),
    )


def open_account(db: Database, code: str) -> None:
    ledger.open_account(db, AccountSpec(code, f"Account {code}", AccountType.ASSET, "USD"))


def deliveries(db: Database, **filters: Any) -> list[Delivery]:
    return webhooks.list_deliveries(db, **filters)


def only_delivery(db: Database, event_type: str, aggregate: str) -> Delivery:
    [found] = [
        d for d in deliveries(db) if d.event_type == event_type and d.aggregate_key == aggregate
    ]
    return found


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


# --- webhooks ---------------------------------------------------------------------------------


def test_events_from_commands_arrive_signed_and_once(
    db: Database, receiver: Receiver, client: httpx.Client
) -> None:
    hook, secret = webhooks.register_webhook(db, receiver.url(), None, None)
    assert secret.startswith("whsec_")

    # A receiver that calls back into lendcore while the delivery is in flight:
    # on SQLite this write would wait for the write lock (and the delivery time
    # out) if the publisher held a transaction open across the HTTP call.
    def write_back(request: Received) -> None:
        if request.header(HEADER_EVENT_TYPE) == "user.created":
            open_account(db, "4000")

    receiver.on_request = write_back
    identity.create_user(db, "ann", ["loan_officer"])
    open_account(db, "1000")

    assert publisher.queue_deliveries(db, now=T0) == 2
    assert publisher.deliver_due(db, client, T0) == DeliveryStats(attempted=2, delivered=2)
    assert receiver.types() == ["user.created", "account.opened"]

    recorded = {e.event_id: e for e in events.list_events(db)}
    for request in receiver.requests:
        assert request.header("content-type") == "application/json"
        assert signature_ok(request, secret)
        assert not signature_ok(request, "whsec_not-the-right-secret")
        assert request.header(HEADER_TIMESTAMP) == str(int(T0.timestamp()))
        # The body is the envelope of the recorded event, and the id header its id.
        assert request.envelope == recorded[request.event_id].envelope()
        assert request.envelope["type"] == request.header(HEADER_EVENT_TYPE)

    # The event written by the receiver goes out in the next round.
    assert publisher.queue_deliveries(db, now=after(1)) == 1
    assert publisher.deliver_due(db, client, after(1)).delivered == 1
    assert receiver.types()[-1] == "account.opened"
    assert receiver.requests[-1].envelope["data"]["code"] == "4000"

    # Delivered means done: nothing is sent twice, nothing more is queued.
    assert publisher.queue_deliveries(db, now=after(2)) == 0
    assert publisher.deliver_due(db, client, after(3600)) == DeliveryStats()
    assert len(receiver.requests) == 3
    assert {d.status for d in deliveries(db)} == {"delivered"}
    assert [d.attempts for d in deliveries(db)] == [1, 1, 1]
    assert webhooks.list_webhooks(db)[0].queued_through == hook.queued_through + 3


def test_each_webhook_gets_the_event_types_it_asked_for(
    db: Database, receiver: Receiver, client: httpx.Client
) -> None:
    webhooks.register_webhook(db, receiver.url("/accounts"), ["account.*"], None)
    webhooks.register_webhook(db, receiver.url("/users"), ["user.created"], None)
    disabled, _ = webhooks.register_webhook(db, receiver.url("/off"), None, None)
    webhooks.deactivate_webhook(db, disabled.id)

    identity.create_user(db, "bob", ["servicing"])
    open_account(db, "1000")
    ledger.close_account(db, "1000")

    assert publisher.queue_deliveries(db, now=T0) == 3
    assert publisher.deliver_due(db, client, T0).delivered == 3
    by_path = sorted((r.path, r.header(HEADER_EVENT_TYPE)) for r in receiver.requests)
    assert by_path == [
        ("/accounts", "account.closed"),
        ("/accounts", "account.opened"),
        ("/users", "user.created"),
    ]
    assert deliveries(db, webhook_id=disabled.id) == []


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try_after_backoff(
    db: Database, receiver: Receiver, client: httpx.Client
) -> None:
    receiver.respond = lambda _r, attempt: 503 if attempt <= 2 else 200
    _, secret = webhooks.register_webhook(db, receiver.url(), None, None)
    open_account(db, "1000")
    publisher.queue_deliveries(db, now=T0)

    def run(now: datetime) -> DeliveryStats:
        return publisher.deliver_due(db, client, now, rand=no_jitter)

    assert run(T0) == DeliveryStats(attempted=1, retrying=1)
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 1, utc_text(after(2)))
    assert d.last_error == "HTTP 503: receiver says no"

    assert run(after(1.999)) == DeliveryStats()  # the 2 s backoff holds
    assert run(after(2)) == DeliveryStats(attempted=1, retrying=1)
    assert deliveries(db)[0].next_attempt_at == utc_text(after(2 + 4))
    assert run(after(5.999)) == DeliveryStats()  # then 4 s
    assert run(after(6)) == DeliveryStats(attempted=1, delivered=1)

    [d] = deliveries(db)
    assert (d.status, d.attempts, d.delivered_at) == ("delivered", 3, utc_text(after(6)))
    # Three requests for one event: same event id (the receiver's de-duplication
    # key), each signed with its own timestamp.
    assert len({r.event_id for r in receiver.requests}) == 1
    assert [r.header("x-lendcore-delivery-attempt") for r in receiver.requests] == ["1", "2", "3"]
    for request, sent in zip(receiver.requests, (T0, after(2), after(6)), strict=True):
        assert signature_ok(request, secret, sent)


def test_order_per_aggregate_holds_when_the_first_event_fails(
    db: Database, receiver: Receiver, client: httpx.Client
) -> None:
    def respond(r: Received, attempt: int) -> int:
        first_open = r.aggregate == "account:1000" and r.envelope["type"] == "account.opened"
        return 500 if first_open and attempt == 1 else 200

    receiver.respond = respond
    webhooks.register_webhook(db, receiver.url(), None, None)
    open_account(db, "1000")
    ledger.close_account(db, "1000")  # a second event of the same aggregate
    open_account(db, "2000")  # another aggregate
    assert publisher.queue_deliveries(db, now=T0) == 3

    first = publisher.deliver_due(db, client, T0, rand=no_jitter)
    # The close of 1000 waits behind its failed open; 2000 is not held up.
    assert first == DeliveryStats(attempted=2, delivered=1, retrying=1, skipped=1)
    assert [(r.aggregate, r.header(HEADER_EVENT_TYPE)) for r in receiver.requests] == [
        ("account:1000", "account.opened"),
        ("account:2000", "account.opened"),
    ]
    assert only_delivery(db, "account.closed", "account:1000").attempts == 0

    assert publisher.deliver_due(db, client, after(1), rand=no_jitter) == DeliveryStats()
    # Once the open goes through, the close follows in the same round.
    assert publisher.deliver_due(db, client, after(2), rand=no_jitter) == DeliveryStats(
        attempted=2, delivered=2
    )
    seen = [r.header(HEADER_EVENT_TYPE) for r in receiver.requests if r.aggregate == "account:1000"]
    assert seen == ["account.opened", "account.opened", "account.closed"]


def test_a_permanently_failing_receiver_dead_letters_and_redeliver_brings_it_back(
    db: Database, receiver: Receiver, client: httpx.Client
) -> None:
    policy = RetryPolicy()
    fixed_secret = "whsec_fixed-secret-for-this-test"
    refusing = {"on": True}

    def respond(r: Received, _attempt: int) -> int:
        opened_1000 = r.aggregate == "account:1000" and r.envelope["type"] == "account.opened"
        return 500 if refusing["on"] and opened_1000 else 200

    receiver.respond = respond
    hook, _ = webhooks.register_webhook(db, receiver.url(), None, fixed_secret)
    open_account(db, "1000")
    ledger.close_account(db, "1000")
    publisher.queue_deliveries(db, now=T0)

    now = T0
    for attempt in range(1, policy.max_attempts + 1):
        stats = publisher.deliver_due(db, client, now, policy=policy, rand=no_jitter)
        assert stats.attempted >= 1
        opened = only_delivery(db, "account.opened", "account:1000")
        assert opened.attempts == attempt
        if attempt < policy.max_attempts:
            # Not before the backoff is over, and the close still waits behind it.
            assert at(opened.next_attempt_at) - now == timedelta(
                seconds=publisher.backoff_delay_s(attempt, policy, 0.0)
            )
            assert only_delivery(db, "account.closed", "account:1000").status == "pending"
            now = at(opened.next_attempt_at)
    assert stats.dead == 1
    # A dead delivery no longer blocks its aggregate: the close went in the same round.
    assert stats.delivered == 1
    assert receiver.types()[-1] == "account.closed"
    assert receiver.types().count("account.opened") == policy.max_attempts

    [dead] = deliveries(db, status="dead")
    assert (dead.webhook_id, dead.event_type, dead.attempts) == (hook.id, "account.opened", 12)
    assert dead.last_error == "HTTP 500: receiver says no"
    assert fixed_secret not in str(deliveries(db))
    assert publisher.deliver_due(db, client, now + timedelta(days=30)) == DeliveryStats()

    # The receiver is fixed; an admin puts the event back.
    refusing["on"] = False
    again = webhooks.redeliver(db, hook.id, dead.outbox_id)
    assert (again.status, again.attempts) == ("pending", 0)
    assert webhooks.redeliver(db, hook.id, dead.outbox_id) == again  # harmless when repeated
    assert deliveries(db, status="dead") == []
    assert publisher.deliver_due(db, client, now) == DeliveryStats(attempted=1, delivered=1)
    assert receiver.types()[-1] == "account.opened"

    with pytest.raises(webhooks.DeliveryNotDead):
        webhooks.redeliver(db, hook.id, dead.outbox_id)
    with pytest.raises(webhooks.DeliveryNotFound):
        webhooks.redeliver(db, hook.id, 999_999)
    with pytest.raises(webhooks.WebhookNotFound):
        webhooks.redeliver(db, 999_999, dead.outbox_id)


def test_an_unreachable_receiver_is_retried_and_not_hammered(
    sqlite_db: Database, client: httpx.Client
) -> None:
    db = sqlite_db
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook?token=do-not-log-me"
    webhooks.register_webhook(db, url, None, None)
    for code in ("1000", "2000", "3000"):
        open_account(db, code)
    publisher.queue_deliveries(db, now=T0)

    stats = publisher.deliver_due(db, client, T0, rand=no_jitter)
    # One connection refused is enough for this round; the others wait.
    assert stats == DeliveryStats(attempted=1, retrying=1, skipped=2)
    failed = [d for d in deliveries(db) if d.attempts]
    assert len(failed) == 1
    assert failed[0].last_error is not None
    assert failed[0].last_error.startswith("ConnectError")
    assert "do-not-log-me" not in failed[0].last_error


def test_outbox_ids_follow_commit_order(pg_db: Database, receiver: Receiver) -> None:
    # PostgreSQL only: SQLite serialises writers, so its outbox ids follow
    # commit order by construction.
    db = pg_db
    webhooks.register_webhook(db, receiver.url(), None, None)
    flushed = threading.Event()
    release = threading.Event()

    def slow_command() -> None:
        with db.transaction() as conn:
            events.emit(conn, "test.slow", "thing", "slow", {"n": 1})

            def pause(conn: Connection) -> None:
                # Runs after the outbox finaliser, before commit. Its lock and
                # rows wait to go with the COMMIT: send them now, so the lock is
                # held while this transaction waits.
                flush_queued(conn)
                flushed.set()
                release.wait(10)

            before_this_commit(conn, "zz-pause", pause)

    slow = threading.Thread(target=slow_command)
    slow.start()
    try:
        assert flushed.wait(10)
        quick = threading.Thread(target=open_account, args=(db, "1000"))
        quick.start()
        # The quick command cannot write its events while the slow one holds
        # the outbox lock, so it cannot take a later id and commit first.
        quick.join(0.5)
        assert quick.is_alive()
        assert publisher.queue_deliveries(db, now=T0) == 0
    finally:
        release.set()
        slow.join(10)
    quick.join(10)
    assert publisher.queue_deliveries(db, now=T0) == 2
    assert [d.event_type for d in deliveries(db)] == ["test.slow", "account.opened"]

    # A rolled-back transaction writes no event at all.
    with pytest.raises(RuntimeError), db.transaction() as conn:
        events.emit(conn, "test.aborted", "thing", "gone", {})
        raise RuntimeError("abort")
    open_account(db, "2000")
    assert publisher.queue_deliveries(db, now=T0) == 1
    assert [d.event_type for d in deliveries(db)][-1] == "account.opened"


def test_who_may_manage_and_read_webhooks(sqlite_db: Database, receiver: Receiver) -> None:
    db = sqlite_db
    auditor = db.acting_as(identity.create_user(db, "aud", ["auditor"]).actor())
    officer = db.acting_as(identity.create_user(db, "lo", ["loan_officer"]).actor())
    hook, secret = webhooks.register_webhook(db, receiver.url(), ["account.opened"], None)

    assert [w.id for w in webhooks.list_webhooks(auditor)] == [hook.id]
    assert webhooks.list_deliveries(auditor, status="dead") == []
    with pytest.raises(PermissionDenied):
        webhooks.register_webhook(auditor, receiver.url(), None, None)
    with pytest.raises(PermissionDenied):
        webhooks.deactivate_webhook(auditor, hook.id)
    with pytest.raises(PermissionDenied):
        webhooks.list_webhooks(officer)

    # The secret is returned once: never by a read, never in the audit log.
    assert not hasattr(webhooks.list_webhooks(db)[0], "secret")
    assert secret not in repr(webhooks.list_webhooks(db))
    with db.reading() as conn:
        logged = conn.execute(
            select(audit_log.c.inputs_json).where(audit_log.c.command == "events.webhook.manage")
        ).scalars()
        assert all(secret not in row for row in logged)


def test_registration_checks_its_input_and_can_backfill(
    sqlite_db: Database, receiver: Receiver
) -> None:
    db = sqlite_db
    open_account(db, "1000")
    with pytest.raises(InvalidInput):
        webhooks.register_webhook(db, "ftp://example.com/", None, None)
    with pytest.raises(InvalidInput):
        webhooks.register_webhook(db, receiver.url(), ["Not A Type"], None)
    with pytest.raises(InvalidInput):
        webhooks.register_webhook(db, receiver.url(), None, "too-short")
    with pytest.raises(webhooks.WebhookNotFound):
        webhooks.deactivate_webhook(db, 999)
    with pytest.raises(InvalidInput):
        webhooks.list_deliveries(db, status="lost")

    fresh, _ = webhooks.register_webhook(db, receiver.url(), None, None)
    backfill, _ = webhooks.register_webhook(db, receiver.url(), None, None, start_after=0)
    assert (fresh.queued_through, backfill.queued_through) == (1, 0)
    publisher.queue_deliveries(db, now=T0)
    assert [d.webhook_id for d in deliveries(db)] == [backfill.id]


# --- the CLI ----------------------------------------------------------------------------------


def cli_app() -> typer.Typer:
    """The two apps as `lendcore` mounts them, on the real root callback (--db, --as)."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.callback()(root)
    app.add_typer(events_app, name="events")
    app.add_typer(webhook_app, name="webhook")
    return app


def test_cli_add_publish_inspect_and_redeliver(sqlite_url: str, receiver: Receiver) -> None:
    runner = CliRunner()
    app = cli_app()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--db", sqlite_url, *args])
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run("webhook", "add", receiver.url(), "--event", "user.*", "--json")
    assert code == 0, err
    added = json.loads(out)
    assert added["secret"].startswith("whsec_")
    assert added["event_types"] == ["user.*"]

    code, out, err = run("webhook", "list", "--json")
    assert code == 0, err
    assert added["secret"] not in out
    assert [w["id"] for w in json.loads(out)["webhooks"]] == [added["id"]]

    receiver.respond = lambda _r, attempt: 500 if attempt == 1 else 200
    database = open_database(sqlite_url)
    try:
        identity.create_user(database, "dave", ["servicing"])
    finally:
        database.dispose()
    code, out, err = run("events", "list", "--type", "user.created", "--json")
    assert code == 0, err
    # The bootstrap admin (created by the first CLI command), then dave.
    created = json.loads(out)["events"][-1]
    assert created["data"]["username"] == "dave"

    code, out, err = run("events", "publish", "--once", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["attempted"], summary["retrying"], summary["delivered"]) == (1, 1, 0)

    code, out, err = run("webhook", "deliveries", "--status", "pending", "--json")
    assert code == 0, err
    [pending] = json.loads(out)["deliveries"]
    assert (pending["event_id"], pending["attempts"]) == (created["event_id"], 1)
    assert pending["last_error"] == "HTTP 500: receiver says no"

    code, _out, err = run("webhook", "redeliver", str(added["id"]), str(pending["outbox_id"]))
    assert code == 0, err  # a pending delivery: nothing to do, no error

    code, out, err = run("webhook", "deliveries", "--after", "x:y")
    assert (code, out) == (1, "")
    assert err.startswith("error[INVALID_INPUT]: ") and err.count("\n") == 1

    code, out, err = run("webhook", "disable", str(added["id"]))
    assert code == 0, err
    code, out, err = run("webhook", "redeliver", str(added["id"]), "999")
    assert code == 1
    assert err.startswith("error[WEBHOOK_DELIVERY_NOT_FOUND]: ")

    code, out, err = run("events", "list")
    assert code == 0, err
    assert "user.created" in out
    code, out, err = run("events", "publish", "--once")
    assert code == 0, err
    assert "Publisher" in out


# --- NATS JetStream ------------------------------------------------------------------------


def nats_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def jetstream() -> Iterator[tuple[str, str]]:
    """A stream name and subject prefix of this test's own, deleted afterwards."""
    if not nats_reachable():
        pytest.skip("NATS is not reachable on 127.0.0.1:4222")
    tag = uuid.uuid4().hex[:12]
    stream, prefix = f"LENDCORE_TEST_{tag}", f"lendcore_test.{tag}"
    yield stream, prefix
    asyncio.run(_delete_stream(stream))


async def _delete_stream(stream: str) -> None:
    import nats
    import nats.js.errors

    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


async def _consume(stream: str, prefix: str, wanted: int) -> tuple[list[Any], int]:
    """Every message in the stream (pull subscriber, acked) and the stream's message count."""
    import nats
    import nats.errors

    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{prefix}.>", stream=stream)
        messages: list[Any] = []
        while len(messages) < wanted + 1:  # ask for one more than expected: none may come
            try:
                batch = await sub.fetch(wanted + 1 - len(messages), timeout=0.5)
            except nats.errors.TimeoutError:
                break
            for message in batch:
                await message.ack()
            messages.extend(batch)
        info = await js.stream_info(stream)
        return messages, info.state.messages
    finally:
        await nc.close()


def test_jetstream_gets_each_event_once_in_order(db: Database, jetstream: tuple[str, str]) -> None:
    stream, prefix = jetstream
    identity.create_user(db, "carol", ["accountant"])
    open_account(db, "1000")
    ledger.close_account(db, "1000")
    recorded = events.list_events(db)
    assert len(recorded) == 3

    assert publisher.publish_to_nats(db, NATS_URL, stream, prefix) == 3
    assert publisher.publish_to_nats(db, NATS_URL, stream, prefix) == 0  # the cursor moved

    # Publishing again from a reset cursor (a crash before the cursor was saved)
    # stores nothing twice: JetStream drops the repeated Nats-Msg-Ids.
    with db.transaction() as conn:
        conn.execute(update(publisher_cursors).values(published_through=0))
    assert publisher.publish_to_nats(db, NATS_URL, stream, prefix) == 3

    messages, stored = asyncio.run(_consume(stream, prefix, len(recorded)))
    assert stored == 3
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [e.event_id for e in recorded]
    assert [json.loads(m.data) for m in messages] == [e.envelope() for e in recorded]
    assert [m.subject for m in messages] == [
        f"{prefix}.user.created",
        f"{prefix}.account.opened",
        f"{prefix}.account.closed",
    ]
    with db.reading() as conn:
        cursor = conn.execute(text("SELECT published_through FROM publisher_cursors")).scalar()
    assert cursor == recorded[-1].id


def test_an_unreachable_nats_fails_cleanly_and_keeps_the_cursor(sqlite_db: Database) -> None:
    db = sqlite_db
    open_account(db, "1000")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(publisher.PublishFailed, match="cannot connect to NATS"):
        publisher.publish_to_nats(db, f"nats://127.0.0.1:{port}", "S", "lendcore.events")
    with db.reading() as conn:
        assert conn.execute(select(publisher_cursors)).all() == []
