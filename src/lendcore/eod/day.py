"""One day's close of a set of loans: the kernel, then the change to post.

`close_loans` is pure and partition-safe: every output row depends only on its
own loan's input row (the loan's snapshot, what its ledger accounts hold, its
risk facts) and on the book-wide settings passed in. The local engine runs it
on the whole book at once; the Spark engine runs it on each partition
(`lendcore.eod.spark`); both give the same frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

import polars as pl

from lendcore.eod.kernel import ROLES, BookState, ProductTable, close_day, frames_from_json
from lendcore.ifrs9.config import Ifrs9Config
from lendcore.ifrs9.ecl import expected_credit_loss
from lendcore.ifrs9.staging import assign_stages, pd_now
from lendcore.ifrs9.transitions import TransitionMatrix

_POSTED = pl.Struct({role: pl.Int64 for role in ROLES})
DELTA = "delta_"


@dataclass(frozen=True, slots=True)
class DaySettings:
    """Everything book-wide a day's close needs besides the loans."""

    as_of: date
    products: ProductTable
    ifrs9: Ifrs9Config
    # The delinquency transition matrix of the book, when PD comes from it.
    matrix: TransitionMatrix | None = None


def close_loans(
    rows: pl.DataFrame, settings: DaySettings, seconds: dict[str, float] | None = None
) -> pl.DataFrame:
    """Each loan at the end of the day, with its change per ledger role
    (`delta_<role>`) since its positions were last posted.

    `rows`: `loan_id`, `product_code`, `product_version`, `snapshot_json`,
    `positions_json` (what the ledger holds for the loan), and the IFRS 9 facts:
    `pd_origination` (text), `risk_band`, `forborne`, `prev_stage`,
    `qualifying_stage`, `qualifying_since` (yesterday's staging).
    Loans still open get their stage and ECL (`stage`, `qualifying_stage`,
    `qualifying_since`, `pd_now`, `exposure_minor`, `ecl_minor`); a loan the
    day closed has none (its allowance is released).
    """
    started = time.perf_counter()
    loans, dues = frames_from_json(
        rows.select("loan_id", "product_code", "product_version", "snapshot_json")
    )
    return close_frames(rows, loans, dues, settings, seconds, started=started)


def close_frames(
    rows: pl.DataFrame,
    loans: pl.DataFrame,
    dues: pl.DataFrame,
    settings: DaySettings,
    seconds: dict[str, float] | None = None,
    *,
    started: float | None = None,
) -> pl.DataFrame:
    """`close_loans` with the snapshots already decoded (`loans`, `dues`: the
    kernel's frames, as `frames_from_json` gives them); `rows` as there, less
    `snapshot_json`."""
    started = time.perf_counter() if started is None else started
    state = close_day(loans, dues, settings.products, settings.as_of)
    posted = rows.select(
        "loan_id", pl.col("positions_json").str.json_decode(_POSTED).alias("p")
    ).unnest("p")
    closed = state.loans.join(posted, on="loan_id", suffix="_posted").select(
        *state.loans.columns,
        *[(pl.col(r) - pl.col(f"{r}_posted")).alias(f"{DELTA}{r}") for r in ROLES],
    )
    serviced = time.perf_counter()
    provisions = provision(rows, state, settings)
    if seconds is not None:
        seconds["servicing"] = serviced - started
        seconds["provisioning"] = time.perf_counter() - serviced
    return closed.join(provisions, on="loan_id", how="left")


PROVISION_SCHEMA: dict[str, type[pl.DataType]] = {
    "loan_id": pl.Int64,
    "stage": pl.Int8,
    "qualifying_stage": pl.Int8,
    "qualifying_since": pl.Date,
    "pd_now": pl.Float64,
    "exposure_minor": pl.Int64,
    "ecl_minor": pl.Int64,
}


def provision(rows: pl.DataFrame, state: BookState, settings: DaySettings) -> pl.DataFrame:
    """IFRS 9 stage and expected credit loss of each loan still open tonight."""
    as_of, config = settings.as_of, settings.ifrs9
    open_loans = state.loans.filter(pl.col("status") == "active")
    if open_loans.is_empty():
        return pl.DataFrame(schema=PROVISION_SCHEMA)
    facts = rows.select(
        "loan_id",
        pl.col("pd_origination").cast(pl.Float64),
        pl.col("risk_band").alias("band"),
        "forborne",
        pl.col("prev_stage").cast(pl.Int8),
        pl.col("qualifying_stage").cast(pl.Int8),
        pl.col("qualifying_since").cast(pl.Date),
    )
    rates = state.contracts.select(
        "loan_id",
        # The effective annual rate of the nominal rate compounded monthly.
        ((1 + pl.col("annual_rate").cast(pl.Float64) / 12) ** 12 - 1).alias("annual_eir"),
    )
    book = (
        open_loans.select(
            "loan_id",
            "product_code",
            pl.col("days_past_due").alias("dpd"),
            (pl.col("principal") + pl.col("interest_receivable") + pl.col("fee_receivable")).alias(
                "exposure_minor"
            ),
            pl.lit(False).alias("credit_impaired"),
        )
        .join(facts, on="loan_id", how="left")
        .join(rates, on="loan_id", how="left")
    )
    book = book.with_columns(pd_now(book, config, settings.matrix).alias("pd_now"))
    staged = assign_stages(
        book.select(
            "loan_id",
            "dpd",
            "pd_origination",
            "pd_now",
            "forborne",
            "credit_impaired",
            "prev_stage",
            "qualifying_stage",
            "qualifying_since",
            "band",
        ),
        config,
        as_of,
    )
    book = book.drop("qualifying_stage", "qualifying_since").join(
        staged.select("loan_id", "stage", "qualifying_stage", "qualifying_since"), on="loan_id"
    )
    cashflows = state.dues.filter(pl.col("due_date") > as_of).select(
        "loan_id",
        "due_date",
        pl.max_horizontal(pl.col("u_pri"), pl.lit(0)).alias("principal_minor"),
    )
    cashflows = cashflows.join(book.select("loan_id"), on="loan_id", how="semi")
    ecl = expected_credit_loss(
        book.select("loan_id", "product_code", "stage", "pd_now", "annual_eir", "exposure_minor"),
        cashflows,
        config,
        as_of,
    )
    return book.join(ecl, on="loan_id").select(list(PROVISION_SCHEMA))
