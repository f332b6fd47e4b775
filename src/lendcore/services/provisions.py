"""The IFRS 9 provision report of a period: stage mix, ECL by stage and
product, and the movement of the loss allowance from opening to closing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, func, select

from lendcore.errors import InvalidInput, NotFound
from lendcore.ifrs9.report import ProvisionReport, provision_tables
from lendcore.presentation import amount
from lendcore.services.commands import query
from lendcore.store.database import Database
from lendcore.store.schema import eod_runs, provision_movements, provision_stage_mix


class ReportDateNotClosed(NotFound):
    code = "REPORT_DATE_NOT_CLOSED"


class ReportPeriodInvalid(InvalidInput):
    code = "REPORT_PERIOD_INVALID"


@dataclass(frozen=True, slots=True)
class CurrencyReport:
    currency: str
    report: ProvisionReport


@dataclass(frozen=True, slots=True)
class ProvisionPeriod:
    since: date
    on: date
    reports: tuple[CurrencyReport, ...]


_MIX = {
    "product_code": pl.String,
    "currency": pl.String,
    "stage": pl.Int8,
    "loans": pl.Int64,
    "exposure_minor": pl.Int64,
    "ecl_minor": pl.Int64,
}
_MOVES = {
    "product_code": pl.String,
    "kind": pl.String,
    "stage_from": pl.Int8,
    "stage_to": pl.Int8,
    "loans": pl.Int64,
    "amount_out_minor": pl.Int64,
    "amount_in_minor": pl.Int64,
    "amount_minor": pl.Int64,
}


def _stage_mix(conn: Connection, on: date) -> pl.DataFrame:
    rows = conn.execute(
        select(
            provision_stage_mix.c.product_code,
            provision_stage_mix.c.currency,
            provision_stage_mix.c.stage,
            provision_stage_mix.c.loans,
            provision_stage_mix.c.exposure_minor,
            provision_stage_mix.c.ecl_minor,
        ).where(provision_stage_mix.c.business_date == on)
    ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=_MIX, orient="row")


@query("report.provision")
def provision_report(db: Database, on: date, since: date | None = None) -> ProvisionPeriod:
    """The report for the period from `since` (default: the first day of `on`'s
    month) to `on`, both closed business dates included; one per currency."""
    since = since or on.replace(day=1)
    if since > on:
        raise ReportPeriodInvalid(
            f"the period starts on {since}, after its end {on}",
            since=since.isoformat(),
            on=on.isoformat(),
        )
    with db.reading() as conn:
        closed = conn.execute(
            select(func.count()).select_from(eod_runs).where(eod_runs.c.business_date == on)
        ).scalar_one()
        if not closed:
            raise ReportDateNotClosed(
                f"{on} has not been closed by end of day: no provisions on that date",
                date=on.isoformat(),
            )
        closing = _stage_mix(conn, on)
        opening = _stage_mix(conn, since - timedelta(days=1))
        moves = pl.DataFrame(
            [
                tuple(r)
                for r in conn.execute(
                    select(
                        provision_movements.c.product_code,
                        provision_movements.c.kind,
                        provision_movements.c.stage_from,
                        provision_movements.c.stage_to,
                        provision_movements.c.loans,
                        provision_movements.c.amount_out_minor,
                        provision_movements.c.amount_in_minor,
                        provision_movements.c.amount_minor,
                    ).where(provision_movements.c.business_date.between(since, on))
                ).all()
            ],
            schema=_MOVES,
            orient="row",
        )
    currency_of = dict(
        pl.concat([closing, opening]).select("product_code", "currency").unique().iter_rows()
    )
    moves = moves.with_columns(
        pl.col("product_code").replace_strict(currency_of, default=None).alias("currency")
    )
    reports = []
    for currency in sorted(set(currency_of.values())):
        mix = closing.filter(pl.col("currency") == currency).drop("currency")
        start = opening.filter(pl.col("currency") == currency).drop("currency")
        period = moves.filter(pl.col("currency") == currency).drop("currency")
        reports.append(CurrencyReport(currency, provision_tables(mix, period, start)))
    return ProvisionPeriod(since=since, on=on, reports=tuple(reports))


def report_doc(period: ProvisionPeriod) -> dict[str, Any]:
    """The report as JSON-ready data: amounts as decimal strings in major units
    beside their currency, never floats; the coverage ratio as a decimal string."""

    def rows(frame: pl.DataFrame, currency: str) -> list[dict[str, Any]]:
        out = []
        for row in frame.iter_rows(named=True):
            doc: dict[str, Any] = {}
            for key, value in row.items():
                if key.endswith("_minor"):
                    doc[key.removesuffix("_minor")] = amount(int(value), currency)
                elif key == "coverage_ratio":
                    doc[key] = None if value is None else f"{value:.6f}"
                else:
                    doc[key] = value
            out.append(doc)
        return out

    return {
        "since": period.since.isoformat(),
        "on": period.on.isoformat(),
        "currencies": [
            {
                "currency": r.currency,
                "stage_mix": rows(r.report.stage_mix, r.currency),
                "ecl_by_product": rows(r.report.ecl_by_product, r.currency),
                "movements": rows(r.report.movements, r.currency),
            }
            for r in period.reports
        ],
    }
