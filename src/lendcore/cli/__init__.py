"""The `lendcore` command: thin commands that parse, call one service, render."""

from __future__ import annotations

import sys

import typer

from lendcore.cli.applications import application_app, decision_app, policy_app
from lendcore.cli.approvals import approval_app
from lendcore.cli.audit import audit_app
from lendcore.cli.borrowers import borrower_app, screening_app, watchlist_app
from lendcore.cli.common import (
    JsonOption,
    State,
    console,
    db,
    handles_errors,
    parse_iso_date,
    print_json,
)
from lendcore.cli.demo import demo_command
from lendcore.cli.eod import eod_app, gl_app
from lendcore.cli.events import events_app, webhook_app
from lendcore.cli.identity import apikey_app, user_app
from lendcore.cli.ledger import account_app, entry_app, hold_app, ledger_app
from lendcore.cli.loans import loan_app
from lendcore.cli.models import model_app
from lendcore.cli.products import product_app
from lendcore.cli.reports import report_app
from lendcore.cli.schedule import schedule_app
from lendcore.cli.simulate import simulate_command
from lendcore.errors import LendcoreError
from lendcore.services import business_date as business_date_service
from lendcore.store import migrations
from lendcore.store.database import DB_URL_ENV, DEFAULT_DB_URL, Database, create_db_engine

app = typer.Typer(
    name="lendcore",
    help="lendcore: the system of record and of decision for a lender.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
date_app = typer.Typer(help="The institution's business date.", no_args_is_help=True)


@app.callback()
def root(
    ctx: typer.Context,
    db_url: str = typer.Option(
        DEFAULT_DB_URL,
        "--db",
        envvar=DB_URL_ENV,
        help="Database URL: sqlite:///FILE or postgresql://user@host/db.",
        show_default=True,
    ),
    as_user: str | None = typer.Option(
        None,
        "--as",
        envvar="LENDCORE_AS",
        help="Act as this user (local trust); default: the local operator, with every role.",
    ),
) -> None:
    ctx.obj = State(db_url=db_url, as_user=as_user)
    ctx.call_on_close(ctx.obj.close)


@db_app.command("upgrade")
@handles_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the latest schema (creates it when new)."""
    state: State = ctx.find_root().obj
    database = Database(engine=create_db_engine(state.db_url), url=state.db_url)
    try:
        migrations.upgrade(database)
    finally:
        database.dispose()
    console.print(f"Database at revision {migrations.head_revision()}")


@date_app.command("show")
@handles_errors
def date_show(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """Show the business date."""
    today = business_date_service.business_date(db(ctx))
    if json_out:
        print_json({"business_date": today})
    else:
        console.print(f"Business date: [bold]{today.isoformat()}[/]")


@date_app.command("set")
@handles_errors
def date_set(ctx: typer.Context, new_date: str) -> None:
    """Move the business date forward to NEW_DATE (YYYY-MM-DD); never backwards."""
    target = parse_iso_date(new_date)
    assert target is not None
    moved = business_date_service.set_business_date(db(ctx), target)
    console.print(f"Business date: [bold]{moved.isoformat()}[/]")


@date_app.command("advance")
@handles_errors
def date_advance(ctx: typer.Context, days: int = typer.Option(1, "--days")) -> None:
    """Advance the business date (end of day will do this once it runs the book)."""
    moved = business_date_service.advance_business_date(db(ctx), days)
    console.print(f"Business date: [bold]{moved.isoformat()}[/]")


@app.command("serve")
@handles_errors
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="Processes (PostgreSQL); SQLite: keep 1."),
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
    import os

    import uvicorn

    state: State = ctx.find_root().obj
    # Bootstrap (and print the first admin's credentials) before serving.
    state.db()
    state.close()
    os.environ["LENDCORE_DB_URL"] = state.db_url
    uvicorn.run(
        "lendcore.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


app.add_typer(db_app, name="db")
app.add_typer(date_app, name="date")
app.add_typer(account_app, name="account")
app.add_typer(entry_app, name="entry")
app.add_typer(hold_app, name="hold")
app.add_typer(ledger_app, name="ledger")
app.add_typer(product_app, name="product")
app.add_typer(model_app, name="model")
app.add_typer(loan_app, name="loan")
app.add_typer(eod_app, name="eod")
app.add_typer(gl_app, name="gl")
app.add_typer(report_app, name="report")
app.add_typer(application_app, name="application")
app.add_typer(decision_app, name="decision")
app.add_typer(policy_app, name="policy")
app.add_typer(borrower_app, name="borrower")
app.add_typer(watchlist_app, name="watchlist")
app.add_typer(screening_app, name="screening")
app.add_typer(schedule_app, name="schedule")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(approval_app, name="approval")
app.add_typer(audit_app, name="audit")
app.add_typer(events_app, name="events")
app.add_typer(webhook_app, name="webhook")
app.command("demo")(demo_command)
app.command("simulate")(simulate_command)


def main() -> None:
    try:
        app()
    except LendcoreError as error:  # raised outside a command (e.g. opening the database)
        print(f"error[{error.code}]: {error.message}", file=sys.stderr)
        sys.exit(1)
