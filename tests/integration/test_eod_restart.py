"""End of day killed at any moment and run again gives the uninterrupted result.

A small book is prepared once. The reference is `lendcore eod run --to D+k`
run without interruption on a copy of it. Then, again and again on fresh
copies, the same command is started as a separate process, killed with SIGKILL
at a random moment within the measured length of an uninterrupted run, and run
again to completion; the whole database must then equal the reference (every
table, rows sorted, wall-clock values and the hashes over them left out: see
`db_compare`), and `lendcore ledger verify` must find the ledger's and the audit
log's chains intact, of the same length as the reference's.

Copies: SQLite copies the file; PostgreSQL clones the prepared database with
`CREATE DATABASE ... TEMPLATE` (tens of milliseconds), or, where the role may
not create databases, restores a `pg_dump` of the prepared schema under a new
schema name.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from lendcore.cli import app
from lendcore.services import eod
from lendcore.store.database import open_database
from tests.conftest import create_pg_schema, drop_pg_schema, pg_base_url
from tests.integration.db_compare import (
    State,
    assert_same_state,
    differences,
    read_state,
    verify_report,
)
from tests.integration.eod_helpers import business_date, live_day, open_book

LOANS = 60
DAYS_BEFORE = 3  # live days closed while preparing
DAYS = 5  # days the command under test closes
KILLS = 20

# The command under test, in a process of its own. It imports lendcore, says
# "ready", and waits for its arguments on stdin, so the next process can start
# (imports take ~1.5 s) while the test is busy with the previous one, and the
# kill is timed from the moment the command itself starts.
CHILD = (
    "import sys\n"
    "import lendcore.cli as cli\n"
    "print('ready', flush=True)\n"
    "sys.argv = ['lendcore', *sys.stdin.readline().split()]\n"
    "cli.main()\n"
)

runner = CliRunner()


@dataclass
class Copies:
    """Fresh copies of the prepared database, each a URL."""

    make: Callable[[], str]


def _prepare(url: str) -> date:
    """A book with a few closed days behind it; returns its business date."""
    db = open_database(url)
    try:
        book = open_book(db, LOANS, seed=11)
        rng = random.Random(12)
        for _ in range(DAYS_BEFORE):
            live_day(book, rng)
            eod.run_day(book.servicing)
        today = business_date(db)
    finally:
        db.dispose()
    return today


@contextmanager
def sqlite_copies(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[Copies, date]]:
    today = _prepare(sqlite_url)  # disposing the engine checkpoints the WAL into the file
    source = Path(make_url(sqlite_url).database or "")
    assert not Path(f"{source}-wal").exists()

    def make() -> str:
        path = tmp_path / f"copy-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(source, path)
        return f"sqlite:///{path}"

    yield Copies(make), today


def _admin_url(database: str | None = None) -> str:
    base = pg_base_url()
    assert base is not None
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def pg_copies() -> Iterator[tuple[Copies, date]]:
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    template = f"lc_eod_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {template}"))
    except DBAPIError:  # the role may not create databases: clone schemas instead
        admin.dispose()
        with _pg_schema_copies() as found:
            yield found
        return
    copies: list[str] = [template]

    def make() -> str:
        name = f"{template}_{len(copies)}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
        copies.append(name)
        return _plain(_admin_url(name))

    try:
        today = _prepare(_plain(_admin_url(template)))
        yield Copies(make), today
    finally:
        with admin.connect() as conn:
            for name in reversed(copies):
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def _pg_schema_copies() -> Iterator[tuple[Copies, date]]:
    schema, url = create_pg_schema()
    schemas = [schema]
    try:
        today = _prepare(url)
        base = pg_base_url()
        assert base is not None
        dump = subprocess.run(
            ["pg_dump", "--schema", schema, "--no-owner", "--no-privileges", base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        def make() -> str:
            name, new_url = create_pg_schema()
            drop_pg_schema(name)  # the dump creates it
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", base],
                input=dump.replace(schema, name),
                capture_output=True,
                text=True,
                check=True,
            )
            schemas.append(name)
            return new_url

        yield Copies(make), today
    finally:
        for name in schemas:
            drop_pg_schema(name)


@contextmanager
def copies_of(backend: str, tmp_path: Path, sqlite_url: str) -> Iterator[tuple[Copies, date]]:
    if backend == "sqlite":
        with sqlite_copies(tmp_path, sqlite_url) as found:
            yield found
        return
    if pg_base_url() is None:
        pytest.skip("LENDCORE_TEST_PG_URL is not set")
    with pg_copies() as found:
        yield found


class Child:
    """A `lendcore` process started ahead, waiting for its command."""

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )

    def start(self, *args: str) -> float:
        assert self.process.stdout is not None and self.process.stdin is not None
        assert self.process.stdout.readline().strip() == "ready"
        self.process.stdin.write(" ".join(args) + "\n")
        self.process.stdin.flush()
        return time.perf_counter()

    def finish(self) -> tuple[float, int, str, str]:
        """Waits for the command; returns when its output began (the days are
        closed then: it prints once at the end), exit code, stdout, stderr."""
        assert self.process.stdout is not None and self.process.stderr is not None
        first = self.process.stdout.readline()
        printed = time.perf_counter()
        out, err = self.process.stdout.read(), self.process.stderr.read()
        return printed, self.process.wait(timeout=60), first + out, err

    def kill(self) -> None:
        self.process.kill()  # SIGKILL
        self.process.communicate(timeout=30)


def _date_of(url: str) -> date:
    db = open_database(url)
    try:
        return business_date(db)
    finally:
        db.dispose()


def _run_to(url: str, target: date) -> int:
    """`eod run --to` in this process, to completion; returns how many times it
    found the killed run's lock still held. On PostgreSQL the killed process's
    session can outlive it for a moment (the server notices the dead client when
    it next talks to it): its lock is waited for, and a commit it had already
    sent may land meanwhile."""
    for waits in range(100):
        result = runner.invoke(
            app, ["--db", url, "eod", "run", "--to", target.isoformat(), "--json"]
        )
        if result.exit_code == 0:
            return waits
        if "EOD_DATE_IN_PAST" in result.stderr and _date_of(url) > target:
            return waits
        assert "EOD_RUN_UNDER_WAY" in result.stderr, result.stderr
        time.sleep(0.1)
    raise AssertionError("the killed run's lock was never released")


def _state_after(url: str) -> tuple[State, dict[str, Any]]:
    state = read_state(url)
    return state, verify_report(url)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_a_run_killed_at_any_moment_then_run_again_equals_an_uninterrupted_run(
    backend: str, tmp_path: Path, sqlite_url: str
) -> None:
    rng = random.Random(2024)
    with copies_of(backend, tmp_path, sqlite_url) as (copies, today):
        target = today + timedelta(days=DAYS - 1)
        prepared = copies.make()
        before = read_state(prepared)

        children = [Child(tmp_path)]
        try:
            # The reference: one uninterrupted run, timed from its start, while
            # the next process starts (as each killed run below does).
            reference_url = copies.make()
            started = children[-1].start(
                "--db", reference_url, "eod", "run", "--to", target.isoformat(), "--json"
            )
            children.append(Child(tmp_path))
            printed, code, out, err = children[-2].finish()
            length = printed - started
            assert code == 0, err
            assert [r["business_date"] for r in json.loads(out)["runs"]] == [
                (today + timedelta(days=i)).isoformat() for i in range(DAYS)
            ]
            reference, reference_report = _state_after(reference_url)
            assert differences(before, reference), "the run changed nothing"
            assert reference_report["entries_checked"] > 0

            outcomes = {"before any day closed": 0, "between days": 0, "after the last day": 0}
            dates_after_kill = []
            waits = 0
            for _ in range(KILLS):
                url = copies.make()
                delay = rng.uniform(0, length)
                child = children[-1]
                started = child.start(
                    "--db", url, "eod", "run", "--to", target.isoformat(), "--json"
                )
                children.append(Child(tmp_path))  # imports while this one runs
                time.sleep(max(0.0, started + delay - time.perf_counter()))
                child.kill()
                killed_at = _date_of(url)
                dates_after_kill.append((round(delay, 3), killed_at.isoformat()))
                if killed_at == today:
                    outcomes["before any day closed"] += 1
                elif killed_at <= target:
                    outcomes["between days"] += 1
                else:
                    outcomes["after the last day"] += 1
                if killed_at <= target:
                    waits += _run_to(url, target)
                state, report = _state_after(url)
                assert_same_state(reference, state, f"killed after {delay:.3f}s:")
                assert report == reference_report
        finally:
            for child in children:
                with suppress(Exception):
                    child.kill()
        print(
            f"\n{backend}: uninterrupted run {length:.2f}s; kills: {outcomes}; "
            f"the rerun found the killed run's lock still held {waits} time(s)"
        )
        print(f"{backend}: (delay s, business date after the kill): {dates_after_kill}")
        # The kills must have interrupted runs, some of them part-way through the days.
        assert outcomes["before any day closed"] + outcomes["between days"] >= 5, outcomes
        assert outcomes["between days"] >= 2, outcomes
