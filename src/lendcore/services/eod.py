"""End of day: close the business date for the whole book, then advance it.

A day's close reads the book without locking it (each loan's snapshot after its
last event and the positions its ledger accounts hold), moves it forward to the
end of the day with the columnar kernel (`lendcore.eod.kernel`, the servicing
rule as Polars columns), stages and provisions it (IFRS 9), and then, in one
short write transaction, books the day's change per product and account, keeps
for each entry the loans behind it (`gl drill`), updates the loans and
advances the business date. The date is closed whole or not at all: killed at
any point, the next run starts again from the same committed state and gives
the same result.

Live operations keep working meanwhile. Nothing is locked while the book is
read and computed; a repayment taken then is dated by the still-open business
date and books its loan's state up to the end of that date itself. The write
transaction leaves out every loan whose events changed after it was read
(`last_seq`), so nothing is booked twice. On PostgreSQL only the loans being
written are locked, for the length of the write; on SQLite the write is one
short exclusive transaction, as every write there is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import make_url

from lendcore.eod.day import DELTA, DaySettings, close_frames, close_loans
from lendcore.eod.kernel import ROLES, ProductTable
from lendcore.errors import Conflict, InvalidInput, NotFound
from lendcore.ifrs9.config import Ifrs9Config, PdSource, load_config
from lendcore.ifrs9.report import classify_movements
from lendcore.ifrs9.transitions import TransitionMatrix, delinquency_state, estimate_matrix
from lendcore.ledger.model import EntrySpec, PostingSpec, Side
from lendcore.products.model import Product
from lendcore.services import ledger
from lendcore.services.business_date import move_business_date
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, note_result, query
from lendcore.services.eod_image import BookImage, EodSnapshotMissing, decode, encode
from lendcore.services.events import emit
from lendcore.services.loans import postings_for
from lendcore.services.products import product_on
from lendcore.store.bulk import placeholders
from lendcore.store.database import Database, normalise_url
from lendcore.store.frames import insert_frame, read_frame, update_frame, upsert_frame
from lendcore.store.schema import (
    delinquency_history,
    eod_runs,
    gl_drill,
    journal_entries,
    loan_provisions,
    postings,
    products,
    provision_movements,
    provision_stage_mix,
)

RUN = "eod.run"
CLOSE_SLICE = 100_000
STEPS = ("read", "servicing", "provisioning", "image", "post", "advance")


class EodRunUnderWay(Conflict):
    code = "EOD_RUN_UNDER_WAY"


class EodDateInPast(InvalidInput):
    code = "EOD_DATE_IN_PAST"


class EodProductMissing(Conflict):
    code = "EOD_PRODUCT_MISSING"


class DrillNotFound(NotFound):
    code = "GL_DRILL_NOT_FOUND"


# --- the run lock: held by the process, released by the OS if it dies -------------------


@contextlib.contextmanager
def run_lock(db: Database) -> Iterator[None]:
    """One end-of-day run at a time per database. The lock belongs to the
    running process (a file lock on SQLite, a session advisory lock on
    PostgreSQL), so a killed run leaves nothing to clean up."""
    if db.is_postgres:
        with db.engine.connect() as conn:
            # Keyed by schema: each lendcore schema in one database has its own book.
            got = conn.exec_driver_sql(
                "SELECT pg_try_advisory_lock(7461626, hashtext(current_schema()))"
            ).scalar()
            conn.commit()
            if not got:
                raise EodRunUnderWay("an end-of-day run is under way on this database")
            try:
                yield
            finally:
                conn.exec_driver_sql(
                    "SELECT pg_advisory_unlock(7461626, hashtext(current_schema()))"
                )
                conn.commit()
        return
    path = _lock_path(db)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise EodRunUnderWay("an end-of-day run is under way on this database") from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _lock_path(db: Database) -> str:
    database = make_url(normalise_url(db.url)).database or ""
    if not database or database == ":memory:":
        return str(Path.cwd() / ".lendcore-memory-eod.lock")
    return f"{database}.eod.lock"


def run_under_way(db: Database) -> bool:
    """Whether a run holds the lock, looked at without taking it (taking it,
    even for an instant, could turn a run starting then away)."""
    if db.is_postgres:
        with db.engine.connect() as conn:
            return bool(
                conn.exec_driver_sql(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objsubid = 2 AND classid = 7461626 "
                    "AND objid = (hashtext(current_schema())::bigint & 4294967295)::oid "
                    "AND granted)"
                ).scalar()
            )
    try:
        text = Path(_lock_path(db)).read_text().strip()
    except FileNotFoundError:
        return False
    if not text.isdigit():
        return False  # no run, or one that ended
    try:
        os.kill(int(text), 0)  # a run killed outright leaves its pid behind
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- reading the book -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Book:
    """The active book as read at the start of a day's close."""

    rows: pl.DataFrame  # loan_id, product key, last_seq, posted positions, risk facts
    table: ProductTable
    products: dict[tuple[str, int], Product]
    currencies: dict[tuple[str, int], str]
    ifrs9: Ifrs9Config
    # The book's own delinquency transition matrix, when PD comes from it.
    matrix: TransitionMatrix | None
    pd_source: str


_BOOK_SQL = (
    "SELECT l.id AS loan_id, l.product_code, l.product_version, l.currency, l.last_seq, "
    "l.days_past_due AS dpd_before, l.positions_json, l.pd_origination, l.risk_band, "
    "l.forborne, p.stage AS prev_stage, p.qualifying_stage, p.qualifying_since{snapshot}, "
    "s.loan_id IS NULL AS no_snapshot "
    "FROM loans l LEFT JOIN loan_provisions p ON p.loan_id = l.id "
    "LEFT JOIN loan_snapshots s ON s.loan_id = l.id "
    "WHERE l.status = 'active' ORDER BY l.id"
)
BOOK_SCHEMA: dict[str, Any] = {
    "loan_id": pl.Int64,
    "product_code": pl.String,
    "product_version": pl.Int32,
    "currency": pl.String,
    "last_seq": pl.Int64,
    "dpd_before": pl.Int32,
    "positions_json": pl.String,
    "pd_origination": pl.String,
    "risk_band": pl.String,
    "forborne": pl.Boolean,
    "prev_stage": pl.Int8,
    "qualifying_stage": pl.Int8,
    "qualifying_since": pl.Date,
}
# With the snapshots, as the Spark engine reads the book.
SNAPSHOT_BOOK_SCHEMA: dict[str, Any] = {**BOOK_SCHEMA, "snapshot_json": pl.String}


def read_book(conn: Connection, *, snapshots: bool = False) -> Book:
    """The active book in loan order: each loan's keys, posted positions and
    risk facts, and with `snapshots` its snapshot JSON too (the local engine
    takes the decoded snapshots from the book's image instead)."""
    schema = SNAPSHOT_BOOK_SCHEMA if snapshots else BOOK_SCHEMA
    schema = {**schema, "no_snapshot": pl.Boolean}
    rows = read_frame(
        conn,
        _BOOK_SQL.format(snapshot=", s.snapshot_json" if snapshots else ""),
        (),
        schema,
    )
    keys = rows.select("product_code", "product_version").unique().rows()
    known = {
        (r.code, r.version) for r in conn.execute(select(products.c.code, products.c.version)).all()
    }
    missing = sorted(set(keys) - known)
    if missing:
        code, version = missing[0]
        loan = rows.filter(
            (pl.col("product_code") == code) & (pl.col("product_version") == version)
        )["loan_id"][0]
        raise EodProductMissing(
            f"loan {loan} was booked on product {code} v{version}, which is missing: "
            "restore the product version before closing the day",
            loan_id=loan,
            product=code,
            version=version,
        )
    if rows["no_snapshot"].any():
        loan = rows.filter(pl.col("no_snapshot"))["loan_id"][0]
        raise EodSnapshotMissing(f"active loan {loan} has no servicing snapshot", loan_id=int(loan))
    rows = rows.drop("no_snapshot")
    found = {key: product_on(conn, key[0], key[1]).product for key in sorted(keys)}
    config, matrix, source = _pd_source(conn, ifrs9_settings())
    return Book(
        rows=rows,
        table=ProductTable.of((code, version, p) for (code, version), p in found.items()),
        products=found,
        currencies={key: p.currency for key, p in found.items()},
        ifrs9=config,
        matrix=matrix,
        pd_source=source,
    )


def _pd_source(
    conn: Connection, config: Ifrs9Config
) -> tuple[Ifrs9Config, TransitionMatrix | None, str]:
    """The settings as the day will apply them. With PD from transitions, the
    matrix is estimated on the book's month-end history; while that history is
    too thin to fill every delinquency state's row, the scorecard PD stands in
    (a state never seen to move would otherwise get PD 0)."""
    if config.pd.source is not PdSource.TRANSITION:
        return config, None, config.pd.source.value
    history = pl.DataFrame(
        list(conn.execute(select(delinquency_history))),
        schema={"month": pl.Date, "loan_id": pl.Int64, "state": pl.String},
        orient="row",
    )
    matrix = estimate_matrix(history)
    if matrix.fallback_states:
        scorecard = config.model_copy(
            update={"pd": config.pd.model_copy(update={"source": PdSource.SCORECARD})}
        )
        return scorecard, None, "scorecard (transition history too thin)"
    return config, matrix, "transition"


# --- the day's close, computed -----------------------------------------------------------------


def compute_day(
    book: Book,
    as_of: date,
    engine: str,
    seconds: dict[str, float] | None = None,
    image: tuple[Connection, BookImage] | None = None,
) -> pl.DataFrame:
    """Every active loan at the end of `as_of` and its change to post, on the
    chosen engine (the same function either way). The snapshots come from the
    book's rows (`read_book(..., snapshots=True)`) or, on the local engine,
    from the book's `image`, read on its connection."""
    settings = DaySettings(as_of=as_of, products=book.table, ifrs9=book.ifrs9, matrix=book.matrix)
    if image is not None and engine == "local":
        return _close_from_image(book, settings, image, seconds)
    rows = book.rows.drop("currency", "last_seq", "dpd_before")
    if engine == "spark":
        from lendcore.eod.spark import run_partitioned

        schema = close_loans(rows.head(0), settings).to_arrow().schema
        return run_partitioned(rows, functools.partial(close_loans, settings=settings), schema)
    # Loan by loan independent, so closed in slices: memory follows the slice,
    # not the book.
    parts: list[pl.DataFrame] = []
    for chunk in rows.iter_slices(CLOSE_SLICE):
        timing: dict[str, float] = {}
        parts.append(close_loans(chunk, settings, timing))
        if seconds is not None:
            for step, spent in timing.items():
                seconds[step] = seconds.get(step, 0.0) + spent
    if not parts:
        return close_loans(rows, settings, seconds)
    return pl.concat(parts, how="vertical_relaxed")


def _close_from_image(
    book: Book,
    settings: DaySettings,
    image: tuple[Connection, BookImage],
    seconds: dict[str, float] | None,
) -> pl.DataFrame:
    conn, frames = image
    timing: dict[str, float] = {}
    parts: list[pl.DataFrame] = []
    for chunk in book.rows.iter_slices(CLOSE_SLICE):
        started = time.perf_counter()
        loans_, dues = frames.frames(conn, chunk)
        read = time.perf_counter()
        timing["image"] = timing.get("image", 0.0) + read - started
        rows = chunk.drop("currency", "last_seq", "dpd_before")
        parts.append(close_frames(rows, loans_, dues, settings, timing, started=read))
        if seconds is not None:
            for step, spent in timing.items():
                seconds[step] = seconds.get(step, 0.0) + spent
        timing.clear()
    if not parts:
        empty = book.rows.drop("currency", "last_seq", "dpd_before")
        return close_frames(empty, *frames.frames(conn, book.rows), settings)
    return pl.concat(parts, how="vertical_relaxed")


def ifrs9_settings() -> Ifrs9Config:
    """The IFRS 9 settings: the file named by $LENDCORE_IFRS9_CONFIG, else the
    packaged defaults (lendcore/ifrs9/default.yaml)."""
    path = os.environ.get("LENDCORE_IFRS9_CONFIG")
    return load_config(Path(path) if path else None)


# --- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class DayClose:
    """What one day's close did: the run summary."""

    business_date: date
    engine: str
    loans_processed: int = 0
    loans_changed: int = 0
    loans_left_to_live_operations: int = 0
    # Snapshots decoded tonight; the rest came from the book's image.
    snapshots_decoded: int = 0
    interest_accrued_minor: dict[str, int] = field(default_factory=dict)  # per currency
    penalty_minor: dict[str, int] = field(default_factory=dict)
    fees_minor: dict[str, int] = field(default_factory=dict)
    new_arrears: int = 0
    cures: int = 0
    closed_by_time: int = 0
    stage_moves: int = 0
    ecl_change_minor: dict[str, int] = field(default_factory=dict)
    pd_source: str = ""
    entries: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def doc(self) -> dict[str, Any]:
        return {
            "business_date": self.business_date.isoformat(),
            "engine": self.engine,
            "loans_processed": self.loans_processed,
            "loans_changed": self.loans_changed,
            "loans_left_to_live_operations": self.loans_left_to_live_operations,
            "snapshots_decoded": self.snapshots_decoded,
            "interest_accrued_minor": self.interest_accrued_minor,
            "penalty_minor": self.penalty_minor,
            "fees_minor": self.fees_minor,
            "new_arrears": self.new_arrears,
            "cures": self.cures,
            "closed_by_time": self.closed_by_time,
            "stage_moves": self.stage_moves,
            "ecl_change_minor": self.ecl_change_minor,
            "pd_source": self.pd_source,
            "entries": self.entries,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


Progress = Callable[[str], None]


def _no_progress(_step: str) -> None:
    return None


@command(RUN)
def run_day(
    db: Database,
    *,
    engine: str = "local",
    progress: Progress | None = None,
) -> DayClose:
    """Close today's business date for the whole book and advance to tomorrow."""
    tick = progress or _no_progress
    if engine not in ("local", "spark"):
        raise InvalidInput(f"unknown engine {engine!r}: expected local or spark", engine=engine)
    with run_lock(db):
        started_at = utc_timestamp()
        clock = time.perf_counter()
        seconds: dict[str, float] = {}

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[step] = seconds.get(step, 0.0) + now - clock
            clock = now
            tick(step)

        parts: dict[str, float] = {}
        with db.reading() as conn:
            today = current_business_date(conn)
            book = read_book(conn, snapshots=engine == "spark")
            lap("read")
            # The local engine decodes only the snapshots its image lacks,
            # read in the same snapshot of the database as the book.
            image = BookImage.open(conn) if engine == "local" else None
            closed = compute_day(
                book, today, engine, parts, image=None if image is None else (conn, image)
            )
        # The snapshots and positions have served: free them before the write.
        book = dataclasses.replace(
            book, rows=book.rows.drop("snapshot_json", "positions_json", strict=False)
        )
        lap("servicing")
        if parts:  # the local engine times its steps; Spark's run as one
            seconds["servicing"] -= parts["provisioning"] + parts.get("image", 0.0)
            seconds["provisioning"] = parts["provisioning"]
            seconds["read"] += parts.get("image", 0.0)
        if image is not None and image.changed:
            with db.transaction() as conn:
                image.save(conn, today)
        lap("image")
        close = DayClose(
            business_date=today,
            engine=engine,
            seconds=seconds,
            pd_source=book.pd_source,
            snapshots_decoded=book.rows.height if image is None else image.decoded,
        )
        with db.transaction() as conn:
            if current_business_date(conn) != today:
                raise EodRunUnderWay(
                    f"the business date moved from {today} while the day was being closed"
                )
            _post(conn, book, closed, today, close)
            lap("post")
            move_business_date(conn, today + timedelta(days=1))
            lap("advance")
            conn.execute(
                insert(eod_runs).values(
                    business_date=today,
                    engine=engine,
                    actor=db.actor.label,
                    started_at=started_at,
                    finished_at=utc_timestamp(),
                    summary_json=json.dumps(close.doc(), sort_keys=True),
                )
            )
            emit(conn, "eod.closed", "eod", today.isoformat(), close.doc())
            note_result(business_date=today, entries=close.entries)
        return close


def _post(
    conn: Connection,
    book: Book,
    closed: pl.DataFrame,
    today: date,
    close: DayClose,
) -> None:
    # A loan a live operation touched since it was read has already been
    # brought to today by it: it is left out of tonight's postings.
    fresh = _save_loans(conn, book, closed, today)
    loans_now = closed.join(fresh, on="loan_id", how="semi")
    deltas = loans_now.select("loan_id", *[pl.col(f"{DELTA}{r}").alias(r) for r in ROLES])
    close.loans_processed = book.rows.height
    close.loans_left_to_live_operations = book.rows.height - loans_now.height
    before = book.rows.select("loan_id", "dpd_before")
    moved = loans_now.join(before, on="loan_id")
    close.new_arrears = moved.filter(
        (pl.col("dpd_before") == 0) & (pl.col("days_past_due") > 0)
    ).height
    close.cures = moved.filter((pl.col("dpd_before") > 0) & (pl.col("days_past_due") == 0)).height
    close.closed_by_time = loans_now.filter(pl.col("status") == "closed").height
    changed = deltas.filter(pl.any_horizontal(pl.col(r) != 0 for r in ROLES))
    close.loans_changed = changed.height
    keyed = changed.join(
        book.rows.select("loan_id", "product_code", "product_version"), on="loan_id"
    )
    per_product = keyed.group_by("product_code", "product_version").agg(
        pl.col(r).sum() for r in ROLES
    )
    for row in per_product.sort("product_code", "product_version").iter_rows(named=True):
        key = (row["product_code"], row["product_version"])
        product = book.products[key]
        totals = {r: int(row[r]) for r in ROLES if row[r]}
        currency = book.currencies[key]
        for role, bucket in (
            ("interest_income", close.interest_accrued_minor),
            ("penalty_income", close.penalty_minor),
            ("fee_income", close.fees_minor),
        ):
            bucket[currency] = bucket.get(currency, 0) + totals.get(role, 0)
        postings = postings_for(product, totals)
        if not postings:
            continue
        spec = EntrySpec(
            idempotency_key=f"eod:{today.isoformat()}:{key[0]}:v{key[1]}",
            postings=postings,
            description=f"End of day {today.isoformat()}: accrual, dues, fees and "
            f"penalties of {key[0]} v{key[1]}",
            metadata={"kind": "eod", "product": key[0], "product_version": key[1]},
        )
        entry_id = ledger.book_entry_on(conn, spec).id
        close.entries.append(entry_id)
        _record_drill(
            conn,
            entry_id,
            keyed.filter(
                (pl.col("product_code") == key[0]) & (pl.col("product_version") == key[1])
            ).select("loan_id", *ROLES),
        )
    _provide(conn, book, loans_now, today, close)
    if (today + timedelta(days=1)).day == 1:
        _record_month_end(conn, today)


def _record_month_end(conn: Connection, today: date) -> None:
    """Each loan's delinquency state this month end: the open book by days past
    due, and every loan open at the last month end that has since closed
    (`closed`) or been written off (`default`)."""
    month = today.replace(day=1)
    last_month = (month - timedelta(days=1)).replace(day=1)
    mark = placeholders(conn, 1)
    frame = read_frame(
        conn,
        "SELECT id AS loan_id, status, days_past_due AS dpd FROM loans WHERE status = 'active' "
        "OR (status IN ('closed', 'written-off') AND id IN (SELECT loan_id FROM "
        f"delinquency_history WHERE month = {mark} AND state NOT IN ('default', 'closed')))",
        (last_month.isoformat() if mark == "?" else last_month,),
        {"loan_id": pl.Int64, "status": pl.String, "dpd": pl.Int32},
    ).select(
        pl.lit(month).alias("month"),
        "loan_id",
        pl.when(pl.col("status") == "closed")
        .then(pl.lit("closed"))
        .when(pl.col("status") == "written-off")
        .then(pl.lit("default"))
        .otherwise(delinquency_state(pl.col("dpd")))
        .alias("state"),
    )
    insert_frame(conn, "delinquency_history", frame)


# --- IFRS 9: the allowance moved to tonight's expected credit loss ----------------------------


class EodProductAccountsMissing(Conflict):
    code = "EOD_PRODUCT_ACCOUNTS_MISSING"


_PREV_SCHEMA: dict[str, Any] = {
    "loan_id": pl.Int64,
    "stage": pl.Int8,
    "ecl_minor": pl.Int64,
    "product_code": pl.String,
    "product_version": pl.Int32,
    "currency": pl.String,
    "status_now": pl.String,
}


def _provide(
    conn: Connection, book: Book, loans_now: pl.DataFrame, today: date, close: DayClose
) -> None:
    """Book the change in each product's loss allowance, keep each loan's stage
    and ECL, and record the day's movements and stage mix."""
    moved_by_live_operations = book.rows.join(loans_now, on="loan_id", how="anti")["loan_id"]
    prev = read_frame(
        conn,
        "SELECT p.loan_id, p.stage, p.ecl_minor, l.product_code, l.product_version, "
        "l.currency, l.status AS status_now FROM loan_provisions p JOIN loans l "
        "ON l.id = p.loan_id",
        (),
        _PREV_SCHEMA,
    ).filter(~pl.col("loan_id").is_in(moved_by_live_operations.implode()))
    keys = book.rows.select("loan_id", "currency")
    still_open = loans_now.filter(pl.col("status") == "active").join(keys, on="loan_id")
    exits = prev.join(still_open, on="loan_id", how="anti").select(
        "loan_id",
        "product_code",
        "product_version",
        "currency",
        pl.lit(None, dtype=pl.Int8).alias("stage"),
        pl.lit(0, dtype=pl.Int64).alias("ecl_minor"),
        pl.when(pl.col("status_now") == "written-off")
        .then(pl.lit("written_off"))
        .otherwise(pl.lit("repaid"))
        .alias("exit"),
    )
    new = pl.concat(
        [
            still_open.select(
                "loan_id",
                "product_code",
                "product_version",
                "currency",
                "stage",
                "ecl_minor",
                pl.lit(None, dtype=pl.String).alias("exit"),
            ),
            exits,
        ]
    )
    movements = classify_movements(
        prev.select("loan_id", "product_code", "stage", "ecl_minor"),
        new.select("loan_id", "product_code", "stage", "ecl_minor", "exit"),
    )
    change = (
        new.select("loan_id", "product_code", "product_version", "currency", "ecl_minor")
        .join(prev.select("loan_id", pl.col("ecl_minor").alias("before")), on="loan_id", how="left")
        .with_columns((pl.col("ecl_minor") - pl.col("before").fill_null(0)).alias("delta"))
        .filter(pl.col("delta") != 0)
    )
    for (code, version, currency), part in sorted(
        change.group_by("product_code", "product_version", "currency"), key=lambda g: g[0]
    ):
        total = int(part["delta"].sum())
        close.ecl_change_minor[currency] = close.ecl_change_minor.get(currency, 0) + total
        if total == 0:
            continue
        # A product whose every loan left the book today is not among the book's.
        product = book.products.get((code, version)) or product_on(conn, code, version).product
        entry_id = _book_allowance(conn, product, version, total, today)
        close.entries.append(entry_id)
        _record_drill(
            conn, entry_id, part.select("loan_id", pl.col("delta").alias("loss_allowance"))
        )
    close.stage_moves = (
        still_open.join(prev.select("loan_id", pl.col("stage").alias("was")), on="loan_id")
        .filter(pl.col("stage") != pl.col("was"))
        .height
    )
    _keep_provisions(conn, still_open, exits["loan_id"], today)
    if not movements.is_empty():
        conn.execute(
            insert(provision_movements),
            [
                {
                    "business_date": today,
                    "product_code": r["product_code"],
                    "kind": r["kind"],
                    "stage_from": r["stage_from"],
                    "stage_to": r["stage_to"],
                    "loans": r["loans"],
                    "amount_out_minor": r["amount_out_minor"],
                    "amount_in_minor": r["amount_in_minor"],
                    "amount_minor": r["amount_minor"],
                }
                for r in movements.iter_rows(named=True)
            ],
        )
    mix = still_open.group_by("product_code", "currency", "stage").agg(
        pl.len().alias("loans"),
        pl.col("exposure_minor").sum(),
        pl.col("ecl_minor").sum(),
    )
    if not mix.is_empty():
        conn.execute(
            insert(provision_stage_mix),
            [{"business_date": today, **r} for r in mix.sort("product_code", "stage").to_dicts()],
        )


def _book_allowance(
    conn: Connection, product: Product, version: int, change: int, today: date
) -> int:
    allowance, expense = product.accounting.loss_allowance, product.accounting.impairment_expense
    if allowance is None or expense is None:
        raise EodProductAccountsMissing(
            f"product {product.code} v{version} names no loss_allowance and impairment_expense "
            "accounts: its expected credit loss cannot be booked",
            product=product.code,
            version=version,
        )
    side_expense = Side.DEBIT if change > 0 else Side.CREDIT
    side_allowance = Side.CREDIT if change > 0 else Side.DEBIT
    spec = EntrySpec(
        idempotency_key=f"eod:{today.isoformat()}:{product.code}:v{version}:ecl",
        postings=(
            PostingSpec(expense, side_expense, abs(change), product.currency),
            PostingSpec(allowance, side_allowance, abs(change), product.currency),
        ),
        description=f"End of day {today.isoformat()}: change in expected credit loss of "
        f"{product.code} v{version}",
        metadata={"kind": "ecl", "product": product.code, "product_version": version},
    )
    return ledger.book_entry_on(conn, spec).id


def _keep_provisions(
    conn: Connection, still_open: pl.DataFrame, exits: pl.Series, today: date
) -> None:
    if not exits.is_empty():
        conn.execute(
            delete(loan_provisions).where(
                loan_provisions.c.loan_id.in_([int(i) for i in exits.to_list()])
            )
        )
    upsert_frame(
        conn,
        "loan_provisions",
        still_open.select(
            "loan_id",
            pl.lit(today).alias("business_date"),
            "stage",
            "qualifying_stage",
            "qualifying_since",
            pl.col("pd_now").round(6).cast(pl.String),
            "exposure_minor",
            "ecl_minor",
        ),
        key="loan_id",
    )


def _record_drill(conn: Connection, entry_id: int, parts: pl.DataFrame) -> None:
    """Each loan's part of a summarised entry (`loan_id` and a column per role),
    kept with the entry: the roles the entry moves, in loan order."""
    roles = [c for c in sorted(parts.columns) if c != "loan_id" and (parts[c] != 0).any()]
    frame = parts.select("loan_id", *roles).sort("loan_id")
    conn.execute(insert(gl_drill).values(entry_id=entry_id, loans=frame.height, body=encode(frame)))


def _save_loans(conn: Connection, book: Book, closed: pl.DataFrame, today: date) -> pl.DataFrame:
    """Write each loan's state at the end of the day, unless a live operation
    moved its events (`last_seq`) since the book was read; returns the loans
    written (`loan_id`)."""
    frame = closed.select(
        pl.col("loan_id").alias("id"),
        "status",
        pl.col("principal").alias("principal_outstanding_minor"),
        pl.col("overdue").alias("overdue_minor"),
        "days_past_due",
        pl.struct(sorted(ROLES)).struct.json_encode().alias("positions_json"),
        pl.lit(today).alias("state_as_of"),
    ).join(book.rows.select(pl.col("loan_id").alias("id"), "last_seq"), on="id")
    skipped = update_frame(
        conn, "loans", frame, key="id", guard="last_seq", condition="{t}.status = 'active'"
    )
    return closed.select("loan_id").filter(~pl.col("loan_id").is_in(skipped.implode()))


# --- reading runs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EodStatus:
    business_date: date
    last_run: dict[str, Any] | None
    under_way: bool


@query("eod.read")
def status(db: Database) -> EodStatus:
    with db.reading() as conn:
        today = current_business_date(conn)
        last = conn.execute(
            select(eod_runs).order_by(eod_runs.c.business_date.desc()).limit(1)
        ).first()
    return EodStatus(
        business_date=today,
        last_run=None
        if last is None
        else {
            "business_date": last.business_date.isoformat(),
            "engine": last.engine,
            "actor": last.actor,
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "summary": json.loads(last.summary_json),
        },
        under_way=run_under_way(db),
    )


def check_target(db: Database, to: date) -> list[date]:
    """The business dates `eod run --to` closes: today up to `to`, inclusive."""
    with db.reading() as conn:
        today = current_business_date(conn)
    if to < today:
        raise EodDateInPast(
            f"the business date is {today}; {to} has already been closed",
            to=to.isoformat(),
            business_date=today.isoformat(),
        )
    return [today + timedelta(days=i) for i in range((to - today).days + 1)]


@dataclass(frozen=True, slots=True)
class DrillLine:
    loan_id: int
    deltas: dict[str, int]


@query("gl.drill")
def drill(db: Database, entry_id: int) -> tuple[dict[str, Any], list[DrillLine]]:
    """The loans behind a summarised end-of-day entry, each with its part."""
    with db.reading() as conn:
        entry = conn.execute(
            select(journal_entries).where(journal_entries.c.id == entry_id)
        ).first()
        if entry is None:
            raise DrillNotFound(f"no journal entry {entry_id}", entry_id=entry_id)
        body = conn.execute(
            select(gl_drill.c.body).where(gl_drill.c.entry_id == entry_id)
        ).scalar_one_or_none()
        if body is None:
            raise DrillNotFound(
                f"journal entry {entry_id} is not a summarised end-of-day entry",
                entry_id=entry_id,
            )
        currency = conn.execute(
            select(postings.c.currency).where(postings.c.entry_id == entry_id).limit(1)
        ).scalar_one()
    parts = decode(body)
    roles = [c for c in parts.columns if c != "loan_id"]
    lines = [
        DrillLine(int(row[0]), {r: int(v) for r, v in zip(roles, row[1:], strict=True) if v})
        for row in parts.iter_rows()
    ]
    return {"id": entry.id, "description": entry.description, "currency": currency}, lines
