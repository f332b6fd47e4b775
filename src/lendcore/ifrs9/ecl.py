"""Expected credit loss of the whole book, columnar (one loan x month grid).

For each loan, with its stage, 12-month PD `pd12` (`pd_now`), annual effective
interest rate `eir`, exposure today `X` (`exposure_minor`: principal
outstanding + interest receivable + fees receivable) and LGD of its product
(`config.lgd.by_product`, else `config.lgd.default`):

Stage 3 (credit-impaired, PD = 1 at once):

    ECL = LGD x X                      (no discounting, no scenario)

Stages 1 and 2, on a monthly grid m = 1..H from `as_of`:

    month m runs from as_of + (m - 1) months to as_of + m months (calendar
    months, the day clamped to the month's end: `lendcore.dates.add_months`
    applied to as_of, never step by step); a cash flow due on D falls in the
    month m with as_of + (m - 1) months < D <= as_of + m months.

    H (horizon): lifetime L = the month of the loan's last future cash flow
    (at least 1; 1 for a loan with no future cash flow); stage 2: H = L;
    stage 1: H = min(12, L).

    EAD_m = max(0, X - sum of scheduled principal due on or before
            as_of + (m - 1) months)   (the exposure at the start of month m)

    s      = (1 - pd12) ** (1 / 12)         (constant monthly survival)
    PD_m   = s ** (m - 1) x (1 - s)         (marginal PD of month m)
    DF_m   = (1 + eir) ** (-m / 12)

    ECL = sum over scenarios j of weight_j
          x sum over m = 1..H of min(1, PD_m x pd_multiplier_j) x LGD x EAD_m x DF_m

Every loan: `ecl_minor` = the ECL rounded to an integer number of minor units,
half to even, then held between 0 and max(0, X). (With a pd_multiplier above 1
the stressed marginal PDs of a long horizon can add up to more than 1; the
bound at X is what keeps such an ECL sane, so keep multipliers moderate.)

PDs, rates and weights are floats here: the ECL is an estimate and only its
rounded value is money.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from lendcore.dates import add_months
from lendcore.ifrs9.config import Ifrs9Config, conform, refuse_rows

LOAN_COLUMNS: dict[str, type[pl.DataType]] = {
    "loan_id": pl.Int64,
    "product_code": pl.String,
    "stage": pl.Int8,
    "pd_now": pl.Float64,
    "annual_eir": pl.Float64,
    "exposure_minor": pl.Int64,
}
CASHFLOW_COLUMNS: dict[str, type[pl.DataType]] = {
    "loan_id": pl.Int64,
    "due_date": pl.Date,
    "principal_minor": pl.Int64,
}
STAGE1_MONTHS = 12


def _check_inputs(
    loans: pl.DataFrame, cashflows: pl.DataFrame, as_of: date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    loans = conform(
        loans, "ecl loans", LOAN_COLUMNS, not_null=tuple(LOAN_COLUMNS), unique="loan_id"
    )
    refuse_rows(loans, ~pl.col("stage").is_in([1, 2, 3]), "have a stage outside 1..3", "ecl loans")
    refuse_rows(
        loans,
        (pl.col("pd_now") < 0) | (pl.col("pd_now") > 1) | pl.col("pd_now").is_nan(),
        "have pd_now outside 0..1",
        "ecl loans",
    )
    refuse_rows(
        loans,
        (pl.col("annual_eir") <= -1) | ~pl.col("annual_eir").is_finite(),
        "have an annual_eir that is not a finite rate above -100 %",
        "ecl loans",
    )
    cashflows = conform(cashflows, "cashflows", CASHFLOW_COLUMNS, not_null=tuple(CASHFLOW_COLUMNS))
    refuse_rows(
        cashflows,
        pl.col("due_date") <= pl.lit(as_of, dtype=pl.Date),
        f"are due on or before {as_of} (only future instalments)",
        "cashflows",
    )
    refuse_rows(cashflows, pl.col("principal_minor") < 0, "have negative principal", "cashflows")
    return loans, cashflows


def _month_boundaries(as_of: date, last_due: date | None) -> pl.Series:
    # as_of + k months for k = 0..K, with as_of + K months on or after last_due.
    if last_due is None:
        months = 1
    else:
        months = (last_due.year - as_of.year) * 12 + (last_due.month - as_of.month) + 1
    return pl.Series("boundary", [add_months(as_of, k) for k in range(months + 1)], dtype=pl.Date)


def expected_credit_loss(
    loans: pl.DataFrame, cashflows: pl.DataFrame, config: Ifrs9Config, as_of: date
) -> pl.DataFrame:
    """(`loan_id` i64, `ecl_minor` i64), one row per loan of `loans`, same order.

    `loans`: `loan_id` i64 (unique), `product_code` str, `stage` i8 (1..3),
    `pd_now` f64 (12-month PD, 0..1), `annual_eir` f64, `exposure_minor` i64.
    `cashflows`: `loan_id` i64, `due_date` date (> as_of), `principal_minor`
    i64 (>= 0): the scheduled principal still unpaid of each future instalment.
    Cash flows of loans not in `loans` are ignored. See the module docstring
    for the formula.
    """
    loans, cashflows = _check_inputs(loans, cashflows, as_of)
    lgd = pl.col("product_code").replace_strict(
        config.lgd.by_product, default=config.lgd.default, return_dtype=pl.Float64
    )
    book = loans.select("loan_id", "stage", "pd_now", "annual_eir", "exposure_minor", lgd=lgd)

    cashflows = cashflows.join(book.select("loan_id"), on="loan_id", how="semi")
    last_due = cashflows.get_column("due_date").max()
    boundaries = _month_boundaries(as_of, last_due if isinstance(last_due, date) else None)
    # Month m of a cash flow: boundary[m - 1] < due_date <= boundary[m].
    due = (
        cashflows.with_columns(
            m_due=boundaries.search_sorted(cashflows.get_column("due_date"), side="left").cast(
                pl.Int64
            )
        )
        .group_by("loan_id", "m_due")
        .agg(pl.col("principal_minor").sum())
    )
    lifetime = due.group_by("loan_id").agg(lifetime=pl.col("m_due").max())

    horizon = (
        book.filter(pl.col("stage") != 3)
        .join(lifetime, on="loan_id", how="left")
        .with_columns(lifetime=pl.col("lifetime").fill_null(1).clip(lower_bound=1))
        .with_columns(
            horizon=pl.when(pl.col("stage") == 1)
            .then(pl.min_horizontal("lifetime", pl.lit(STAGE1_MONTHS)))
            .otherwise(pl.col("lifetime"))
        )
    )
    grid = (
        horizon.with_columns(m=pl.int_ranges(1, pl.col("horizon") + 1, dtype=pl.Int64))
        .explode("m")
        # Principal due in month m - 1 leaves the exposure from month m on.
        .join(
            due.with_columns(m=pl.col("m_due") + 1).drop("m_due"),
            on=["loan_id", "m"],
            how="left",
        )
        .with_columns(
            repaid_before=pl.col("principal_minor")
            .fill_null(0)
            .cum_sum()
            .over("loan_id", order_by="m")
        )
    )

    m = pl.col("m").cast(pl.Float64)
    survival = (1.0 - pl.col("pd_now")).pow(1.0 / 12.0)
    marginal = survival.pow(m - 1.0) * (1.0 - survival)
    weighted_pd: pl.Expr = pl.lit(0.0)
    for scenario in config.scenarios:
        stressed = pl.min_horizontal(marginal * scenario.pd_multiplier, pl.lit(1.0))
        weighted_pd = weighted_pd + float(scenario.weight) * stressed
    ead = (pl.col("exposure_minor") - pl.col("repaid_before")).clip(lower_bound=0)
    discount = (1.0 + pl.col("annual_eir")).pow(-m / 12.0)
    losses = grid.group_by("loan_id").agg(
        loss=(weighted_pd * pl.col("lgd") * ead.cast(pl.Float64) * discount).sum()
    )

    ecl = (
        pl.when(pl.col("stage") == 3)
        .then(pl.col("lgd") * pl.col("exposure_minor").cast(pl.Float64))
        .otherwise(pl.col("loss").fill_null(0.0))
    )
    cap = pl.col("exposure_minor").clip(lower_bound=0)
    return (
        book.join(losses, on="loan_id", how="left", maintain_order="left")
        .with_columns(ecl=ecl.round(0, mode="half_to_even"))
        .select(
            "loan_id",
            ecl_minor=pl.col("ecl").clip(lower_bound=0.0).cast(pl.Int64).clip(0, cap),
        )
    )
