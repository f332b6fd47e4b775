"""PostgreSQL under contention: 16 writers on the same 10 accounts.

Each writer is a thread with its own pooled connection. Afterwards the journal
is replayed in seal order (the chain follows commit order) to show that no
constrained account went below zero at any moment, not only at the end; every
stored balance must equal its postings (no lost update) and the number of
entries must equal the bookings the writers counted.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from lendcore.errors import LendcoreError
from lendcore.ledger.chain import decode_id_ranges
from lendcore.ledger.model import AccountType, BalanceConstraint
from lendcore.services import ledger
from lendcore.services.business_date import business_date
from lendcore.services.verify import verify_ledger
from lendcore.store.database import Database, open_database
from tests.conftest import requires_pg
from tests.integration.ledger_helpers import (
    count_rows,
    journal_totals,
    open_accounts,
    stored_totals,
    transfer,
)

pytestmark = [requires_pg, pytest.mark.pg]

WRITERS = 16
TRANSFERS_PER_WRITER = 80
ACCOUNTS = [f"hot{n}" for n in range(10)]
# The first five may not go below zero (on their debit side): they overdraw often.
CONSTRAINED = ACCOUNTS[:5]
FUNDING_MINOR = 500
USD = "USD"


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    db = open_database(pg_url, pool_size=WRITERS + 4)
    try:
        yield db
    finally:
        db.dispose()


def run_writers(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Start `count` threads together; return their results, re-raise their errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def main(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = work(n)
        except BaseException as exc:  # reported below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a writer hung"
    if errors:
        raise errors[0]
    return results


def test_sixteen_writers_never_overdraw_and_never_lose_an_update(pg: Database) -> None:
    open_accounts(
        pg,
        *[(code, AccountType.ASSET, USD, BalanceConstraint.NON_NEGATIVE) for code in CONSTRAINED],
        *[(code, AccountType.ASSET, USD) for code in ACCOUNTS[5:]],
    )
    # Fund each constrained account from the unconstrained ones.
    for n, code in enumerate(CONSTRAINED):
        ledger.book_entry(pg, transfer(f"fund-{n}", code, ACCOUNTS[5 + n], FUNDING_MINOR))

    def writer(n: int) -> Counter[str]:
        rng = random.Random(n)
        outcome: Counter[str] = Counter()
        for i in range(TRANSFERS_PER_WRITER):
            debit, credit = rng.sample(ACCOUNTS, 2)
            spec = transfer(f"w{n}-{i}", debit, credit, rng.randint(1, 600))
            try:
                entry = ledger.book_entry(pg, spec)
            except LendcoreError as error:
                # The only refusal a valid transfer may meet.
                assert error.code == "BALANCE_CONSTRAINT_VIOLATED", error
                outcome["refused"] += 1
            else:
                assert entry.replayed is False
                outcome["booked"] += 1
        return outcome

    outcomes = run_writers(WRITERS, writer)
    booked = sum(o["booked"] for o in outcomes)
    refused = sum(o["refused"] for o in outcomes)
    assert booked + refused == WRITERS * TRANSFERS_PER_WRITER
    # Contention was real: both outcomes happened many times.
    assert booked > 200 and refused > 20, (booked, refused)

    # No update lost: entries = funding + bookings counted; balances = postings.
    assert count_rows(pg, "journal_entries") == len(CONSTRAINED) + booked
    assert count_rows(pg, "postings") == 2 * (len(CONSTRAINED) + booked)
    stored = stored_totals(pg)
    journal = journal_totals(pg)
    for code in ACCOUNTS:
        assert stored[code] == (*journal[code], 0, 0), code
    for code in CONSTRAINED:
        debits, credits, _, _ = stored[code]
        assert debits - credits >= 0, code
    # Money is only moved: all balances together are still zero.
    assert sum(d - c for d, c, _, _ in stored.values()) == 0

    # Never below zero at any moment: replay the journal in commit (seal) order.
    assert replay_in_commit_order(pg) == len(CONSTRAINED) + booked

    report = verify_ledger(pg)
    assert report.ok, report.problems[:5]
    assert report.entries_checked == len(CONSTRAINED) + booked
    assert report.seals_checked == report.head_seq == len(CONSTRAINED) + booked


def replay_in_commit_order(db: Database) -> int:
    """Walk the seals in order; after every entry each constrained balance is >= 0.
    Returns how many entries were replayed."""
    with db.reading() as conn:
        code_of = {r[0]: r[1] for r in conn.execute(text("SELECT id, code FROM accounts"))}
        lines: dict[int, list[tuple[str, str, int]]] = {}
        for entry_id, account_id, side, amount in conn.execute(
            text("SELECT entry_id, account_id, side, amount_minor FROM postings")
        ):
            lines.setdefault(entry_id, []).append((code_of[account_id], side, amount))
        seals = conn.execute(text("SELECT entry_ids FROM ledger_seals ORDER BY seq")).all()
    balance = dict.fromkeys(ACCOUNTS, 0)
    replayed = 0
    for (entry_ids,) in seals:
        for entry_id in decode_id_ranges(entry_ids):
            for code, side, amount in lines.pop(entry_id):
                balance[code] += amount if side == "D" else -amount
            replayed += 1
            below = {code: balance[code] for code in CONSTRAINED if balance[code] < 0}
            assert below == {}, f"after entry {entry_id}: {below}"
    assert lines == {}, "entries in no seal"
    # The replay ends where the stored balances are.
    assert balance == {code: d - c for code, (d, c, _, _) in stored_totals(db).items()}
    return replayed


def test_one_idempotency_key_raced_books_exactly_one_entry(pg: Database) -> None:
    open_accounts(
        pg,
        ("cash", AccountType.ASSET, USD, BalanceConstraint.NON_NEGATIVE),
        ("equity", AccountType.EQUITY, USD),
    )
    racers = 8
    spec = transfer("the-one", "cash", "equity", 12_345, description="raced")

    results = run_writers(racers, lambda _n: ledger.book_entry(pg, spec))

    assert len({r.id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * (racers - 1)
    assert count_rows(pg, "journal_entries") == 1
    assert stored_totals(pg)["cash"] == (12_345, 0, 0, 0)
    assert verify_ledger(pg).ok


def test_one_hold_raced_is_posted_once(pg: Database) -> None:
    """Racers post the same hold with their own keys: one wins, the rest are told why."""
    open_accounts(
        pg,
        ("wallet", AccountType.LIABILITY, USD, BalanceConstraint.NON_NEGATIVE),
        ("merchant", AccountType.LIABILITY, USD),
        ("bank", AccountType.ASSET, USD),
    )
    ledger.book_entry(pg, transfer("topup", "bank", "wallet", 1_000))
    hold = ledger.place_hold(
        pg,
        idempotency_key="auth",
        debit_account="wallet",
        credit_account="merchant",
        amount_minor=800,
        currency=USD,
        expires_on=business_date(pg),
    )
    racers = 6

    def post(n: int) -> str:
        try:
            ledger.post_hold(pg, hold.id, idempotency_key=f"capture-{n}")
        except LendcoreError as error:
            return error.code
        return "posted"

    outcomes = Counter(run_writers(racers, post))
    assert outcomes == {"posted": 1, "HOLD_ALREADY_RESOLVED": racers - 1}
    assert count_rows(pg, "journal_entries") == 2
    assert stored_totals(pg)["wallet"] == (800, 1_000, 0, 0)
    assert verify_ledger(pg).ok


def test_racing_reversals_of_one_entry(pg: Database) -> None:
    """Racers reverse one entry with their own keys: one reversal, typed refusals."""
    open_accounts(pg, ("cash", AccountType.ASSET, USD), ("equity", AccountType.EQUITY, USD))
    original = ledger.book_entry(pg, transfer("fund", "cash", "equity", 900))
    racers = 6

    def reverse(n: int) -> str:
        try:
            ledger.reverse_entry(pg, original.id, f"undo-{n}")
        except LendcoreError as error:
            return error.code
        return "reversed"

    outcomes = Counter(run_writers(racers, reverse))
    assert outcomes == {"reversed": 1, "ENTRY_ALREADY_REVERSED": racers - 1}
    assert count_rows(pg, "journal_entries") == 2
    assert stored_totals(pg)["cash"] == (900, 900, 0, 0)
    assert verify_ledger(pg).ok


def test_racing_opens_of_one_account_code(pg: Database) -> None:
    racers = 6

    def open_one(_n: int) -> str:
        try:
            open_accounts(pg, ("same", AccountType.ASSET, USD))
        except LendcoreError as error:
            return error.code
        return "opened"

    outcomes = Counter(run_writers(racers, open_one))
    assert outcomes == {"opened": 1, "ACCOUNT_EXISTS": racers - 1}
    assert [a.code for a in ledger.list_accounts(pg)] == ["same"]


def test_a_booking_waiting_on_a_close_sees_the_account_closed(pg: Database) -> None:
    """A close commits while a booking waits for the account's lock: the booking
    must be refused, not land on the closed account.

    The close is played by hand, with the footprint of `close_account` (lock
    the balance row, mark the account closed, commit), so the booking is
    certain to be waiting when it commits."""
    open_accounts(pg, ("old", AccountType.ASSET, USD), ("other", AccountType.ASSET, USD))
    started = threading.Event()
    with pg.engine.connect() as closer:
        closing = closer.begin()
        closer.execute(
            text(
                "SELECT b.account_id FROM account_balances b JOIN accounts a "
                "ON a.id = b.account_id WHERE a.code = 'old' FOR UPDATE OF b"
            )
        )
        closer.execute(text("UPDATE accounts SET status = 'closed' WHERE code = 'old'"))

        def book(_n: int) -> str:
            started.set()
            try:
                ledger.book_entry(pg, transfer("late", "old", "other", 5))
            except LendcoreError as error:
                return error.code
            return "booked"

        result: list[str] = []
        booker = threading.Thread(target=lambda: result.extend(run_writers(1, book)))
        booker.start()
        assert started.wait(timeout=10)
        # Let the booking reach the lock and wait on it, then commit the close.
        booker.join(timeout=0.5)
        assert booker.is_alive(), "the booking did not wait for the account's lock"
        closing.commit()
        booker.join(timeout=30)
    assert result == ["ACCOUNT_CLOSED"]
    assert stored_totals(pg)["old"] == (0, 0, 0, 0)
    assert count_rows(pg, "journal_entries") == 0
