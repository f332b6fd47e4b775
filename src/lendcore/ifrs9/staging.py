"""IFRS 9 staging of the whole book, and the 12-month PD it rests on.

Raw stage (what the rules say today), with the thresholds of `config.sicr`:

- stage 3 when the loan is credit-impaired or more than `dpd_stage3` days past due;
- else stage 2 when more than `dpd_stage2` days past due, forborne, or its credit
  risk increased significantly (SICR);
- else stage 1.

SICR holds when both PD now / PD at origination >= `relative` and
PD now - PD at origination >= `absolute` (compared as
`pd_now >= relative * pd_orig` so a zero origination PD needs no division;
both with a tolerance of 1e-12 so that a decimal threshold met exactly is met
in binary floating point too). A loan with no PD at origination uses the PD
of its score band (`pd.band_pd_12m`, when the frame has a `band` column), else
`pd.default_pd_12m`: the same fallback the scorecard PD uses.

Stage (after cure and probation): a worse or equal raw stage applies at once
and ends any probation. A better raw stage starts (or continues) a probation:
`qualifying_since` is the first day of the unbroken run of days on which the
raw stage was better than the stage, `qualifying_stage` the worst raw stage of
that run (the best stage the loan has qualified for every day since). With
e = as_of - qualifying_since in days and the probations of `config.probation_days`:

- stage 2 to 1 when e >= stage2_to_1;
- stage 3 to 2 when e >= stage3_to_2;
- stage 3 to 1 at once only when the loan qualified for stage 1 throughout and
  e >= stage3_to_2 + stage2_to_1 (both probations); otherwise it passes
  through stage 2, and its stage-1 probation then counts from the day it
  reached stage 2: qualifying_since + stage3_to_2 when it qualified for stage 1
  throughout, else today (the day its run for stage 1 is known to have begun
  at the latest).

The output carries `qualifying_stage` / `qualifying_since` for tomorrow: null
when the loan is at its raw stage, else the run still in progress. Feed them,
with `stage` as tomorrow's `prev_stage`, to the next run.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from lendcore.ifrs9.config import Ifrs9Config, Ifrs9InputInvalid, PdSource, conform, refuse_rows
from lendcore.ifrs9.transitions import (
    DEFAULT,
    STATES,
    TransitionMatrix,
    delinquency_state,
    twelve_month_pd,
)

_TOLERANCE = 1e-12

STAGING_COLUMNS: dict[str, type[pl.DataType]] = {
    "loan_id": pl.Int64,
    "dpd": pl.Int32,
    "pd_origination": pl.Float64,
    "pd_now": pl.Float64,
    "forborne": pl.Boolean,
    "credit_impaired": pl.Boolean,
    "prev_stage": pl.Int8,
    "qualifying_stage": pl.Int8,
    "qualifying_since": pl.Date,
}


def origination_pd(config: Ifrs9Config, has_band: bool) -> pl.Expr:
    """`pd_origination`, or for a loan without one the PD of its `band` (when
    `has_band`) or the segment default."""
    fallback: pl.Expr = pl.lit(config.pd.default_pd_12m, dtype=pl.Float64)
    if has_band:
        fallback = pl.col("band").replace_strict(
            config.pd.band_pd_12m,
            default=config.pd.default_pd_12m,
            return_dtype=pl.Float64,
        )
    return pl.col("pd_origination").fill_null(fallback)


def _check_probabilities(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    for name in columns:
        refuse_rows(
            frame,
            (pl.col(name) < 0) | (pl.col(name) > 1) | pl.col(name).is_nan(),
            f"have {name} outside 0..1",
            what,
        )


def assign_stages(loans: pl.DataFrame, config: Ifrs9Config, as_of: date) -> pl.DataFrame:
    """`loans` with `sicr` (bool), `raw_stage` and `stage` (i8) added and
    `qualifying_stage` (i8) / `qualifying_since` (date) replaced by tomorrow's.

    Input, one row per active loan: `loan_id` i64, `dpd` i32, `pd_origination`
    f64 (nullable), `pd_now` f64, `forborne` bool, `credit_impaired` bool,
    `prev_stage` i8 (null for a loan never staged), `qualifying_stage` i8 and
    `qualifying_since` date (both null, or both set with qualifying_stage below
    prev_stage and qualifying_since not after `as_of`); optional `band` str.
    """
    loans = conform(
        loans,
        "staging",
        STAGING_COLUMNS,
        not_null=("loan_id", "dpd", "pd_now", "forborne", "credit_impaired"),
        unique="loan_id",
    )
    if "band" in loans.columns:
        loans = conform(loans, "staging", {"band": pl.String})
    _check_probabilities(loans, ("pd_now", "pd_origination"), "staging")
    q, s, p = pl.col("qualifying_stage"), pl.col("qualifying_since"), pl.col("prev_stage")
    refuse_rows(loans, ~p.is_in([1, 2, 3]), "have prev_stage outside 1..3", "staging")
    refuse_rows(
        loans,
        q.is_null() != s.is_null(),
        "have only one of qualifying_stage and qualifying_since",
        "staging",
    )
    refuse_rows(
        loans,
        q.is_not_null() & (p.is_null() | (q < 1) | (q >= p)),
        "have a qualifying_stage not better than prev_stage",
        "staging",
    )
    refuse_rows(loans, s > pl.lit(as_of), f"have qualifying_since after {as_of}", "staging")

    sicr_cfg = config.sicr
    orig = origination_pd(config, "band" in loans.columns)
    now = pl.col("pd_now")
    sicr = (now >= orig * sicr_cfg.relative - _TOLERANCE) & (
        now - orig >= sicr_cfg.absolute - _TOLERANCE
    )
    dpd = pl.col("dpd")
    raw = (
        pl.when(pl.col("credit_impaired") | (dpd > sicr_cfg.dpd_stage3))
        .then(3)
        .when((dpd > sicr_cfg.dpd_stage2) | pl.col("forborne") | sicr)
        .then(2)
        .otherwise(1)
        .cast(pl.Int8)
    )
    staged = loans.with_columns(sicr=sicr, raw_stage=raw)

    p21 = config.probation_days.stage2_to_1
    p32 = config.probation_days.stage3_to_2
    r = pl.col("raw_stage")
    today = pl.lit(as_of, dtype=pl.Date)
    improving = p.is_not_null() & (r < p)
    # The run of better days: continued from yesterday, or starting today.
    run_stage = pl.when(q.is_null()).then(r).otherwise(pl.max_horizontal(q, r))
    run_since = pl.when(q.is_null()).then(today).otherwise(s)
    staged = staged.with_columns(
        _improving=improving,
        _run_stage=pl.when(improving).then(run_stage).cast(pl.Int8),
        _run_since=pl.when(improving).then(run_since),
    )
    improving, run_stage, run_since = (
        pl.col("_improving"),
        pl.col("_run_stage"),
        pl.col("_run_since"),
    )
    elapsed = (today - run_since).dt.total_days()
    stage = (
        pl.when(~improving)
        .then(r)
        .when((p == 3) & (run_stage == 1) & (elapsed >= p32 + p21))
        .then(1)
        .when((p == 3) & (elapsed >= p32))
        .then(2)
        .when((p == 2) & (elapsed >= p21))
        .then(1)
        .otherwise(p)
        .cast(pl.Int8)
    )
    staged = staged.with_columns(stage=stage)
    st = pl.col("stage")
    at_raw = ~improving | (st == r)
    # Still probation but a stage better than yesterday: 3 -> 2 with raw 1.
    moved = st != p
    next_stage = (
        pl.when(at_raw).then(None).when(moved).then(pl.lit(1)).otherwise(run_stage).cast(pl.Int8)
    )
    stage1_from = pl.when(run_stage == 1).then(run_since + timedelta(days=p32)).otherwise(today)
    next_since = (
        pl.when(at_raw).then(None).when(moved).then(stage1_from).otherwise(run_since).cast(pl.Date)
    )
    return staged.with_columns(qualifying_stage=next_stage, qualifying_since=next_since).drop(
        "_improving", "_run_stage", "_run_since"
    )


# --- PD now ------------------------------------------------------------------------

_PD_COLUMNS: dict[str, type[pl.DataType]] = {"dpd": pl.Int32, "pd_origination": pl.Float64}


def pd_now_scorecard(loans: pl.DataFrame, config: Ifrs9Config) -> pl.Series:
    """12-month PD now: min(1, PD at origination (or the band / segment
    fallback) x the multiplier of the loan's delinquency bucket); more than 90
    days past due is default, PD 1. Needs `dpd`, `pd_origination`, optional `band`."""
    loans = conform(loans, "pd", _PD_COLUMNS, not_null=("dpd",))
    if "band" in loans.columns:
        loans = conform(loans, "pd", {"band": pl.String})
    _check_probabilities(loans, ("pd_origination",), "pd")
    multiplier = delinquency_state(pl.col("dpd")).replace_strict(
        config.pd.delinquency_multipliers, default=None, return_dtype=pl.Float64
    )
    pd = pl.min_horizontal(
        (origination_pd(config, "band" in loans.columns) * multiplier).fill_null(1.0), 1.0
    )
    return loans.select(pd.alias("pd_now")).to_series()


def pd_now_from_matrix(loans: pl.DataFrame, matrix: TransitionMatrix) -> pl.Series:
    """12-month PD now from the transition matrix: the cumulative PD after 12
    months from the loan's delinquency state (`dpd`); more than 90 days past
    due is default, PD 1. The matrix must be over `transitions.STATES`."""
    loans = conform(loans, "pd", {"dpd": pl.Int32}, not_null=("dpd",))
    if matrix.default_state != DEFAULT or not set(STATES[:4]) <= set(matrix.states):
        raise Ifrs9InputInvalid(
            f"the PD matrix must be over the states {', '.join(STATES)}",
            states=list(matrix.states),
        )
    by_state = twelve_month_pd(matrix)
    pd = delinquency_state(pl.col("dpd")).replace_strict(by_state, return_dtype=pl.Float64)
    return loans.select(pd.alias("pd_now")).to_series()


def pd_now(
    loans: pl.DataFrame, config: Ifrs9Config, matrix: TransitionMatrix | None = None
) -> pl.Series:
    """The 12-month PD now by the configured source (`config.pd.source`); the
    transition source needs the estimated `matrix`."""
    if config.pd.source is PdSource.SCORECARD:
        return pd_now_scorecard(loans, config)
    if matrix is None:
        raise Ifrs9InputInvalid("the transition PD source needs an estimated transition matrix")
    return pd_now_from_matrix(loans, matrix)
