"""`lendcore events ...` and `lendcore webhook ...`: the outbox, its publisher and webhooks."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, err_console, handles_errors, print_json
from lendcore.errors import InvalidInput
from lendcore.presentation import delivery_doc, webhook_doc
from lendcore.services import publisher, webhooks
from lendcore.services.events import Event, list_events
from lendcore.services.publisher import PublisherTotals, RoundReport

events_app = typer.Typer(help="Domain events: the outbox and its publisher.", no_args_is_help=True)
webhook_app = typer.Typer(help="Webhooks that receive domain events.", no_args_is_help=True)


# --- documents ------------------------------------------------------------------------


def event_doc(e: Event) -> dict[str, Any]:
    """The envelope receivers get, so what the CLI shows is what is delivered."""
    return e.envelope()


def _parse_aggregate(text: str | None) -> tuple[str | None, str | None]:
    """`account` or `account:1000` (the id may itself contain ':')."""
    if not text:
        return None, None
    kind, _, ident = text.partition(":")
    if not kind:
        raise InvalidInput(f"--aggregate {text!r}: use TYPE or TYPE:ID, e.g. account:1000")
    return kind, ident or None


def _parse_delivery_cursor(text: str | None) -> tuple[int, int]:
    """`OUTBOX_ID` or `OUTBOX_ID:WEBHOOK_ID`, as printed in `next_after`."""
    if not text:
        return 0, 0
    outbox, _, webhook = text.partition(":")
    try:
        return int(outbox), int(webhook or 0)
    except ValueError:
        raise InvalidInput(
            f"--after {text!r}: use OUTBOX_ID or OUTBOX_ID:WEBHOOK_ID, as in next_after"
        ) from None


# --- events ---------------------------------------------------------------------------------


@events_app.command("list")
@handles_errors
def events_list(
    ctx: typer.Context,
    event_type: str | None = typer.Option(None, "--type", help="e.g. journal_entry.booked"),
    aggregate: str | None = typer.Option(None, "--aggregate", help="TYPE or TYPE:ID"),
    after: int = typer.Option(0, "--after", help="Cursor: list events after this sequence."),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """List outbox events in the order they were recorded."""
    aggregate_type, aggregate_id = _parse_aggregate(aggregate)
    found = list_events(
        db(ctx),
        after_id=after,
        limit=limit,
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
    )
    if json_out:
        next_after = found[-1].id if len(found) == limit else None
        print_json({"events": [event_doc(e) for e in found], "next_after": next_after})
        return
    table = Table(title="Events")
    for column in ("Seq", "Recorded (UTC)", "Business date", "Type", "Aggregate", "Event id"):
        table.add_column(column)
    for e in found:
        table.add_row(
            str(e.id),
            e.recorded_at[:19],
            e.business_date.isoformat(),
            e.event_type,
            f"{e.aggregate_type}:{e.aggregate_id}",
            e.event_id,
        )
    console.print(table)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM ends the loop after the current round (nothing is cut short)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _round_line(report: RoundReport) -> str | None:
    d = report.deliveries
    if not (report.queued or d.attempted or d.dead or report.nats_published or report.nats_error):
        return None
    parts = [
        f"queued {report.queued}",
        f"delivered {d.delivered}/{d.attempted}",
        f"retrying {d.retrying}",
        f"dead {d.dead}",
    ]
    if report.nats_published or report.nats_error:
        parts.append(f"nats {report.nats_published}")
    return " · ".join(parts)


def print_totals(totals: PublisherTotals, nats_url: str | None) -> None:
    table = Table(title=f"Publisher · {totals.rounds} round(s)")
    table.add_column("")
    table.add_column("Count", justify="right")
    table.add_row("Deliveries queued", str(totals.queued))
    table.add_row("Attempts", str(totals.attempted))
    table.add_row("Delivered", f"[green]{totals.delivered}[/]")
    table.add_row("Failed, retrying later", f"[yellow]{totals.retrying}[/]")
    table.add_row("Dead-lettered", f"[red]{totals.dead}[/]" if totals.dead else "0")
    if nats_url:
        table.add_row("Published to NATS", str(totals.nats_published))
        if totals.nats_errors:
            table.add_row("NATS failures", f"[red]{totals.nats_errors}[/]")
    console.print(table)


@events_app.command("publish")
@handles_errors
def events_publish(
    ctx: typer.Context,
    once: bool = typer.Option(
        False, "--once", help="Work until nothing is immediately due, then exit."
    ),
    interval: float = typer.Option(
        1.0, "--interval", help="Seconds to sleep when a round finds no work."
    ),
    nats_url: str | None = typer.Option(
        None,
        "--nats",
        envvar=publisher.NATS_URL_ENV,
        help="Also publish to NATS JetStream at this URL, e.g. nats://127.0.0.1:4222.",
    ),
    stream: str = typer.Option(publisher.NATS_STREAM_DEFAULT, "--stream"),
    subject_prefix: str = typer.Option(publisher.NATS_SUBJECT_PREFIX_DEFAULT, "--subject-prefix"),
    json_out: bool = JsonOption,
) -> None:
    """Deliver events to webhooks (and NATS): once, or until Ctrl-C."""
    database = db(ctx)
    stop = threading.Event()

    def show(report: RoundReport) -> None:
        if json_out:
            return
        line = _round_line(report)
        if line is not None:
            console.print(line, highlight=False)
        if report.nats_error is not None:
            err_console.print(f"[red]NATS: {report.nats_error}[/]", highlight=False)

    if not json_out and not once:
        console.print("Publishing; Ctrl-C stops after the current round.")
    with _stop_on_signals(stop):
        totals = publisher.run_publisher(
            database,
            once=once,
            interval_s=interval,
            nats_url=nats_url,
            stop_event=stop,
            nats_stream=stream,
            nats_subject_prefix=subject_prefix,
            on_round=show,
        )
    if json_out:
        print_json(
            {
                "rounds": totals.rounds,
                "queued": totals.queued,
                "attempted": totals.attempted,
                "delivered": totals.delivered,
                "retrying": totals.retrying,
                "dead": totals.dead,
                "nats_published": totals.nats_published,
                "nats_errors": totals.nats_errors,
                "last_nats_error": totals.last_nats_error,
            }
        )
    else:
        print_totals(totals, nats_url)


# --- webhooks ----------------------------------------------------------------------------------


@webhook_app.command("add")
@handles_errors
def webhook_add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="http(s) URL that receives POSTed events."),
    event: list[str] | None = typer.Option(
        None, "--event", "-e", help="Event type or prefix.* to receive (repeat); default: all."
    ),
    secret: str | None = typer.Option(
        None, "--secret", help="HMAC secret to use; default: a new random one."
    ),
    start_after: int | None = typer.Option(
        None,
        "--start-after",
        help="Deliver events after this sequence (0: all history); default: new events only.",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Register a webhook. Its signing secret is printed now and never again."""
    hook, key = webhooks.register_webhook(
        db(ctx), url, event or None, secret, start_after=start_after
    )
    if json_out:
        print_json({**webhook_doc(hook), "secret": key})
        return
    wanted = "all events" if hook.event_types is None else ", ".join(hook.event_types)
    console.print(f"Webhook {hook.id} · {hook.url} · {wanted}", highlight=False)
    console.print(
        f"[bold yellow]Signing secret, shown once (store it with the receiver):[/]\n  {key}",
        highlight=False,
    )


@webhook_app.command("list")
@handles_errors
def webhook_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """List webhooks (secrets are never shown)."""
    found = webhooks.list_webhooks(db(ctx))
    if json_out:
        print_json({"webhooks": [webhook_doc(w) for w in found]})
        return
    table = Table(title="Webhooks")
    for column in ("Id", "URL", "Events", "Active", "Queued through", "Created (UTC)"):
        table.add_column(column)
    for w in found:
        table.add_row(
            str(w.id),
            w.url,
            "all" if w.event_types is None else ", ".join(w.event_types),
            "yes" if w.active else "[red]no[/]",
            str(w.queued_through),
            w.created_at[:19],
        )
    console.print(table)


@webhook_app.command("deliveries")
@handles_errors
def webhook_deliveries(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", help="pending, delivered or dead (the dead-letter list)."
    ),
    webhook_id: int | None = typer.Option(None, "--webhook"),
    after: str | None = typer.Option(
        None, "--after", help="Cursor OUTBOX_ID[:WEBHOOK_ID], as printed in next_after."
    ),
    limit: int = typer.Option(50, "--limit"),
    json_out: bool = JsonOption,
) -> None:
    """List deliveries in outbox order; `--status dead` is the dead-letter list."""
    found = webhooks.list_deliveries(
        db(ctx),
        status=status,
        webhook_id=webhook_id,
        after=_parse_delivery_cursor(after),
        limit=limit,
    )
    if json_out:
        last = found[-1] if len(found) == limit else None
        next_after = None if last is None else f"{last.outbox_id}:{last.webhook_id}"
        print_json({"deliveries": [delivery_doc(d) for d in found], "next_after": next_after})
        return
    table = Table(title="Webhook deliveries")
    for column in (
        "Webhook",
        "Seq",
        "Type",
        "Aggregate",
        "Status",
        "Tries",
        "Next / done",
        "Error",
    ):
        table.add_column(column)
    style = {"delivered": "green", "pending": "yellow", "dead": "red"}
    for d in found:
        when = d.next_attempt_at if d.status == "pending" else (d.delivered_at or "")
        table.add_row(
            str(d.webhook_id),
            str(d.outbox_id),
            d.event_type,
            d.aggregate_key,
            f"[{style[d.status]}]{d.status}[/]",
            str(d.attempts),
            when[:19],
            d.last_error or "",
        )
    console.print(table)


@webhook_app.command("redeliver")
@handles_errors
def webhook_redeliver(
    ctx: typer.Context, webhook_id: int, outbox_id: int, json_out: bool = JsonOption
) -> None:
    """Put a dead delivery back in the queue with a fresh set of attempts."""
    delivery = webhooks.redeliver(db(ctx), webhook_id, outbox_id)
    if json_out:
        print_json(delivery_doc(delivery))
    else:
        console.print(
            f"Webhook {webhook_id} · event {outbox_id} ({delivery.event_type}) is pending again"
        )


@webhook_app.command("disable")
@handles_errors
def webhook_disable(ctx: typer.Context, webhook_id: int, json_out: bool = JsonOption) -> None:
    """Stop delivering to a webhook (its queued deliveries are kept, unattempted)."""
    hook = webhooks.deactivate_webhook(db(ctx), webhook_id)
    if json_out:
        print_json(webhook_doc(hook))
    else:
        console.print(f"Webhook {hook.id} disabled · {hook.url}", highlight=False)
