"""Movement analysis of the loss allowance (the IFRS 7 reconciliation), pure.

Each close, `classify_movements(prev, new)` explains the change of every
loan's ECL since the previous close and sums it by product, kind and stage:

| kind            | loans                                    | stage_from | stage_to |
| --------------- | ---------------------------------------- | ---------- | -------- |
| new_loans       | in `new`, not in `prev`                  | null       | new      |
| transfer_to_<s> | in both, stage changed to s              | prev       | new (s)  |
| remeasurement   | in both, same stage                      | prev       | new      |
| repaid          | `exit` = repaid, or in `prev` not in `new` | prev     | null     |
| written_off     | `exit` = written_off                     | prev       | null     |

The amount of a loan is its whole change, new ECL - previous ECL (for a
transfer too: the convention is that a loan changing stage moves all of its
change with it). It is split in two so a table by stage reconciles column by
column: `amount_out_minor` = - previous ECL leaves `stage_from`,
`amount_in_minor` = new ECL arrives in `stage_to`; `amount_minor` is their sum.
A loan leaving the book has ECL 0 in `new` (checked). A loan new and gone the
same day (in `new` with an exit, not in `prev`) moves nothing and gives no row.
The amounts add up to total new ECL - total previous ECL.

`provision_tables` turns a period's movements (the daily rows concatenated,
summed or not) and the stage mix at the start and end of the period into the
report tables, and refuses a period whose opening + movements is not the
closing, stage by stage. `write_xlsx` writes them to a workbook.

Amounts are minor units of one currency: run the report per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import xlsxwriter  # type: ignore[import-untyped]

from lendcore.ifrs9.config import (
    Ifrs9InputInvalid,
    Ifrs9ReportUnreconciled,
    conform,
    refuse_rows,
)

EXITS: tuple[str, ...] = ("repaid", "written_off")
KINDS: tuple[str, ...] = (
    "new_loans",
    "transfer_to_1",
    "transfer_to_2",
    "transfer_to_3",
    "remeasurement",
    "repaid",
    "written_off",
)
STAGES: tuple[int, ...] = (1, 2, 3)
# Lines of the movement table: (key, label); the middle ones are KINDS.
MOVEMENT_LINES: tuple[tuple[str, str], ...] = (
    ("opening", "Opening loss allowance"),
    ("new_loans", "New loans originated"),
    ("transfer_to_1", "Transfers to stage 1"),
    ("transfer_to_2", "Transfers to stage 2"),
    ("transfer_to_3", "Transfers to stage 3"),
    ("remeasurement", "Remeasurement"),
    ("repaid", "Repayments and derecognition"),
    ("written_off", "Write-offs"),
    ("closing", "Closing loss allowance"),
)

_ALLOWANCE_COLUMNS: dict[str, type[pl.DataType]] = {
    "loan_id": pl.Int64,
    "product_code": pl.String,
    "stage": pl.Int8,
    "ecl_minor": pl.Int64,
}
MOVEMENT_COLUMNS: dict[str, type[pl.DataType]] = {
    "product_code": pl.String,
    "kind": pl.String,
    "stage_from": pl.Int8,
    "stage_to": pl.Int8,
    "loans": pl.Int64,
    "amount_minor": pl.Int64,
    "amount_out_minor": pl.Int64,
    "amount_in_minor": pl.Int64,
}
STAGE_MIX_COLUMNS: dict[str, type[pl.DataType]] = {
    "product_code": pl.String,
    "stage": pl.Int8,
    "loans": pl.Int64,
    "exposure_minor": pl.Int64,
    "ecl_minor": pl.Int64,
}
_STAGE_COLUMNS = tuple(f"stage_{s}_minor" for s in STAGES)


def _check_stage(frame: pl.DataFrame, column: str, what: str) -> None:
    refuse_rows(frame, ~pl.col(column).is_in(list(STAGES)), f"have {column} outside 1..3", what)


def classify_movements(prev: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """The day's movements, summed by (`product_code`, `kind`, `stage_from`,
    `stage_to`): columns `MOVEMENT_COLUMNS` (`loans` counts loans).

    `prev`: `loan_id` i64 (unique), `product_code` str, `stage` i8, `ecl_minor`
    i64 at the previous close. `new`: the same at today's close plus `exit`
    (str, null or `repaid` / `written_off`; such a row needs `ecl_minor` 0 and
    may have a null stage). Rows are ordered by product, kind (KINDS order),
    stage_from, stage_to.
    """
    prev = conform(
        prev, "prev", _ALLOWANCE_COLUMNS, not_null=tuple(_ALLOWANCE_COLUMNS), unique="loan_id"
    )
    _check_stage(prev, "stage", "prev")
    new = conform(
        new,
        "new",
        {**_ALLOWANCE_COLUMNS, "exit": pl.String},
        not_null=("loan_id", "product_code", "ecl_minor"),
        unique="loan_id",
    )
    exit_ = pl.col("exit")
    refuse_rows(new, ~exit_.is_in(list(EXITS)), f"have an exit outside {', '.join(EXITS)}", "new")
    refuse_rows(new, exit_.is_not_null() & (pl.col("ecl_minor") != 0), "exit with ECL", "new")
    refuse_rows(new, exit_.is_null() & pl.col("stage").is_null(), "have no stage", "new")
    _check_stage(new, "stage", "new")

    joined = prev.join(new, on="loan_id", how="full", suffix="_new", coalesce=True)
    in_prev = pl.col("stage").is_not_null()
    in_new = pl.col("ecl_minor_new").is_not_null()
    kind = (
        pl.when(~in_prev)
        .then(pl.lit("new_loans"))
        .when(~in_new)
        .then(pl.lit("repaid"))
        .when(exit_.is_not_null())
        .then(exit_)
        .when(pl.col("stage_new") != pl.col("stage"))
        .then(pl.lit("transfer_to_") + pl.col("stage_new").cast(pl.String))
        .otherwise(pl.lit("remeasurement"))
    )
    leaving = ~in_new | exit_.is_not_null()
    rows = (
        joined.filter(in_prev | exit_.is_null())
        .with_columns(
            product_code=pl.coalesce("product_code_new", "product_code"),
            kind=kind,
            stage_from=pl.col("stage"),
            stage_to=pl.when(leaving).then(None).otherwise(pl.col("stage_new")).cast(pl.Int8),
            amount_out_minor=-pl.col("ecl_minor").fill_null(0),
            amount_in_minor=pl.col("ecl_minor_new").fill_null(0),
        )
        .group_by("product_code", "kind", "stage_from", "stage_to")
        .agg(
            loans=pl.len().cast(pl.Int64),
            amount_out_minor=pl.col("amount_out_minor").sum(),
            amount_in_minor=pl.col("amount_in_minor").sum(),
        )
        .with_columns(amount_minor=pl.col("amount_out_minor") + pl.col("amount_in_minor"))
    )
    order = {k: i for i, k in enumerate(KINDS)}
    return rows.sort(
        pl.col("product_code"),
        pl.col("kind").replace_strict(order, return_dtype=pl.Int32),
        pl.col("stage_from"),
        pl.col("stage_to"),
        nulls_last=False,
    ).select(pl.col(name).cast(dtype) for name, dtype in MOVEMENT_COLUMNS.items())


@dataclass(frozen=True, slots=True, eq=False)
class ProvisionReport:
    """The report tables; amounts in minor units, a null label is the total row.

    - `stage_mix`: `stage` i8 (1, 2, 3, null = total), `loans` i64,
      `exposure_minor` i64, `ecl_minor` i64, `coverage_ratio` f64 (ECL /
      exposure; null when the exposure is not positive).
    - `ecl_by_product`: `product_code` str (sorted, null = total),
      `stage_1_minor`, `stage_2_minor`, `stage_3_minor`, `total_minor` i64.
    - `movements`: `line` str (MOVEMENT_LINES keys, in order), `label` str,
      `stage_1_minor`, `stage_2_minor`, `stage_3_minor`, `total_minor` i64.
    """

    stage_mix: pl.DataFrame
    ecl_by_product: pl.DataFrame
    movements: pl.DataFrame


def _ecl_by_stage(frame: pl.DataFrame) -> dict[int, int]:
    sums = frame.group_by("stage").agg(pl.col("ecl_minor").sum())
    found = dict(
        zip(sums.get_column("stage").to_list(), sums.get_column("ecl_minor").to_list(), strict=True)
    )
    return {s: int(found.get(s, 0)) for s in STAGES}


def _stage_mix_table(stage_mix: pl.DataFrame) -> pl.DataFrame:
    stages = pl.DataFrame({"stage": list(STAGES)}, schema={"stage": pl.Int8})
    by_stage = stages.join(
        stage_mix.group_by("stage").agg(pl.col("loans", "exposure_minor", "ecl_minor").sum()),
        on="stage",
        how="left",
        maintain_order="left",
    ).fill_null(0)
    total = by_stage.select(pl.lit(None, dtype=pl.Int8).alias("stage"), pl.exclude("stage").sum())
    exposure = pl.col("exposure_minor")
    return pl.concat([by_stage, total]).with_columns(
        coverage_ratio=pl.when(exposure > 0).then(pl.col("ecl_minor") / exposure)
    )


def _ecl_by_product_table(stage_mix: pl.DataFrame) -> pl.DataFrame:
    columns = [
        pl.col("ecl_minor").filter(pl.col("stage") == s).sum().alias(f"stage_{s}_minor")
        for s in STAGES
    ]
    by_product = stage_mix.group_by("product_code").agg(columns).sort("product_code")
    total = by_product.select(
        pl.lit(None, dtype=pl.String).alias("product_code"), pl.exclude("product_code").sum()
    )
    return pl.concat([by_product, total]).with_columns(
        total_minor=pl.sum_horizontal(_STAGE_COLUMNS)
    )


def _movement_table(
    opening: dict[int, int], movements: pl.DataFrame, closing: dict[int, int]
) -> pl.DataFrame:
    # Each movement row takes its out part from stage_from and puts its in part into stage_to.
    legs = pl.concat(
        [
            movements.select("kind", stage=pl.col("stage_from"), amount=pl.col("amount_out_minor")),
            movements.select("kind", stage=pl.col("stage_to"), amount=pl.col("amount_in_minor")),
        ]
    )
    refuse_rows(
        legs,
        pl.col("stage").is_null() & (pl.col("amount") != 0),
        "move an amount out of or into no stage",
        "movements",
    )
    sums = legs.drop_nulls("stage").group_by("kind", "stage").agg(pl.col("amount").sum())
    cells = {
        (kind, int(stage)): int(amount)
        for kind, stage, amount in sums.iter_rows()
        if isinstance(stage, int) and isinstance(amount, int)
    }
    rows: list[dict[str, Any]] = []
    for key, label in MOVEMENT_LINES:
        if key == "opening":
            values = opening
        elif key == "closing":
            values = closing
        else:
            values = {s: cells.get((key, s), 0) for s in STAGES}
        rows.append(
            {
                "line": key,
                "label": label,
                **{f"stage_{s}_minor": values[s] for s in STAGES},
                "total_minor": sum(values.values()),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "line": pl.String,
            "label": pl.String,
            **{c: pl.Int64 for c in _STAGE_COLUMNS},
            "total_minor": pl.Int64,
        },
        orient="row",
    )


def provision_tables(
    stage_mix: pl.DataFrame, movements: pl.DataFrame, opening: pl.DataFrame
) -> ProvisionReport:
    """The report of a period.

    `stage_mix`: (`product_code` str, `stage` i8, `loans` i64, `exposure_minor`
    i64, `ecl_minor` i64) at the report date. `movements`: the period's rows
    of `classify_movements` (at least `kind`, `stage_from`, `stage_to`,
    `amount_out_minor`, `amount_in_minor`). `opening`: the stage mix at the
    start of the period (at least `stage`, `ecl_minor`). Raises
    Ifrs9ReportUnreconciled unless opening + movements = closing in every stage.
    """
    stage_mix = conform(
        stage_mix, "stage mix", STAGE_MIX_COLUMNS, not_null=tuple(STAGE_MIX_COLUMNS)
    )
    _check_stage(stage_mix, "stage", "stage mix")
    opening = conform(
        opening,
        "opening",
        {"stage": pl.Int8, "ecl_minor": pl.Int64},
        not_null=("stage", "ecl_minor"),
    )
    _check_stage(opening, "stage", "opening")
    needed = {
        k: v
        for k, v in MOVEMENT_COLUMNS.items()
        if k not in ("product_code", "loans", "amount_minor")
    }
    movements = conform(
        movements, "movements", needed, not_null=("kind", "amount_out_minor", "amount_in_minor")
    )
    refuse_rows(movements, ~pl.col("kind").is_in(list(KINDS)), "have an unknown kind", "movements")

    opening_by_stage = _ecl_by_stage(opening)
    closing_by_stage = _ecl_by_stage(stage_mix)
    table = _movement_table(opening_by_stage, movements, closing_by_stage)
    moved = table.filter(~pl.col("line").is_in(["opening", "closing"])).select(
        pl.col(_STAGE_COLUMNS).sum()
    )
    gaps = {
        s: opening_by_stage[s] + int(moved.item(0, f"stage_{s}_minor")) - closing_by_stage[s]
        for s in STAGES
    }
    if any(gaps.values()):
        detail = ", ".join(
            f"stage {s}: opening {opening_by_stage[s]} + movements "
            f"{int(moved.item(0, f'stage_{s}_minor'))} != closing {closing_by_stage[s]}"
            for s in STAGES
            if gaps[s]
        )
        raise Ifrs9ReportUnreconciled(
            f"the loss allowance does not reconcile: {detail}",
            gaps={str(s): g for s, g in gaps.items()},
        )
    return ProvisionReport(
        stage_mix=_stage_mix_table(stage_mix),
        ecl_by_product=_ecl_by_product_table(stage_mix),
        movements=table,
    )


# --- workbook ---------------------------------------------------------------------


class _Format(Protocol):
    pass


class _Worksheet(Protocol):
    def write_string(self, row: int, col: int, value: str, fmt: _Format | None = None) -> int: ...
    def write_number(self, row: int, col: int, value: float, fmt: _Format | None = None) -> int: ...
    def write_blank(self, row: int, col: int, value: None, fmt: _Format | None = None) -> int: ...
    def set_column(self, first: int, last: int, width: float) -> int: ...
    def freeze_panes(self, row: int, col: int) -> None: ...


class _Workbook(Protocol):
    def add_worksheet(self, name: str) -> _Worksheet: ...
    def add_format(self, properties: dict[str, Any]) -> _Format: ...
    def close(self) -> None: ...


MAX_EXPONENT = 4


def _amount_format(exponent: int) -> str:
    return "#,##0" if exponent == 0 else "#,##0." + "0" * exponent


def write_xlsx(report: ProvisionReport, path: Path, currency_exponent: int = 2) -> None:
    """Write the three tables to `path`: sheets "Stage mix", "ECL by product"
    and "Movements". Amounts are numbers in major units (minor / 10 **
    `currency_exponent`) shown with that many decimals; coverage as a percentage."""
    if (
        isinstance(currency_exponent, bool)
        or not isinstance(currency_exponent, int)
        or not 0 <= currency_exponent <= MAX_EXPONENT
    ):
        raise Ifrs9InputInvalid(
            f"currency_exponent must be an int from 0 to {MAX_EXPONENT}, got {currency_exponent!r}"
        )
    scale = 10**currency_exponent
    workbook: _Workbook = xlsxwriter.Workbook(str(path))
    header = workbook.add_format(
        {"bold": True, "bg_color": "#DCE6F1", "bottom": 1, "text_wrap": True, "valign": "top"}
    )
    amount = workbook.add_format({"num_format": _amount_format(currency_exponent)})
    total_amount = workbook.add_format(
        {"num_format": _amount_format(currency_exponent), "bold": True, "top": 1}
    )
    count = workbook.add_format({"num_format": "#,##0"})
    total_count = workbook.add_format({"num_format": "#,##0", "bold": True, "top": 1})
    ratio = workbook.add_format({"num_format": "0.00%"})
    total_ratio = workbook.add_format({"num_format": "0.00%", "bold": True, "top": 1})
    label = workbook.add_format({})
    total_label = workbook.add_format({"bold": True, "top": 1})

    def sheet(name: str, headers: list[str], widths: list[float]) -> _Worksheet:
        ws = workbook.add_worksheet(name)
        for col, (text, width) in enumerate(zip(headers, widths, strict=True)):
            ws.write_string(0, col, text, header)
            ws.set_column(col, col, width)
        ws.freeze_panes(1, 0)
        return ws

    def cell(ws: _Worksheet, row: int, col: int, value: Any, kind: str, bold: bool) -> None:
        if kind == "label":
            ws.write_string(row, col, str(value), total_label if bold else label)
        elif value is None:
            ws.write_blank(row, col, None, total_ratio if bold else ratio)
        elif kind == "amount":
            ws.write_number(row, col, int(value) / scale, total_amount if bold else amount)
        elif kind == "count":
            ws.write_number(row, col, int(value), total_count if bold else count)
        else:
            ws.write_number(row, col, float(value), total_ratio if bold else ratio)

    ws = sheet("Stage mix", ["Stage", "Loans", "Exposure", "ECL", "Coverage"], [12, 10, 18, 18, 10])
    for r, row in enumerate(report.stage_mix.iter_rows(named=True), start=1):
        bold = row["stage"] is None
        cell(ws, r, 0, "Total" if bold else f"Stage {row['stage']}", "label", bold)
        cell(ws, r, 1, row["loans"], "count", bold)
        cell(ws, r, 2, row["exposure_minor"], "amount", bold)
        cell(ws, r, 3, row["ecl_minor"], "amount", bold)
        cell(ws, r, 4, row["coverage_ratio"], "ratio", bold)

    stage_headers = ["Stage 1", "Stage 2", "Stage 3", "Total"]
    amount_columns = [*_STAGE_COLUMNS, "total_minor"]
    ws = sheet("ECL by product", ["Product", *stage_headers], [28, 16, 16, 16, 16])
    for r, row in enumerate(report.ecl_by_product.iter_rows(named=True), start=1):
        bold = row["product_code"] is None
        cell(ws, r, 0, "Total" if bold else row["product_code"], "label", bold)
        for c, name in enumerate(amount_columns, start=1):
            cell(ws, r, c, row[name], "amount", bold)

    ws = sheet("Movements", ["Loss allowance", *stage_headers], [32, 16, 16, 16, 16])
    for r, row in enumerate(report.movements.iter_rows(named=True), start=1):
        bold = row["line"] in ("opening", "closing")
        cell(ws, r, 0, row["label"], "label", bold)
        for c, name in enumerate(amount_columns, start=1):
            cell(ws, r, c, row[name], "amount", bold)
    workbook.close()
