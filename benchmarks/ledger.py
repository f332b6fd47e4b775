"""Ledger booking benchmark: prints figures, asserts nothing about speed.

Measures the booking path of `lendcore.services.ledger` on SQLite (a fresh file in
a temporary directory) and on PostgreSQL (a fresh schema, dropped at the end):

- single `book_entry` calls, two postings each, one writer: entries/s, p50/p99 ms;
- `book_entries` batches of 1,000 and of 10,000 two-posting entries: entries/s;
- PostgreSQL only: 16 worker processes booking on 10 hot accounts (contended) and
  on 16 distinct pairs of accounts (uncontended): entries/s, refusals;
- peak memory (ru_maxrss) of this process and of the worker processes.

Targets are printed beside the figures with a pass/miss mark; the script exits 0
whatever the figures are (a benchmark reports, a test asserts).

    python benchmarks/ledger.py                 # full run, both databases
    python benchmarks/ledger.py --quick         # smoke run, under a minute
    python benchmarks/ledger.py --sqlite-only
    python benchmarks/ledger.py --pg-url postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/ledger.py --json          # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import random
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from lendcore.errors import BalanceConstraintViolated, LendcoreError
from lendcore.ledger.model import (
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.services.ledger import book_entries, book_entry, open_account
from lendcore.store.database import Database, open_database

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
CURRENCY = "EUR"

# Targets (entries per second) printed beside the measured figures.
TARGET_BULK_PER_S = 50_000
TARGET_SINGLE_SQLITE_PER_S = 2_000
TARGET_CONTENDED_PG_PER_S = 1_000

# Funding of each constrained account in the multi-process runs: large enough
# that no booking of the run can take it below zero, so refusals stay rare.
FUNDING_MINOR = 10**12
# Amounts booked are drawn from 1..AMOUNT_MINOR_MAX_BOOKED minor units.
AMOUNT_MINOR_MAX_BOOKED = 10_000
# Untimed calls before a timed single-call run, so SQLAlchemy's statement
# caches and the database's plan caches are warm.
WARMUP_CALLS = 20
# Workers add to the shared progress counter every this many bookings.
PROGRESS_EVERY = 10
# A worker that has not reported after this long is considered lost.
WORKER_TIMEOUT_S = 900.0
# Width of the table when stdout is not a terminal (Rich would use 80).
TABLE_WIDTH_PIPED = 170
# How long to wait for PostgreSQL to answer before skipping it.
PG_CONNECT_TIMEOUT_S = 3


@dataclass(frozen=True)
class Counts:
    """How much work each part does (a limit on everything, so runs are bounded)."""

    single_calls: int
    single_accounts: int
    bulk_accounts: int
    small_batch_entries: int
    small_batches: int
    large_batch_entries: int
    large_batches: int
    workers: int
    bookings_per_worker: int
    hot_accounts: int


FULL = Counts(
    single_calls=3_000,
    single_accounts=64,
    bulk_accounts=1_000,
    small_batch_entries=1_000,
    small_batches=10,
    large_batch_entries=10_000,
    large_batches=5,
    workers=16,
    bookings_per_worker=300,
    hot_accounts=10,
)
QUICK = Counts(
    single_calls=300,
    single_accounts=16,
    bulk_accounts=200,
    small_batch_entries=1_000,
    small_batches=2,
    large_batch_entries=10_000,
    large_batches=1,
    workers=16,
    bookings_per_worker=30,
    hot_accounts=10,
)


@dataclass
class Figure:
    """One measured line of the report."""

    database: str
    benchmark: str
    entries: int
    seconds: float
    entries_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_of: str = "call"
    # CPU time of the booking process(es) per entry: steadier than wall time on a busy machine.
    client_cpu_ms_per_entry: float | None = None
    target_per_s: int | None = None
    refusals: int | None = None
    errors: int | None = None
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target_per_s is None:
            return None
        return self.entries_per_s >= self.target_per_s

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    memory_mib: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    # 1-minute load average when each part starts (before it adds load of its own).
    load_before: dict[str, float | None] = field(default_factory=dict)


# --- small helpers --------------------------------------------------------------------


def percentile_ms(latencies_ns: Sequence[int], fraction: float) -> float | None:
    """Nearest-rank percentile of nanosecond latencies, in milliseconds."""
    if not latencies_ns:
        return None
    ordered = sorted(latencies_ns)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1] / 1e6


def rss_mib(who: int) -> float:
    """Peak resident set size of `who` (RUSAGE_SELF or RUSAGE_CHILDREN) in MiB."""
    peak = resource.getrusage(who).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def own_peak_rss_mib() -> float | None:
    """This process's own peak RSS (Linux VmHWM), or None where /proc is not there.

    ru_maxrss is not enough for a spawned worker: Linux keeps the RSS its parent had
    at fork time across exec, so a worker's ru_maxrss is never below its parent's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def two_postings(key: str, debit: str, credit: str, amount_minor: int) -> EntrySpec:
    return EntrySpec(
        idempotency_key=key,
        postings=(
            PostingSpec(debit, Side.DEBIT, amount_minor, CURRENCY),
            PostingSpec(credit, Side.CREDIT, amount_minor, CURRENCY),
        ),
        description="benchmark transfer",
    )


def open_accounts(
    db: Database,
    codes: Sequence[str],
    account_type: AccountType,
    constraint: BalanceConstraint = BalanceConstraint.NONE,
) -> None:
    for code in codes:
        open_account(
            db,
            AccountSpec(
                code=code,
                name=f"Benchmark {code}",
                type=account_type,
                currency=CURRENCY,
                balance_constraint=constraint,
            ),
        )


def pg_url_for_schema(base_url: str, schema: str) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


def pg_server_version(base_url: str) -> str | None:
    """The server's version string, or None when PostgreSQL does not answer."""
    try:
        with psycopg.connect(base_url, connect_timeout=PG_CONNECT_TIMEOUT_S) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else "unknown"


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in the database of `base_url`, dropped on the way out."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def sqlite_file() -> Iterator[str]:
    """A fresh SQLite file in a temporary directory, removed on the way out."""
    directory = tempfile.mkdtemp(prefix="lendcore-bench-")
    try:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- single-process parts ------------------------------------------------------------


def bench_single(
    db: Database, label: str, counts: Counts, progress: Progress, target: int | None
) -> Figure:
    """`book_entry` called one at a time by one writer: no other transaction waits."""
    codes = [f"SGL-{i:04d}" for i in range(counts.single_accounts)]
    open_accounts(db, codes, AccountType.ASSET)
    rng = random.Random(1)
    total = WARMUP_CALLS + counts.single_calls
    specs = []
    for i in range(total):
        debit, credit = rng.sample(codes, 2)
        specs.append(two_postings(f"sgl-{i}", debit, credit, rng.randint(1, 10_000)))
    for spec in specs[:WARMUP_CALLS]:
        book_entry(db, spec)
    task = progress.add_task(f"{label}: single book_entry", total=counts.single_calls)
    latencies_ns: list[int] = []
    clock = time.perf_counter_ns
    cpu_started = time.process_time()
    started = clock()
    for spec in specs[WARMUP_CALLS:]:
        t0 = clock()
        book_entry(db, spec)
        latencies_ns.append(clock() - t0)
        progress.advance(task)
    seconds = (clock() - started) / 1e9
    cpu_seconds = time.process_time() - cpu_started
    return Figure(
        database=label,
        benchmark="book_entry, 1 writer",
        entries=counts.single_calls,
        seconds=seconds,
        entries_per_s=counts.single_calls / seconds,
        p50_ms=percentile_ms(latencies_ns, 0.50),
        p99_ms=percentile_ms(latencies_ns, 0.99),
        target_per_s=target,
        client_cpu_ms_per_entry=cpu_seconds * 1e3 / counts.single_calls,
        detail=f"{counts.single_accounts} accounts, {WARMUP_CALLS} warm-up calls untimed",
    )


def bench_bulk(
    db: Database,
    label: str,
    codes: Sequence[str],
    batch_entries: int,
    batches: int,
    progress: Progress,
) -> Figure:
    """`book_entries` with batches of `batch_entries` two-posting entries."""
    rng = random.Random(batch_entries)
    prefix = f"blk{batch_entries}"
    all_batches: list[list[EntrySpec]] = []
    for b in range(batches):
        batch = []
        for i in range(batch_entries):
            debit, credit = rng.sample(codes, 2)
            batch.append(two_postings(f"{prefix}-{b}-{i}", debit, credit, rng.randint(1, 10_000)))
        all_batches.append(batch)
    task = progress.add_task(
        f"{label}: book_entries x{batch_entries:,}", total=batch_entries * batches
    )
    batch_ns: list[int] = []
    cpu_seconds = 0.0
    clock = time.perf_counter_ns
    for batch in all_batches:
        cpu0 = time.process_time()
        t0 = clock()
        result = book_entries(db, batch)
        batch_ns.append(clock() - t0)
        cpu_seconds += time.process_time() - cpu0
        if result.booked_count != len(batch):
            raise RuntimeError(f"batch booked {result.booked_count} of {len(batch)} entries")
        progress.advance(task, len(batch))
    seconds = sum(batch_ns) / 1e9
    entries = batch_entries * batches
    return Figure(
        database=label,
        benchmark=f"book_entries, {batch_entries:,}/batch",
        entries=entries,
        seconds=seconds,
        entries_per_s=entries / seconds,
        p50_ms=percentile_ms(batch_ns, 0.50),
        p99_ms=percentile_ms(batch_ns, 0.99),
        latency_of="batch",
        target_per_s=TARGET_BULK_PER_S,
        client_cpu_ms_per_entry=cpu_seconds * 1e3 / entries,
        detail=f"{batches} batch{'es' if batches != 1 else ''} over {len(codes):,} accounts",
    )


def run_single_process_parts(
    db: Database,
    label: str,
    counts: Counts,
    progress: Progress,
    report: Report,
    single_target: int | None,
) -> None:
    report.figures.append(bench_single(db, label, counts, progress, single_target))
    bulk_codes = [f"BLK-{i:05d}" for i in range(counts.bulk_accounts)]
    open_accounts(db, bulk_codes, AccountType.ASSET)
    # One small untimed batch first, so the bulk statements are compiled and cached.
    book_entries(
        db,
        [two_postings(f"blk-warm-{i}", bulk_codes[0], bulk_codes[1], 1) for i in range(100)],
    )
    for batch_entries, batches in (
        (counts.small_batch_entries, counts.small_batches),
        (counts.large_batch_entries, counts.large_batches),
    ):
        report.figures.append(bench_bulk(db, label, bulk_codes, batch_entries, batches, progress))


# --- multi-process part (PostgreSQL) ---------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    url: str
    worker_no: int
    accounts: tuple[str, ...]
    bookings: int
    key_prefix: str
    seed: int


def worker_main(job: WorkerJob, ready: Any, start: Any, counter: Any, results: Any) -> None:
    """One booking process: its own Database, bookings between two random accounts
    of `job.accounts`, timed from the moment every worker is ready."""
    db = open_database(job.url, pool_size=1)
    rng = random.Random(job.seed)
    specs = []
    for i in range(job.bookings):
        debit, credit = rng.sample(job.accounts, 2)
        specs.append(
            two_postings(
                f"{job.key_prefix}-{i}",
                debit,
                credit,
                rng.randint(1, AMOUNT_MINOR_MAX_BOOKED),
            )
        )
    # One connection opened before the clock starts, like a warm service.
    with db.reading() as conn:
        conn.exec_driver_sql("SELECT 1")
    booked = refusals = errors = 0
    latencies_ns: list[int] = []
    error_kinds: dict[str, int] = {}
    with ready.get_lock():
        ready.value += 1
    if not start.wait(WORKER_TIMEOUT_S):
        raise RuntimeError("the start signal never came")
    started = time.monotonic()
    cpu_started = time.process_time()
    clock = time.perf_counter_ns
    for i, spec in enumerate(specs, start=1):
        t0 = clock()
        try:
            book_entry(db, spec)
            booked += 1
        except BalanceConstraintViolated:
            refusals += 1
        except (LendcoreError, DBAPIError) as exc:
            # Anything else (a lost race after the retries, a domain error) is an error.
            errors += 1
            kind = type(exc).__name__
            error_kinds[kind] = error_kinds.get(kind, 0) + 1
        latencies_ns.append(clock() - t0)
        if i % PROGRESS_EVERY == 0 or i == len(specs):
            with counter.get_lock():
                counter.value += PROGRESS_EVERY if i % PROGRESS_EVERY == 0 else i % PROGRESS_EVERY
    finished = time.monotonic()
    cpu_seconds = time.process_time() - cpu_started
    db.dispose()
    results.put(
        {
            "worker_no": job.worker_no,
            "booked": booked,
            "refusals": refusals,
            "errors": errors,
            "error_kinds": error_kinds,
            "started": started,
            "finished": finished,
            "cpu_seconds": cpu_seconds,
            "latencies_ns": latencies_ns,
            "rss_mib": rss_mib(resource.RUSAGE_SELF),
            "hwm_mib": own_peak_rss_mib(),
        }
    )


def fund_accounts(db: Database, codes: Sequence[str], tag: str) -> None:
    """Give every constrained account a huge balance from an unconstrained equity account."""
    source = f"FUND-{tag}"
    open_accounts(db, [source], AccountType.EQUITY)
    book_entries(
        db,
        [two_postings(f"fund-{tag}-{code}", source, code, FUNDING_MINOR) for code in codes],
    )


def run_workers(
    url: str,
    jobs: Sequence[WorkerJob],
    title: str,
    progress: Progress,
) -> dict[str, Any]:
    """Start one process per job, release them together, and gather their figures."""
    ctx = mp.get_context("spawn")
    ready = ctx.Value("i", 0)
    start = ctx.Event()
    counter = ctx.Value("q", 0)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=worker_main, args=(job, ready, start, counter, results), daemon=True)
        for job in jobs
    ]
    for process in processes:
        process.start()
    total = sum(job.bookings for job in jobs)
    task = progress.add_task(title, total=total)
    # Release the workers together once all are ready; a worker that dies while
    # starting (its traceback is printed above) stops the run instead of hanging it.
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while ready.value < len(jobs):
        if any(p.exitcode is not None for p in processes) or time.monotonic() > deadline:
            for process in processes:
                process.terminate()
            raise RuntimeError(f"{title}: a worker failed to start")
        time.sleep(0.05)
    start.set()
    reports: list[dict[str, Any]] = []
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while len(reports) < len(jobs):
        try:
            reports.append(results.get(timeout=0.1))
        except queue.Empty:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{title}: workers did not report in time") from None
            if not any(p.is_alive() for p in processes) and results.empty():
                raise RuntimeError(f"{title}: a worker died without reporting") from None
        progress.update(task, completed=counter.value)
    for process in processes:
        process.join()
    progress.update(task, completed=total)
    started = min(r["started"] for r in reports)
    finished = max(r["finished"] for r in reports)
    latencies = [ns for r in reports for ns in r["latencies_ns"]]
    error_kinds: dict[str, int] = {}
    for r in reports:
        for kind, n in r["error_kinds"].items():
            error_kinds[kind] = error_kinds.get(kind, 0) + n
    return {
        "booked": sum(r["booked"] for r in reports),
        "refusals": sum(r["refusals"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "error_kinds": error_kinds,
        "seconds": finished - started,
        "cpu_seconds": sum(r["cpu_seconds"] for r in reports),
        "p50_ms": percentile_ms(latencies, 0.50),
        "p99_ms": percentile_ms(latencies, 0.99),
        "worker_rss_mib_max": max(r["rss_mib"] for r in reports),
        "worker_hwm_mib_max": max((r["hwm_mib"] or 0.0) for r in reports) or None,
    }


def bench_multiprocess(
    db: Database, url: str, counts: Counts, progress: Progress, report: Report
) -> None:
    n = counts.workers
    # Contended: every worker books between random pairs of the same hot accounts.
    hot = [f"HOT-{i:02d}" for i in range(counts.hot_accounts)]
    open_accounts(db, hot, AccountType.LIABILITY, BalanceConstraint.NON_NEGATIVE)
    fund_accounts(db, hot, "hot")
    # Uncontended: each worker has its own two accounts (same kind, same funding).
    own = [(f"OWN-{w:02d}-A", f"OWN-{w:02d}-B") for w in range(n)]
    own_codes = [code for pair in own for code in pair]
    open_accounts(db, own_codes, AccountType.LIABILITY, BalanceConstraint.NON_NEGATIVE)
    fund_accounts(db, own_codes, "own")
    for kind, name, where, accounts_of in (
        ("hot", f"contended, {n} processes", f"{len(hot)} hot accounts", lambda _w: tuple(hot)),
        ("own", f"uncontended, {n} processes", f"{n}x2 own accounts", lambda w: own[w]),
    ):
        jobs = [
            WorkerJob(
                url=url,
                worker_no=w,
                accounts=accounts_of(w),
                bookings=counts.bookings_per_worker,
                key_prefix=f"{kind}-w{w}",
                seed=1_000 + w,
            )
            for w in range(n)
        ]
        outcome = run_workers(url, jobs, f"PostgreSQL: {name}", progress)
        errors = outcome["errors"]
        detail = f"{where}, {counts.bookings_per_worker} bookings/worker"
        if outcome["error_kinds"]:
            detail += ", errors: " + ", ".join(
                f"{kind} x{count}" for kind, count in sorted(outcome["error_kinds"].items())
            )
        report.figures.append(
            Figure(
                database="PostgreSQL",
                benchmark=name,
                entries=outcome["booked"],
                seconds=outcome["seconds"],
                entries_per_s=outcome["booked"] / outcome["seconds"],
                p50_ms=outcome["p50_ms"],
                p99_ms=outcome["p99_ms"],
                target_per_s=TARGET_CONTENDED_PG_PER_S if kind == "hot" else None,
                refusals=outcome["refusals"],
                errors=errors,
                client_cpu_ms_per_entry=outcome["cpu_seconds"] * 1e3 / max(1, outcome["booked"]),
                detail=detail,
            )
        )
        report.memory_mib[f"workers ({kind}): ru_maxrss, max over workers"] = outcome[
            "worker_rss_mib_max"
        ]
        if outcome["worker_hwm_mib_max"] is not None:
            report.memory_mib[f"workers ({kind}): own peak (VmHWM), max over workers"] = outcome[
                "worker_hwm_mib_max"
            ]
    report.memory_mib["children: RUSAGE_CHILDREN ru_maxrss"] = rss_mib(resource.RUSAGE_CHILDREN)
    report.notes.append(
        "a spawned worker's ru_maxrss starts at its parent's RSS at fork time (Linux keeps it "
        "across exec); VmHWM is the worker's own peak"
    )


# --- driver ----------------------------------------------------------------------------


def run_sqlite(counts: Counts, progress: Progress, report: Report) -> None:
    report.load_before["SQLite"] = load_average()
    with sqlite_file() as url:
        db = open_database(url)
        try:
            run_single_process_parts(
                db, "SQLite", counts, progress, report, TARGET_SINGLE_SQLITE_PER_S
            )
        finally:
            db.dispose()
    report.memory_mib["this process peak RSS after SQLite"] = rss_mib(resource.RUSAGE_SELF)


def run_postgres(base_url: str, counts: Counts, progress: Progress, report: Report) -> None:
    with pg_schema(base_url) as schema:
        url = pg_url_for_schema(base_url, schema)
        report.config["pg_schema"] = schema
        db = open_database(url, pool_size=2)
        try:
            report.load_before["PostgreSQL"] = load_average()
            run_single_process_parts(db, "PostgreSQL", counts, progress, report, None)
            report.memory_mib["this process peak RSS after PostgreSQL"] = rss_mib(
                resource.RUSAGE_SELF
            )
            report.load_before[f"PostgreSQL, {counts.workers} processes"] = load_average()
            bench_multiprocess(db, url, counts, progress, report)
        finally:
            db.dispose()


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def environment(pg_version: str | None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
    }


def render(report: Report, console: Console) -> None:
    table = Table(title="lendcore ledger benchmark", title_justify="left")
    table.add_column("database")
    table.add_column("benchmark")
    table.add_column("entries", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("entries/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("CPU ms/entry", justify="right")
    table.add_column("target", justify="right")
    table.add_column("", justify="left")
    table.add_column("notes")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f}"

    for f in report.figures:
        mark = {True: "[green]✓ pass[/]", False: "[red]✗ miss[/]", None: ""}[f.passed]
        notes = f.detail
        if f.refusals is not None:
            notes = f"refusals {f.refusals}, errors {f.errors}; " + notes
        table.add_row(
            f.database,
            f.benchmark,
            f"{f.entries:,}",
            f"{f.seconds:,.2f}",
            f"{f.entries_per_s:,.0f}",
            ms(f.p50_ms),
            ms(f.p99_ms),
            "-" if f.client_cpu_ms_per_entry is None else f"{f.client_cpu_ms_per_entry:.3f}",
            f">= {f.target_per_s:,}/s" if f.target_per_s is not None else "-",
            mark,
            notes,
        )
    console.print(table)
    memory = Table(title="peak memory", title_justify="left")
    memory.add_column("what")
    memory.add_column("MiB", justify="right")
    for what, mib in report.memory_mib.items():
        memory.add_row(what, f"{mib:,.1f}")
    console.print(memory)
    env = report.environment
    console.print(
        f"Python {env['python']}, SQLAlchemy {env['sqlalchemy']}, psycopg {env['psycopg']}, "
        f"SQLite {env['sqlite']}, PostgreSQL {env['postgresql'] or '-'}, "
        f"{env['cpu_count']} CPUs, {env['platform']}"
    )
    loads = ", ".join(
        f"{part} {'-' if load is None else f'{load:.2f}'}"
        for part, load in report.load_before.items()
    )
    console.print(f"1-min load average before each part: {loads}")
    console.print(
        "CPU ms/entry: CPU time of the booking process (summed over workers) per entry booked, "
        "database server excluded; p50/p99 are per call, or per batch for bulk"
    )
    for note in report.notes:
        console.print(f"note: {note}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database URL")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated run still drops its schema and temporary files (finally blocks run).
    signal.signal(signal.SIGTERM, lambda _signo, _frame: sys.exit(128 + signal.SIGTERM))
    counts = QUICK if args.quick else FULL
    # Progress goes to stderr so stdout carries only the table or the JSON document.
    progress_console = Console(stderr=True)
    out = Console()
    if not out.is_terminal:
        # Piped to a file: wide enough that the table does not wrap.
        out = Console(width=TABLE_WIDTH_PIPED)
    report = Report(config={"mode": "quick" if args.quick else "full", **asdict(counts)})

    pg_version = None
    if args.sqlite_only:
        report.notes.append("PostgreSQL skipped (--sqlite-only)")
    else:
        pg_version = pg_server_version(args.pg_url)
        if pg_version is None:
            report.notes.append(f"PostgreSQL skipped: no answer at {args.pg_url}")
    report.environment = environment(pg_version)

    parts: list[Callable[[Progress], None]] = [lambda p: run_sqlite(counts, p, report)]
    if pg_version is not None:
        parts.append(lambda p: run_postgres(args.pg_url, counts, p, report))

    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=False,
    ) as progress:
        for part in parts:
            part(progress)
    report.config["wall_seconds"] = round(time.perf_counter() - started, 2)
    report.environment["load_average_1min_before"] = report.load_before
    cpus = os.cpu_count() or 1
    # This script itself keeps about one CPU busy (Python plus the database) between parts.
    busy = {part: load for part, load in report.load_before.items() if (load or 0.0) > cpus}
    if busy:
        shown = ", ".join(f"{part} {load:.1f}" for part, load in busy.items())
        report.notes.append(
            f"the machine was busy before some parts (1-min load average on {cpus} CPUs: {shown}); "
            "those figures are pessimistic: rerun on a quiet machine"
        )

    if args.json:
        document = {
            "figures": [f.to_dict() for f in report.figures],
            "memory_mib": report.memory_mib,
            "notes": report.notes,
            "environment": report.environment,
            "config": report.config,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        render(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
