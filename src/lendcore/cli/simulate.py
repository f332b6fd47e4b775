"""`lendcore simulate`: build an institution, live its book, report on it."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendcore.cli.common import console, db, handles_errors, parse_iso_date
from lendcore.presentation import amount
from lendcore.services.simulate import (
    DEFAULT_SEED,
    SimulationResult,
    SimulationSettingInvalid,
    check_settings,
    run_simulation,
)
from lendcore.simulate.html import (
    headline_rows,
    product_rows,
    render,
    stage_rows,
    vintage_rows,
)

DEFAULT_REPORT = Path("lendcore-report.html")


def _stress(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise SimulationSettingInvalid(
            f"--stress {text!r} is not a number (1 is the decisions' own PDs, 2 doubles "
            "every borrower's default hazard)"
        ) from None


def _report_path(path: Path) -> Path:
    target = path.expanduser()
    if target.is_dir() or not target.parent.is_dir():
        raise SimulationSettingInvalid(
            f"--html {str(path)!r} must name a file in a directory that exists"
        )
    return target


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, show_header=any(header))
    # The row labels (a cohort's month, a product) are never cut short.
    label_width = max((len(row[0]) for row in rows if row), default=0)
    for n, column in enumerate(header):
        if n == 0:
            table.add_column(column, justify="left", min_width=label_width, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def summary_lines(result: SimulationResult) -> list[tuple[str, str]]:
    engine = result.engine_outcomes
    return [
        ("Seed", str(result.seed)),
        (
            "Stress",
            "none: each borrower defaults as their decision's PD says"
            if result.stress == 1
            else f"every borrower's default hazard × {result.stress}",
        ),
        (
            "Business dates",
            f"{result.started_on.isoformat()} to {result.closed_through.isoformat()} "
            f"({result.days} days closed by end of day)",
        ),
        (
            "Applications",
            f"{result.applications:,}: the engine approved {engine.get('approved', 0):,}, "
            f"referred {engine.get('referred', 0):,}, declined {engine.get('declined', 0):,}",
        ),
        (
            "Referred, decided by a credit approver",
            f"{result.referrals_approved:,} approved, {result.referrals_declined:,} declined",
        ),
        (
            "Loans booked and disbursed",
            f"{result.loans_booked:,}"
            + (f" ({result.booking_refused} refused at booking)" if result.booking_refused else ""),
        ),
        ("Borrowers", ", ".join(f"{k} {v:,}" for k, v in result.personas.items()) or "-"),
        ("Payments", ", ".join(f"{k} {v:,}" for k, v in result.payments.items() if v) or "-"),
        ("Write-offs (maker-checker)", f"{result.write_offs:,}"),
        ("IFRS 9 stage moves", f"{result.stage_moves:,}"),
        (
            "Change in ECL",
            ", ".join(f"{amount(v, c)} {c}" for c, v in result.ecl_change_minor.items()) or "-",
        ),
    ]


@handles_errors
def simulate_command(
    ctx: typer.Context,
    loan_count: int = typer.Option(300, "--loans", help="Loans to book (1 to 20,000)."),
    days: int = typer.Option(120, "--days", help="Business days to close (1 to 3,650)."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="The same seed lives the same book."),
    start: str | None = typer.Option(
        None, "--start", help="First business date (YYYY-MM-DD); default: the database's."
    ),
    stress: str = typer.Option(
        "1", "--stress", help="Multiply every borrower's default hazard (2: a downturn)."
    ),
    html_path: Path = typer.Option(
        DEFAULT_REPORT, "--html", help="Where to write the HTML report with its charts."
    ),
) -> None:
    """Build a lender on an empty database, book loans through the real decision
    engine and its controls, close DAYS days of end of day while borrowers repay
    (or not) as their PD says, then print the portfolio report and write it as HTML."""
    # Everything checked before the database is opened: bad input creates nothing.
    stress_value = _stress(stress)
    check_settings(loan_count, days, stress_value)
    report_path = _report_path(html_path)
    first_day = parse_iso_date(start)
    database = db(ctx)
    console.rule("[bold]lendcore simulate")
    console.print(f"Database: {database.url}", soft_wrap=True)
    with Progress(
        TextColumn("[bold]Living the book"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("days", total=days)
        result = run_simulation(
            database,
            loan_count=loan_count,
            days=days,
            seed=seed,
            start=first_day,
            stress=stress_value,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    report = result.report
    lines = summary_lines(result)
    facts = Table(title="Simulation", show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in lines:
        facts.add_row(label, value)
    console.print(facts)
    as_of = report.as_of.isoformat() if report.as_of else "-"
    _print_table(f"Portfolio as of the close of {as_of}", *headline_rows(report))
    _print_table("By product", *product_rows(report))
    _print_table("IFRS 9 stage mix", *stage_rows(report))
    _print_table(
        "Vintages: cumulative share 90+ days past due or written off, by months on book",
        *vintage_rows(report),
    )
    report_path.write_text(
        render(
            report,
            result.history,
            title=f"lendcore portfolio report · simulation seed {result.seed}",
            summary=lines,
        ),
        encoding="utf-8",
    )
    console.print(f"Simulated in {result.seconds:.1f} s")
    console.print(f"HTML report: [bold]{report_path.resolve()}[/]", soft_wrap=True)
