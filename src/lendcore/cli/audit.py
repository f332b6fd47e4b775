"""`lendcore audit ...`: the auditor reads the command log and checks its chain."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, parse_iso_date, print_json
from lendcore.presentation import audit_doc
from lendcore.services import audit

audit_app = typer.Typer(help="The command audit log.", no_args_is_help=True)


@audit_app.command("list")
@handles_errors
def audit_list(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor"),
    command: str | None = typer.Option(None, "--command"),
    outcome: str | None = typer.Option(None, "--outcome", help="ok, refused or failed"),
    on: str | None = typer.Option(None, "--date", help="Business date YYYY-MM-DD."),
    after: int = typer.Option(0, "--after"),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """List audit records, oldest first, with filters."""
    found = audit.list_audit(
        db(ctx),
        actor=actor,
        command_name=command,
        outcome=outcome,
        business_date=parse_iso_date(on),
        after_seq=after,
        limit=limit,
    )
    if json_out:
        next_after = found[-1].seq if len(found) == limit else None
        print_json({"records": [audit_doc(e) for e in found], "next_after": next_after})
        return
    table = Table(title="Command audit log")
    for column in ("#", "Recorded (UTC)", "Business date", "Actor", "Command", "Outcome"):
        table.add_column(column)
    for e in found:
        outcome_text = e.outcome if e.error_code is None else f"{e.outcome} ({e.error_code})"
        style = {"ok": "green", "refused": "red", "failed": "yellow"}.get(e.outcome, "")
        table.add_row(
            str(e.seq),
            e.recorded_at[:19],
            e.business_date.isoformat(),
            e.actor,
            e.command,
            f"[{style}]{outcome_text}[/]",
        )
    console.print(table)


@audit_app.command("verify")
@handles_errors
def audit_verify(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """Recompute the audit log's hash chain; non-zero exit if it was tampered with."""
    result = audit.verify_audit(db(ctx))
    if json_out:
        print_json(
            {
                "ok": result.ok,
                "records_checked": result.records_checked,
                "head_seq": result.head_seq,
                "problems": result.problems,
            }
        )
    elif result.ok:
        console.print(f"Audit chain OK: {result.records_checked} records")
    else:
        for problem in result.problems:
            console.print(f"[red]{problem}[/]")
    if not result.ok:
        print(f"error[AUDIT_CHAIN_BROKEN]: {result.problems[0]}", file=sys.stderr)
        raise typer.Exit(1)
