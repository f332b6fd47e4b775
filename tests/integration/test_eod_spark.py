"""End of day on Apache Spark gives exactly what the local run gives.

The 10,000-loan book is built as a frame, not through commands: a few hundred
loans of every product variant the kernel's unit tests use (suspense, percent
late fees, each day count, a custom waterfall) are lived through random events
with the per-loan rule, their snapshots taken at several different days, and
replicated under new loan ids with varied risk facts and yesterday's IFRS 9
stage. Then the same day is closed by `services.eod.compute_day` on the local
engine and on Spark (partitioned by loan, local mode), and the two frames must
be equal, exactly. End to end, a small book on a real database closed by
`run_day(engine="spark")` must leave the database as the local run leaves it.

One Spark session per module (it takes ~15-20 s to start); stopped at the end.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy.engine import make_url

from lendcore.eod.kernel import ProductTable
from lendcore.services import eod
from lendcore.services.eod import SNAPSHOT_BOOK_SCHEMA
from lendcore.servicing.replay import LoanStatus, resume
from lendcore.store.database import open_database
from tests.integration.db_compare import assert_same_state, read_state, verify_report
from tests.integration.eod_helpers import live_day, open_book
from tests.unit.test_eod_kernel import PRODUCTS, START, _random_book

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java"),
]

BOOK_SIZE = 10_000
TEMPLATES = 300
# Days after START at which templates' snapshots are taken (events after it dropped).
CUTS = (20, 45, 80, 130, 200)
AS_OF = START + timedelta(days=210)


@pytest.fixture(scope="module")
def spark() -> Iterator[None]:
    pytest.importorskip("pyspark")
    from lendcore.eod import spark as engine

    started = time.perf_counter()
    engine.session()
    print(f"\nSpark session started in {time.perf_counter() - started:.1f}s")
    try:
        yield
    finally:
        engine.stop()


def _snapshots() -> list[tuple[str, str, str]]:
    """(product code, snapshot JSON, posted positions JSON) of every template
    loan still active after its events up to each cut day."""
    found = []
    for contract, events in _random_book(41, TEMPLATES):
        for cut in CUTS:
            kept = [e for e in events if e.value_date <= START + timedelta(days=cut)]
            last = max(e.value_date for e in kept)
            state, snapshot = resume(contract, kept, last, None)
            if state.status is not LoanStatus.ACTIVE or snapshot is None:
                continue
            found.append(
                (
                    contract.product.code,
                    json.dumps(snapshot),
                    json.dumps(state.positions, sort_keys=True),
                )
            )
    return found


def _book_frame(size: int, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    templates = _snapshots()
    rows = []
    for loan_id in range(1, size + 1):
        code, snapshot, positions = rng.choice(templates)
        stage = rng.choice([None, 1, 1, 1, 2, 3])
        # A loan curing towards a better stage, on probation since some day.
        qualifying = (
            rng.choice([None, *range(1, stage)]) if stage is not None and stage > 1 else None
        )
        rows.append(
            {
                "loan_id": loan_id * 7 + rng.randint(0, 6),  # gaps, as a real book has
                "product_code": code,
                "product_version": 1,
                "currency": PRODUCTS_BY_CODE[code].currency,
                "last_seq": 1,
                "dpd_before": 0,
                "positions_json": positions,
                "snapshot_json": snapshot,
                "pd_origination": str(round(rng.uniform(0.002, 0.2), 4)),
                "risk_band": rng.choice("ABC"),
                "forborne": rng.random() < 0.05,
                "prev_stage": stage,
                "qualifying_stage": qualifying,
                "qualifying_since": None
                if qualifying is None
                else AS_OF - timedelta(days=rng.randint(0, 60)),
            }
        )
    return pl.DataFrame(rows, schema=SNAPSHOT_BOOK_SCHEMA).sort("loan_id")


PRODUCTS_BY_CODE = {p.code: p for p in PRODUCTS.values()}


def test_spark_and_local_close_a_10000_loan_book_identically(spark: None) -> None:
    started = time.perf_counter()
    rows = _book_frame(BOOK_SIZE, seed=42)
    print(f"book of {BOOK_SIZE:,} loans built in {time.perf_counter() - started:.2f}s")
    assert rows["loan_id"].n_unique() == BOOK_SIZE
    keys = {(code, 1): p for code, p in PRODUCTS_BY_CODE.items()}
    book = eod.Book(
        rows=rows,
        table=ProductTable.of((code, version, p) for (code, version), p in keys.items()),
        products=keys,
        currencies={key: p.currency for key, p in keys.items()},
        ifrs9=eod.ifrs9_settings(),
        matrix=None,
        pd_source="scorecard",
    )
    started = time.perf_counter()
    local = eod.compute_day(book, AS_OF, "local")
    on_local = time.perf_counter() - started
    started = time.perf_counter()
    on_spark = eod.compute_day(book, AS_OF, "spark")
    spark_took = time.perf_counter() - started
    print(f"10,000 loans: local {on_local:.2f}s, Spark {spark_took:.2f}s")
    assert local.height == BOOK_SIZE
    assert_frame_equal(local, on_spark, check_exact=True)
    # The book is not trivial: every product, arrears, penalties and every stage.
    assert local["product_code"].n_unique() == len(PRODUCTS_BY_CODE)
    assert local.filter(pl.col("days_past_due") > 30).height > 100
    assert local.filter(pl.col("delta_penalty_income") > 0).height > 100
    stages = set(local["stage"].drop_nulls().to_list())
    assert stages == {1, 2, 3}, stages


def test_a_book_closed_on_spark_leaves_the_database_as_the_local_run(
    spark: None, sqlite_url: str, tmp_path: Path
) -> None:
    db = open_database(sqlite_url)
    try:
        book = open_book(db, 40, seed=51)
        rng = random.Random(52)
        for _ in range(3):
            live_day(book, rng)
            eod.run_day(book.servicing)
    finally:
        db.dispose()
    source = Path(make_url(sqlite_url).database or "")
    closed: dict[str, date] = {}
    states = {}
    for engine in ("local", "spark"):
        copy = tmp_path / f"{engine}.db"
        shutil.copyfile(source, copy)
        url = f"sqlite:///{copy}"
        db = open_database(url)
        try:
            for _ in range(3):
                closed[engine] = eod.run_day(db, engine=engine).business_date
        finally:
            db.dispose()
        states[engine] = read_state(url, same={"spark": "local"})
        assert verify_report(url) == verify_report(f"sqlite:///{tmp_path / 'local.db'}")
    assert closed["spark"] == closed["local"]
    assert_same_state(states["local"], states["spark"], "local versus Spark:")
