"""`lendcore demo`: the main job on the embedded default database."""

from __future__ import annotations

from collections import defaultdict

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendcore.cli.common import console, db, handles_errors
from lendcore.cli.ledger import print_trial_balance, print_verify
from lendcore.presentation import amount
from lendcore.services import audit, loans
from lendcore.services import ledger as ledger_service
from lendcore.services.demo import DAYS, run_demo
from lendcore.services.demo import LOANS as DEMO_LOANS
from lendcore.services.verify import verify_ledger
from lendcore.store.database import Database


def print_portfolio(database: Database) -> None:
    """Loans by product and status, with arrears buckets: what a risk manager reads first."""
    rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    after = 0
    while True:
        page = loans.list_loans(database, after_id=after, limit=500)
        for s in page:
            bucket = "current"
            if s.days_past_due:
                bucket = next(
                    (
                        f"{lo}-{hi}"
                        for lo, hi in ((1, 30), (31, 60), (61, 90))
                        if lo <= s.days_past_due <= hi
                    ),
                    "91+",
                )
            key = (
                s.product_code,
                s.currency,
                s.status if s.status != "active" else f"active, {bucket}",
            )
            rows[key][0] += 1
            rows[key][1] += s.principal_outstanding_minor
            rows[key][2] += s.overdue_minor
        if len(page) < 500:
            break
        after = page[-1].id
    table = Table(title="Portfolio")
    for column in ("Product", "Cur", "Status", "Loans", "Principal outstanding", "Overdue"):
        table.add_column(
            column,
            justify="right" if column in ("Loans", "Principal outstanding", "Overdue") else "left",
        )
    for (product, cur, status), (count, outstanding, overdue) in sorted(rows.items()):
        style = (
            "red"
            if "91+" in status or status == "written-off"
            else ("yellow" if "-" in status else None)
        )
        table.add_row(
            product,
            cur,
            status,
            str(count),
            amount(outstanding, cur),
            amount(overdue, cur),
            style=style,
        )
    console.print(table)


@handles_errors
def demo_command(
    ctx: typer.Context,
    loan_count: int = typer.Option(DEMO_LOANS, "--loans", min=3, max=10_000, help="Loans to book."),
    days: int = typer.Option(DAYS, "--days", min=1, max=3_650, help="Days to live."),
) -> None:
    """Run a small lender's first months through the real commands, then print the
    portfolio, the trial balance and the verification of the ledger and the audit log."""
    database = db(ctx)
    console.rule("[bold]lendcore demo")
    console.print(f"Database: {database.url}")
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
        result = run_demo(
            database,
            lambda done, total: bar.update(task, completed=done),
            loan_count=loan_count,
            days=days,
        )
    if result.already_run:
        console.print("This database holds the demo already: nothing booked again.")
    else:
        console.print(
            f"Applications: {result.applications} (engine: {result.approved} approved, "
            f"{result.referred} referred, {result.declined} declined) · "
            f"loans booked: {result.loans_booked} · repayments: {result.repayments} · "
            f"days lived: {result.days} · ledger entries: {result.ledger_entries}"
        )
    print_portfolio(database)
    print_trial_balance(ledger_service.trial_balance(database, roll_up=True))
    report = verify_ledger(database)
    print_verify(report)
    chain = audit.verify_audit(database)
    console.print(
        f"Audit log: {chain.records_checked} records, chain {'intact' if chain.ok else 'BROKEN'}"
    )
    if not report.ok or not chain.ok:
        raise typer.Exit(1)
