"""`lendcore eod run|status` and `lendcore gl drill`: closing business days."""

from __future__ import annotations

from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, parse_iso_date, print_json
from lendcore.presentation import amount
from lendcore.services import eod as eod_service
from lendcore.services.eod import STEPS, DayClose

eod_app = typer.Typer(help="End of day: close business days for the whole book.")
gl_app = typer.Typer(help="The general ledger seen from the loans behind it.")


@eod_app.command("run")
@handles_errors
def eod_run(
    ctx: typer.Context,
    to: str | None = typer.Option(
        None, "--to", help="Close every day up to and including DATE (YYYY-MM-DD)."
    ),
    engine: str = typer.Option("local", "--engine", help="local (Polars) or spark."),
    json_out: bool = JsonOption,
) -> None:
    """Close the business day (or every day up to --to) and advance the date."""
    database = db(ctx)
    target = parse_iso_date(to)
    days = eod_service.check_target(database, target) if target else [None]
    closes: list[DayClose] = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=json_out,
    ) as bar:
        task = bar.add_task("End of day", total=len(days) * len(STEPS))
        for day in days:
            label = "today" if day is None else day.isoformat()

            def step(name: str, label: str = label) -> None:
                bar.update(task, advance=1, description=f"{label}: {name}")

            close = eod_service.run_day(database, engine=engine, progress=step)
            closes.append(close)
            bar.update(task, completed=len(closes) * len(STEPS))
    if json_out:
        print_json({"runs": [c.doc() for c in closes]})
        return
    _print_summary(closes)


def _print_summary(closes: list[DayClose]) -> None:
    first, last = closes[0], closes[-1]
    span = first.business_date.isoformat()
    if len(closes) > 1:
        span += f" to {last.business_date.isoformat()}"
    table = Table(title=f"End of day · {span} · {len(closes)} day(s) · engine {last.engine}")
    table.add_column("")
    table.add_column("", justify="right")
    rows: list[tuple[str, str]] = [
        ("Loans processed (last day)", f"{last.loans_processed:,}"),
        ("Loans changed (last day)", f"{last.loans_changed:,}"),
        ("Left to live operations", f"{sum(c.loans_left_to_live_operations for c in closes):,}"),
        ("New arrears", f"{sum(c.new_arrears for c in closes):,}"),
        ("Cures", f"{sum(c.cures for c in closes):,}"),
        ("Closed as instalments fell due", f"{sum(c.closed_by_time for c in closes):,}"),
        ("Stage moves", f"{sum(c.stage_moves for c in closes):,}"),
        ("Ledger entries", f"{sum(len(c.entries) for c in closes):,}"),
    ]
    for label, field in (
        ("Interest accrued", "interest_accrued_minor"),
        ("Penalties and late fees", "penalty_minor"),
        ("Change in ECL", "ecl_change_minor"),
    ):
        totals: dict[str, int] = {}
        for close in closes:
            for currency, value in getattr(close, field).items():
                totals[currency] = totals.get(currency, 0) + value
        shown = ", ".join(f"{amount(v, c)} {c}" for c, v in sorted(totals.items())) or "-"
        rows.append((label, shown))
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    timing = Table(title="Time per step (all days)")
    timing.add_column("Step")
    timing.add_column("Seconds", justify="right")
    for step in STEPS:
        spent = sum(c.seconds.get(step, 0.0) for c in closes)
        timing.add_row(step, f"{spent:.3f}")
    console.print(timing)


@eod_app.command("status")
@handles_errors
def eod_status(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """The business date, the last run and whether a run is under way."""
    status = eod_service.status(db(ctx))
    doc: dict[str, Any] = {
        "business_date": status.business_date.isoformat(),
        "under_way": status.under_way,
        "last_run": status.last_run,
    }
    if json_out:
        print_json(doc)
        return
    table = Table(title="End of day")
    table.add_column("")
    table.add_column("")
    table.add_row("Business date", doc["business_date"])
    table.add_row("Run under way", "yes" if status.under_way else "no")
    last = status.last_run
    if last is None:
        table.add_row("Last run", "none yet")
    else:
        summary = last["summary"]
        table.add_row("Last closed date", last["business_date"])
        table.add_row("Finished at", last["finished_at"])
        table.add_row("By", f"{last['actor']} ({last['engine']})")
        table.add_row("Loans processed", f"{summary['loans_processed']:,}")
        table.add_row("Ledger entries", ", ".join(str(e) for e in summary["entries"]) or "-")
    console.print(table)


@gl_app.command("drill")
@handles_errors
def gl_drill(
    ctx: typer.Context,
    entry_id: int = typer.Argument(..., help="A summarised end-of-day journal entry."),
    json_out: bool = JsonOption,
) -> None:
    """The loans behind a summarised end-of-day entry, each with its part per role."""
    entry, lines = eod_service.drill(db(ctx), entry_id)
    if json_out:
        print_json(
            {
                "entry_id": entry["id"],
                "description": entry["description"],
                "currency": entry["currency"],
                "loans": [
                    {
                        "loan_id": line.loan_id,
                        "amounts": {
                            r: amount(v, entry["currency"]) for r, v in line.deltas.items()
                        },
                    }
                    for line in lines
                ],
            }
        )
        return
    roles = sorted({role for line in lines for role in line.deltas})
    table = Table(title=f"Entry {entry['id']} · {entry['description']} · {len(lines)} loan(s)")
    table.add_column("Loan", justify="right")
    for role in roles:
        table.add_column(role.replace("_", " "), justify="right")
    for line in lines:
        table.add_row(
            str(line.loan_id), *[amount(line.deltas.get(r, 0), entry["currency"]) for r in roles]
        )
    table.add_section()
    table.add_row(
        "total",
        *[amount(sum(line.deltas.get(r, 0) for line in lines), entry["currency"]) for r in roles],
    )
    console.print(table)
