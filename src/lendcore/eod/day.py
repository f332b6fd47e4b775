"""One day's close of a set of loans: the kernel, then the change to post.

`close_loans` is pure and partition-safe: every output row depends only on its
own loan's input row (the loan's snapshot, what its ledger accounts hold, its
risk facts) and on the book-wide settings passed in. The local engine runs it
on the whole book at once; the Spark engine runs it on each partition
(`lendcore.eod.spark`); both give the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from lendcore.eod.kernel import ROLES, ProductTable, close_day, frames_from_json

_POSTED = pl.Struct({role: pl.Int64 for role in ROLES})
DELTA = "delta_"


@dataclass(frozen=True, slots=True)
class DaySettings:
    """Everything book-wide a day's close needs besides the loans."""

    as_of: date
    products: ProductTable


def close_loans(rows: pl.DataFrame, settings: DaySettings) -> pl.DataFrame:
    """Each loan at the end of the day, with its change per ledger role
    (`delta_<role>`) since its positions were last posted.

    `rows`: `loan_id`, `product_code`, `product_version`, `snapshot_json`,
    `positions_json` (what the ledger holds for the loan).
    """
    loans, dues = frames_from_json(
        rows.select("loan_id", "product_code", "product_version", "snapshot_json")
    )
    state = close_day(loans, dues, settings.products, settings.as_of)
    posted = rows.select(
        "loan_id", pl.col("positions_json").str.json_decode(_POSTED).alias("p")
    ).unnest("p")
    return state.loans.join(posted, on="loan_id", suffix="_posted").select(
        *state.loans.columns,
        *[(pl.col(r) - pl.col(f"{r}_posted")).alias(f"{DELTA}{r}") for r in ROLES],
    )
