"""The gate every command passes: authorization, then the audit record.

`@command("ledger.account.open")` on a service function checks the permission
table for the acting user, runs the function, and records the command in the
append-only audit log: inside the command's own transaction when it commits
(so the record and the change stand or fall together), or in a transaction of
its own when the command is refused or fails (so refusals are recorded even
though the command wrote nothing). `@query(...)` checks permission for reads and
records only refusals.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from functools import lru_cache, wraps
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection

from lendcore.audit import AuditRecord, canonical, record_hash, redact, to_plain
from lendcore.auth.actors import Actor
from lendcore.auth.permissions import PermissionDenied, authorize
from lendcore.errors import LendcoreError
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.store.database import (
    Database,
    before_commit,
    no_before_commit,
    run_now,
    send_later,
)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class _Running:
    """The command under way in this context."""

    name: str
    actor: Actor
    request_id: str
    inputs_json: str
    result: dict[str, Any] = field(default_factory=dict)
    audited: bool = False


_current: ContextVar[_Running | None] = ContextVar("lendcore_command", default=None)


def note_result(**values: Any) -> None:
    """Attach facts about the outcome (an entry id, a user name) to the audit record."""
    running = _current.get()
    if running is not None:
        running.result.update({k: to_plain(v) for k, v in values.items()})


def current_actor() -> Actor | None:
    running = _current.get()
    return None if running is None else running.actor


def write_audit(
    conn: Connection,
    *,
    command: str,
    actor: Actor,
    request_id: str,
    inputs_json: str,
    outcome: str,
    error_code: str | None = None,
    result: dict[str, Any] | None = None,
) -> int:
    """Append one record to the audit log and its chain, in the caller's transaction.

    Prebuilt driver SQL (every command writes one): the head is read and locked,
    the record and the new head are written with the commit (PostgreSQL) or at
    once (SQLite)."""
    postgres = conn.dialect.name == "postgresql"
    ((head_seq, head_hash),) = run_now(conn, _HEAD_SQL_PG if postgres else _HEAD_SQL_SQLITE)
    record = AuditRecord(
        seq=int(head_seq) + 1,
        recorded_at=utc_timestamp(),
        business_date=current_business_date(conn),
        actor=actor.label,
        actor_kind=actor.kind.value,
        roles=",".join(sorted(r.value for r in actor.roles)),
        command=command,
        request_id=request_id,
        inputs_json=inputs_json,
        outcome=outcome,
        error_code=error_code,
        result_json=canonical(result or {}),
    )
    digest = record_hash(head_hash, record)
    mark = "%s" if postgres else "?"
    row = [getattr(record, name) for name in _RECORD_COLUMNS]
    if not postgres:  # SQLite keeps dates as ISO text
        row[_RECORD_COLUMNS.index("business_date")] = record.business_date.isoformat()
    send_later(conn, _INSERT_SQL.replace("?", mark), (*row, head_hash, digest))
    send_later(conn, _HEAD_UPDATE_SQL.replace("?", mark), (record.seq, digest))
    return record.seq


_HEAD_SQL_SQLITE = "SELECT seq, record_hash FROM audit_chain_head WHERE id = 1"
_HEAD_SQL_PG = _HEAD_SQL_SQLITE + " FOR UPDATE"
# The record's fields are audit_log's columns of the same names, then the two hashes.
_RECORD_COLUMNS = tuple(f.name for f in fields(AuditRecord))
_INSERT_SQL = (
    f"INSERT INTO audit_log ({', '.join(_RECORD_COLUMNS)}, prev_hash, record_hash)"
    f" VALUES ({', '.join(['?'] * (len(_RECORD_COLUMNS) + 2))})"
)
_HEAD_UPDATE_SQL = "UPDATE audit_chain_head SET seq = ?, record_hash = ? WHERE id = 1"


def _record_alone(db: Database, running: _Running, outcome: str, error_code: str | None) -> None:
    """Record a command that wrote nothing (refused, failed, or a pure replay)."""
    with no_before_commit(), db.transaction() as conn:
        write_audit(
            conn,
            command=running.name,
            actor=running.actor,
            request_id=db.request_id,
            inputs_json=running.inputs_json,
            outcome=outcome,
            error_code=error_code,
            result=running.result,
        )
    running.audited = True


@lru_cache(maxsize=1024)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    # A command's signature does not change; computing it costs more than binding.
    return inspect.signature(fn)


def _inputs(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    bound = _signature(fn).bind_partial(None, *args, **kwargs)
    # A callback (a progress bar) is how the caller watches, not what it asked for.
    values = {k: v for k, v in bound.arguments.items() if k != "db" and not callable(v)}
    return canonical(redact(to_plain(values)))


def command(
    name: str, *, check: bool = True
) -> Callable[[Callable[Concatenate[Database, P], R]], Callable[Concatenate[Database, P], R]]:
    """Declare a service function as the command `name` (see the module docstring).

    With `check=False` the function authorizes itself (approvals, whose permission
    depends on the command being approved); its refusals are still recorded.
    """

    def decorate(
        fn: Callable[Concatenate[Database, P], R],
    ) -> Callable[Concatenate[Database, P], R]:
        @wraps(fn)
        def run(db: Database, *args: P.args, **kwargs: P.kwargs) -> R:
            running = _Running(name, db.actor, db.request_id, _inputs(fn, args, kwargs))
            outer = _current.set(running)
            try:
                if check:
                    authorize(db.actor, name)

                def audit_on_commit(conn: Connection) -> None:
                    if running.audited:
                        return
                    write_audit(
                        conn,
                        command=name,
                        actor=running.actor,
                        request_id=running.request_id,
                        inputs_json=running.inputs_json,
                        outcome="ok",
                        result=running.result,
                    )
                    running.audited = True

                with before_commit(audit_on_commit):
                    result = fn(db, *args, **kwargs)
                if not running.audited:
                    _record_alone(db, running, "ok", None)
                return result
            except PermissionDenied as error:
                if not running.audited:
                    _record_alone(db, running, "refused", error.code)
                raise
            except LendcoreError as error:
                if not running.audited:
                    _record_alone(db, running, "failed", error.code)
                raise
            finally:
                _current.reset(outer)

        return cast(Callable[Concatenate[Database, P], R], run)

    return decorate


def query(
    name: str,
) -> Callable[[Callable[Concatenate[Database, P], R]], Callable[Concatenate[Database, P], R]]:
    """Declare a read: permission checked; only a refusal is written to the audit log."""

    def decorate(
        fn: Callable[Concatenate[Database, P], R],
    ) -> Callable[Concatenate[Database, P], R]:
        @wraps(fn)
        def run(db: Database, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                authorize(db.actor, name)
            except PermissionDenied as error:
                running = _Running(name, db.actor, db.request_id, _inputs(fn, args, kwargs))
                _record_alone(db, running, "refused", error.code)
                raise
            return fn(db, *args, **kwargs)

        return cast(Callable[Concatenate[Database, P], R], run)

    return decorate
