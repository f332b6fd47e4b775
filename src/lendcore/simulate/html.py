"""The portfolio report as one HTML page that works offline.

Pure: the report, the book's positions day by day and a few summary lines in,
the page out. The plotly.js bundle is inlined once in the page's head and every
chart is a div with a fixed id, so the page needs no network and the same
simulation renders the same page byte for byte.

Charts: PAR30 and PAR90 over time, outstanding principal and ECL over time, the
IFRS 9 stage mix over time (share of exposure per stage), and the vintage
curves (cumulative share of each monthly booking cohort that reached 90+ days
past due or was written off, by months on book). Amounts on charts are in
major units; the tables print them exactly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from lendcore.money import currency as lookup_currency
from lendcore.presentation import amount
from lendcore.services.portfolio import PortfolioDay, PortfolioReport, Position, ratio

STAGE_COLOURS: Final = {1: "#2e7d32", 2: "#f9a825", 3: "#c62828"}
CHART_CONFIG: Final = {"displaylogo": False, "responsive": True}
_STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
.muted { color: #666; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.92rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f5f5f5; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; }
.chart { margin: 1rem 0; }
"""


def percent(value: Decimal, places: int = 2) -> str:
    return f"{value * 100:.{places}f} %"


def _major(amount_minor: int, currency: str) -> float:
    """An amount in major units for a chart axis (display only, never booked)."""
    return float(Decimal(amount_minor).scaleb(-lookup_currency(currency).exponent))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(figure: Any, div_id: str) -> str:
    figure.update_layout(
        template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 50}, height=420
    )
    text: str = pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        config=CHART_CONFIG,
        div_id=div_id,
        default_height="420px",
    )
    return f'<div class="chart">{text}</div>'


def _currencies(history: Sequence[PortfolioDay]) -> list[str]:
    return sorted({p.currency for day in history for p in day.positions})


def _series(history: Sequence[PortfolioDay], currency: str) -> list[tuple[str, Position | None]]:
    return [
        (
            day.business_date.isoformat(),
            next((p for p in day.positions if p.currency == currency), None),
        )
        for day in history
    ]


def par_chart(history: Sequence[PortfolioDay]) -> Any:
    figure = go.Figure()
    for code in _currencies(history):
        series = _series(history, code)
        days = [d for d, _ in series]
        for label, dash in (("PAR30", "solid"), ("PAR90", "dot")):
            figure.add_trace(
                go.Scatter(
                    x=days,
                    y=[
                        float((p.par30 if label == "PAR30" else p.par90) * 100) if p else 0.0
                        for _, p in series
                    ],
                    name=f"{label} {code}",
                    mode="lines",
                    line={"dash": dash},
                )
            )
    figure.update_layout(
        title="Portfolio at risk over time (share of outstanding principal)",
        yaxis_title="%",
        xaxis_title="business date",
    )
    return figure


def balance_chart(history: Sequence[PortfolioDay]) -> Any:
    codes = _currencies(history)
    figure = make_subplots(
        rows=1,
        cols=max(1, len(codes)),
        subplot_titles=[f"{c}: outstanding principal and ECL" for c in codes] or [""],
        specs=[[{"secondary_y": True}] * max(1, len(codes))],
    )
    for column, code in enumerate(codes, start=1):
        series = _series(history, code)
        days = [d for d, _ in series]
        figure.add_trace(
            go.Scatter(
                x=days,
                y=[_major(p.outstanding_minor, code) if p else 0.0 for _, p in series],
                name=f"Outstanding {code}",
                mode="lines",
            ),
            row=1,
            col=column,
            secondary_y=False,
        )
        figure.add_trace(
            go.Scatter(
                x=days,
                y=[_major(p.ecl_minor, code) if p else 0.0 for _, p in series],
                name=f"ECL {code}",
                mode="lines",
                line={"dash": "dot"},
            ),
            row=1,
            col=column,
            secondary_y=True,
        )
    figure.update_layout(title="The book and its loss allowance over time")
    return figure


def stage_chart(history: Sequence[PortfolioDay]) -> Any:
    codes = _currencies(history)
    figure = make_subplots(
        rows=1,
        cols=max(1, len(codes)),
        subplot_titles=[f"{c}: share of exposure by IFRS 9 stage" for c in codes] or [""],
        shared_yaxes=True,
    )
    for column, code in enumerate(codes, start=1):
        series = _series(history, code)
        days = [d for d, _ in series]
        for stage, colour in STAGE_COLOURS.items():
            shares = []
            for _, p in series:
                total = p.exposure_minor if p else 0
                part = next((s.exposure_minor for s in p.stages if s.stage == stage), 0) if p else 0
                shares.append(100.0 * part / total if total else 0.0)
            figure.add_trace(
                go.Scatter(
                    x=days,
                    y=shares,
                    name=f"Stage {stage}",
                    legendgroup=f"stage-{stage}",
                    showlegend=column == 1,
                    mode="lines",
                    stackgroup=f"stages-{code}",
                    line={"color": colour, "width": 0.5},
                ),
                row=1,
                col=column,
            )
    figure.update_layout(title="IFRS 9 stage mix over time", yaxis_title="% of exposure")
    return figure


def vintage_chart(report: PortfolioReport) -> Any:
    figure = go.Figure()
    for vintage in report.vintages:
        if not vintage.points:
            continue
        figure.add_trace(
            go.Scatter(
                x=[p.months_on_book for p in vintage.points],
                y=[float(p.share * 100) for p in vintage.points],
                name=f"{vintage.cohort} ({vintage.loans} loans)",
                mode="lines+markers",
            )
        )
    figure.update_layout(
        title="Vintage curves: cumulative share of each booking month 90+ days past due "
        "or written off",
        xaxis_title="months on book",
        yaxis_title="% of the cohort's loans",
        xaxis={"dtick": 1},
    )
    return figure


def headline_rows(report: PortfolioReport) -> tuple[list[str], list[list[str]]]:
    """The headline figures, one column per currency (shared with the terminal)."""
    header = ["", *[c.currency for c in report.currencies]]
    lines: list[tuple[str, Any]] = [
        ("Active loans", lambda c: f"{c.position.loans_active:,}"),
        ("Closed loans", lambda c: f"{c.loans_closed:,}"),
        ("Written-off loans", lambda c: f"{c.loans_written_off:,}"),
        ("Disbursed", lambda c: amount(c.disbursed_minor, c.currency)),
        ("Collected", lambda c: amount(c.collected_minor, c.currency)),
        ("Outstanding principal", lambda c: amount(c.position.outstanding_minor, c.currency)),
        ("PAR30", lambda c: percent(c.position.par30)),
        ("PAR90", lambda c: percent(c.position.par90)),
        ("ECL (loss allowance)", lambda c: amount(c.position.ecl_minor, c.currency)),
        ("ECL coverage of exposure", lambda c: percent(c.position.coverage)),
        ("Interest income", lambda c: amount(c.interest_income_minor, c.currency)),
        ("Fee income", lambda c: amount(c.fee_income_minor, c.currency)),
        ("Penalty income", lambda c: amount(c.penalty_income_minor, c.currency)),
        ("Written off", lambda c: amount(c.written_off_minor, c.currency)),
        ("Recovered after write-off", lambda c: amount(c.recovery_income_minor, c.currency)),
    ]
    return header, [[label, *[pick(c) for c in report.currencies]] for label, pick in lines]


def product_rows(report: PortfolioReport) -> tuple[list[str], list[list[str]]]:
    header = ["Product", "Currency", "Active", "Outstanding", "PAR30", "PAR90", "ECL"]
    return header, [
        [
            p.product_code,
            p.currency,
            f"{p.loans_active:,}",
            amount(p.outstanding_minor, p.currency),
            percent(p.par30),
            percent(p.par90),
            amount(p.ecl_minor, p.currency),
        ]
        for p in report.products
    ]


def stage_rows(report: PortfolioReport) -> tuple[list[str], list[list[str]]]:
    header = ["Currency", "Stage", "Loans", "Exposure", "ECL", "Coverage"]
    rows = []
    for figures in report.currencies:
        for s in figures.position.stages:
            rows.append(
                [
                    figures.currency,
                    str(s.stage),
                    f"{s.loans:,}",
                    amount(s.exposure_minor, figures.currency),
                    amount(s.ecl_minor, figures.currency),
                    percent(ratio(s.ecl_minor, s.exposure_minor)),
                ]
            )
    return header, rows


def vintage_rows(report: PortfolioReport) -> tuple[list[str], list[list[str]]]:
    months = max((len(v.points) for v in report.vintages), default=0)
    header = ["Cohort", "Loans", *[f"MOB {m}" for m in range(1, months + 1)]]
    rows = []
    for vintage in report.vintages:
        cells = [percent(p.share, 1) for p in vintage.points]
        rows.append([vintage.cohort, f"{vintage.loans:,}", *cells, *[""] * (months - len(cells))])
    return header, rows


def render(
    report: PortfolioReport,
    history: Sequence[PortfolioDay],
    *,
    title: str,
    summary: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole page (see the module docstring)."""
    as_of = report.as_of.isoformat() if report.as_of else "before the first end of day"
    provisioned = (
        f"IFRS 9 figures of {report.provisioned_on.isoformat()}"
        if report.provisioned_on
        else "no IFRS 9 provisions yet: stages and ECL show as zero"
    )
    facts = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>" for label, value in summary
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">As of the close of {html.escape(as_of)} · '
        f"{html.escape(provisioned)} · amounts in major units of each currency</p>",
    ]
    if facts:
        parts += ["<h2>The simulation</h2>", f'<dl class="summary">{facts}</dl>']
    parts += [
        "<h2>Portfolio</h2>",
        _table(*headline_rows(report)),
        _table(*product_rows(report)),
        _chart(par_chart(history), "chart-par"),
        _chart(balance_chart(history), "chart-balance"),
        "<h2>IFRS 9 stages and expected credit loss</h2>",
        _table(*stage_rows(report)),
        _chart(stage_chart(history), "chart-stages"),
        "<h2>Vintages</h2>",
        '<p class="muted">Cumulative share of each monthly booking cohort that reached 90 or '
        "more days past due or was written off, by months on book.</p>",
        _table(*vintage_rows(report)),
        _chart(vintage_chart(report), "chart-vintages"),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
