"""`lendcore demo`: the main job on the embedded default database."""

from __future__ import annotations

import typer

from lendcore.cli.common import console, db, handles_errors
from lendcore.cli.ledger import print_trial_balance, print_verify
from lendcore.services import ledger as ledger_service
from lendcore.services.demo import run_demo
from lendcore.services.verify import verify_ledger


@handles_errors
def demo_command(ctx: typer.Context) -> None:
    """Open a chart of accounts, book a lender's first month, print the trial balance and verify."""
    database = db(ctx)
    console.rule("[bold]lendcore demo")
    console.print(f"Database: {database.url}")
    result = run_demo(database)
    console.print(
        f"Accounts opened: {result.accounts_opened} · entries booked: {result.entries_booked}"
        f" · replayed (booked by an earlier run): {result.entries_replayed}"
    )
    print_trial_balance(ledger_service.trial_balance(database, roll_up=True))
    report = verify_ledger(database)
    print_verify(report)
    if not report.ok:
        raise typer.Exit(1)
