"""`lendcore borrower|watchlist|screening ...`: borrowers, KYC, watch lists, screening hits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, parse_iso_date, print_json
from lendcore.errors import InvalidInput
from lendcore.origination.borrowers import (
    Borrower,
    BorrowerDetails,
    BorrowerKind,
    BorrowerUpdate,
    EmploymentStatus,
    GroupKind,
    KycEvidence,
    KycOutcome,
    amount_minor,
)
from lendcore.origination.screening import CSV_BYTES_MAX, WatchListInvalid, read_watch_list
from lendcore.presentation import (
    approval_doc,
    borrower_doc,
    borrower_view_doc,
    kyc_check_doc,
    screening_hit_doc,
    screening_outcome_doc,
    screening_summary_doc,
    watch_list_doc,
    watch_list_load_doc,
)
from lendcore.services import borrowers as service
from lendcore.services.borrowers import ScreeningHit

borrower_app = typer.Typer(help="Borrowers: onboard, KYC, screening.", no_args_is_help=True)
watchlist_app = typer.Typer(help="Watch lists for screening.", no_args_is_help=True)
screening_app = typer.Typer(
    help="Screening hits: list; clear or confirm (maker-checker).", no_args_is_help=True
)

NameOption = typer.Option(None, "--name", help="Full name (a person) or legal name (a business).")
DobOption = typer.Option(None, "--dob", help="Date of birth, YYYY-MM-DD (a person).")
RegisteredOption = typer.Option(
    None, "--registered-on", help="Date of registration, YYYY-MM-DD (a business)."
)
EmailOption = typer.Option(None, "--email")
PhoneOption = typer.Option(None, "--phone")
AddressOption = typer.Option(None, "--address")
CountryOption = typer.Option(None, "--country", help="ISO 3166 two-letter code.")
NationalIdOption = typer.Option(
    None, "--national-id", help="Stored encrypted; shown masked (last 3 characters) only."
)
IncomeOption = typer.Option(None, "--income", help='Monthly income, major units: "3000.00".')
ObligationsOption = typer.Option(
    None, "--obligations", help='Existing monthly obligations, major units: "450.00".'
)
EmploymentOption = typer.Option(None, "--employment")
EmployerOption = typer.Option(None, "--employer")
EmployedSinceOption = typer.Option(None, "--employed-since", help="YYYY-MM-DD.")


def _amount(text: str | None, currency: str, field: str) -> int | None:
    return None if text is None else amount_minor(text, currency, field)


def _print_borrower(b: Borrower, title: str | None = None) -> None:
    doc = borrower_doc(b)
    table = Table(title=title or f"Borrower {b.id} · {b.name}")
    table.add_column("")
    table.add_column("")
    employment = doc["employment"]
    for label, value in (
        ("Kind", b.kind),
        (
            "Born" if b.kind == "person" else "Registered",
            doc["date_of_birth"] or doc["registered_on"],
        ),
        ("National id", b.national_id_masked or "-"),
        ("Country", b.country or "-"),
        ("Email / phone", f"{b.email or '-'} / {b.phone or '-'}"),
        ("Monthly income", f"{doc['monthly_income']} {b.currency}"),
        ("Monthly obligations", f"{doc['monthly_obligations']} {b.currency}"),
        (
            "Employment",
            f"{employment['status'] or '-'} {employment['employer'] or ''}"
            + (f" since {employment['since']}" if employment["since"] else ""),
        ),
        ("Group", "-" if b.group_id is None else f"{b.group_name} ({b.group_id})"),
        ("KYC", b.kyc_status + (f" until {doc['kyc_valid_until']}" if b.kyc_valid_until else "")),
        ("Screening", b.screening_status),
        ("Created", f"{b.created_by} {doc['created_on']}"),
    ):
        table.add_row(label, str(value))
    console.print(table)


def _print_hits(found: list[ScreeningHit], title: str) -> None:
    table = Table(title=title)
    for column in ("Hit", "Borrower", "Name", "List", "Entry", "Ref", "Score", "DOB", "Status"):
        table.add_column(column, justify="right" if column in ("Hit", "Score") else "left")
    for h in found:
        table.add_row(
            str(h.id),
            str(h.borrower_id),
            h.borrower_name,
            h.list_name,
            h.entry_name,
            h.entry_reference or "-",
            f"{h.score:.2f}",
            h.dob_match,
            h.status + (f" (approval {h.approval_id})" if h.approval_id else ""),
        )
    console.print(table)


@borrower_app.command("create")
@handles_errors
def borrower_create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Full or legal name."),
    kind: BorrowerKind = typer.Option(BorrowerKind.PERSON, "--kind"),
    currency: str = typer.Option(..., "--currency", help="Currency of income and obligations."),
    dob: str | None = DobOption,
    registered_on: str | None = RegisteredOption,
    email: str | None = EmailOption,
    phone: str | None = PhoneOption,
    address: str | None = AddressOption,
    country: str | None = CountryOption,
    national_id: str | None = NationalIdOption,
    income: str = typer.Option("0", "--income", help='Monthly income, major units: "3000.00".'),
    obligations: str = typer.Option("0", "--obligations", help="Existing monthly obligations."),
    employment: EmploymentStatus | None = EmploymentOption,
    employer: str | None = EmployerOption,
    employed_since: str | None = EmployedSinceOption,
    json_out: bool = JsonOption,
) -> None:
    """Onboard a borrower; they are screened against the watch lists at once."""
    details = BorrowerDetails(
        kind=kind,
        name=name,
        currency=currency,
        date_of_birth=parse_iso_date(dob),
        registered_on=parse_iso_date(registered_on),
        email=email,
        phone=phone,
        address=address,
        country=country,
        national_id=national_id,
        monthly_income_minor=amount_minor(income, currency, "monthly_income"),
        monthly_obligations_minor=amount_minor(obligations, currency, "monthly_obligations"),
        employment_status=employment,
        employer=employer,
        employed_since=parse_iso_date(employed_since),
    )
    borrower = service.create_borrower(db(ctx), details)
    if json_out:
        print_json(borrower_doc(borrower))
        return
    _print_borrower(borrower, f"Borrower {borrower.id} created · {borrower.name}")
    if borrower.screening_status == "pending":
        console.print(
            "Screening found possible matches: see `lendcore screening hits "
            f"--borrower {borrower.id}`",
            highlight=False,
        )


@borrower_app.command("update")
@handles_errors
def borrower_update(
    ctx: typer.Context,
    borrower_id: int,
    name: str | None = NameOption,
    currency: str | None = typer.Option(None, "--currency"),
    dob: str | None = DobOption,
    registered_on: str | None = RegisteredOption,
    email: str | None = EmailOption,
    phone: str | None = PhoneOption,
    address: str | None = AddressOption,
    country: str | None = CountryOption,
    national_id: str | None = NationalIdOption,
    income: str | None = IncomeOption,
    obligations: str | None = ObligationsOption,
    employment: EmploymentStatus | None = EmploymentOption,
    employer: str | None = EmployerOption,
    employed_since: str | None = EmployedSinceOption,
    json_out: bool = JsonOption,
) -> None:
    """Change some details; a new name or date of birth is screened again."""
    database = db(ctx)
    if (income is not None or obligations is not None) and currency is None:
        currency = service.get_borrower(database, borrower_id).borrower.currency
    code = currency or ""
    change = BorrowerUpdate(
        name=name,
        currency=currency,
        date_of_birth=parse_iso_date(dob),
        registered_on=parse_iso_date(registered_on),
        email=email,
        phone=phone,
        address=address,
        country=country,
        national_id=national_id,
        monthly_income_minor=_amount(income, code, "monthly_income"),
        monthly_obligations_minor=_amount(obligations, code, "monthly_obligations"),
        employment_status=employment,
        employer=employer,
        employed_since=parse_iso_date(employed_since),
    )
    borrower = service.update_borrower(database, borrower_id, change)
    if json_out:
        print_json(borrower_doc(borrower))
        return
    _print_borrower(borrower, f"Borrower {borrower.id} updated · {borrower.name}")


@borrower_app.command("group")
@handles_errors
def borrower_group(
    ctx: typer.Context,
    borrower_id: int,
    group: str | None = typer.Argument(None, help="Group name; omit to leave the group."),
    kind: GroupKind = typer.Option(GroupKind.HOUSEHOLD, "--kind"),
    json_out: bool = JsonOption,
) -> None:
    """Put a borrower in a connected-party group (created on first use), or none."""
    borrower = service.set_group(db(ctx), borrower_id, group, kind)
    if json_out:
        print_json(borrower_doc(borrower))
        return
    where = "no group" if borrower.group_id is None else f"group {borrower.group_name}"
    console.print(f"Borrower {borrower.id} is in {where}", highlight=False)


@borrower_app.command("show")
@handles_errors
def borrower_show(ctx: typer.Context, borrower_id: int, json_out: bool = JsonOption) -> None:
    """A borrower whole: details, KYC evidence, screening hits, group members."""
    view = service.get_borrower(db(ctx), borrower_id)
    if json_out:
        print_json(borrower_view_doc(view))
        return
    _print_borrower(view.borrower)
    if view.group_members:
        console.print(f"Group members: {', '.join(str(i) for i in view.group_members)}")
    if view.kyc_checks:
        table = Table(title="KYC evidence (newest first)")
        for column in ("#", "Outcome", "Document", "Number", "Checked", "Valid until", "Note"):
            table.add_column(column)
        for c in view.kyc_checks:
            doc = kyc_check_doc(c)
            table.add_row(
                str(c.id),
                doc["outcome"],
                c.document_type,
                c.document_number_masked,
                f"{c.checked_by} {doc['checked_on']}",
                doc["valid_until"] or "-",
                c.note,
            )
        console.print(table)
    if view.hits:
        _print_hits(list(view.hits), "Screening hits")


@borrower_app.command("list")
@handles_errors
def borrower_list(
    ctx: typer.Context,
    kind: str | None = typer.Option(None, "--kind", help="person or business."),
    kyc: str | None = typer.Option(None, "--kyc", help="pending, verified, rejected, expired."),
    screening: str | None = typer.Option(
        None, "--screening", help="not-screened, clear, pending, hit."
    ),
    group: int | None = typer.Option(None, "--group", help="Group id."),
    name: str | None = typer.Option(None, "--name", help="A part of the name, any case."),
    after: int = typer.Option(0, "--after", min=0, help="Borrowers after this id."),
    limit: int = typer.Option(100, "--limit", min=1, max=500),
    json_out: bool = JsonOption,
) -> None:
    """List borrowers (KYC status as of the business date)."""
    found = service.list_borrowers(
        db(ctx),
        kind=kind,
        kyc=kyc,
        screening=screening,
        group_id=group,
        name=name,
        after_id=after,
        limit=limit,
    )
    if json_out:
        print_json({"borrowers": [borrower_doc(b) for b in found]})
        return
    table = Table(title="Borrowers")
    for column in ("Id", "Kind", "Name", "Born/registered", "Income", "Cur", "KYC", "Screening"):
        table.add_column(column, justify="right" if column in ("Id", "Income") else "left")
    for b in found:
        doc = borrower_doc(b)
        table.add_row(
            str(b.id),
            b.kind,
            b.name,
            doc["date_of_birth"] or doc["registered_on"] or "-",
            doc["monthly_income"],
            b.currency,
            b.kyc_status,
            b.screening_status,
        )
    console.print(table)


@borrower_app.command("kyc")
@handles_errors
def borrower_kyc(
    ctx: typer.Context,
    borrower_id: int,
    outcome: KycOutcome = typer.Option(..., "--outcome"),
    document_type: str = typer.Option(
        ..., "--document-type", help="passport, national_id_card, driving_licence, ..."
    ),
    document_number: str = typer.Option(..., "--document-number", help="Stored encrypted."),
    valid_until: str | None = typer.Option(
        None, "--valid-until", help="YYYY-MM-DD: required for a verified check."
    ),
    checked_on: str | None = typer.Option(
        None, "--checked-on", help="YYYY-MM-DD; default: the business date."
    ),
    note: str = typer.Option("", "--note"),
    json_out: bool = JsonOption,
) -> None:
    """Record a KYC check with its evidence (who checked it is you)."""
    check = service.record_kyc_check(
        db(ctx),
        borrower_id,
        KycEvidence(
            outcome=outcome,
            document_type=document_type,
            document_number=document_number,
            checked_on=parse_iso_date(checked_on),
            valid_until=parse_iso_date(valid_until),
            note=note,
        ),
    )
    if json_out:
        print_json(kyc_check_doc(check))
        return
    until = f" until {check.valid_until.isoformat()}" if check.valid_until else ""
    console.print(
        f"KYC check {check.id} recorded for borrower {borrower_id}: {check.outcome.value}"
        f"{until} ({check.document_type} {check.document_number_masked})",
        highlight=False,
    )


@borrower_app.command("screen")
@handles_errors
def borrower_screen(
    ctx: typer.Context,
    borrower_id: int | None = typer.Argument(None, help="Omit with --all."),
    all_borrowers: bool = typer.Option(False, "--all", help="Screen every borrower."),
    json_out: bool = JsonOption,
) -> None:
    """Screen a borrower (or everyone) against the latest watch lists now."""
    database = db(ctx)
    if all_borrowers == (borrower_id is not None):
        raise InvalidInput("name one borrower id, or --all")
    if borrower_id is None:
        summary = service.screen_all(database)
        if json_out:
            print_json(screening_summary_doc(summary))
            return
        states = ", ".join(f"{k} {v}" for k, v in summary.by_status.items()) or "none"
        console.print(
            f"Screened {summary.borrowers_screened} borrowers: {summary.new_hits} new hits "
            f"({states})",
            highlight=False,
        )
        return
    outcome = service.screen_borrower(database, borrower_id)
    if json_out:
        print_json(screening_outcome_doc(outcome))
        return
    console.print(
        f"Borrower {borrower_id}: {outcome.status} ({outcome.entries_checked} entries in "
        f"{', '.join(outcome.lists) or 'no lists'}; {len(outcome.new_hits)} new hits)",
        highlight=False,
    )
    if outcome.new_hits:
        _print_hits(list(outcome.new_hits), "New hits")


# --- watch lists -----------------------------------------------------------------------


def read_watch_list_file(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > CSV_BYTES_MAX:
            raise WatchListInvalid(f"{path}: a watch list has at most {CSV_BYTES_MAX} bytes")
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WatchListInvalid(f"cannot read {path}: {exc}") from None


@watchlist_app.command("load")
@handles_errors
def watchlist_load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV: name, date_of_birth, country, list, reference."),
    name: str = typer.Option(..., "--name", help="The list's name; a reload is its next version."),
    rescreen: bool = typer.Option(
        True, "--rescreen/--no-rescreen", help="Screen every borrower against the new lists."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Load a watch list from CSV (a new version of NAME) and screen every borrower."""
    parsed = read_watch_list(read_watch_list_file(file), str(file), name)
    loaded = service.load_watch_list(db(ctx), parsed, rescreen)
    if json_out:
        print_json(watch_list_load_doc(loaded))
        return
    w = loaded.watch_list
    if loaded.outcome == "unchanged":
        console.print(
            f"Watch list {w.name} is unchanged: version {w.version} has these entries",
            highlight=False,
        )
        return
    console.print(
        f"Watch list {w.name} version {w.version}: {w.entry_count} entries", highlight=False
    )
    if loaded.screened is not None:
        s = loaded.screened
        console.print(
            f"Screened {s.borrowers_screened} borrowers: {s.new_hits} new hits", highlight=False
        )


@watchlist_app.command("list")
@handles_errors
def watchlist_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """The latest version of every watch list."""
    found = service.list_watch_lists(db(ctx))
    if json_out:
        print_json({"watch_lists": [watch_list_doc(w) for w in found]})
        return
    table = Table(title="Watch lists")
    for column in ("Name", "Ver", "Entries", "Source", "Loaded"):
        table.add_column(column)
    for w in found:
        table.add_row(
            w.name,
            str(w.version),
            str(w.entry_count),
            w.source,
            f"{w.loaded_by} {w.business_date.isoformat()}",
        )
    console.print(table)


# --- screening hits ----------------------------------------------------------------------


@screening_app.command("hits")
@handles_errors
def screening_hits(
    ctx: typer.Context,
    status: str | None = typer.Option(
        "pending", "--status", help="pending, cleared, confirmed; 'all' for every hit."
    ),
    borrower: int | None = typer.Option(None, "--borrower"),
    after: int = typer.Option(0, "--after", min=0),
    limit: int = typer.Option(100, "--limit", min=1, max=500),
    json_out: bool = JsonOption,
) -> None:
    """Screening hits (by default those that await a person's decision)."""
    found = service.list_hits(
        db(ctx),
        status=None if status == "all" else status,
        borrower_id=borrower,
        after_id=after,
        limit=limit,
    )
    if json_out:
        print_json({"hits": [screening_hit_doc(h) for h in found]})
        return
    _print_hits(found, "Screening hits")


def _resolve(ctx: typer.Context, hit_id: int, decision: Any, note: str, json_out: bool) -> None:
    pending = service.submit_resolution(db(ctx), hit_id, decision, note)
    if json_out:
        print_json(approval_doc(pending))
        return
    console.print(
        f"Submitted as approval {pending.id}: {pending.summary}; a credit approver or risk "
        f"manager approves it with `lendcore approval approve {pending.id}`",
        highlight=False,
    )


@screening_app.command("clear")
@handles_errors
def screening_clear(
    ctx: typer.Context,
    hit_id: int,
    note: str = typer.Option(..., "--note", help="Why this is not the listed person."),
    json_out: bool = JsonOption,
) -> None:
    """Propose to clear a hit (not the listed person); a second person approves."""
    _resolve(ctx, hit_id, "clear", note, json_out)


@screening_app.command("confirm")
@handles_errors
def screening_confirm(
    ctx: typer.Context,
    hit_id: int,
    note: str = typer.Option(..., "--note", help="Why this is the listed person."),
    json_out: bool = JsonOption,
) -> None:
    """Propose to confirm a hit (the listed person); a second person approves."""
    _resolve(ctx, hit_id, "confirm", note, json_out)
