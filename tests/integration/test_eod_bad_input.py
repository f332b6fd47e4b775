"""End of day refuses bad input with a typed error and changes nothing.

Each refusal is made through the `lendcore` command (one readable line on
stderr, `error[CODE]: ...`, a non-zero exit) and through the service (the typed
error), on SQLite and PostgreSQL, and the whole database is compared before and
after (`db_compare`): nothing written, the business date unchanged. A command
that fails is recorded in the audit log (outcome `failed`, its error code);
that record is the only write allowed, and it is checked.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import delete, inspect, select, text, update
from typer.testing import CliRunner

from lendcore.cli import app
from lendcore.errors import LendcoreError
from lendcore.services import eod
from lendcore.store.database import Database
from lendcore.store.schema import audit_log, loan_snapshots, loans
from tests.integration.db_compare import State, assert_same_state, read_state
from tests.integration.eod_helpers import business_date, live_day, open_book

runner = CliRunner()
AUDIT = ("audit_log", "audit_chain_head")


def cli(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", url, *args])
    return result.exit_code, result.stdout, result.stderr


def _without_audit(state: State) -> State:
    return {table: rows for table, rows in state.items() if table not in AUDIT}


def _audit_tail(db: Database) -> tuple[int, Any]:
    with db.reading() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
    return len(rows), rows[-1]


@pytest.fixture
def closed_book(db: Database) -> Database:
    """A few loans with two days closed."""
    book = open_book(db, 6, seed=61)
    rng = random.Random(62)
    for _ in range(2):
        live_day(book, rng)
        eod.run_day(book.servicing)
    return db


def refused_by_cli(db: Database, code: str, *args: str, audited: bool) -> str:
    """Run the command, expect `error[code]` alone on stderr and a non-zero exit,
    and nothing written (but the failure's audit record, when `audited`)."""
    before = read_state(db.url)
    records, _ = _audit_tail(db)
    exit_code, out, err = cli(db.url, *args)
    assert exit_code != 0, out
    assert err.startswith(f"error[{code}]: "), err
    assert err.count("\n") == 1, err  # one line
    _check_nothing_written(db, before, records, code, audited)
    return err


def refused_by_service(
    db: Database, code: str, call: Callable[[], object], *, audited: bool
) -> LendcoreError:
    before = read_state(db.url)
    records, _ = _audit_tail(db)
    with pytest.raises(LendcoreError) as caught:
        call()
    assert caught.value.code == code, caught.value
    _check_nothing_written(db, before, records, code, audited)
    return caught.value


def _check_nothing_written(
    db: Database, before: State, records: int, code: str, audited: bool
) -> None:
    after = read_state(db.url)
    if not audited:
        assert_same_state(before, after, "after a refusal:")
        return
    assert_same_state(_without_audit(before), _without_audit(after), "after a refusal:")
    count, last = _audit_tail(db)
    assert count == records + 1
    assert (last.command, last.outcome, last.error_code) == ("eod.run", "failed", code)


def test_a_date_already_closed_is_refused(closed_book: Database) -> None:
    db = closed_book
    today = business_date(db)
    for past in (today - timedelta(days=1), today - timedelta(days=40)):
        err = refused_by_cli(
            db, "EOD_DATE_IN_PAST", "eod", "run", "--to", past.isoformat(), audited=False
        )
        assert past.isoformat() in err and today.isoformat() in err
        refused_by_service(
            db, "EOD_DATE_IN_PAST", partial(eod.check_target, db, past), audited=False
        )
    refused_by_cli(db, "DATE_INVALID", "eod", "run", "--to", "2026-02-30", audited=False)
    refused_by_cli(db, "DATE_INVALID", "eod", "run", "--to", "tomorrow", audited=False)
    refused_by_cli(db, "INVALID_INPUT", "eod", "run", "--engine", "gpu", audited=True)
    assert business_date(db) == today
    # Today itself is not in the past: closing up to today closes one day.
    code, out, err = cli(db.url, "eod", "run", "--to", today.isoformat(), "--json")
    assert code == 0, err
    assert [r["business_date"] for r in json.loads(out)["runs"]] == [today.isoformat()]


def test_a_run_while_another_is_under_way_is_refused(closed_book: Database) -> None:
    db = closed_book
    today = business_date(db)
    code, out, err = cli(db.url, "eod", "status", "--json")
    assert code == 0, err
    assert json.loads(out)["under_way"] is False
    with eod.run_lock(db):
        code, out, err = cli(db.url, "eod", "status", "--json")
        assert code == 0, err
        status = json.loads(out)
        assert status["under_way"] is True
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", status["business_date"])
        assert date.fromisoformat(status["business_date"]) == today
        assert status["last_run"]["business_date"] == (today - timedelta(days=1)).isoformat()
        refused_by_cli(db, "EOD_RUN_UNDER_WAY", "eod", "run", audited=True)
        refused_by_cli(
            db, "EOD_RUN_UNDER_WAY", "eod", "run", "--to", today.isoformat(), audited=True
        )
        refused_by_service(db, "EOD_RUN_UNDER_WAY", lambda: eod.run_day(db), audited=True)
        assert eod.status(db).under_way is True
    assert eod.status(db).under_way is False
    assert eod.run_day(db).business_date == today  # the lock is released


def _corrupt(db: Database, loan_id: int, **values: Any) -> None:
    """Write a loan the foreign keys would refuse (a product version that does
    not exist): SQLite with its foreign keys off, PostgreSQL without the key."""
    if not db.is_postgres:
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")  # outside a transaction
            assignments = ", ".join(f"{column} = ?" for column in values)
            cursor.execute(
                f"UPDATE loans SET {assignments} WHERE id = ?", [*values.values(), loan_id]
            )
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()
        return
    with db.engine.begin() as conn:
        for fk in inspect(conn).get_foreign_keys("loans"):
            if fk["referred_table"] == "products":
                conn.execute(text(f'ALTER TABLE loans DROP CONSTRAINT "{fk["name"]}"'))
        conn.execute(update(loans).where(loans.c.id == loan_id).values(**values))


def test_a_loan_whose_product_version_is_missing_stops_the_day(closed_book: Database) -> None:
    db = closed_book
    today = business_date(db)
    with db.reading() as conn:
        loan_id = (
            conn.execute(select(loans.c.id).where(loans.c.status == "active").order_by(loans.c.id))
            .scalars()
            .first()
        )
    assert loan_id is not None
    _corrupt(db, loan_id, product_version=99)
    err = refused_by_cli(db, "EOD_PRODUCT_MISSING", "eod", "run", audited=True)
    assert f"loan {loan_id}" in err and "v99" in err
    error = refused_by_service(db, "EOD_PRODUCT_MISSING", lambda: eod.run_day(db), audited=True)
    assert error.details["loan_id"] == loan_id
    assert business_date(db) == today


def test_an_active_loan_without_a_snapshot_stops_the_day(closed_book: Database) -> None:
    db = closed_book
    today = business_date(db)
    with db.reading() as conn:
        loan_id = (
            conn.execute(
                select(loans.c.id).where(loans.c.status == "active").order_by(loans.c.id.desc())
            )
            .scalars()
            .first()
        )
    assert loan_id is not None
    with db.transaction() as conn:  # lost: no command deletes a snapshot of an active loan
        conn.execute(delete(loan_snapshots).where(loan_snapshots.c.loan_id == loan_id))
    err = refused_by_cli(db, "EOD_SNAPSHOT_MISSING", "eod", "run", audited=True)
    assert f"loan {loan_id}" in err
    refused_by_service(db, "EOD_SNAPSHOT_MISSING", lambda: eod.run_day(db), audited=True)
    assert business_date(db) == today
