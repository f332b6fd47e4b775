"""End of day's columnar kernel against the per-loan rule (servicing.replay).

Each loan's snapshot after its last event, moved forward by the kernel to a
later day, must equal the replay of its events to that day, to the minor unit:
positions per ledger role, arrears, bucket and status.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.eod.kernel import ROLES, ProductTable, close_day, frames_from_json, frames_of
from lendcore.products.model import Component, Product, load_product_text
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import LoanContract, LoanStatus, replay, resume

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
START = date(2026, 1, 15)


def _variant(name: str, **changes: Any) -> Product:
    doc = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    for path, value in changes.items():
        target = doc
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return load_product_text(yaml.safe_dump(doc))


# The shipped products and variants that reach every branch of the rule:
# suspense, percent late fees, other day counts, equal periods, a custom waterfall.
PRODUCTS: dict[str, Product] = {
    "consumer": _variant("consumer-annuity"),
    "micro": _variant("microloan-weekly-flat"),
    "bullet": _variant("working-capital-bullet"),
    "balloon": _variant("interest-only-balloon"),
    "suspense-pct": _variant(
        "consumer-annuity",
        code="consumer-suspense",
        prepayment="suspense",
        fees__late={"kind": "percent", "value": "0.05", "grace_days": 3},
        interest__penalty_rate="0.12",
    ),
    "actact-30e": _variant(
        "consumer-annuity",
        code="consumer-actact",
        interest__day_count="act/act",
        interest__penalty_rate="0.0725",
        waterfall={"order": ["interest", "principal", "fee", "penalty"]},
    ),
    "thirty": _variant(
        "interest-only-balloon",
        code="balloon-30",
        interest__day_count="30/360",
        interest__period="equal-periods",
        interest__penalty_rate="0.18",
    ),
    "thirty-e-suspense": _variant(
        "working-capital-bullet",
        code="bullet-30e",
        interest__day_count="30e/360",
        prepayment="suspense",
    ),
}
TABLE = ProductTable.of((p.code, 1, p) for p in PRODUCTS.values())

step = st.tuples(
    st.sampled_from(["pay", "pay", "pay", "reverse", "waive", "reschedule", "tranche"]),
    st.integers(min_value=0, max_value=75),
    st.integers(min_value=1, max_value=400_000),
)


def _events(p: Product, principal: int, steps: list[tuple[str, int, int]]) -> list[LoanEvent]:
    events = [LoanEvent(1, EventKind.DISBURSEMENT, START, principal)]
    day = 0
    repayments: list[int] = []
    for seq, (kind, gap, amount) in enumerate(steps, start=2):
        day += gap
        on = START + timedelta(days=day)
        if kind == "pay":
            events.append(LoanEvent(seq, EventKind.REPAYMENT, on, amount))
            repayments.append(seq)
        elif kind == "reverse" and repayments:
            gone = repayments.pop(amount % len(repayments))
            events.append(LoanEvent(seq, EventKind.REPAYMENT_REVERSAL, on, reverses_seq=gone))
        elif kind == "waive":
            events.append(
                LoanEvent(seq, EventKind.WAIVER, on, amount % 500 + 1, component=Component.PENALTY)
            )
        elif kind == "reschedule" and p.amortization.value != "bullet":
            events.append(
                LoanEvent(
                    seq,
                    EventKind.RESCHEDULE,
                    on,
                    extend_by=amount % 3,
                    payment_holiday=amount % 2 if p.interest.method.value != "flat" else 0,
                )
            )
        elif kind == "tranche" and day < 40:
            events.append(LoanEvent(seq, EventKind.DISBURSEMENT, on, principal // 4))
    return events


def _compare(contract: LoanContract, events: list[LoanEvent], days_after: list[int]) -> int:
    """Kernel versus replay on the days after the last event; returns how many
    days were compared (0 when the loan is not active after its events)."""
    last = max(e.value_date for e in events)
    state, snapshot = resume(contract, events, last, None)
    if state.status is not LoanStatus.ACTIVE or snapshot is None:
        return 0
    p = contract.product
    loans, dues = frames_of([(contract.loan_id, p.code, 1, snapshot)])
    compared = 0
    for after in days_after:
        as_of = last + timedelta(days=after)
        expected = replay(contract, events, as_of)
        got = close_day(loans, dues, TABLE, as_of).loans.row(0, named=True)
        where = f"{p.code} as of {as_of}"
        assert {r: got[r] for r in ROLES} == expected.positions, where
        assert got["days_past_due"] == expected.days_past_due, where
        assert got["bucket"] == expected.bucket, where
        assert got["overdue"] == expected.overdue, where
        assert got["interest_accrued"] == expected.interest_accrued, where
        assert got["status"] == expected.status.value, where
        compared += 1
    return compared


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(PRODUCTS)),
    steps=st.lists(step, max_size=8),
    multiple=st.integers(min_value=1, max_value=6),
    days_after=st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=4),
)
def test_kernel_equals_replay_for_one_loan(
    name: str, steps: list[tuple[str, int, int]], multiple: int, days_after: list[int]
) -> None:
    p = PRODUCTS[name]
    principal = p.minor(p.principal.min) * multiple
    contract = LoanContract(1, p, p.terms(principal, START, enforce_limits=False), principal)
    _compare(contract, _events(p, principal, steps), days_after)


def _random_book(seed: int, size: int) -> list[tuple[LoanContract, list[LoanEvent]]]:
    rng = random.Random(seed)
    book = []
    names = sorted(PRODUCTS)
    for loan_id in range(1, size + 1):
        p = PRODUCTS[rng.choice(names)]
        principal = p.minor(p.principal.min) * rng.randint(1, 8)
        contract = LoanContract(
            loan_id, p, p.terms(principal, START, enforce_limits=False), principal
        )
        steps = [
            (
                rng.choice(["pay", "pay", "reverse", "waive", "reschedule"]),
                rng.randint(0, 45),
                rng.randint(1, 300_000),
            )
            for _ in range(rng.randint(0, 5))
        ]
        book.append((contract, _events(p, principal, steps)))
    return book


def test_a_whole_book_in_one_frame_equals_each_loan_replayed() -> None:
    """Many loans of every product at once: grouping never mixes two loans."""
    book = _random_book(7, 400)
    as_of = START + timedelta(days=260)
    snapshots, expected = [], {}
    for contract, events in book:
        events = [e for e in events if e.value_date <= as_of]
        last = max(e.value_date for e in events)
        state, snapshot = resume(contract, events, last, None)
        if state.status is not LoanStatus.ACTIVE or snapshot is None:
            continue
        snapshots.append((contract.loan_id, contract.product.code, 1, snapshot))
        expected[contract.loan_id] = replay(contract, events, as_of)
    assert len(expected) > 200
    loans, dues = frames_of(snapshots)
    got = close_day(loans, dues, TABLE, as_of).loans
    assert got.height == len(expected)
    for row in got.iter_rows(named=True):
        want = expected[row["loan_id"]]
        assert {r: row[r] for r in ROLES} == want.positions, row["loan_id"]
        assert (row["days_past_due"], row["bucket"], row["status"]) == (
            want.days_past_due,
            want.bucket,
            want.status.value,
        )
    # Some of the book is in arrears and some closed by time alone: the test
    # exercises more than the happy path.
    assert got.filter(got["days_past_due"] > 30).height > 10


def test_decoding_snapshots_in_polars_equals_decoding_them_in_python() -> None:
    import json

    import polars as pl

    book = _random_book(11, 60)
    rows, snapshots = [], []
    for contract, events in book:
        last = max(e.value_date for e in events)
        state, snapshot = resume(contract, events, last, None)
        if snapshot is None or state.status is not LoanStatus.ACTIVE:
            continue
        snapshots.append((contract.loan_id, contract.product.code, 1, snapshot))
        rows.append(
            {
                "loan_id": contract.loan_id,
                "product_code": contract.product.code,
                "product_version": 1,
                "snapshot_json": json.dumps(snapshot),
            }
        )
    by_python = frames_of(snapshots)
    by_polars = frames_from_json(pl.DataFrame(rows))
    assert by_polars[0].equals(by_python[0])
    assert by_polars[1].equals(by_python[1])
