"""`lendcore account|entry|hold|ledger ...`: the ledger from the command line."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from lendcore.cli.common import (
    JsonOption,
    console,
    db,
    handles_errors,
    parse_iso_date,
    print_json,
)
from lendcore.errors import InvalidEntry, InvalidInput
from lendcore.ledger.model import AccountSpec, AccountType, BalanceConstraint, EntrySpec, NormalSide
from lendcore.ledger.verify import VerifyReport
from lendcore.money import Money
from lendcore.presentation import (
    account_doc,
    amount,
    approval_doc,
    balance_doc,
    entry_doc,
    hold_doc,
    trial_balance_doc,
    verify_doc,
)
from lendcore.services import ledger as ledger_service
from lendcore.services.ledger import Balance, BookedEntry, TrialBalance
from lendcore.services.manual_entries import submit_manual_entry, submit_reversal
from lendcore.services.verify import verify_ledger

account_app = typer.Typer(help="Chart of accounts.", no_args_is_help=True)
entry_app = typer.Typer(help="Journal entries.", no_args_is_help=True)
hold_app = typer.Typer(help="Holds: reserve, then post or void.", no_args_is_help=True)
ledger_app = typer.Typer(help="Balances, trial balance and verification.", no_args_is_help=True)


# --- documents (the JSON shapes; amounts are decimal strings in major units) ---------


# --- tables ---------------------------------------------------------------------


def print_trial_balance(tb: TrialBalance) -> None:
    table = Table(title=f"Trial balance as of {tb.as_of.isoformat()}")
    table.add_column("Account")
    table.add_column("Name")
    table.add_column("Type")
    table.add_column("Cur")
    table.add_column("Debit", justify="right")
    table.add_column("Credit", justify="right")
    for r in tb.rows:
        table.add_row(
            "  " * r.depth + r.code,
            r.name,
            r.type.value,
            r.currency,
            amount(r.debit_minor, r.currency) if r.debit_minor else "",
            amount(r.credit_minor, r.currency) if r.credit_minor else "",
        )
    table.add_section()
    for cur, (debit, credit) in sorted(tb.totals.items()):
        style = "bold green" if debit == credit else "bold red"
        table.add_row("Total", "", "", cur, amount(debit, cur), amount(credit, cur), style=style)
    console.print(table)


def print_verify(report: VerifyReport) -> None:
    table = Table(title="Ledger verification")
    table.add_column("Check")
    table.add_column("Count", justify="right")
    table.add_row("Journal entries re-hashed", str(report.entries_checked))
    table.add_row("Postings summed", str(report.postings_checked))
    table.add_row("Chain seals recomputed", str(report.seals_checked))
    table.add_row("Account balances reconciled", str(report.accounts_checked))
    table.add_row("Chain head", f"{report.head_seq} · {report.head_hash[:16]}…")
    verdict = (
        "[bold green]OK[/]" if report.ok else f"[bold red]{len(report.problems)} problem(s)[/]"
    )
    table.add_row("Result", verdict)
    console.print(table)
    if report.problems:
        problems = Table(title="Problems", show_lines=False)
        problems.add_column("Code", style="red")
        problems.add_column("Entry", justify="right")
        problems.add_column("Message")
        for p in report.problems:
            problems.add_row(p.code, "" if p.entry_id is None else str(p.entry_id), p.message)
        console.print(problems)
        if report.first_bad_entry is not None:
            console.print(f"First bad entry: [bold red]{report.first_bad_entry}[/]")


def print_entry(e: BookedEntry) -> None:
    title = f"Entry {e.id} · {e.business_date.isoformat()} · {e.description}"
    if e.replayed:
        title += " (replayed: this key booked it before)"
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("Account")
    table.add_column("Debit", justify="right")
    table.add_column("Credit", justify="right")
    table.add_column("Cur")
    for n, p in enumerate(e.postings, start=1):
        shown = amount(p.amount_minor, p.currency)
        debit = p.side.value == "D"
        table.add_row(str(n), p.account, shown if debit else "", "" if debit else shown, p.currency)
    console.print(table)


# --- accounts ---------------------------------------------------------------------


@account_app.command("open")
@handles_errors
def account_open(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Account code, e.g. 1100."),
    name: str = typer.Argument(..., help="Account name."),
    type_: AccountType = typer.Option(
        ..., "--type", help="asset, liability, equity, income or expense."
    ),
    currency: str = typer.Option(..., "--currency", help="ISO 4217 code."),
    parent: str | None = typer.Option(None, "--parent", help="Parent account code for roll-up."),
    constraint: BalanceConstraint = typer.Option(BalanceConstraint.NONE, "--constraint"),
    normal_side: NormalSide | None = typer.Option(None, "--normal-side", help="Default: by type."),
    json_out: bool = JsonOption,
) -> None:
    """Open an account in the chart of accounts."""
    account = ledger_service.open_account(
        db(ctx), AccountSpec(code, name, type_, currency, normal_side, parent, constraint)
    )
    if json_out:
        print_json(account_doc(account))
    else:
        console.print(f"Opened account {account.code} · {account.name} ({account.currency})")


@account_app.command("close")
@handles_errors
def account_close(ctx: typer.Context, code: str) -> None:
    """Close an account with a zero balance and no pending holds."""
    account = ledger_service.close_account(db(ctx), code)
    console.print(f"Closed account {account.code} on {account.closed_on}")


@account_app.command("list")
@handles_errors
def account_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """List the chart of accounts."""
    found = ledger_service.list_accounts(db(ctx))
    if json_out:
        print_json({"accounts": [account_doc(a) for a in found]})
        return
    table = Table(title="Chart of accounts")
    for column in ("Code", "Name", "Type", "Cur", "Normal", "Parent", "Constraint", "Status"):
        table.add_column(column)
    for a in found:
        table.add_row(
            a.code,
            a.name,
            a.type.value,
            a.currency,
            a.normal_side.value,
            a.parent_code or "",
            a.balance_constraint.value,
            a.status.value,
        )
    console.print(table)


@account_app.command("show")
@handles_errors
def account_show(ctx: typer.Context, code: str, json_out: bool = JsonOption) -> None:
    """Show one account with its balance."""
    database = db(ctx)
    account = ledger_service.get_account(database, code)
    balance = ledger_service.account_balance(database, code)
    if json_out:
        print_json({**account_doc(account), "balance": balance_doc(balance)})
        return
    print_balance(balance, title=f"{account.code} · {account.name} ({account.status.value})")


# --- entries ---------------------------------------------------------------------


def _parse_posting(text: str) -> tuple[str, str, str, str | None]:
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise InvalidEntry(
            f"posting {text!r} must read SIDE:ACCOUNT:AMOUNT[:CURRENCY], e.g. D:1100:250.00"
        )
    side, code, value = parts[0], parts[1], parts[2]
    return side, code, value, parts[3] if len(parts) == 4 else None


@entry_app.command("book")
@handles_errors
def entry_book(
    ctx: typer.Context,
    key: str = typer.Option(
        ..., "--key", help="Idempotency key: retrying with it books nothing new."
    ),
    posting: list[str] = typer.Option(
        ..., "--posting", "-p", help="SIDE:ACCOUNT:AMOUNT[:CURRENCY], e.g. D:1100:250.00 (repeat)."
    ),
    description: str = typer.Option("", "--description", "-d"),
    value_date: str | None = typer.Option(
        None, "--value-date", help="YYYY-MM-DD; default: business date."
    ),
    metadata: str = typer.Option("{}", "--metadata", help="A JSON object kept with the entry."),
    json_out: bool = JsonOption,
) -> None:
    """Submit a manual journal entry; it is booked when a second accountant approves it."""
    database = db(ctx)
    try:
        meta = json.loads(metadata)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--metadata is not valid JSON: {exc.msg}") from exc
    if not isinstance(meta, dict):
        raise InvalidInput("--metadata must be a JSON object")
    lines = ledger_service.postings_from_text(database, [_parse_posting(p) for p in posting])
    pending = submit_manual_entry(
        database, EntrySpec(key, lines, description, meta, parse_iso_date(value_date))
    )
    if json_out:
        print_json(approval_doc(pending))
    else:
        console.print(
            f"Manual entry submitted as approval {pending.id} ({pending.status}); "
            f"another accountant approves it with `lendcore approval approve {pending.id}`"
        )


@entry_app.command("show")
@handles_errors
def entry_show(ctx: typer.Context, entry_id: int, json_out: bool = JsonOption) -> None:
    """Show one journal entry."""
    entry = ledger_service.get_entry(db(ctx), entry_id)
    if json_out:
        print_json(entry_doc(entry))
    else:
        print_entry(entry)


@entry_app.command("list")
@handles_errors
def entry_list(
    ctx: typer.Context,
    account: str | None = typer.Option(None, "--account"),
    on: str | None = typer.Option(None, "--date", help="Business date YYYY-MM-DD."),
    after: int = typer.Option(0, "--after", help="Cursor: list entries after this id."),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """List journal entries in booking order."""
    found = ledger_service.list_entries(
        db(ctx), account=account, business_date=parse_iso_date(on), after_id=after, limit=limit
    )
    if json_out:
        next_cursor = found[-1].id if len(found) == limit else None
        print_json({"entries": [entry_doc(e) for e in found], "next_after": next_cursor})
        return
    table = Table(title="Journal entries")
    for column in ("Id", "Business date", "Value date", "Description", "Postings", "Reverses"):
        table.add_column(column)
    for e in found:
        lines = ", ".join(
            f"{p.side.value} {p.account} {amount(p.amount_minor, p.currency)}" for p in e.postings
        )
        table.add_row(
            str(e.id),
            e.business_date.isoformat(),
            e.value_date.isoformat(),
            e.description,
            lines,
            str(e.reverses_entry_id or ""),
        )
    console.print(table)


@entry_app.command("reverse")
@handles_errors
def entry_reverse(
    ctx: typer.Context,
    entry_id: int,
    key: str = typer.Option(..., "--key"),
    description: str | None = typer.Option(None, "--description", "-d"),
    json_out: bool = JsonOption,
) -> None:
    """Submit a reversal (its mirror image is booked on approval; the original stays)."""
    pending = submit_reversal(db(ctx), entry_id, key, description)
    if json_out:
        print_json(approval_doc(pending))
    else:
        console.print(f"Reversal submitted as approval {pending.id} ({pending.status})")


# --- holds ---------------------------------------------------------------------------


@hold_app.command("place")
@handles_errors
def hold_place(
    ctx: typer.Context,
    key: str = typer.Option(..., "--key"),
    debit: str = typer.Option(..., "--debit", help="Account the posting will debit."),
    credit: str = typer.Option(..., "--credit", help="Account the posting will credit."),
    value: str = typer.Option(..., "--amount", help="Amount in major units."),
    expires: str = typer.Option(..., "--expires", help="Expiry business date YYYY-MM-DD."),
    description: str = typer.Option("", "--description", "-d"),
    json_out: bool = JsonOption,
) -> None:
    """Reserve an amount between two accounts."""
    database = db(ctx)
    cur = ledger_service.get_account(database, debit).currency
    expires_on = parse_iso_date(expires)
    assert expires_on is not None  # typer makes --expires required
    hold = ledger_service.place_hold(
        database,
        idempotency_key=key,
        debit_account=debit,
        credit_account=credit,
        amount_minor=Money.parse(value, cur).amount_minor,
        currency=cur,
        expires_on=expires_on,
        description=description,
    )
    if json_out:
        print_json(hold_doc(hold))
    else:
        console.print(
            f"Hold {hold.id}: {amount(hold.amount_minor, hold.currency)} {hold.currency} "
            f"{hold.credit_account} -> {hold.debit_account}, expires {hold.expires_on}"
        )


@hold_app.command("post")
@handles_errors
def hold_post(
    ctx: typer.Context,
    hold_id: int,
    key: str = typer.Option(..., "--key"),
    value: str | None = typer.Option(
        None, "--amount", help="Part of the hold; default: all of it."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Post a hold in full or in part; the rest is released."""
    database = db(ctx)
    minor = None
    if value is not None:
        minor = Money.parse(value, ledger_service.get_hold(database, hold_id).currency).amount_minor
    entry = ledger_service.post_hold(database, hold_id, idempotency_key=key, amount_minor=minor)
    if json_out:
        print_json(entry_doc(entry))
    else:
        print_entry(entry)


@hold_app.command("void")
@handles_errors
def hold_void(ctx: typer.Context, hold_id: int, json_out: bool = JsonOption) -> None:
    """Release a hold without booking it."""
    hold = ledger_service.void_hold(db(ctx), hold_id)
    if json_out:
        print_json(hold_doc(hold))
    else:
        console.print(f"Hold {hold.id} voided")


@hold_app.command("list")
@handles_errors
def hold_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="pending, posted, voided, expired"),
    after: int = typer.Option(0, "--after"),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """List holds."""
    found = ledger_service.list_holds(db(ctx), status=status, after_id=after, limit=limit)
    if json_out:
        print_json({"holds": [hold_doc(h) for h in found]})
        return
    table = Table(title="Holds")
    for column in ("Id", "Debit", "Credit", "Amount", "Cur", "Status", "Expires"):
        table.add_column(column)
    for h in found:
        table.add_row(
            str(h.id),
            h.debit_account,
            h.credit_account,
            amount(h.amount_minor, h.currency),
            h.currency,
            h.status,
            h.expires_on.isoformat(),
        )
    console.print(table)


# --- ledger reports -------------------------------------------------------------------


def print_balance(b: Balance, *, title: str) -> None:
    table = Table(title=title)
    table.add_column("")
    table.add_column(b.currency, justify="right")
    table.add_row(f"Balance ({b.normal_side.value} side)", amount(b.posted, b.currency))
    if b.as_of is None:
        table.add_row("Available (after holds)", amount(b.available, b.currency))
        table.add_row("Pending debits", amount(b.debits_pending, b.currency))
        table.add_row("Pending credits", amount(b.credits_pending, b.currency))
    table.add_row("Debits posted", amount(b.debits_posted, b.currency))
    table.add_row("Credits posted", amount(b.credits_posted, b.currency))
    console.print(table)


@ledger_app.command("balance")
@handles_errors
def ledger_balance(
    ctx: typer.Context,
    code: str,
    as_of: str | None = typer.Option(None, "--as-of", help="End of a past business date."),
    json_out: bool = JsonOption,
) -> None:
    """An account's balance now, or at the end of a past business date."""
    balance = ledger_service.account_balance(db(ctx), code, parse_iso_date(as_of))
    if json_out:
        print_json(balance_doc(balance))
        return
    when = f"as of {balance.as_of.isoformat()}" if balance.as_of else "now"
    print_balance(balance, title=f"Account {code} · {when}")


@ledger_app.command("trial-balance")
@handles_errors
def ledger_trial_balance(
    ctx: typer.Context,
    as_of: str | None = typer.Option(None, "--as-of", help="End of a past business date."),
    roll_up: bool = typer.Option(
        False, "--roll-up", help="Parents carry their children's balances."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Every account's balance as a debit or a credit, with totals per currency."""
    tb = ledger_service.trial_balance(db(ctx), parse_iso_date(as_of), roll_up=roll_up)
    if json_out:
        print_json(trial_balance_doc(tb))
    else:
        print_trial_balance(tb)


@ledger_app.command("verify")
@handles_errors
def ledger_verify(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """Recompute the audit chain and every ledger invariant; non-zero exit if broken."""
    report = verify_ledger(db(ctx))
    if json_out:
        print_json(verify_doc(report))
    else:
        print_verify(report)
    if not report.ok:
        first = report.problems[0]
        where = f"first bad entry {report.first_bad_entry}: " if report.first_bad_entry else ""
        print(f"error[LEDGER_VERIFY_FAILED]: {where}{first.message}", file=sys.stderr)
        raise typer.Exit(1)
