"""End of day's kernel: the whole book moved forward by time alone, as columns.

Between two of a loan's events nothing but time changes it, and
`servicing.replay` says exactly how: instalments fall due (suspense held under
the suspense policy pays them as they do), late-fee checks come round at
due date + grace, penalty interest accrues on overdue principal, and the
current period's interest accrues by the day count. This module applies that
same rule to the whole book at once, starting from each loan's snapshot (the
replay just after its last event), with Polars expressions over a frame of
instalments: no Python loop per loan (DESIGN principles 2 and 8). The
differential tests hold it to `replay` to the minor unit.

All amounts are integer minor units. Exact fractions are kept as integer
numerators over a per-product denominator: penalty interest over
rate denominator x day-count basis, accrued interest over the period's
day-count measure, and rounded once, as the replay rounds its Fractions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

import polars as pl

from lendcore.dates import DayCount
from lendcore.errors import LendcoreError
from lendcore.products.model import Component, PrepaymentPolicy, Product

# ACT/ACT (ISDA) measured in 1/(365*366) of a year: a day is 366 units in a
# common year and 365 in a leap year, so a whole year is always 133,590.
_ACT_ACT_YEAR = 365 * 366
_BASIS = {
    DayCount.ACT_360.value: 360,
    DayCount.ACT_365F.value: 365,
    DayCount.ACT_ACT.value: _ACT_ACT_YEAR,
    DayCount.THIRTY_360.value: 360,
    DayCount.THIRTY_E_360.value: 360,
}
_COMPONENT_KEYS = {
    Component.PENALTY: "pen",
    Component.FEE: "fee",
    Component.INTEREST: "int",
    Component.PRINCIPAL: "pri",
}
ROLES = (
    "principal",
    "interest_receivable",
    "fee_receivable",
    "write_off_expense",
    "fund_source",
    "overpayment",
    "interest_income",
    "fee_income",
    "penalty_income",
    "recovery_income",
)
# Safe headroom below 2**63 for the integer products the kernel forms.
_INT64_LIMIT = 2**62


class KernelOverflow(LendcoreError):
    code = "eod.kernel_overflow"


# --- day counts and rounding as expressions ---------------------------------------------


def _act_act_units(d: pl.Expr) -> pl.Expr:
    per_day = pl.when(d.dt.is_leap_year()).then(365).otherwise(366)
    return d.dt.year().cast(pl.Int64) * _ACT_ACT_YEAR + (
        d.dt.ordinal_day().cast(pl.Int64) - 1
    ) * per_day.cast(pl.Int64)


def _thirty_units(start: pl.Expr, end: pl.Expr, *, european: bool) -> pl.Expr:
    d1 = start.dt.day().cast(pl.Int64)
    d2 = end.dt.day().cast(pl.Int64)
    if european:
        d1x = pl.min_horizontal(d1, pl.lit(30))
        d2x = pl.min_horizontal(d2, pl.lit(30))
    else:
        d2x = pl.when((d2 == 31) & (d1 >= 30)).then(30).otherwise(d2)
        d1x = pl.min_horizontal(d1, pl.lit(30))
    years = end.dt.year().cast(pl.Int64) - start.dt.year().cast(pl.Int64)
    months = end.dt.month().cast(pl.Int64) - start.dt.month().cast(pl.Int64)
    return 360 * years + 30 * months + (d2x - d1x)


def day_units(
    start: pl.Expr, end: pl.Expr, day_count: pl.Expr, present: frozenset[str] | None = None
) -> pl.Expr:
    """The year fraction from `start` to `end` times the convention's basis
    (`_BASIS`), an integer; `day_count` is a column of DayCount values.
    `present` (the conventions the column holds) leaves out the others' branches."""
    conventions = present if present is not None else frozenset(_BASIS)
    units: pl.Expr = (end - start).dt.total_days().cast(pl.Int64)
    if DayCount.ACT_ACT.value in conventions:
        act_act = _act_act_units(end) - _act_act_units(start)
        units = pl.when(day_count == DayCount.ACT_ACT.value).then(act_act).otherwise(units)
    for convention, european in (
        (DayCount.THIRTY_360.value, False),
        (DayCount.THIRTY_E_360.value, True),
    ):
        if convention in conventions:
            thirty = _thirty_units(start, end, european=european)
            units = pl.when(day_count == convention).then(thirty).otherwise(units)
    return units


def round_ratio(numerator: pl.Expr, denominator: pl.Expr, mode: pl.Expr) -> pl.Expr:
    """numerator/denominator (denominator > 0) rounded to an integer by the
    RoundingMode in `mode`: the rule of `money._round_ratio`, as an expression."""
    q = numerator.floordiv(denominator)
    r = numerator - q * denominator
    twice = 2 * r
    up = q + 1
    half = (
        pl.when(mode == "half-up")
        .then(pl.when(numerator > 0).then(up).otherwise(q))
        .when(mode == "half-down")
        .then(pl.when(numerator > 0).then(q).otherwise(up))
        .otherwise(pl.when(q % 2 == 0).then(q).otherwise(up))
    )
    nearest = (
        pl.when(twice < denominator).then(q).when(twice > denominator).then(up).otherwise(half)
    )
    return (
        pl.when(r == 0)
        .then(q)
        .when(mode == "floor")
        .then(q)
        .when(mode == "ceiling")
        .then(up)
        .when(mode == "down")
        .then(pl.when(numerator >= 0).then(q).otherwise(up))
        .when(mode == "up")
        .then(pl.when(numerator >= 0).then(up).otherwise(q))
        .otherwise(nearest)
    )


# --- frames ---------------------------------------------------------------------------------

LOAN_SCHEMA: dict[str, Any] = {
    "loan_id": pl.Int64,
    "product_code": pl.String,
    "product_version": pl.Int32,
    "fallen": pl.Int32,
    "clock": pl.Date,
    "suspense": pl.Int64,
    "received": pl.Int64,
    "recovered": pl.Int64,
    "cash_out": pl.Int64,
    "disbursement_fees": pl.Int64,
    "disbursed_gross": pl.Int64,
    "day_count": pl.String,
    "interest_period": pl.String,
    "rounding": pl.String,
    "annual_rate": pl.String,
}
_PARTS = ("pen", "fee", "int", "pri")
DUE_SCHEMA: dict[str, Any] = {
    "loan_id": pl.Int64,
    "idx": pl.Int32,
    "number": pl.Int32,
    "period_start": pl.Date,
    "due_date": pl.Date,
    "principal": pl.Int64,
    "interest": pl.Int64,
    "fee": pl.Int64,
    "capitalised": pl.Int64,
    "late_fee": pl.Int64,
    "pen_n": pl.Int64,
    "pen_d": pl.Int64,
    "late_fee_checked": pl.Boolean,
    **{f"{kind}_{part}": pl.Int64 for kind in ("paid", "waived", "wo") for part in _PARTS},
}
PRODUCT_SCHEMA: dict[str, Any] = {
    "product_code": pl.String,
    "product_version": pl.Int32,
    "pen_rate_n": pl.Int64,
    "pen_day_count": pl.String,
    "pen_den": pl.Int64,
    "late_kind": pl.String,
    "late_flat": pl.Int64,
    "late_pct_n": pl.Int64,
    "late_pct_d": pl.Int64,
    "late_grace": pl.Int32,
    "late_rounding": pl.String,
    "tolerance": pl.Int64,
    "suspense_policy": pl.Boolean,
    **{f"rank_{part}": pl.Int32 for part in _PARTS},
}


def product_row(code: str, version: int, product: Product) -> dict[str, Any]:
    """The product settings the kernel needs, as one row of `PRODUCT_SCHEMA`."""
    rate = Fraction(product.interest.penalty_rate)
    day_count = product.interest.day_count.value
    late = product.fees.late
    pct = Fraction(late.value) if late is not None and late.kind == "percent" else Fraction(0)
    order = product.waterfall.components
    return {
        "product_code": code,
        "product_version": version,
        "pen_rate_n": rate.numerator,
        "pen_day_count": day_count,
        "pen_den": rate.denominator * _BASIS[day_count],
        "late_kind": None if late is None else late.kind,
        "late_flat": product.minor(late.value) if late is not None and late.kind == "flat" else 0,
        "late_pct_n": pct.numerator,
        "late_pct_d": pct.denominator,
        "late_grace": 0 if late is None else late.grace_days,
        "late_rounding": product.rounding.mode.value,
        "tolerance": product.minor(product.arrears.tolerance),
        "suspense_policy": product.prepayment is PrepaymentPolicy.SUSPENSE,
        **{f"rank_{_COMPONENT_KEYS[c]}": order.index(c) for c in _COMPONENT_KEYS},
    }


def bucket_rows(code: str, version: int, product: Product) -> list[dict[str, Any]]:
    return [
        {
            "product_code": code,
            "product_version": version,
            "low": low,
            "high": high,
            "bucket": f"{low}+" if high is None else f"{low}-{high}",
        }
        for low, high in product.arrears.buckets
    ]


@dataclass(frozen=True, slots=True)
class ProductTable:
    """Every product version of a book, as the two frames the kernel joins."""

    settings: pl.DataFrame
    buckets: pl.DataFrame

    @classmethod
    def of(cls, products: Iterable[tuple[str, int, Product]]) -> ProductTable:
        rows, buckets = [], []
        for code, version, product in products:
            rows.append(product_row(code, version, product))
            buckets.extend(bucket_rows(code, version, product))
        return cls(
            pl.DataFrame(rows, schema=PRODUCT_SCHEMA),
            pl.DataFrame(
                buckets,
                schema={
                    "product_code": pl.String,
                    "product_version": pl.Int32,
                    "low": pl.Int64,
                    "high": pl.Int64,
                    "bucket": pl.String,
                },
            ),
        )


def _fraction_parts(text: str) -> tuple[int, int]:
    numerator, denominator = text.split("/")
    return int(numerator), int(denominator)


def snapshot_rows(
    loan_id: int, code: str, version: int, snapshot: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One loan's snapshot as a `LOAN_SCHEMA` row and its `DUE_SCHEMA` rows
    (for tests and small books; end of day decodes the JSON column in Polars)."""
    terms = snapshot["terms"]
    loan = {
        "loan_id": loan_id,
        "product_code": code,
        "product_version": version,
        "fallen": snapshot["fallen"],
        "clock": date.fromisoformat(snapshot["clock"]),
        "suspense": snapshot["suspense"],
        "received": snapshot["received"],
        "recovered": snapshot["recovered"],
        "cash_out": snapshot["cash_out"],
        "disbursement_fees": snapshot["disbursement_fees"],
        "disbursed_gross": snapshot["disbursed_gross"],
        "day_count": terms["day_count"],
        "interest_period": terms["interest_period"],
        "rounding": terms["rounding"],
        "annual_rate": terms["annual_rate"],
    }
    dues = []
    for idx, d in enumerate(snapshot["dues"]):
        pen_n, pen_d = _fraction_parts(d["penalty_exact"])
        row = {
            "loan_id": loan_id,
            "idx": idx,
            "number": d["number"],
            "period_start": date.fromisoformat(d["period_start"]),
            "due_date": date.fromisoformat(d["due_date"]),
            "principal": d["principal"],
            "interest": d["interest"],
            "fee": d["fee"],
            "capitalised": d["capitalised"],
            "late_fee": d["late_fee"],
            "pen_n": pen_n,
            "pen_d": pen_d,
            "late_fee_checked": d["late_fee_checked"],
        }
        for kind in ("paid", "waived", "written_off"):
            short = "wo" if kind == "written_off" else kind
            for part, value in zip(_PARTS, d[kind], strict=True):
                row[f"{short}_{part}"] = value
        dues.append(row)
    return loan, dues


def frames_of(
    snapshots: Sequence[tuple[int, str, int, dict[str, Any]]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    loans, dues = [], []
    for loan_id, code, version, doc in snapshots:
        loan, rows = snapshot_rows(loan_id, code, version, doc)
        loans.append(loan)
        dues.extend(rows)
    return pl.DataFrame(loans, schema=LOAN_SCHEMA), pl.DataFrame(dues, schema=DUE_SCHEMA)


_DUE_JSON = pl.Struct(
    {
        "number": pl.Int32,
        "period_start": pl.String,
        "due_date": pl.String,
        "principal": pl.Int64,
        "interest": pl.Int64,
        "fee": pl.Int64,
        "capitalised": pl.Int64,
        "late_fee": pl.Int64,
        "penalty_exact": pl.String,
        "late_fee_checked": pl.Boolean,
        "paid": pl.List(pl.Int64),
        "waived": pl.List(pl.Int64),
        "written_off": pl.List(pl.Int64),
    }
)
_SNAPSHOT_JSON = pl.Struct(
    {
        "fallen": pl.Int32,
        "clock": pl.String,
        "suspense": pl.Int64,
        "received": pl.Int64,
        "recovered": pl.Int64,
        "cash_out": pl.Int64,
        "disbursement_fees": pl.Int64,
        "disbursed_gross": pl.Int64,
        "terms": pl.Struct(
            {
                "day_count": pl.String,
                "interest_period": pl.String,
                "rounding": pl.String,
                "annual_rate": pl.String,
            }
        ),
        "dues": pl.List(_DUE_JSON),
    }
)


def frames_from_json(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode a frame of (`loan_id`, `product_code`, `product_version`,
    `snapshot_json`) into the loan and instalment frames, in Polars."""
    doc = rows.with_columns(pl.col("snapshot_json").str.json_decode(_SNAPSHOT_JSON).alias("s"))
    doc = doc.drop("snapshot_json").unnest("s")
    loans = doc.select(
        pl.col("loan_id").cast(pl.Int64),
        pl.col("product_code"),
        pl.col("product_version").cast(pl.Int32),
        "fallen",
        pl.col("clock").str.to_date(),
        "suspense",
        "received",
        "recovered",
        "cash_out",
        "disbursement_fees",
        "disbursed_gross",
        pl.col("terms").struct.field("day_count"),
        pl.col("terms").struct.field("interest_period"),
        pl.col("terms").struct.field("rounding"),
        pl.col("terms").struct.field("annual_rate"),
    )
    dues = (
        doc.select(pl.col("loan_id").cast(pl.Int64), "dues")
        .with_columns(pl.int_ranges(pl.col("dues").list.len()).alias("idx"))
        .explode("dues", "idx")
        .drop_nulls("dues")
        .unnest("dues")
    )
    fraction = pl.col("penalty_exact").str.split_exact("/", 1)
    parts = [
        pl.col(kind).list.get(i).alias(f"{'wo' if kind == 'written_off' else kind}_{part}")
        for kind in ("paid", "waived", "written_off")
        for i, part in enumerate(_PARTS)
    ]
    dues = dues.select(
        "loan_id",
        pl.col("idx").cast(pl.Int32),
        "number",
        pl.col("period_start").str.to_date(),
        pl.col("due_date").str.to_date(),
        "principal",
        "interest",
        "fee",
        "capitalised",
        "late_fee",
        fraction.struct.field("field_0").cast(pl.Int64).alias("pen_n"),
        fraction.struct.field("field_1").cast(pl.Int64).alias("pen_d"),
        "late_fee_checked",
        *parts,
    )
    return loans.select(list(LOAN_SCHEMA)), dues.select(list(DUE_SCHEMA))


# --- the day --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookState:
    """The book at the end of a day: one row per loan, and its instalments;
    `contracts` is the loans' input row (terms included)."""

    loans: pl.DataFrame
    dues: pl.DataFrame
    contracts: pl.DataFrame


def _unpaid(part: str, amount: pl.Expr) -> pl.Expr:
    return amount - pl.col(f"paid_{part}") - pl.col(f"waived_{part}") - pl.col(f"wo_{part}")


def _check_headroom(dues: pl.DataFrame, products: pl.DataFrame) -> None:
    if dues.is_empty():
        return
    largest = int(dues.select(pl.col("principal").abs().max()).item() or 0)
    rate = int(products.select(pl.col("pen_rate_n").max()).item() or 0)
    # Penalty numerators grow as principal x rate numerator x day units
    # (at most ~40 years of ACT/ACT units).
    if largest * max(rate, 1) * 40 * _ACT_ACT_YEAR >= _INT64_LIMIT:
        raise KernelOverflow(
            "an instalment or penalty rate is too large for end of day's exact integer arithmetic",
            principal_minor=largest,
        )


def close_day(
    loans: pl.DataFrame, dues: pl.DataFrame, products: ProductTable, as_of: date
) -> BookState:
    """The state of every loan at the end of `as_of`, from its snapshot.

    `loans` and `dues` hold active loans only (disbursed, not written off, not
    settled), as built by `frames_of` or `frames_from_json`; every snapshot's
    clock is on or before `as_of`.
    """
    settings = products.settings
    _check_headroom(dues, settings)
    day = pl.lit(as_of, dtype=pl.Date)
    loans = loans.sort("loan_id")
    terms = loans.join(
        settings, on=["product_code", "product_version"], how="left", maintain_order="left"
    )
    missing = terms.filter(pl.col("pen_den").is_null())
    if not missing.is_empty():
        raise LendcoreError(
            f"no settings for product {missing['product_code'][0]} v{missing['product_version'][0]}"
        )
    # Each instalment beside its loan's terms and product settings: the book is
    # in loan order, so a gather by position (no hash join), and instalments
    # stay in (loan, number) order for the steps below, which read the row
    # before rather than a window over the loan.
    dues = dues.filter(pl.col("loan_id").is_in(loans["loan_id"].implode()))
    if not dues["loan_id"].is_sorted():
        raise LendcoreError("end of day needs the instalments in loan order")
    position = terms["loan_id"].search_sorted(dues["loan_id"])
    d = pl.concat([dues, terms.drop("loan_id")[position]], how="horizontal")
    # Exact penalty so far, over the product's denominator.
    d = d.with_columns(
        (pl.col("pen_n") * (pl.col("pen_den") // pl.col("pen_d"))).alias("pen_num"),
        (pl.col("idx") < pl.col("fallen")).alias("fallen_before"),
    ).with_columns(
        (pl.col("fallen_before") | (pl.col("due_date") <= day)).alias("fallen_now"),
    )
    d = d.with_columns(
        _unpaid("fee", pl.col("fee")).alias("u_fee"),
        _unpaid("int", pl.col("interest")).alias("u_int"),
        _unpaid("pri", pl.col("principal")).alias("u_pri"),
    )
    d = _apply_suspense(d)
    d = _late_fee_checks(d, day)
    d = _penalty(d, day)
    return _summarise(d, _accrual(d, day), loans, products, day)


def _apply_suspense(d: pl.DataFrame) -> pl.DataFrame:
    """Suspense held under the suspense policy pays instalments as they fall
    due, each in the waterfall's order (every earlier instalment is already
    paid whenever suspense is held)."""
    holds = pl.col("suspense_policy") & (pl.col("suspense") > 0)
    d = d.with_columns(pl.col("suspense").alias("suspense_left"))
    rows = d.select(pl.arg_where(holds)).to_series()
    if rows.is_empty():
        return d
    # Only the few loans holding suspense are worked on; their rows are
    # written back in place, so the book keeps its order.
    held = _pay_from_suspense(d[rows])
    changed = ("paid_fee", "paid_int", "paid_pri", "u_fee", "u_int", "u_pri", "suspense_left")
    return d.with_columns(d[c].scatter(rows, held[c]) for c in changed)


def _pay_from_suspense(d: pl.DataFrame) -> pl.DataFrame:
    """The instalments of loans holding suspense, paid from it in due order."""
    falls = ~pl.col("fallen_before") & pl.col("fallen_now")
    total = pl.when(falls).then(pl.col("u_fee") + pl.col("u_int") + pl.col("u_pri")).otherwise(0)
    d = d.with_columns(total.alias("_total"))
    d = d.with_columns(
        (pl.col("_total").cum_sum().over("loan_id") - pl.col("_total")).alias("_before")
    )
    applied = pl.min_horizontal(
        pl.max_horizontal(pl.col("suspense") - pl.col("_before"), pl.lit(0)), pl.col("_total")
    )
    d = d.with_columns(applied.alias("_applied"))
    parts = ("fee", "int", "pri")  # a falling instalment has no penalty yet
    pays = []
    for part in parts:
        earlier = sum(
            (
                pl.when(pl.col(f"rank_{other}") < pl.col(f"rank_{part}"))
                .then(pl.col(f"u_{other}"))
                .otherwise(0)
                for other in parts
                if other != part
            ),
            pl.lit(0),
        )
        pay = pl.min_horizontal(
            pl.max_horizontal(pl.col("_applied") - earlier, pl.lit(0)), pl.col(f"u_{part}")
        )
        pays.append(pay.alias(f"_pay_{part}"))
    d = d.with_columns(pays)
    d = d.with_columns(
        *[(pl.col(f"paid_{p}") + pl.col(f"_pay_{p}")).alias(f"paid_{p}") for p in parts],
        *[(pl.col(f"u_{p}") - pl.col(f"_pay_{p}")).alias(f"u_{p}") for p in parts],
        (pl.col("suspense") - pl.col("_applied").sum().over("loan_id")).alias("suspense_left"),
    )
    return d.drop("_total", "_before", "_applied", *[f"_pay_{p}" for p in parts])


def _late_fee_checks(d: pl.DataFrame, day: pl.Expr) -> pl.DataFrame:
    check_date = pl.col("due_date") + pl.duration(days=pl.col("late_grace"))
    unpaid = pl.col("u_pri") + pl.col("u_int") + pl.col("u_fee")
    checking = (
        pl.col("fallen_now")
        & ~pl.col("late_fee_checked")
        & pl.col("late_kind").is_not_null()
        & (check_date <= day)
    )
    fee = (
        pl.when(pl.col("late_kind") == "flat")
        .then(pl.col("late_flat"))
        .otherwise(
            round_ratio(
                pl.col("late_pct_n") * unpaid, pl.col("late_pct_d"), pl.col("late_rounding")
            )
        )
    )
    charged = checking & (unpaid > pl.col("tolerance"))
    return d.with_columns(
        (pl.col("late_fee") + pl.when(charged).then(fee).otherwise(0)).alias("late_fee"),
        (pl.col("late_fee_checked") | checking).alias("late_fee_checked"),
    )


def _penalty(d: pl.DataFrame, day: pl.Expr) -> pl.DataFrame:
    start = pl.max_horizontal(pl.col("clock"), pl.col("due_date"))
    present = frozenset(d["pen_day_count"].unique().drop_nulls().to_list())
    units = day_units(start, day, pl.col("pen_day_count"), present)
    accrues = (
        pl.col("fallen_now") & (pl.col("u_pri") > 0) & (day > start) & (pl.col("pen_rate_n") > 0)
    )
    d = d.with_columns(
        (
            pl.col("pen_num")
            + pl.when(accrues).then(pl.col("u_pri") * pl.col("pen_rate_n") * units).otherwise(0)
        ).alias("pen_num")
    )
    penalty = pl.col("late_fee") + round_ratio(
        pl.col("pen_num"), pl.col("pen_den"), pl.lit("half-even")
    )
    return d.with_columns(penalty.alias("penalty")).with_columns(
        _unpaid("pen", pl.col("penalty")).alias("u_pen")
    )


def _accrual(d: pl.DataFrame, day: pl.Expr) -> pl.DataFrame:
    """Interest of the current period accrued by the end of the day, per loan:
    the period's interest times the share of its day-count measure elapsed."""
    # The current period is the first instalment not fallen due: instalments
    # fall in order, so it is the one whose predecessor in the loan has fallen.
    first_of_loan = pl.col("loan_id") != pl.col("loan_id").shift(1)
    current = ~pl.col("fallen_now") & (
        first_of_loan.fill_null(True) | pl.col("fallen_now").shift(1).fill_null(True)
    )
    cur = d.filter(current).select(
        "loan_id",
        "period_start",
        "due_date",
        "interest",
        "capitalised",
        "interest_period",
        "day_count",
        "rounding",
    )
    present = frozenset(cur["day_count"].unique().drop_nulls().to_list())
    start, end = pl.col("period_start"), pl.col("due_date")
    actual = pl.col("interest_period") == "actual-days"
    elapsed = (
        pl.when(actual)
        .then(day_units(start, day, pl.col("day_count"), present))
        .otherwise((day - start).dt.total_days().cast(pl.Int64))
    )
    whole = (
        pl.when(actual)
        .then(day_units(start, end, pl.col("day_count"), present))
        .otherwise((end - start).dt.total_days().cast(pl.Int64))
    )
    base = pl.col("interest") + pl.col("capitalised")
    accrued = (
        pl.when(day <= start)
        .then(0)
        .when(whole == 0)
        .then(base)
        .otherwise(round_ratio(base * elapsed, whole, pl.col("rounding")))
    )
    return cur.select("loan_id", accrued.cast(pl.Int64).alias("accrued"))


def _summarise(
    d: pl.DataFrame,
    accrued: pl.DataFrame,
    loans: pl.DataFrame,
    products: ProductTable,
    day: pl.Expr,
) -> BookState:
    fallen = pl.col("fallen_now")
    past = fallen & (pl.col("due_date") < day)
    any_unpaid = (
        (pl.col("u_pen") != 0)
        | (pl.col("u_fee") != 0)
        | (pl.col("u_int") != 0)
        | (pl.col("u_pri") != 0)
    )

    def over(mask: pl.Expr, value: pl.Expr) -> pl.Expr:
        return pl.when(mask).then(value).otherwise(0).sum()

    per_loan = d.group_by("loan_id").agg(
        *[over(past, pl.col(f"u_{p}")).alias(f"overdue_{p}") for p in _PARTS],
        pl.col("due_date").filter(past & any_unpaid).min().alias("oldest_overdue"),
        (pl.col("u_pri").sum() - over(~fallen, pl.col("capitalised"))).alias("principal"),
        over(fallen, pl.col("u_int")).alias("_interest_receivable"),
        over(fallen, pl.col("u_fee") + pl.col("u_pen")).alias("fee_receivable"),
        sum((pl.col(f"wo_{p}").sum() for p in _PARTS), pl.lit(0)).alias("write_off_expense"),
        (
            over(fallen, pl.col("interest") + pl.col("capitalised")) - pl.col("waived_int").sum()
        ).alias("_interest_income"),
        (over(fallen, pl.col("fee")) - pl.col("waived_fee").sum()).alias("_fee_income"),
        (over(fallen, pl.col("penalty")) - pl.col("waived_pen").sum()).alias("penalty_income"),
        (fallen.all() & (~any_unpaid).all()).alias("settled"),
        pl.col("suspense_left").first().alias("overpayment"),
        pl.col("tolerance").first().alias("_tolerance"),
    )
    out = (
        loans.join(per_loan, on="loan_id", how="left")
        .join(accrued, on="loan_id", how="left")
        .with_columns(pl.col("accrued").fill_null(0).alias("interest_accrued"))
    )
    out = out.with_columns(
        (pl.col("_interest_receivable") + pl.col("interest_accrued")).alias("interest_receivable"),
        (pl.col("_interest_income") + pl.col("interest_accrued")).alias("interest_income"),
        (
            pl.col("overdue_pen")
            + pl.col("overdue_fee")
            + pl.col("overdue_int")
            + pl.col("overdue_pri")
        ).alias("overdue"),
        (pl.col("received") + pl.col("recovered") - pl.col("cash_out")).alias("fund_source"),
        (pl.col("disbursement_fees") + pl.col("_fee_income")).alias("fee_income"),
        pl.col("recovered").alias("recovery_income"),
    )
    dpd = (
        pl.when(pl.col("overdue") > pl.col("_tolerance"))
        .then((day - pl.col("oldest_overdue")).dt.total_days())
        .otherwise(0)
        .fill_null(0)
        .cast(pl.Int32)
    )
    out = out.with_columns(
        dpd.alias("days_past_due"),
        pl.when(pl.col("settled"))
        .then(pl.lit("closed"))
        .otherwise(pl.lit("active"))
        .alias("status"),
    )
    labelled = (
        out.select("loan_id", "product_code", "product_version", "days_past_due")
        .filter(pl.col("days_past_due") > 0)
        .join(products.buckets, on=["product_code", "product_version"], how="inner")
        .filter(
            (pl.col("days_past_due") >= pl.col("low"))
            & (pl.col("high").is_null() | (pl.col("days_past_due") <= pl.col("high")))
        )
        .select("loan_id", "bucket")
    )
    out = out.join(labelled, on="loan_id", how="left")
    columns = [
        "loan_id",
        "product_code",
        "product_version",
        "status",
        "days_past_due",
        "bucket",
        "overdue",
        *[f"overdue_{p}" for p in _PARTS],
        "interest_accrued",
        *ROLES,
    ]
    return BookState(out.select(columns).sort("loan_id"), d, loans)


def positions_of(row: dict[str, Any]) -> dict[str, int]:
    return {role: int(row[role]) for role in ROLES}


def positions_json_expr() -> pl.Expr:
    """The loan's positions as the JSON text the servicing commands keep."""
    return pl.struct(sorted(ROLES)).struct.json_encode()


def snapshot_of(text: str) -> dict[str, Any]:
    return dict(json.loads(text))
