"""Servicing benchmark: prints figures, asserts nothing about speed.

Part one, the schedule engine (pure, no database): schedules built per second
for 12, 60 and 360 monthly instalments (annuity, declining balance, ACT/365F),
and a flat-rate case; each run builds the same terms repeatedly for a fixed
time and reports schedules/s and the p50/p99 time of one build.

The measurements are a list (`MEASUREMENTS`): each entry is a function that
takes the run's `Counts` and returns rows of figures. The loan-read,
repayment and backdating measurements of issue 4 join that list.

    python benchmarks/servicing.py            # full run
    python benchmarks/servicing.py --quick    # smoke run, a few seconds
    python benchmarks/servicing.py --json     # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from lendcore.dates import DayCount
from lendcore.schedules.engine import build_schedule
from lendcore.schedules.terms import (
    Amortization,
    InterestMethod,
    ScheduleTerms,
    frequency,
)

# Width of the table when stdout is not a terminal (Rich would use 80).
TABLE_WIDTH_PIPED = 150
# Untimed builds before each timed run (imports, caches, calendar years).
WARMUP_BUILDS = 20


@dataclass(frozen=True)
class Counts:
    """How long each part runs (a limit on everything, so runs are bounded)."""

    seconds_per_case: float
    builds_max: int
    # Loans on a SQLite file: how long they live, how many, how many samples.
    days_long: int = 1_000
    loans: int = 5
    reads_per_loan: int = 40
    # Copies of each lived database on which every loan's next repayment is taken.
    repayment_copies: int = 8
    backdated_runs: int = 10


FULL = Counts(seconds_per_case=3.0, builds_max=200_000)
QUICK = Counts(
    seconds_per_case=0.3,
    builds_max=20_000,
    days_long=120,
    loans=2,
    reads_per_loan=10,
    repayment_copies=2,
    backdated_runs=3,
)


@dataclass(frozen=True)
class Row:
    part: str
    case: str
    count: int
    per_s: float
    p50_ms: float
    p99_ms: float
    unit: str  # what per_s counts


def percentile(sorted_values: Sequence[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def timed(case: str, part: str, unit: str, fn: Callable[[], Any], counts: Counts) -> Row:
    """Call `fn` repeatedly for `counts.seconds_per_case`; one row of figures."""
    for _ in range(WARMUP_BUILDS):
        fn()
    durations: list[float] = []
    started = time.perf_counter()
    deadline = started + counts.seconds_per_case
    while len(durations) < counts.builds_max:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        durations.append(t1 - t0)
        if t1 >= deadline:
            break
    elapsed = time.perf_counter() - started
    durations.sort()
    return Row(
        part=part,
        case=case,
        count=len(durations),
        per_s=len(durations) / elapsed,
        p50_ms=percentile(durations, 0.50) * 1000,
        p99_ms=percentile(durations, 0.99) * 1000,
        unit=unit,
    )


def schedule_terms(term: int, method: InterestMethod) -> ScheduleTerms:
    return ScheduleTerms(
        principal_minor=25_000_000,
        currency="USD",
        exponent=2,
        annual_rate=Decimal("0.1299"),
        term=term,
        frequency=frequency("monthly"),
        start=date(2026, 1, 31),  # a month end: every due date is one
        day_count=DayCount.ACT_365F,
        method=method,
        amortization=Amortization.ANNUITY,
    )


def measure_schedules(counts: Counts) -> list[Row]:
    cases = [
        (
            f"{term} monthly, annuity, declining, ACT/365F",
            schedule_terms(term, InterestMethod.DECLINING),
        )
        for term in (12, 60, 360)
    ]
    cases.append(("60 monthly, annuity, flat", schedule_terms(60, InterestMethod.FLAT)))
    return [
        timed(name, "schedule engine", "schedules/s", lambda t=t: build_schedule(t), counts)
        for name, t in cases
    ]


def _row(part: str, case: str, figures: dict[str, float]) -> Row:
    return Row(
        part=part,
        case=case,
        count=int(figures["samples"]),
        per_s=1000 / figures["p50_ms"] if figures["p50_ms"] else 0.0,
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        unit="calls/s at p50",
    )


def measure_loans(counts: Counts) -> list[Row]:
    """A loan's read and next repayment after 1 day and after `days_long` days of
    daily accrual (targets: ratio <= 1.2, both <= 5 ms on SQLite)."""
    import loan_latency

    with Console(stderr=True).status(
        f"Living loans for 1 and {counts.days_long} days with daily accrual..."
    ):
        found = loan_latency.measure_history(
            counts.days_long, counts.loans, counts.reads_per_loan, counts.repayment_copies
        )
    rows = [_row("loan on SQLite", case, figures) for case, figures in found.items()]
    for what in ("read", "next repayment"):
        young = found[f"{what} after 1 day"]["p50_ms"]
        old = found[f"{what} after {counts.days_long} days"]["p50_ms"]
        rows.append(
            Row(
                "loan on SQLite",
                f"{what}: {counts.days_long} days / 1 day",
                0,
                old / young,
                0,
                0,
                "ratio",
            )
        )
    return rows


def measure_backdated(counts: Counts) -> list[Row]:
    """A repayment dated before 36 monthly repayments of a 3-year loan with daily
    accrual (target <= 50 ms)."""
    import loan_latency

    with Console(stderr=True).status("Living a 3-year loan with 36 repayments..."):
        figures = loan_latency.measure_backdated(counts.backdated_runs)
    return [_row("loan on SQLite", "backdated before 36 repayments", figures)]


# The benchmark's parts, in order.
MEASUREMENTS: list[Callable[[Counts], list[Row]]] = [
    measure_schedules,
    measure_loans,
    measure_backdated,
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = QUICK if args.quick else FULL
    rows: list[Row] = []
    for measure in MEASUREMENTS:
        rows.extend(measure(counts))
    if args.json:
        document = {
            "benchmark": "servicing",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "results": [asdict(r) for r in rows],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return 0
    console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH_PIPED)
    table = Table(title="Servicing benchmark")
    table.add_column("part")
    table.add_column("case")
    table.add_column("rate", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("runs", justify="right")
    for r in rows:
        rate = f"{r.per_s:.2f}" if r.unit == "ratio" else f"{r.per_s:,.0f} {r.unit}"
        table.add_row(
            r.part,
            r.case,
            rate,
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}",
            f"{r.count:,}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
