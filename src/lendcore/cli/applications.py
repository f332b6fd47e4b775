"""`lendcore application|decision|policy ...`: origination from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, print_json
from lendcore.errors import InvalidInput
from lendcore.presentation import (
    amount,
    application_doc,
    approval_doc,
    decision_doc,
    loan_doc,
    policy_doc,
    replay_doc,
)
from lendcore.services import applications as app_service
from lendcore.services import policies as policy_service
from lendcore.services.applications import Application, ApplicationView, StoredDecision

application_app = typer.Typer(
    help="Credit applications: enter, decide, approve, book.", no_args_is_help=True
)
decision_app = typer.Typer(help="Stored credit decisions: show, replay.", no_args_is_help=True)
policy_app = typer.Typer(help="Credit policy: decision tables, versioned.", no_args_is_help=True)


def _print_application(a: Application) -> None:
    table = Table(title=f"Application {a.id} · {a.status}")
    table.add_column("")
    table.add_column("")
    for label, value in (
        ("Borrower", str(a.borrower_id)),
        ("Product", f"{a.product_code} v{a.product_version}"),
        ("Amount", f"{amount(a.amount_minor, a.currency)} {a.currency}"),
        ("Term", str(a.term)),
        ("Purpose", a.purpose),
        (
            "Outcome",
            f"{a.outcome or '-'} (decision {a.decision_id or '-'}, by {a.decided_by or '-'})",
        ),
        ("Entered by", a.entered_by),
        ("Loan", str(a.loan_id or "-")),
        ("Expires on", a.expires_on.isoformat()),
    ):
        table.add_row(label, value)
    console.print(table)


def _print_decision(d: StoredDecision) -> None:
    doc = decision_doc(d)
    table = Table(title=f"Decision {d.id} ({d.kind}) · {d.outcome}")
    table.add_column("")
    table.add_column("")
    for key in ("score", "pd", "band", "annual_rate", "instalment", "dti", "pti", "actor", "note"):
        table.add_row(key, str(doc[key]))
    table.add_row("policy", d.policy_version[:16])
    table.add_row("model", d.model_version[:16])
    if doc["challenger"]:
        table.add_row(
            "challenger", f"score {doc['challenger']['score']}, pd {doc['challenger']['pd']}"
        )
    console.print(table)
    if doc["reasons"]:
        reasons = Table(title="Reasons")
        reasons.add_column("Code")
        reasons.add_column("Text")
        reasons.add_column("From")
        for r in doc["reasons"]:
            reasons.add_row(r["code"], r["text"], r["source"])
        console.print(reasons)


def _show(a: Application, json_out: bool) -> None:
    if json_out:
        print_json(application_doc(a))
    else:
        _print_application(a)


@application_app.command("submit")
@handles_errors
def application_submit(
    ctx: typer.Context,
    borrower: int = typer.Option(..., "--borrower", help="Borrower id."),
    product: str = typer.Option(..., "--product"),
    amount_text: str = typer.Option(..., "--amount", help="e.g. 10000.00"),
    term: int = typer.Option(..., "--term", help="Number of instalments."),
    purpose: str = typer.Option(..., "--purpose"),
    income: str = typer.Option(..., "--income", help="Declared monthly income, e.g. 4200.00."),
    obligations: str = typer.Option("0", "--obligations", help="Declared monthly debt payments."),
    profile: str = typer.Option(
        "{}", "--profile", help="Credit profile JSON (scorecard characteristics)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Enter an application; the engine decides it at once."""
    try:
        credit_profile = json.loads(profile)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--profile is not valid JSON: {exc.msg}") from exc
    if not isinstance(credit_profile, dict):
        raise InvalidInput("--profile must be a JSON object")
    submitted = app_service.submit_application(
        db(ctx),
        borrower,
        product,
        amount_text,
        term,
        purpose=purpose,
        monthly_income=income,
        monthly_obligations=obligations,
        credit_profile=credit_profile,
    )
    _show(submitted, json_out)


@application_app.command("show")
@handles_errors
def application_show(ctx: typer.Context, application_id: int, json_out: bool = JsonOption) -> None:
    """An application, its champion's and challenger's results, and its decisions."""
    database = db(ctx)
    view = app_service.view_application(database, application_id)
    if json_out:
        print_json({**application_doc(view.application), **view.models_doc()})
        return
    _print_application(view.application)
    _print_models(view)
    for d in app_service.decisions_of(database, application_id):
        _print_decision(d)


def _print_models(view: ApplicationView) -> None:
    """Champion and challenger side by side: score, PD and the reasons that cost most."""
    results = [r for r in (view.champion, view.challenger) if r is not None]
    if not results:
        return
    table = Table(title="Champion and challenger")
    table.add_column("")
    for r in results:
        table.add_column(f"{r.role} ({r.kind} {r.version[:12]})")
    table.add_row("Score", *[str(r.score) for r in results])
    table.add_row("PD", *[r.pd for r in results])
    for i in range(max(len(r.reasons) for r in results)):
        table.add_row(
            f"Reason {i + 1}",
            *[
                f"{r.reasons[i].code} (-{r.reasons[i].points_lost}): {r.reasons[i].text}"
                if i < len(r.reasons)
                else ""
                for r in results
            ],
        )
    if view.challenger is None:
        table.caption = "no challenger scored this application"
    console.print(table)


@application_app.command("list")
@handles_errors
def application_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status"),
    borrower: int | None = typer.Option(None, "--borrower"),
    after: int = typer.Option(0, "--after"),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    found = app_service.list_applications(
        db(ctx), status=status, borrower_id=borrower, after_id=after, limit=limit
    )
    if json_out:
        print_json(
            {
                "applications": [application_doc(a) for a in found],
                "next_after": found[-1].id if len(found) == limit else None,
            }
        )
        return
    table = Table(title="Applications")
    for column in ("Id", "Borrower", "Product", "Amount", "Term", "Status", "Entered by"):
        table.add_column(column)
    for a in found:
        table.add_row(
            str(a.id),
            str(a.borrower_id),
            a.product_code,
            f"{amount(a.amount_minor, a.currency)} {a.currency}",
            str(a.term),
            a.status,
            a.entered_by,
        )
    console.print(table)


@application_app.command("approve")
@handles_errors
def application_approve(
    ctx: typer.Context,
    application_id: int,
    note: str = typer.Option(..., "--note"),
    json_out: bool = JsonOption,
) -> None:
    """Approve a referred application (a credit approver who did not enter it)."""
    _show(app_service.approve_application(db(ctx), application_id, note), json_out)


@application_app.command("decline")
@handles_errors
def application_decline(
    ctx: typer.Context,
    application_id: int,
    note: str = typer.Option(..., "--note"),
    json_out: bool = JsonOption,
) -> None:
    """Decline a referred application."""
    _show(app_service.decline_application(db(ctx), application_id, note), json_out)


@application_app.command("override")
@handles_errors
def application_override(
    ctx: typer.Context,
    application_id: int,
    outcome: str = typer.Option(..., "--outcome", help="approve or decline"),
    reason: str = typer.Option(..., "--reason"),
    json_out: bool = JsonOption,
) -> None:
    """Ask to override the engine's outcome; a second person approves the override."""
    pending = app_service.override_decision(db(ctx), application_id, outcome, reason)
    if json_out:
        print_json(approval_doc(pending))
    else:
        console.print(f"Approval {pending.id} pending: {pending.summary}")


@application_app.command("withdraw")
@handles_errors
def application_withdraw(
    ctx: typer.Context,
    application_id: int,
    reason: str = typer.Option(..., "--reason"),
    json_out: bool = JsonOption,
) -> None:
    _show(app_service.withdraw_application(db(ctx), application_id, reason), json_out)


@application_app.command("book")
@handles_errors
def application_book(ctx: typer.Context, application_id: int, json_out: bool = JsonOption) -> None:
    """Book the loan of an approved application (the controls are checked again now)."""
    loan = app_service.book_application(db(ctx), application_id)
    if json_out:
        print_json(loan_doc(loan))
    else:
        console.print(
            f"Loan {loan.id} booked: {amount(loan.approved_minor, loan.currency)} {loan.currency} at {loan.terms.annual_rate}"
        )


@decision_app.command("show")
@handles_errors
def decision_show(ctx: typer.Context, decision_id: int, json_out: bool = JsonOption) -> None:
    found = app_service.get_decision(db(ctx), decision_id)
    if json_out:
        print_json(decision_doc(found))
    else:
        _print_decision(found)


@decision_app.command("replay")
@handles_errors
def decision_replay(ctx: typer.Context, decision_id: int, json_out: bool = JsonOption) -> None:
    """Run a stored decision again with its stored inputs and versions."""
    result = app_service.replay_decision(db(ctx), decision_id)
    if json_out:
        print_json(replay_doc(result))
    elif result.reproduced:
        console.print(
            f"[green]Decision {decision_id} reproduced exactly[/green] (outcome {result.replayed['outcome']}, score {result.replayed['score']})."
        )
    else:
        console.print(f"[red]Decision {decision_id} did not reproduce:[/red]")
        for line in result.differences:
            console.print(f"  {line}")
    if not result.reproduced:
        raise typer.Exit(1)


@policy_app.command("load")
@handles_errors
def policy_load(ctx: typer.Context, path: Path, json_out: bool = JsonOption) -> None:
    """Submit a policy document (JSON decision tables); a second risk manager activates it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
    pending = policy_service.submit_policy(db(ctx), text)
    if json_out:
        print_json(approval_doc(pending))
    else:
        console.print(f"Approval {pending.id} pending: {pending.summary}")


@policy_app.command("show")
@handles_errors
def policy_show(
    ctx: typer.Context, version: str | None = typer.Argument(None), json_out: bool = JsonOption
) -> None:
    """The active policy (or a version), with its rules."""
    found = policy_service.get_policy(db(ctx), version)
    if json_out:
        print_json(policy_doc(found, with_document=True))
        return
    console.print(
        f"Policy {found.name!r} {found.version[:16]} {'(active)' if found.active else ''}"
    )
    for part in ("eligibility", "pricing"):
        _print_table(part, found.document[part])


def _print_table(part: str, graph: dict[str, Any]) -> None:
    node = next(n for n in graph["nodes"] if n["type"] == "decisionTableNode")
    content = node["content"]
    table = Table(title=f"{part} ({content['hitPolicy']})")
    columns = [(c["id"], c["field"]) for c in content["inputs"]] + [
        (c["id"], c["field"]) for c in content["outputs"]
    ]
    for _, field in columns:
        table.add_column(field)
    for rule in content["rules"]:
        table.add_row(*[str(rule.get(cid, "")) for cid, _ in columns])
    console.print(table)


@policy_app.command("list")
@handles_errors
def policy_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    found = policy_service.list_policies(db(ctx))
    if json_out:
        print_json({"policies": [policy_doc(p) for p in found]})
        return
    table = Table(title="Credit policies")
    for column in ("Version", "Name", "Active", "Loaded by", "Approved by", "On"):
        table.add_column(column)
    for p in found:
        table.add_row(
            p.version[:16],
            p.name,
            "yes" if p.active else "",
            p.loaded_by,
            p.approved_by,
            p.business_date.isoformat(),
        )
    console.print(table)
