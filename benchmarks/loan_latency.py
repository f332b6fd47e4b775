"""Servicing benchmark, part two: a loan's read and next repayment after a long
life compared with a young loan, and a backdated repayment on a full history.
On a SQLite file, through the service layer (permissions, audit, ledger).
Used by benchmarks/servicing.py; prints nothing itself."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from lendcore.products.model import Product
from lendcore.services import business_date, lender, loans
from lendcore.store.database import Database, open_database

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "src/lendcore/products/examples/consumer-annuity.yaml"
)
FUNDING_MINOR = 10_000_000_000


@dataclass(frozen=True)
class Lender:
    db: Database
    staff: lender.Staff
    product: Product

    @property
    def servicing(self) -> Database:
        return self.staff.servicing


def open_lender(directory: Path) -> Lender:
    db = open_database(f"sqlite:///{directory / 'bench.db'}")
    product = lender.example_product("consumer-annuity")
    staff = lender.set_up_lender(db, [product], {"USD": FUNDING_MINOR})
    return Lender(db, staff, product)


def live_loans(bank: Lender, count: int, days: int, term: int = 36) -> list[int]:
    """`count` monthly loans of `term` instalments lived for `days` days with an
    accrual run every day, each instalment paid on its due date."""
    svc = bank.servicing
    ids = []
    for n in range(count):
        borrower = lender.onboard(bank.staff, f"Borrower {n + 1}", "USD")
        loan = lender.originate(bank.staff, borrower, bank.product, "20000.00", term)
        ids.append(loans.disburse(svc, loan.id).id)
    dues = {i.due_date: i.total for i in loans.get_loan(svc, ids[0]).state.instalments}
    start = business_date.business_date(bank.db)
    for _ in range(days):
        today = business_date.advance_business_date(bank.db, 1)
        if today in dues:
            for loan_id in ids:
                loans.repay(svc, loan_id, dues[today], "USD")
        loans.accrue_book(svc)
    assert business_date.business_date(bank.db) == start + timedelta(days=days)
    return ids


def latency_ms(fn: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - began) / 1e6)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "samples": float(len(ordered)),
    }


def measure_history(
    days_long: int, loans_count: int, reads: int, copies: int
) -> dict[str, dict[str, float]]:
    """Read and next-repayment latency after 1 day and after `days_long` days of
    daily accrual: `reads` reads of each loan, and each loan's next instalment
    paid once on each of `copies` copies of the database file (a fresh operation
    each time, so none measures another's event; the copies give more samples
    of the same operation without living the loans again). Needs 2 loans or more.

    Both books are lived first, then measured in alternation (a round of reads
    of every loan of each, a copy of each): the figures are compared as a
    ratio, and a change in the machine's load then touches both alike."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as young, tempfile.TemporaryDirectory() as old:
        cases: dict[str, tuple[Path, Lender, list[int]]] = {}
        for label, days, directory in (("1 day", 1, young), (f"{days_long} days", days_long, old)):
            bank = open_lender(Path(directory))
            cases[label] = (Path(directory), bank, live_loans(bank, loans_count, days))
        read_samples: dict[str, list[float]] = {label: [] for label in cases}
        for _directory, bank, ids in cases.values():
            for loan_id in ids:
                loans.get_loan(bank.servicing, loan_id)  # warm the product and terms caches
        for _ in range(reads):
            for label, (_directory, bank, ids) in cases.items():
                for loan_id in ids:
                    read = partial(loans.get_loan, bank.servicing, loan_id)
                    read_samples[label] += latency_ms(read, 1)
        for _directory, bank, _ids in cases.values():
            bank.db.dispose()
        pay_samples: dict[str, list[float]] = {label: [] for label in cases}
        for copy in range(copies):
            for label, (directory, bank, ids) in cases.items():
                pay_samples[label] += _next_repayments(directory, copy, bank.staff, ids)
        for label in cases:
            results[f"read after {label}"] = summary(read_samples[label])
            results[f"next repayment after {label}"] = summary(pay_samples[label])
    return results


def _next_repayments(
    directory: Path, copy: int, staff: lender.Staff, ids: list[int]
) -> list[float]:
    """On a copy of the lived database: each loan's next instalment paid once.
    The first loan's is not timed: it warms the new engine's statement caches,
    which a long-running process has warm."""
    path = directory / f"copy-{copy}.db"
    shutil.copyfile(directory / "bench.db", path)
    wal = directory / "bench.db-wal"  # closed cleanly there is none; copied if there is
    if wal.exists():
        shutil.copyfile(wal, directory / f"copy-{copy}.db-wal")
    db = open_database(f"sqlite:///{path}")
    svc = db.acting_as(staff.servicing.actor)
    samples: list[float] = []
    for n, loan_id in enumerate(ids):
        state = loans.get_loan(svc, loan_id).state
        upcoming = next(i for i in state.instalments if not i.fallen_due)
        taken = latency_ms(partial(loans.repay, svc, loan_id, upcoming.total, "USD"), 1)
        samples += taken if n > 0 else []
    db.dispose()
    path.unlink()
    return samples


def measure_backdated(runs: int) -> dict[str, float]:
    """A repayment dated before 36 monthly repayments, three years into a loan with
    daily accrual (a 4-year loan, so it is still open after 36 repayments)."""
    with tempfile.TemporaryDirectory() as directory:
        bank = open_lender(Path(directory))
        (loan_id,) = live_loans(bank, 1, 3 * 365 + 5, term=48)
        svc = bank.servicing
        view = loans.get_loan(svc, loan_id, history_limit=loans.HISTORY_PAGE_MAX)
        repayments = [h for h in view.history if h.kind == "repayment"]
        assert len(repayments) == 36, len(repayments)
        before_all = repayments[0].value_date - timedelta(days=1)
        samples = latency_ms(
            lambda: loans.repay(svc, loan_id, "1.00", "USD", value_date=before_all), runs
        )
        bank.db.dispose()
        return summary(samples)
