"""`lendcore loan ...`: book, disburse, repay, reverse, waive, reschedule, write off, read."""

from __future__ import annotations

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, parse_iso_date, print_json
from lendcore.presentation import amount, approval_doc, loan_doc, loan_summary_doc
from lendcore.services import loans as loan_service
from lendcore.services.approvals import PendingApproval
from lendcore.services.loans import LoanView

loan_app = typer.Typer(help="Loans: the whole life of a loan.", no_args_is_help=True)

KeyOption = typer.Option(
    None, "--key", help="Idempotency key: retrying with it records nothing new."
)
ValueDateOption = typer.Option(None, "--value-date", help="YYYY-MM-DD; default: the business date.")


def _print_loan(view: LoanView) -> None:
    st = view.state
    cur = view.currency
    head = Table(
        title=f"Loan {view.id} · {view.product_code} v{view.product_version} · {st.status.value}"
    )
    head.add_column("")
    head.add_column("", justify="right")
    for label, value in (
        ("Borrower", view.borrower or "-"),
        ("Approved", f"{amount(view.approved_minor, cur)} {cur}"),
        ("Disbursed", amount(st.disbursed, cur)),
        ("Principal outstanding", amount(st.principal_outstanding, cur)),
        ("Interest accrued, not due", amount(st.interest_accrued, cur)),
        ("Overdue", amount(st.overdue, cur)),
        ("Days past due", f"{st.days_past_due} ({st.bucket or 'current'})"),
        ("Overpayment", amount(st.overpayment, cur)),
        ("Payoff today", amount(max(st.payoff, 0), cur)),
        ("As of", st.as_of.isoformat()),
    ):
        head.add_row(label, value)
    console.print(head)
    table = Table(title="Schedule")
    for column in (
        "#",
        "Due",
        "Principal",
        "Interest",
        "Fees",
        "Penalties",
        "Total",
        "Paid",
        "Outstanding",
    ):
        table.add_column(column, justify="right" if column not in ("Due",) else "left")
    for i in st.instalments:
        style = (
            "green"
            if i.outstanding == 0 and i.fallen_due
            else ("red" if i.fallen_due and i.due_date < st.as_of else None)
        )
        table.add_row(
            str(i.number),
            i.due_date.isoformat(),
            amount(i.principal, cur),
            amount(i.interest, cur),
            amount(i.fees, cur),
            amount(i.penalties, cur),
            amount(i.total, cur),
            amount(sum(i.paid.values()), cur),
            amount(i.outstanding, cur),
            style=style,
        )
    console.print(table)
    history = Table(title="History (latest events)" if view.history_next else "History")
    for column in ("Seq", "Kind", "Value date", "Booked on", "Amount", "Entry", "By"):
        history.add_column(column)
    for h in view.history:
        history.add_row(
            str(h.seq),
            h.kind,
            h.value_date.isoformat(),
            h.business_date.isoformat(),
            amount(h.amount_minor, cur),
            str(h.entry_id or "-"),
            h.actor,
        )
    console.print(history)
    if view.history_next is not None:
        console.print(f"Older events: --history-cursor {view.history_next}")


def _show(view: LoanView, json_out: bool) -> None:
    if json_out:
        print_json(loan_doc(view))
    else:
        _print_loan(view)


def _pending(pending: PendingApproval, json_out: bool) -> None:
    if json_out:
        print_json(approval_doc(pending))
    else:
        console.print(
            f"Approval {pending.id} pending: {pending.summary} (another person approves it)"
        )


@loan_app.command("disburse")
@handles_errors
def loan_disburse(
    ctx: typer.Context,
    loan_id: int,
    amount_text: str | None = typer.Option(
        None, "--amount", help="A tranche; default: what is left of the approved amount."
    ),
    value_date: str | None = ValueDateOption,
    key: str | None = KeyOption,
    json_out: bool = JsonOption,
) -> None:
    """Pay the loan out, in full or a tranche."""
    view = loan_service.disburse(
        db(ctx), loan_id, amount_text, value_date=parse_iso_date(value_date), idempotency_key=key
    )
    _show(view, json_out)


@loan_app.command("repay")
@handles_errors
def loan_repay(
    ctx: typer.Context,
    loan_id: int,
    amount_text: str = typer.Option(..., "--amount", help="e.g. 888.49"),
    currency: str = typer.Option(..., "--currency"),
    value_date: str | None = ValueDateOption,
    key: str | None = KeyOption,
    json_out: bool = JsonOption,
) -> None:
    """Take a repayment (a value date in the past replays the loan from it)."""
    view = loan_service.repay(
        db(ctx),
        loan_id,
        amount_text,
        currency,
        value_date=parse_iso_date(value_date),
        idempotency_key=key,
    )
    _show(view, json_out)


@loan_app.command("reverse")
@handles_errors
def loan_reverse(
    ctx: typer.Context,
    loan_id: int,
    seq: int = typer.Option(..., "--seq", help="The repayment's number in the loan's history."),
    reason: str = typer.Option(..., "--reason"),
    json_out: bool = JsonOption,
) -> None:
    """Reverse a repayment; everything after it is recomputed."""
    _show(loan_service.reverse_repayment(db(ctx), loan_id, seq, reason), json_out)


@loan_app.command("waive")
@handles_errors
def loan_waive(
    ctx: typer.Context,
    loan_id: int,
    component: str = typer.Option(..., "--component", help="penalty, fee or interest"),
    amount_text: str = typer.Option(..., "--amount"),
    json_out: bool = JsonOption,
) -> None:
    """Ask to waive part of what is due; a credit approver approves it."""
    _pending(loan_service.waive(db(ctx), loan_id, component, amount_text), json_out)


@loan_app.command("reschedule")
@handles_errors
def loan_reschedule(
    ctx: typer.Context,
    loan_id: int,
    annual_rate: str | None = typer.Option(None, "--annual-rate"),
    extend_by: int = typer.Option(0, "--extend-by", help="Instalments added to the term."),
    payment_holiday: int = typer.Option(
        0, "--payment-holiday", help="Periods without payment; interest is capitalised."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Ask to reschedule from the current period; a credit approver approves it."""
    pending = loan_service.reschedule(
        db(ctx),
        loan_id,
        annual_rate=annual_rate,
        extend_by=extend_by,
        payment_holiday=payment_holiday,
    )
    _pending(pending, json_out)


@loan_app.command("write-off")
@handles_errors
def loan_write_off(
    ctx: typer.Context,
    loan_id: int,
    reason: str = typer.Option(..., "--reason"),
    json_out: bool = JsonOption,
) -> None:
    """Ask to write the loan off; a credit approver or risk manager approves it."""
    _pending(loan_service.write_off(db(ctx), loan_id, reason), json_out)


@loan_app.command("show")
@handles_errors
def loan_show(
    ctx: typer.Context,
    loan_id: int,
    history_cursor: int | None = typer.Option(
        None, "--history-cursor", help="Show the events before this one (a previous page's cursor)."
    ),
    history_limit: int = typer.Option(
        loan_service.HISTORY_PAGE_DEFAULT, "--history-limit", help="Events per history page."
    ),
    json_out: bool = JsonOption,
) -> None:
    """The loan whole: balances, arrears, schedule with what is paid, and its latest
    events (older ones page by page with --history-cursor)."""
    view = loan_service.get_loan(
        db(ctx), loan_id, history_before=history_cursor, history_limit=history_limit
    )
    _show(view, json_out)


@loan_app.command("list")
@handles_errors
def loan_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status"),
    product: str | None = typer.Option(None, "--product"),
    after: int = typer.Option(0, "--after", help="Cursor: loans after this id."),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """Loans in id order, as of their last command."""
    found = loan_service.list_loans(
        db(ctx), status=status, product_code=product, after_id=after, limit=limit
    )
    if json_out:
        next_cursor = found[-1].id if len(found) == limit else None
        print_json({"loans": [loan_summary_doc(s) for s in found], "next_after": next_cursor})
        return
    table = Table(title="Loans")
    for column in ("Id", "Product", "Borrower", "Status", "Outstanding", "Overdue", "DPD", "As of"):
        table.add_column(column)
    for s in found:
        table.add_row(
            str(s.id),
            f"{s.product_code} v{s.product_version}",
            s.borrower or "-",
            s.status,
            f"{amount(s.principal_outstanding_minor, s.currency)} {s.currency}",
            amount(s.overdue_minor, s.currency),
            str(s.days_past_due),
            s.state_as_of.isoformat(),
        )
    console.print(table)


@loan_app.command("accrue")
@handles_errors
def loan_accrue(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """Recognise accrued interest, dues, late fees and penalties of the whole book
    up to the business date: one ledger entry per product."""
    run = loan_service.accrue_book(db(ctx))
    if json_out:
        print_json(
            {
                "business_date": run.business_date.isoformat(),
                "loans_seen": run.loans_seen,
                "loans_changed": run.loans_changed,
                "entry_ids": list(run.entry_ids),
            }
        )
        return
    table = Table(title=f"Accrual for {run.business_date.isoformat()}")
    table.add_column("Loans seen", justify="right")
    table.add_column("Loans changed", justify="right")
    table.add_column("Ledger entries")
    table.add_row(
        str(run.loans_seen), str(run.loans_changed), ", ".join(map(str, run.entry_ids)) or "-"
    )
    console.print(table)
