"""`lendcore schedule preview`: a product's repayment schedule for given terms."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, print_json
from lendcore.dates import parse_date
from lendcore.errors import InvalidInput
from lendcore.presentation import schedule_doc
from lendcore.products.model import Product, load_product_text
from lendcore.services.schedules import (
    PreviewRequest,
    SchedulePreview,
    example_product,
    preview_schedule,
)

schedule_app = typer.Typer(help="Repayment schedules.", no_args_is_help=True)

# A product file larger than this is not a product.
PRODUCT_FILE_BYTES_MAX = 1_000_000


def read_product(path: Path | None) -> Product:
    if path is None:
        return example_product()
    try:
        if path.stat().st_size > PRODUCT_FILE_BYTES_MAX:
            raise InvalidInput(
                f"the product file {path} is larger than {PRODUCT_FILE_BYTES_MAX} bytes"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInput(f"cannot read the product file {path}: {reason}") from None
    return load_product_text(text)


def _terms_line(p: SchedulePreview) -> str:
    t = p.terms
    parts = [
        f"product {p.product_code}",
        f"rate {t.annual_rate}",
        f"{t.term} × {t.frequency}",
        t.method.value,
        t.amortization.value,
        t.day_count.value,
        f"from {t.start.isoformat()}",
    ]
    if t.first_repayment is not None:
        parts.append(f"first repayment {t.first_repayment.isoformat()}")
    if t.grace_principal:
        parts.append(f"principal grace {t.grace_principal}")
    if t.grace_interest:
        parts.append(f"interest-free {t.grace_interest}")
    if t.payment_holiday:
        parts.append(f"payment holiday {t.payment_holiday}")
    if t.calendar.name != "none":
        parts.append(f"calendar {t.calendar.name} ({t.convention.value})")
    return " · ".join(parts)


def print_schedule(p: SchedulePreview, document: dict[str, Any]) -> None:
    table = Table(
        title=f"Repayment schedule, {document['currency']}",
        caption=_terms_line(p),
        show_footer=True,
    )
    totals = document["totals"]
    table.add_column("#", justify="right", footer="")
    table.add_column("Due date", footer="Total")
    for name in ("principal", "interest", "fees", "total"):
        table.add_column(name.capitalize(), justify="right", footer=totals[name])
    table.add_column("Outstanding", justify="right", footer="")
    capitalised = {i.number: i.capitalised for i in p.schedule.instalments if i.capitalised}
    for row in document["instalments"]:
        note = " (+ capitalised)" if row["number"] in capitalised else ""
        table.add_row(
            str(row["number"]),
            row["due_date"],
            row["principal"],
            row["interest"],
            row["fees"],
            row["total"],
            row["outstanding"] + note,
        )
    console.print(table)
    for note in p.outside_limits:
        console.print(f"[bold yellow]Outside the product's limits:[/] {note}")


@schedule_app.command("preview")
@handles_errors
def preview(
    ctx: typer.Context,
    product_file: Path | None = typer.Option(
        None, "--product", help="Product YAML file (default: the consumer-annuity example)."
    ),
    principal: str | None = typer.Option(
        None, "--principal", help="Amount financed, in major units (10000.00)."
    ),
    currency_code: str | None = typer.Option(None, "--currency"),
    annual_rate: str | None = typer.Option(None, "--annual-rate", help="0.12 for 12 % a year."),
    term: int | None = typer.Option(None, "--term", help="Number of instalments."),
    frequency_name: str | None = typer.Option(
        None,
        "--frequency",
        help="weekly, bi-weekly, semi-monthly, monthly, quarterly, semi-annual, annual, every-N-days.",
    ),
    start: str | None = typer.Option(
        None, "--start", help="Disbursement date, YYYY-MM-DD (default: the business date)."
    ),
    first_repayment: str | None = typer.Option(None, "--first-repayment", help="YYYY-MM-DD."),
    day_count_name: str | None = typer.Option(
        None, "--day-count", help="act/360, act/365f, act/act, 30/360, 30e/360."
    ),
    method: str | None = typer.Option(None, "--method", help="declining or flat."),
    amortization_name: str | None = typer.Option(
        None, "--amortization", help="annuity, equal-principal, interest-only, bullet."
    ),
    grace_principal: int | None = typer.Option(None, "--grace-principal", metavar="N"),
    grace_interest: int | None = typer.Option(None, "--grace-interest", metavar="N"),
    calendar_name: str | None = typer.Option(
        None, "--calendar", help="none, weekends, or a country code such as US or GB-ENG."
    ),
    convention: str | None = typer.Option(
        None, "--convention", help="following, modified-following, preceding, ..."
    ),
    rounding: str | None = typer.Option(
        None, "--rounding", help="Rounding mode: half-even, half-up, down, up, ..."
    ),
    instalment_multiple: str | None = typer.Option(
        None,
        "--instalment-multiple",
        help="Round instalments to this amount (1 for whole units); the last takes the rest.",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Preview the repayment schedule of a product for the given terms (writes nothing).

    Each option overrides the product's own setting. Explicit values may leave
    the product's limits: the table says so (booking a loan never may).
    """
    if principal is None:
        raise InvalidInput("give the amount financed with --principal, e.g. --principal 10000")
    request = PreviewRequest(
        principal=principal,
        product=read_product(product_file),
        currency=currency_code,
        annual_rate=annual_rate,
        term=term,
        frequency=frequency_name,
        start=_date(start),
        first_repayment=_date(first_repayment),
        day_count=day_count_name,
        method=method,
        amortization=amortization_name,
        grace_principal=grace_principal,
        grace_interest=grace_interest,
        calendar=calendar_name,
        convention=convention,
        rounding=rounding,
        instalment_multiple=instalment_multiple,
    )
    result = preview_schedule(db(ctx), request)
    document = schedule_doc(result.schedule)
    if json_out:
        print_json(document)
    else:
        print_schedule(result, document)


def _date(text: str | None) -> date | None:
    return None if text is None else parse_date(text.strip())
