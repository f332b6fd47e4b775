"""`lendcore report provision`: the IFRS 9 provision report of a period."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, parse_iso_date, print_json
from lendcore.errors import InvalidInput
from lendcore.ifrs9.report import write_xlsx
from lendcore.money import currency as lookup_currency
from lendcore.presentation import amount
from lendcore.services import provisions as provision_service

report_app = typer.Typer(help="Reports for risk, finance and the auditor.", no_args_is_help=True)


@report_app.command("provision")
@handles_errors
def provision(
    ctx: typer.Context,
    on: str = typer.Option(..., "--date", help="A closed business date (YYYY-MM-DD)."),
    since: str | None = typer.Option(
        None, "--from", help="First day of the period (default: the 1st of --date's month)."
    ),
    xlsx: Path | None = typer.Option(
        None, "--xlsx", help="Also write the report to this Excel file (one per currency)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Stage mix, ECL by stage and product, and the loss allowance's movements."""
    end = parse_iso_date(on)
    if end is None:
        raise InvalidInput("--date is required")
    period = provision_service.provision_report(db(ctx), end, parse_iso_date(since))
    written = []
    if xlsx is not None:
        for part in period.reports:
            path = (
                xlsx if len(period.reports) == 1 else xlsx.with_stem(f"{xlsx.stem}-{part.currency}")
            )
            write_xlsx(part.report, path, lookup_currency(part.currency).exponent)
            written.append(str(path))
    if json_out:
        print_json({**provision_service.report_doc(period), "xlsx": written})
        return
    for part in period.reports:
        _print(part.currency, part.report.stage_mix, "Stage mix", period)
        _print(part.currency, part.report.ecl_by_product, "ECL by product", period)
        _print(
            part.currency, part.report.movements.drop("line"), "Loss allowance movements", period
        )
    for name in written:
        console.print(f"Written: {name}")


def _print(
    currency: str, frame: pl.DataFrame, title: str, period: provision_service.ProvisionPeriod
) -> None:
    table = Table(title=f"{title} · {currency} · {period.since} to {period.on}")
    for column in frame.columns:
        label = column.removesuffix("_minor").replace("_", " ")
        table.add_column(label, justify="left" if column in ("label", "product_code") else "right")
    for row in frame.iter_rows(named=True):
        cells = []
        for column, value in row.items():
            if value is None:
                cells.append("total" if column in ("stage", "product_code") else "-")
            elif column.endswith("_minor"):
                cells.append(amount(int(value), currency))
            elif column == "coverage_ratio":
                cells.append(f"{value:.2%}")
            else:
                cells.append(f"{value:,}" if isinstance(value, int) else str(value))
        table.add_row(*cells)
    console.print(table)
