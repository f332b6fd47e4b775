"""`lendcore approval ...`: the checker's side of maker-checker."""

from __future__ import annotations

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, print_json
from lendcore.presentation import approval_doc
from lendcore.services import approvals
from lendcore.services.approvals import PendingApproval

approval_app = typer.Typer(help="Commands waiting for a second person.", no_args_is_help=True)


def print_approval(a: PendingApproval) -> None:
    console.print(f"Approval {a.id} · {a.command} · [bold]{a.status}[/] · maker {a.maker}")
    console.print(f"  {a.summary}")
    if a.checker:
        console.print(f"  decided by {a.checker} at {a.decided_at}: {a.note or ''}")
    if a.result:
        console.print(f"  result: {dict(a.result)}")


@approval_app.command("list")
@handles_errors
def approval_list(
    ctx: typer.Context,
    status: str | None = typer.Option("pending", "--status", help="pending, executed, rejected"),
    command: str | None = typer.Option(None, "--command"),
    after: int = typer.Option(0, "--after"),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """List approvals (pending ones by default)."""
    found = approvals.list_approvals(
        db(ctx), status=status, command_name=command, after_id=after, limit=limit
    )
    if json_out:
        print_json({"approvals": [approval_doc(a) for a in found]})
        return
    table = Table(title="Approvals")
    for column in ("Id", "Command", "Summary", "Maker", "Status", "Checker"):
        table.add_column(column)
    for a in found:
        table.add_row(str(a.id), a.command, a.summary, a.maker, a.status, a.checker or "")
    console.print(table)


@approval_app.command("show")
@handles_errors
def approval_show(ctx: typer.Context, approval_id: int, json_out: bool = JsonOption) -> None:
    """Show one approval."""
    found = approvals.get_approval(db(ctx), approval_id)
    if json_out:
        print_json(approval_doc(found))
    else:
        print_approval(found)


@approval_app.command("approve")
@handles_errors
def approval_approve(
    ctx: typer.Context,
    approval_id: int,
    note: str = typer.Option("", "--note"),
    json_out: bool = JsonOption,
) -> None:
    """Approve: the command executes now. Never by its maker."""
    done = approvals.approve(db(ctx), approval_id, note)
    if json_out:
        print_json(approval_doc(done))
    else:
        print_approval(done)


@approval_app.command("reject")
@handles_errors
def approval_reject(
    ctx: typer.Context,
    approval_id: int,
    note: str = typer.Option(..., "--note", help="Why: required."),
    json_out: bool = JsonOption,
) -> None:
    """Reject: nothing executes."""
    done = approvals.reject(db(ctx), approval_id, note)
    if json_out:
        print_json(approval_doc(done))
    else:
        print_approval(done)
