"""End-of-day benchmark: prints figures, asserts nothing about speed.

Closes one business day (`lendcore.services.eod.run_day`, the local Polars
engine unless `--engine spark`) over books of 10,000, 100,000 (and, asked for,
1,000,000) active loans, on SQLite (a fresh file in a temporary directory) and
on PostgreSQL (a fresh schema, dropped at the end), and reports for each: wall
time, loans closed per second, time per step (`DayClose.seconds`: read,
servicing, provisioning, post, advance) and the process's peak memory (RSS
high-water mark, `ru_maxrss`; tracemalloc does not see Polars' allocations).
With `--days N` it also closes N consecutive days of one book.

The book is built fast, not through the commands: the lender and its four
example products are set up through the services (`lender.set_up_lender`), a
few hundred template loans are lived through with the per-loan rule
(`servicing.replay.resume`: disbursed up to eight months ago, instalments paid
on time, late, in part or not at all), and their rows (snapshot, posted
positions, terms) are replicated under new ids with bulk inserts (executemany
on SQLite, COPY on PostgreSQL); one opening entry per product puts the book's
positions on the ledger. End of day reads only the loans' rows, so the figures
are those of a book of that many loans lived through the commands.

Each book is built in one process and closed in a fresh one, so the peak
memory figure is that of end of day alone (with the interpreter and its
imports: see "RSS before"). A new book's first night decodes every snapshot and
writes end of day's image of the decoded book; it is reported on its own row.
The nights measured after it are the ones a lender runs from then on: before
each, a share of the loans (`--moved`, 3% by default) gets a new event, as a
day of repayments would, so their snapshots are decoded again.

    python benchmarks/eod.py                          # 10,000 and 100,000 loans, both databases
    python benchmarks/eod.py --sizes 1000000 --backends sqlite
    python benchmarks/eod.py --days 30 --days-size 100000
    python benchmarks/eod.py --quick                  # smoke run, under a minute
    python benchmarks/eod.py --json                   # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import sqlalchemy
from rich.console import Console
from rich.table import Table

from lendcore.ledger.model import EntrySpec
from lendcore.products.model import Product, load_product_text
from lendcore.services import eod, ledger, lender
from lendcore.services.business_date import business_date
from lendcore.services.clock import utc_timestamp
from lendcore.services.loans import postings_for
from lendcore.servicing.contract import terms_to_doc
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import LoanContract, LoanStatus, resume
from lendcore.store.bulk import insert_rows
from lendcore.store.database import open_database

DEFAULT_PG_URL = os.environ.get("LENDCORE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PRODUCT_NAMES = (
    "consumer-annuity",
    "microloan-weekly-flat",
    "working-capital-bullet",
    "interest-only-balloon",
)
# Capital in each currency: enough to fund a million loans.
FUNDING_MINOR = 10**15
# Loans written per insert batch while building a book.
CHUNK = 20_000
PG_CONNECT_TIMEOUT_S = 3
# Width of the table when stdout is not a terminal (Rich would use 80).
TABLE_WIDTH_PIPED = 160
STEPS = ("read", "servicing", "provisioning", "image", "post", "advance")
LOAN_COLUMNS = (
    "id",
    "product_code",
    "product_version",
    "currency",
    "borrower",
    "approved_minor",
    "terms_json",
    "status",
    "principal_outstanding_minor",
    "overdue_minor",
    "days_past_due",
    "state_as_of",
    "positions_json",
    "last_seq",
    "pd_origination",
    "risk_band",
    "forborne",
    "booked_by",
    "business_date",
    "created_at",
)


@dataclass
class Figure:
    database: str
    case: str
    loans: int
    days: int
    seconds: float  # wall time of the day(s) closed
    loans_per_s: float
    steps: dict[str, float]  # seconds per step, summed over the days
    rss_before_mib: float
    peak_rss_mib: float
    build_seconds: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


# --- the book ----------------------------------------------------------------------------


def example(name: str) -> Product:
    return load_product_text((lender.EXAMPLES / f"{name}.yaml").read_text())


@dataclass(frozen=True)
class Template:
    product: Product
    row: tuple[Any, ...]  # LOAN_COLUMNS but the id, as written
    positions: dict[str, int]
    snapshot_json: str


def templates(products: Sequence[Product], today: date, count: int, seed: int) -> list[Template]:
    """`count` active loans lived up to `today` with the per-loan rule."""
    rng = random.Random(seed)
    found: list[Template] = []
    attempts = 0
    while len(found) < count:
        attempts += 1
        if attempts > count * 20:
            raise RuntimeError("could not make enough active template loans")
        product = products[len(found) % len(products)]
        low, high = product.minor(product.principal.min), product.minor(product.principal.max)
        principal = rng.randint(low, min(high, low * 20)) // 100 * 100
        term = rng.randint(product.term.min, min(product.term.max, product.term.min + 12))
        start = today - timedelta(days=rng.randint(0, 240))
        rate = product.interest.rate
        terms = product.terms(
            principal,
            start,
            annual_rate=Decimal(rate.default) if rate.default else Decimal(rate.min),
            term=term,
        )
        contract = LoanContract(len(found) + 1, product, terms, principal)
        events = [LoanEvent(1, EventKind.DISBURSEMENT, start, principal)]
        scheduled, _ = resume(contract, events, start, None, keep=False)
        for instalment in scheduled.instalments:
            behaviour = rng.random()
            if instalment.due_date >= today or behaviour < 0.12:
                continue  # not due yet, or not paid at all
            paid_on = instalment.due_date
            amount = instalment.total
            if behaviour < 0.25:
                paid_on += timedelta(days=rng.randint(1, 40))  # late
            elif behaviour < 0.35:
                amount //= 2  # in part
            if paid_on < today and amount > 0:
                events.append(LoanEvent(len(events) + 1, EventKind.REPAYMENT, paid_on, amount))
        last = max(e.value_date for e in events)
        state, snapshot = resume(contract, events, last, None)
        if state.status is not LoanStatus.ACTIVE or snapshot is None:
            continue
        row = (
            product.code,
            1,
            product.currency,
            None,
            principal,
            json.dumps(terms_to_doc(terms), sort_keys=True),
            "active",
            state.principal_outstanding,
            state.overdue,
            state.days_past_due,
            state.as_of.isoformat(),
            json.dumps(state.positions, sort_keys=True),
            len(events),
            str(round(rng.uniform(0.005, 0.12), 4)),
            rng.choice("ABC"),
            rng.random() < 0.03,
            "bench",
            today.isoformat(),
            utc_timestamp(),
        )
        found.append(Template(product, row, state.positions, json.dumps(snapshot)))
    return found


def build_book(url: str, size: int, template_count: int, seed: int) -> dict[str, Any]:
    """A lender and `size` active loans at `url`; returns facts about the book."""
    started = time.perf_counter()
    db = open_database(url)
    try:
        products = [example(n) for n in PRODUCT_NAMES]
        staff = lender.set_up_lender(db, products, {p.currency: FUNDING_MINOR for p in products})
        today = business_date(staff.servicing)
        made = templates(products, today, min(template_count, size), seed)
        rng = random.Random(seed + 1)
        totals: dict[str, dict[str, int]] = {}
        snapshot_bytes = 0
        for first in range(0, size, CHUNK):
            rows, snapshots = [], []
            for loan_id in range(first + 1, min(size, first + CHUNK) + 1):
                template = made[rng.randrange(len(made))]
                rows.append((loan_id, *template.row))
                snapshots.append((loan_id, template.snapshot_json))
                snapshot_bytes += len(template.snapshot_json)
                total = totals.setdefault(template.product.code, {})
                for role, value in template.positions.items():
                    total[role] = total.get(role, 0) + value
            with db.transaction() as conn:
                insert_rows(conn, "loans", LOAN_COLUMNS, rows)
                insert_rows(conn, "loan_snapshots", ("loan_id", "snapshot_json"), snapshots)
        if db.is_postgres:  # ids were given: the sequence follows them
            with db.engine.begin() as conn:
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('loans', 'id'), max(id)) FROM loans"
                )
        for product in products:
            postings = postings_for(product, totals.get(product.code, {}))
            if postings:
                ledger.book_entry(
                    db,
                    EntrySpec(
                        f"bench:opening:{product.code}",
                        postings,
                        description=f"Opening balances of the {product.code} book",
                    ),
                )
        if db.is_postgres:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        db.dispose()
    return {
        "seconds": time.perf_counter() - started,
        "templates": len(made),
        "snapshot_mib": snapshot_bytes / 2**20,
    }


# --- closing days, in a fresh process ---------------------------------------------------------


def _rss_mib() -> float:
    """This process's resident set now (Linux), MiB."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def move_loans(db: Any, share: float, day: int) -> None:
    """What a day of live servicing does to end of day's work: a `share` of the
    active loans gets a new event, so their snapshots are decoded again (their
    `last_seq` is stepped on; snapshot and positions stay as they were)."""
    if share <= 0:
        return
    per_mille = round(share * 1000)
    modulo = "%%" if db.is_postgres else "%"  # psycopg's placeholders start with %
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE loans SET last_seq = last_seq + 1 WHERE status = 'active' "
            f"AND (id * 7919 + {day}) {modulo} 1000 < {per_mille}"
        )


def close_days(
    url: str, days: int, engine: str, limit_gib: float = 0.0, moved: float = 0.0
) -> dict[str, Any]:
    """Close `days` business days at `url`; figures of this process. Before each,
    a `moved` share of the loans is moved (`move_loans`, not timed). With
    `limit_gib`, the process's address space is capped there, so a book too big
    for the machine fails with MemoryError instead of waking the OOM killer."""
    if limit_gib:
        cap = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    pl.DataFrame({"warm": [1]}).sum()  # load Polars before measuring the baseline
    db = open_database(url)
    try:
        before = _rss_mib()
        steps: dict[str, float] = {}
        per_day: list[float] = []
        loans = 0
        for day in range(days):
            move_loans(db, moved, day)
            started = time.perf_counter()
            close = eod.run_day(db, engine=engine)
            per_day.append(time.perf_counter() - started)
            loans = max(loans, close.loans_processed)
            for step, seconds in close.seconds.items():
                steps[step] = steps.get(step, 0.0) + seconds
        if engine == "spark":
            from lendcore.eod import spark

            spark.stop()
    finally:
        db.dispose()
    return {
        "seconds": sum(per_day),
        "per_day": per_day,
        "loans": loans,
        "steps": steps,
        "rss_before_mib": before,
        "peak_rss_mib": _peak_rss_mib(),
    }


def in_fresh_process(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# --- databases ----------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="lendcore-bench-eod-")
    try:
        yield f"sqlite:///{Path(directory) / 'eod.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def pg_database(base_url: str) -> Iterator[str]:
    schema = f"bench_eod_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def pg_server_version(base_url: str) -> str | None:
    try:
        with psycopg.connect(base_url, connect_timeout=PG_CONNECT_TIMEOUT_S) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else "unknown"


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with sqlite_database() as url:
            yield url
    else:
        with pg_database(pg_url) as url:
            yield url


def measure(
    backend: str, pg_url: str, size: int, days: int, args: argparse.Namespace, console: Console
) -> list[Figure]:
    """The first night of a new book (every snapshot decoded, the image
    written), then `days` nights as they run from then on."""
    label = "SQLite" if backend == "sqlite" else "PostgreSQL"
    extra: list[Figure] = []
    case = "1 day" if days == 1 else f"{days} days"
    with database(backend, pg_url) as url:
        with console.status(f"{label}: building a book of {size:,} loans..."):
            built = in_fresh_process(build_book, url, size, args.templates, args.seed)
        first: dict[str, Any] | None = None
        if args.engine == "local":
            with console.status(f"{label}: {size:,} loans, the first night (image built)..."):
                first_load = os.getloadavg()[0]
                first = in_fresh_process(close_days, url, 1, "local", args.memory_limit_gib)
        with console.status(f"{label}: {size:,} loans, closing {case}..."):
            load = os.getloadavg()[0]
            closed = in_fresh_process(
                close_days, url, days, args.engine, args.memory_limit_gib, args.moved
            )
    detail = (
        f"{built['templates']} templates, {built['snapshot_mib']:,.0f} MiB of snapshots; "
        f"{args.moved:.0%} of loans moved before each day; load {load:.1f} before"
    )
    if first is not None:
        first_figure = Figure(
            database=label,
            case="first night (image built)",
            loans=first["loans"],
            days=1,
            seconds=first["seconds"],
            loans_per_s=first["loans"] / first["seconds"] if first["seconds"] else 0.0,
            steps=first["steps"],
            rss_before_mib=first["rss_before_mib"],
            peak_rss_mib=first["peak_rss_mib"],
            build_seconds=built["seconds"],
            detail=f"every snapshot decoded, the image written; load {first_load:.1f} before",
        )
        extra.append(first_figure)
    if days > 1:
        per_day = closed["per_day"]
        detail += f"; per day min {min(per_day):.2f}s, max {max(per_day):.2f}s"
    return [
        *extra,
        Figure(
            database=label,
            case=f"{case} ({args.engine})",
            loans=closed["loans"],
            days=days,
            seconds=closed["seconds"],
            loans_per_s=closed["loans"] * days / closed["seconds"] if closed["seconds"] else 0.0,
            steps=closed["steps"],
            rss_before_mib=closed["rss_before_mib"],
            peak_rss_mib=closed["peak_rss_mib"],
            build_seconds=built["seconds"],
            detail=detail,
        ),
    ]


# --- output -----------------------------------------------------------------------------


def render(report: Report, console: Console) -> None:
    table = Table(title="lendcore end-of-day benchmark", title_justify="left")
    table.add_column("database")
    table.add_column("case")
    table.add_column("loans", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("loans/s", justify="right")
    for step in STEPS:
        table.add_column(f"{step} s", justify="right")
    table.add_column("RSS before MiB", justify="right")
    table.add_column("peak RSS MiB", justify="right")
    table.add_column("build s", justify="right")
    for f in report.figures:
        table.add_row(
            f.database,
            f.case,
            f"{f.loans:,}",
            f"{f.seconds:,.2f}",
            f"{f.loans_per_s:,.0f}",
            *[f"{f.steps[s]:,.2f}" if s in f.steps else "-" for s in STEPS],
            f"{f.rss_before_mib:,.0f}",
            f"{f.peak_rss_mib:,.0f}",
            f"{f.build_seconds:,.1f}",
        )
    console.print(table)
    for f in report.figures:
        console.print(f"{f.database}, {f.loans:,} loans, {f.case}: {f.detail}")
    env = report.environment
    console.print(
        f"Python {env['python']}, Polars {env['polars']}, SQLAlchemy {env['sqlalchemy']}, "
        f"psycopg {env['psycopg']}, SQLite {env['sqlite']}, "
        f"PostgreSQL {env['postgresql'] or '-'}, {env['cpu_count']} CPUs, {env['platform']}"
    )
    console.print(
        "wall s: the day(s) closed (run_day), book building excluded; loans/s: loans closed "
        "per second of wall time; steps summed over the days; peak RSS: high-water mark of "
        "the process that closed the day(s), interpreter and imports included"
    )
    for note in report.notes:
        console.print(f"note: {note}")


def parse_sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=[10_000, 100_000], help="books, comma-separated"
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="sqlite, postgresql or both"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database URL")
    parser.add_argument("--days", type=int, default=0, help="also close this many consecutive days")
    parser.add_argument("--days-size", type=int, default=100_000, help="the book for --days")
    parser.add_argument(
        "--moved",
        type=float,
        default=0.03,
        help="share of the loans a day of live servicing moves (decoded again), default 0.03",
    )
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--templates", type=int, default=300, help="distinct template loans")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--memory-limit-gib",
        type=float,
        default=0.0,
        help="cap the address space of the process closing the day (0: no cap)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 loans, 3 days")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.days, args.days_size, args.templates = [2_000], 3, 2_000, 100
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated run still drops its schema and temporary files (finally blocks run).
    signal.signal(signal.SIGTERM, lambda _signo, _frame: sys.exit(128 + signal.SIGTERM))
    progress = Console(stderr=True)
    out = Console() if sys.stdout.isatty() else Console(width=TABLE_WIDTH_PIPED)
    report = Report(config={k: v for k, v in vars(args).items() if k != "json"})
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    pg_version = None
    if "postgresql" in backends:
        pg_version = pg_server_version(args.pg_url)
        if pg_version is None:
            backends.remove("postgresql")
            report.notes.append(f"PostgreSQL skipped: no answer at {args.pg_url}")
    report.environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "polars": pl.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
    }
    started = time.perf_counter()
    cases = [(size, 1) for size in args.sizes]
    if args.days > 1:
        cases.append((args.days_size, args.days))
    for backend in backends:
        for size, days in cases:
            try:
                report.figures.extend(measure(backend, args.pg_url, size, days, args, progress))
            except Exception as error:  # report what failed (memory, say) and go on
                report.notes.append(
                    f"{backend}, {size:,} loans, {days} day(s): failed: "
                    f"{type(error).__name__}: {error}"
                )
    report.config["wall_seconds"] = round(time.perf_counter() - started, 1)
    cpus = os.cpu_count() or 1
    if os.getloadavg()[0] > cpus:
        report.notes.append(
            f"the machine was busy (1-min load average {os.getloadavg()[0]:.1f} on {cpus} "
            "CPUs): the figures are pessimistic; rerun on a quiet machine"
        )
    if args.json:
        document = {
            "benchmark": "eod",
            "figures": [f.to_dict() for f in report.figures],
            "notes": report.notes,
            "environment": report.environment,
            "config": report.config,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        render(report, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
