"""Opening a database: engines for SQLite (embedded default) and PostgreSQL.

Nothing here runs at import time; callers open a `Database` explicitly. A new
database is created and migrated on first use; an existing one at an older
revision is refused until `lendcore db upgrade` is run.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool

from lendcore.auth.actors import Actor, local_operator
from lendcore.errors import DatabaseUnavailable, InvalidInput, SchemaOutdated

DEFAULT_DB_URL = "sqlite:///lendcore.db"
DB_URL_ENV = "LENDCORE_DB_URL"

# A SQLite writer waits this long for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept the URLs people type and return the one SQLAlchemy needs.

    `postgresql://` and `postgres://` use psycopg 3; a bare path is a SQLite file.
    """
    if "://" not in url:
        return f"sqlite:///{url}"
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "postgresql+psycopg"):
        return url
    raise InvalidInput(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///FILE or postgresql://...",
        url_scheme=scheme,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is durable against application crashes; the
        # last commits may be lost on power loss, which is SQLite's own advice for WAL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that
        # later upgrades can deadlock against another writer (SQLITE_BUSY).
        if conn.get_execution_options().get("lendcore_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


# Work to do inside a transaction just before it commits (the command audit
# record is written this way, so it commits or rolls back with the command).
BeforeCommit = Callable[[Connection], None]
_before_commit: ContextVar[tuple[BeforeCommit, ...]] = ContextVar("before_commit", default=())


@contextmanager
def before_commit(hook: BeforeCommit) -> Iterator[None]:
    """Run `hook(conn)` at the end of every successful transaction opened in this block."""
    token = _before_commit.set((*_before_commit.get(), hook))
    try:
        yield
    finally:
        _before_commit.reset(token)


# Per-transaction work registered on the connection itself (by key, run once,
# in registration order) just before commit: the event outbox uses it.
# Keys of conn.info that start with TX_INFO_PREFIX belong to one transaction only.
TX_INFO_PREFIX = "lendcore_tx_"
_FINALISERS = TX_INFO_PREFIX + "finalisers"


def _clear_transaction_info(conn: Connection) -> None:
    for key in [k for k in conn.info if isinstance(k, str) and k.startswith(TX_INFO_PREFIX)]:
        del conn.info[key]


def before_this_commit(conn: Connection, key: str, finaliser: BeforeCommit) -> None:
    """Run `finaliser(conn)` once, at the end of this transaction, if it commits."""
    finalisers: dict[str, BeforeCommit] = conn.info.setdefault(_FINALISERS, {})
    finalisers.setdefault(key, finaliser)


# --- statements sent with the commit (PostgreSQL) -----------------------------------
#
# A write whose result nobody reads need not cost a round trip of its own: on
# PostgreSQL `send_later` queues it on the connection, and the queue goes to the
# server in one pipeline, either with the COMMIT (so a booking's rows, its seal,
# its outbox events and the commit are one round trip) or just before any other
# statement runs on the connection (a listener flushes it), so reads always see
# every write before them. On SQLite, in-process, a statement runs at once.
_QUEUED = TX_INFO_PREFIX + "queued"
# Tests watch which statements the driver paths send (observe_statements).
_observers: ContextVar[tuple[list[str], ...]] = ContextVar("statement_observers", default=())


@contextmanager
def observe_statements() -> Iterator[list[str]]:
    """Collect the SQL text of every statement sent through the driver paths here
    (send_later, run_together, bulk inserts) while the block runs."""
    seen: list[str] = []
    token = _observers.set((*_observers.get(), seen))
    try:
        yield seen
    finally:
        _observers.reset(token)


def note_statement(sql: str) -> None:
    for seen in _observers.get():
        seen.append(sql)


def driver_connection(conn: Connection) -> Any:
    """The DBAPI connection under `conn` (sqlite3 or psycopg), for prebuilt SQL."""
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError("the connection has no driver connection")
    return raw


def translate_driver_error(conn: Connection, error: Exception, statement: str) -> Exception:
    """A driver exception as SQLAlchemy would have raised it (IntegrityError, ...), so
    callers catch one family of errors whichever way a statement was sent."""
    dbapi = conn.dialect.loaded_dbapi
    if isinstance(error, dbapi.Error) and not isinstance(error, DBAPIError):
        return DBAPIError.instance(statement, None, error, dbapi.Error, dialect=conn.dialect)
    return error


@contextmanager
def driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """Raise a driver exception from the block as SQLAlchemy's (translate_driver_error)."""
    try:
        yield
    except Exception as error:
        translated = translate_driver_error(conn, error, statement)
        if translated is error:
            raise
        raise translated from error


def send_later(conn: Connection, sql: str, params: Sequence[Any] | None = None) -> None:
    """Run a write whose result is not needed: queued on PostgreSQL, at once on SQLite.

    `sql` uses the driver's own placeholders (`?` on SQLite, `%s` on PostgreSQL)."""
    note_statement(sql)
    if conn.dialect.name != "postgresql":
        run_now(conn, sql, params)
        return
    queued: list[tuple[str, Sequence[Any] | None]] = conn.info.setdefault(_QUEUED, [])
    queued.append((sql, params))


def run_now(conn: Connection, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    """Run one statement through the driver (after anything queued); return its rows."""
    return run_together(conn, [(sql, params)])[0]


def run_together(
    conn: Connection, statements: Sequence[tuple[str, Sequence[Any] | None]]
) -> list[list[Any]]:
    """Run statements in order in one round trip (a pipeline on PostgreSQL), after
    anything queued; return each one's rows. Each statement must return rows (a
    SELECT, or a write with RETURNING): a write without is for send_later."""
    raw = driver_connection(conn)
    queued: list[tuple[str, Sequence[Any] | None]] = conn.info.pop(_QUEUED, [])
    if _observers.get():
        for sql, _params in statements:
            note_statement(sql)
    current = ""
    try:
        if conn.dialect.name != "postgresql":
            results: list[list[Any]] = []
            for current, params in statements:
                results.append(raw.execute(current, params or ()).fetchall())
            return results
        if len(statements) == 1 and not queued:
            # One statement: no pipeline to set up.
            current, params = statements[0]
            return [raw.execute(current, params).fetchall()]
        cursors = []
        with raw.pipeline():
            if queued:
                writer = raw.cursor()
                for current, params in queued:
                    writer.execute(current, params)
            for current, params in statements:
                cursors.append(raw.execute(current, params))
        return [c.fetchall() for c in cursors]
    except Exception as error:
        translated = translate_driver_error(conn, error, current)
        if translated is error:
            raise
        raise translated from error


def flush_queued(conn: Connection) -> None:
    """Send what `send_later` queued (PostgreSQL), in one round trip."""
    queued: list[tuple[str, Sequence[Any] | None]] = conn.info.pop(_QUEUED, [])
    if not queued:
        return
    raw = driver_connection(conn)
    current = ""
    with driver_errors(conn, current):
        if len(queued) == 1:
            current, params = queued[0]
            raw.execute(current, params)
            return
        with raw.pipeline(), raw.cursor() as writer:
            for current, params in queued:
                writer.execute(current, params)


def _commit_with_queued(conn: Connection) -> None:
    """PostgreSQL: the queued writes and the COMMIT in one round trip. The
    transaction block's own commit then finds nothing to do."""
    queued: list[tuple[str, Sequence[Any] | None]] = conn.info.pop(_QUEUED, [])
    if not queued:
        return
    raw = driver_connection(conn)
    current = ""
    try:
        with raw.pipeline(), raw.cursor() as writer:
            for current, params in queued:
                writer.execute(current, params)
            current = "COMMIT"
            raw.commit()
    except Exception as error:
        translated = translate_driver_error(conn, error, current)
        if translated is error:
            raise
        raise translated from error


@contextmanager
def no_before_commit() -> Iterator[None]:
    """Transactions in this block run no before-commit hooks (a refusal's own record)."""
    token = _before_commit.set(())
    try:
        yield
    finally:
        _before_commit.reset(token)


def _default_actor() -> Actor:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "operator"
    return local_operator(name)


@dataclass
class Database:
    """An open database, and who is acting on it.

    Opened by the CLI, it acts as the local operator (as a database's own shell
    does); the HTTP API hands each request `acting_as(user)`.
    """

    engine: Engine
    url: str
    actor: Actor = field(default_factory=_default_actor)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # SQLite has one writer at a time. Writers of this process queue here, in
    # order, instead of in SQLite's busy handler, which polls with sleeps of up
    # to 100 ms (seconds of tail latency under load). Shared by `acting_as`
    # copies; reentrant so a nested write fails as before (busy timeout), not
    # by deadlock. Other processes are still kept out by SQLite's own lock.
    write_lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def acting_as(self, actor: Actor, request_id: str | None = None) -> Database:
        """The same database (same engine and pool) used by `actor`."""
        return replace(self, actor=actor, request_id=request_id or uuid.uuid4().hex)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One read-write transaction: committed on success, rolled back on any error."""
        with (
            self.write_lock if self.dialect == "sqlite" else nullcontext(),
            self.engine.connect() as conn,
            conn.begin(),
        ):
            # conn.info outlives the transaction (pooled connections): start clean.
            _clear_transaction_info(conn)
            try:
                yield conn
                for hook in _before_commit.get():
                    hook(conn)
                # A finaliser may register another one: run them until none is
                # left, in registration order.
                while finalisers := conn.info.pop(_FINALISERS, {}):
                    for finaliser in finalisers.values():
                        finaliser(conn)
                if self.is_postgres:
                    _commit_with_queued(conn)
            finally:
                _clear_transaction_info(conn)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot, never takes the write lock)."""
        with (
            self.engine.connect().execution_options(lendcore_readonly=True) as conn,
            conn.begin(),
        ):
            _clear_transaction_info(conn)
            if self.is_postgres:
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def create_db_engine(url: str, *, pool_size: int = 5) -> Engine:
    sa_url = normalise_url(url)
    parsed = make_url(sa_url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:":
            # Each connection to :memory: is a database of its own: never pool them.
            engine = create_engine(sa_url, poolclass=NullPool)
        else:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            # Keep `pool_size` connections open: opening one (and its PRAGMAs) costs
            # more than most queries. A connection serves one thread at a time, so
            # sqlite3's same-thread check is off; beyond the pool, connections are
            # opened and closed per checkout (no limit, no waiting for the pool).
            engine = create_engine(
                sa_url,
                pool_size=pool_size,
                max_overflow=-1,
                connect_args={"check_same_thread": False},
            )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(sa_url, pool_size=pool_size, max_overflow=pool_size)
    _configure_postgres(engine)
    return engine


# A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_S = 5.0
_CHECKED_IN_AT = "lendcore_checked_in_at"


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # pool_pre_ping would cost every transaction a round trip; a connection
        # in steady use is known alive, so only one that sat idle is pinged. A
        # dead one is replaced by the pool (DisconnectionError), as pre-ping does.
        idle_since = record.info.get(_CHECKED_IN_AT)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc

    @event.listens_for(engine, "before_cursor_execute")
    def _before_execute(
        conn: Connection, _cursor: Any, _sql: Any, _params: Any, _ctx: Any, _many: bool
    ) -> None:
        # Writes queued by send_later go first, so a read sees them.
        if conn.info.get(_QUEUED):
            flush_queued(conn)


def open_database(url: str | None = None, *, migrate: bool = True, pool_size: int = 5) -> Database:
    """Open the database at `url` (or $LENDCORE_DB_URL, or ./lendcore.db).

    A database without lendcore's tables is migrated to the latest revision; one
    at an older revision raises SchemaOutdated.
    """
    from lendcore.store import migrations

    resolved = url or os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL
    engine = create_db_engine(resolved, pool_size=pool_size)
    db = Database(engine=engine, url=resolved)
    try:
        with engine.connect() as conn:
            current = migrations.current_revision(conn)
            has_lendcore_tables = "accounts" in inspect(conn).get_table_names()
    except OperationalError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot open database {resolved}: {exc.orig}") from exc
    head = migrations.head_revision()
    if current is None and not has_lendcore_tables and migrate:
        migrations.upgrade(db)
    elif current != head:
        engine.dispose()
        raise SchemaOutdated(
            f"database is at revision {current or 'none'}, lendcore needs {head}: "
            "run `lendcore db upgrade`",
            current=current,
            head=head,
        )
    return db


def ping(db: Database) -> None:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
