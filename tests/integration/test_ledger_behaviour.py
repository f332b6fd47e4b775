"""Ledger behaviour on real databases: balances as of past dates, the trial
balance with roll-up, holds, bulk booking (COPY on PostgreSQL), closing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from lendcore.errors import LendcoreError
from lendcore.ledger.model import (
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.services import ledger
from lendcore.services.business_date import advance_business_date, business_date
from lendcore.services.verify import verify_ledger
from lendcore.store.bulk import COPY_ROWS_MIN
from lendcore.store.database import Database, observe_statements, open_database
from tests.conftest import create_pg_schema, drop_pg_schema, requires_pg
from tests.integration.ledger_helpers import (
    count_rows,
    journal_totals,
    open_accounts,
    snapshot,
    stored_totals,
    transfer,
)

USD, JPY = "USD", "JPY"
NN = BalanceConstraint.NON_NEGATIVE


# --- balances as of past business dates ---------------------------------------------


def test_balance_as_of_past_business_dates(db: Database) -> None:
    open_accounts(
        db,
        ("cash", AccountType.ASSET, USD),
        ("loans", AccountType.ASSET, USD),
        ("equity", AccountType.EQUITY, USD),
    )
    day0 = business_date(db)
    ledger.book_entry(db, transfer("d0-a", "cash", "equity", 100_000))
    ledger.book_entry(db, transfer("d0-b", "loans", "cash", 30_000))
    day1 = advance_business_date(db)
    ledger.book_entry(db, transfer("d1-a", "loans", "cash", 20_000))
    day3 = advance_business_date(db, 2)
    ledger.book_entry(db, transfer("d3-a", "cash", "loans", 5_000))
    ledger.book_entry(db, transfer("d3-b", "cash", "equity", 1))
    day4 = advance_business_date(db)

    def as_of(code: str, day: date) -> tuple[int, int, int]:
        b = ledger.account_balance(db, code, as_of=day)
        assert (b.as_of, b.debits_pending, b.credits_pending) == (day, 0, 0)
        return b.debits_posted, b.credits_posted, b.posted

    before = day0 - timedelta(days=1)
    assert as_of("cash", before) == (0, 0, 0)
    assert as_of("cash", day0) == (100_000, 30_000, 70_000)
    assert as_of("cash", day1) == (100_000, 50_000, 50_000)
    # Day 2 had no booking: the end of day 1 carries over.
    assert as_of("cash", day1 + timedelta(days=1)) == (100_000, 50_000, 50_000)
    assert as_of("cash", day3) == (105_001, 50_000, 55_001)
    assert as_of("cash", day4) == (105_001, 50_000, 55_001)
    assert as_of("loans", before) == (0, 0, 0)
    assert as_of("loans", day0) == (30_000, 0, 30_000)
    assert as_of("loans", day1) == (50_000, 0, 50_000)
    assert as_of("loans", day3) == (50_000, 5_000, 45_000)
    assert as_of("equity", day0) == (0, 100_000, 100_000)
    assert as_of("equity", day3) == (0, 100_001, 100_001)
    # The current balance is the latest day's.
    now = ledger.account_balance(db, "cash")
    assert (now.as_of, now.posted, now.available) == (None, 55_001, 55_001)

    # The trial balance as of each date agrees with the balances above.
    tb0 = ledger.trial_balance(db, as_of=day0)
    assert tb0.as_of == day0
    assert {r.code: (r.debit_minor, r.credit_minor) for r in tb0.rows} == {
        "cash": (70_000, 0),
        "loans": (30_000, 0),
        "equity": (0, 100_000),
    }
    assert tb0.totals == {USD: (100_000, 100_000)}
    assert ledger.trial_balance(db, as_of=before).totals == {USD: (0, 0)}
    tb_now = ledger.trial_balance(db)
    assert tb_now.as_of == day4
    assert tb_now.totals == {USD: (100_001, 100_001)}
    assert verify_ledger(db).ok


# --- trial balance ----------------------------------------------------------------------


def _chart(db: Database) -> None:
    specs = [
        AccountSpec("1000", "Assets", AccountType.ASSET, USD),
        AccountSpec("1100", "Cash", AccountType.ASSET, USD, parent_code="1000"),
        AccountSpec("1200", "Loans", AccountType.ASSET, USD, parent_code="1000"),
        AccountSpec("1210", "Loans overdue", AccountType.ASSET, USD, parent_code="1200"),
        AccountSpec("2000", "Deposits", AccountType.LIABILITY, USD),
        AccountSpec("3000", "Capital", AccountType.EQUITY, USD),
        AccountSpec("4000", "Interest income", AccountType.INCOME, USD),
        AccountSpec("9100", "Yen cash", AccountType.ASSET, JPY),
        AccountSpec("9300", "Yen capital", AccountType.EQUITY, JPY),
    ]
    for spec in specs:
        ledger.open_account(db, spec)


def test_trial_balance_per_currency_with_roll_up(db: Database) -> None:
    _chart(db)
    ledger.book_entry(db, transfer("cap", "1100", "3000", 1_000_000))
    ledger.book_entry(db, transfer("dep", "1100", "2000", 250_000))
    ledger.book_entry(db, transfer("loan", "1200", "1100", 600_000))
    ledger.book_entry(db, transfer("due", "1210", "1200", 50_000))
    ledger.book_entry(db, transfer("int", "1210", "4000", 1_234))
    ledger.book_entry(db, transfer("yen", "9100", "9300", 70_000, JPY))

    flat = ledger.trial_balance(db)
    assert [(r.code, r.depth, r.debit_minor, r.credit_minor) for r in flat.rows] == [
        ("1000", 0, 0, 0),
        ("1100", 1, 650_000, 0),
        ("1200", 1, 550_000, 0),
        ("1210", 2, 51_234, 0),
        ("2000", 0, 0, 250_000),
        ("3000", 0, 0, 1_000_000),
        ("4000", 0, 0, 1_234),
        ("9100", 0, 70_000, 0),
        ("9300", 0, 0, 70_000),
    ]
    assert flat.totals == {USD: (1_251_234, 1_251_234), JPY: (70_000, 70_000)}
    assert flat.balanced

    rolled = ledger.trial_balance(db, roll_up=True)
    assert {r.code: (r.debit_minor, r.credit_minor) for r in rolled.rows} == {
        "1000": (1_251_234, 0),
        "1100": (650_000, 0),
        "1200": (601_234, 0),
        "1210": (51_234, 0),
        "2000": (0, 250_000),
        "3000": (0, 1_000_000),
        "4000": (0, 1_234),
        "9100": (70_000, 0),
        "9300": (0, 70_000),
    }
    # Roll-up shows subtotals; the totals still count each account once.
    assert rolled.totals == flat.totals
    assert rolled.balanced
    parents = {a.code: a.parent_code for a in ledger.list_accounts(db)}
    assert parents["1210"] == "1200" and parents["1200"] == "1000" and parents["1000"] is None


def test_trial_balance_of_an_empty_book(db: Database) -> None:
    _chart(db)
    tb = ledger.trial_balance(db)
    assert tb.totals == {USD: (0, 0), JPY: (0, 0)}
    assert all((r.debit_minor, r.credit_minor) == (0, 0) for r in tb.rows)
    assert tb.balanced


# --- holds --------------------------------------------------------------------------------


def test_holds_count_against_constraints(db: Database) -> None:
    open_accounts(
        db,
        ("wallet", AccountType.LIABILITY, USD, NN),
        ("merchant", AccountType.LIABILITY, USD),
        ("bank", AccountType.ASSET, USD),
    )
    today = business_date(db)
    ledger.book_entry(db, transfer("topup", "bank", "wallet", 1_000))
    hold = ledger.place_hold(
        db,
        idempotency_key="auth",
        debit_account="wallet",
        credit_account="merchant",
        amount_minor=700,
        currency=USD,
        expires_on=today + timedelta(days=2),
    )
    wallet = ledger.account_balance(db, "wallet")
    assert (wallet.posted, wallet.available, wallet.debits_pending) == (1_000, 300, 700)
    merchant = ledger.account_balance(db, "merchant")
    assert (merchant.posted, merchant.available, merchant.credits_pending) == (0, 0, 700)

    # 400 > 300 available: refused although 1,000 is posted.
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entry(db, transfer("spend", "wallet", "merchant", 400))
    assert caught.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    assert caught.value.details == {"account": "wallet", "balance_minor": -100}
    # A second hold is refused the same way.
    with pytest.raises(LendcoreError) as caught:
        ledger.place_hold(
            db,
            idempotency_key="auth-2",
            debit_account="wallet",
            credit_account="merchant",
            amount_minor=301,
            currency=USD,
            expires_on=today,
        )
    assert caught.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    # Exactly what is available is allowed.
    ledger.book_entry(db, transfer("spend-300", "wallet", "merchant", 300))
    assert ledger.account_balance(db, "wallet").available == 0

    # Voiding the hold frees its amount.
    voided = ledger.void_hold(db, hold.id)
    assert (voided.status, voided.resolved_on) == ("voided", today)
    wallet = ledger.account_balance(db, "wallet")
    assert (wallet.posted, wallet.available, wallet.debits_pending) == (700, 700, 0)
    ledger.book_entry(db, transfer("spend-400", "wallet", "merchant", 400))
    assert stored_totals(db)["wallet"] == (700, 1_000, 0, 0)
    assert verify_ledger(db).ok


@pytest.mark.parametrize(
    ("account_type", "constraint", "fund_side", "move_side", "limit", "breach"),
    [
        # Moving away from the normal side: pending amounts away count (NN).
        (AccountType.ASSET, NN, Side.DEBIT, Side.CREDIT, 970, -1),
        (AccountType.LIABILITY, NN, Side.CREDIT, Side.DEBIT, 950, -1),
        # A contra limit: pending amounts toward the normal side count (NP).
        (AccountType.ASSET, BalanceConstraint.NON_POSITIVE, Side.CREDIT, Side.DEBIT, 950, 1),
        (AccountType.LIABILITY, BalanceConstraint.NON_POSITIVE, Side.DEBIT, Side.CREDIT, 970, 1),
    ],
)
def test_constraint_limit_is_exact_on_every_side(
    db: Database,
    account_type: AccountType,
    constraint: BalanceConstraint,
    fund_side: Side,
    move_side: Side,
    limit: int,
    breach: int,
) -> None:
    """One minor unit past the limit is refused, the limit itself is booked, with
    holds pending on both sides (PostgreSQL checks in SQL first: it must refuse
    everything Python refuses)."""
    open_accounts(db, ("x", account_type, USD, constraint), ("other", AccountType.EQUITY, USD))

    def entry(key: str, x_side: Side, amount: int) -> EntrySpec:
        debit, credit = ("x", "other") if x_side is Side.DEBIT else ("other", "x")
        return transfer(key, debit, credit, amount)

    ledger.book_entry(db, entry("fund", fund_side, 1_000))
    expires = business_date(db) + timedelta(days=1)
    for key, debit, credit, amount in (("h1", "x", "other", 50), ("h2", "other", "x", 30)):
        ledger.place_hold(
            db,
            idempotency_key=key,
            debit_account=debit,
            credit_account=credit,
            amount_minor=amount,
            currency=USD,
            expires_on=expires,
        )
    before = snapshot(db)
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entry(db, entry("past", move_side, limit + 1))
    assert caught.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    assert caught.value.details == {"account": "x", "balance_minor": breach}
    assert snapshot(db) == before
    booked = ledger.book_entry(db, entry("at", move_side, limit))
    assert booked.replayed is False
    assert verify_ledger(db).ok


def test_partial_post_releases_the_rest(db: Database) -> None:
    open_accounts(
        db,
        ("wallet", AccountType.LIABILITY, USD, NN),
        ("merchant", AccountType.LIABILITY, USD),
        ("bank", AccountType.ASSET, USD),
    )
    today = business_date(db)
    ledger.book_entry(db, transfer("topup", "bank", "wallet", 1_000))
    hold = ledger.place_hold(
        db,
        idempotency_key="auth",
        debit_account="wallet",
        credit_account="merchant",
        amount_minor=500,
        currency=USD,
        expires_on=today,
        description="Card authorisation at a grocery merchant, terminal 0042",
    )
    assert stored_totals(db)["wallet"] == (0, 1_000, 500, 0)
    entry = ledger.post_hold(db, hold.id, idempotency_key="capture", amount_minor=200)
    assert entry.hold_id == hold.id
    assert entry.description == "Card authorisation at a grocery merchant, terminal 0042"
    assert dict(entry.metadata) == {"hold": hold.id}
    assert [(p.account, p.side, p.amount_minor) for p in entry.postings] == [
        ("wallet", Side.DEBIT, 200),
        ("merchant", Side.CREDIT, 200),
    ]
    totals = stored_totals(db)
    assert totals["wallet"] == (200, 1_000, 0, 0)
    assert totals["merchant"] == (0, 200, 0, 0)
    assert ledger.get_hold(db, hold.id).status == "posted"
    # The 300 not captured is free again.
    ledger.book_entry(db, transfer("rest", "wallet", "merchant", 800))
    assert ledger.account_balance(db, "wallet").available == 0
    assert verify_ledger(db).ok


def test_full_post_and_hold_listing(db: Database) -> None:
    open_accounts(db, ("a", AccountType.ASSET, USD), ("b", AccountType.LIABILITY, USD))
    today = business_date(db)
    ids = [
        ledger.place_hold(
            db,
            idempotency_key=f"h{n}",
            debit_account="a",
            credit_account="b",
            amount_minor=100 * n,
            currency=USD,
            expires_on=today + timedelta(days=n),
        ).id
        for n in (1, 2, 3)
    ]
    entry = ledger.post_hold(db, ids[1], idempotency_key="post")
    assert [p.amount_minor for p in entry.postings] == [200, 200]
    assert entry.description == f"Posting of hold {ids[1]}"
    ledger.void_hold(db, ids[2])
    assert [(h.id, h.status) for h in ledger.list_holds(db)] == [
        (ids[0], "pending"),
        (ids[1], "posted"),
        (ids[2], "voided"),
    ]
    assert [h.id for h in ledger.list_holds(db, status="pending")] == [ids[0]]
    assert stored_totals(db) == {"a": (200, 0, 100, 0), "b": (0, 200, 0, 100)}
    # A hold placed again with the same key and content is the same hold.
    again = ledger.place_hold(
        db,
        idempotency_key="h1",
        debit_account="a",
        credit_account="b",
        amount_minor=100,
        currency=USD,
        expires_on=today + timedelta(days=1),
    )
    assert again.id == ids[0]
    assert count_rows(db, "holds") == 3


def test_holds_expire_only_after_their_date(db: Database) -> None:
    open_accounts(db, ("a", AccountType.ASSET, USD), ("b", AccountType.LIABILITY, USD))
    today = business_date(db)
    for n in (0, 1, 2):
        ledger.place_hold(
            db,
            idempotency_key=f"h{n}",
            debit_account="a",
            credit_account="b",
            amount_minor=10 ** (n + 1),
            currency=USD,
            expires_on=today + timedelta(days=n),
        )
    advance_business_date(db, 2)
    # expires_on today and today+1 are past; today+2 is the business date: still pending.
    assert [(h.status, h.resolved_on) for h in ledger.list_holds(db)] == [
        ("expired", today + timedelta(days=2)),
        ("expired", today + timedelta(days=2)),
        ("pending", None),
    ]
    assert stored_totals(db) == {"a": (0, 0, 1_000, 0), "b": (0, 0, 0, 1_000)}
    assert verify_ledger(db).ok


# --- bulk booking ---------------------------------------------------------------------------


def _bulk_accounts(db: Database) -> None:
    open_accounts(
        db,
        ("cash", AccountType.ASSET, USD, NN),
        ("loans", AccountType.ASSET, USD),
        ("income", AccountType.INCOME, USD),
        ("capital", AccountType.EQUITY, USD),
    )


def _batch(count: int, prefix: str = "b") -> list[EntrySpec]:
    """Interest accrued on loans (income) and collected into cash, alternately."""
    specs = []
    for n in range(count):
        amount = 100 + n % 97
        if n % 2 == 0:
            specs.append(transfer(f"{prefix}-{n}", "loans", "income", amount, description=f"n{n}"))
        else:
            specs.append(
                EntrySpec(
                    f"{prefix}-{n}",
                    (
                        PostingSpec("cash", Side.DEBIT, amount, USD),
                        PostingSpec("loans", Side.CREDIT, amount - 1, USD),
                        PostingSpec("income", Side.CREDIT, 1, USD),
                    ),
                    metadata={"n": n},
                )
            )
    return specs


def _expected_totals(count: int) -> dict[str, tuple[int, int, int, int]]:
    loans_d = loans_c = cash_d = income_c = 0
    for n in range(count):
        amount = 100 + n % 97
        if n % 2 == 0:
            loans_d += amount
            income_c += amount
        else:
            cash_d += amount
            loans_c += amount - 1
            income_c += 1
    return {
        "cash": (cash_d, 0, 0, 0),
        "loans": (loans_d, loans_c, 0, 0),
        "income": (0, income_c, 0, 0),
        "capital": (0, 0, 0, 0),
    }


def test_bulk_booking_of_2000_entries(db: Database) -> None:
    _bulk_accounts(db)
    specs = _batch(2_000)
    result = ledger.book_entries(db, specs)
    assert (result.booked_count, result.replayed_count, result.seal_seq) == (2_000, 0, 1)
    assert result.entry_ids == list(range(1, 2_001))
    assert count_rows(db, "journal_entries") == 2_000
    assert count_rows(db, "postings") == 5_000
    # One seal covers the whole batch.
    assert count_rows(db, "ledger_seals") == 1
    expected = _expected_totals(2_000)
    assert stored_totals(db) == expected
    assert journal_totals(db) == {code: t[:2] for code, t in expected.items()}
    entry = ledger.get_entry(db, 2_000)
    assert (entry.idempotency_key, dict(entry.metadata)) == ("b-1999", {"n": 1999})
    assert [p.amount_minor for p in entry.postings] == [100 + 1999 % 97, 99 + 1999 % 97, 1]
    report = verify_ledger(db)
    assert report.ok, report.problems
    assert (report.entries_checked, report.postings_checked, report.seals_checked) == (
        2_000,
        5_000,
        1,
    )

    # Retried as a whole: every entry replays, nothing is written.
    before = snapshot(db)
    again = ledger.book_entries(db, specs)
    assert (again.booked_count, again.replayed_count, again.seal_seq) == (0, 2_000, None)
    assert again.entry_ids == result.entry_ids
    assert snapshot(db) == before

    # A batch of old and new entries books only the new ones, under a new seal.
    mixed = ledger.book_entries(db, [*specs[:10], transfer("new", "cash", "capital", 5)])
    assert (mixed.booked_count, mixed.replayed_count, mixed.seal_seq) == (1, 10, 2)
    assert mixed.entry_ids == [*range(1, 11), 2_001]


def test_bulk_batch_with_a_bad_last_entry_writes_nothing(db: Database) -> None:
    _bulk_accounts(db)
    ledger.book_entry(db, transfer("seed", "cash", "capital", 10))
    before = snapshot(db)
    # The last entry takes more out of cash than the batch put in.
    specs = [*_batch(1_999), transfer("overdraw", "capital", "cash", 10**9)]
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entries(db, specs)
    assert caught.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    assert snapshot(db) == before
    # Unbalanced last entry: refused before the database is touched.
    bad = EntrySpec(
        "unbalanced",
        (PostingSpec("cash", Side.DEBIT, 2, USD), PostingSpec("capital", Side.CREDIT, 1, USD)),
    )
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entries(db, [*_batch(1_999), bad])
    assert caught.value.code == "ENTRY_UNBALANCED"
    # A key reused with other content at the end of a batch.
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entries(db, [*_batch(1_999), transfer("seed", "cash", "capital", 11)])
    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert snapshot(db) == before
    # The same batch without the bad entry books in full.
    assert ledger.book_entries(db, _batch(1_999)).booked_count == 1_999
    assert verify_ledger(db).ok


@requires_pg
def test_bulk_on_postgres_uses_copy_and_verifies_like_sqlite(
    sqlite_url: str,
) -> None:
    schema, pg_url = create_pg_schema()
    pg = open_database(pg_url)
    lite = open_database(sqlite_url)
    try:
        reports = []
        for database in (lite, pg):
            _bulk_accounts(database)
            # Just under the COPY threshold, then at it, then well over it.
            with observe_statements() as statements:
                small = ledger.book_entries(database, _batch(COPY_ROWS_MIN - 1, "s"))
            insert_journal = [s for s in statements if "INSERT INTO journal_entries" in s]
            assert len(insert_journal) == 1
            with observe_statements() as statements:
                at = ledger.book_entries(database, _batch(COPY_ROWS_MIN, "t"))
                large = ledger.book_entries(database, _batch(1_500, "u"))
            insert_journal = [s for s in statements if "INSERT INTO journal_entries" in s]
            insert_postings = [s for s in statements if "INSERT INTO postings" in s]
            if database.is_postgres:
                # Rows arrived, but not through INSERT: through COPY.
                assert (insert_journal, insert_postings) == ([], [])
                copies = [s for s in statements if s.startswith("COPY ")]
                assert len(copies) == 4, copies
            else:
                assert (len(insert_journal), len(insert_postings)) == (2, 2)
            assert (small.booked_count, at.booked_count, large.booked_count) == (
                COPY_ROWS_MIN - 1,
                COPY_ROWS_MIN,
                1_500,
            )
            assert count_rows(database, "journal_entries") == COPY_ROWS_MIN * 2 - 1 + 1_500
            report = verify_ledger(database)
            assert report.ok, report.problems
            reports.append(report)
        sqlite_report, pg_report = reports
        assert (
            pg_report.entries_checked,
            pg_report.postings_checked,
            pg_report.seals_checked,
            pg_report.accounts_checked,
            pg_report.head_seq,
        ) == (
            sqlite_report.entries_checked,
            sqlite_report.postings_checked,
            sqlite_report.seals_checked,
            sqlite_report.accounts_checked,
            sqlite_report.head_seq,
        )
        assert stored_totals(pg) == stored_totals(lite)
        assert journal_totals(pg) == journal_totals(lite)
        # Same content, same business date: only recorded_at differs between the two books.
        for entry_id in (1, COPY_ROWS_MIN, COPY_ROWS_MIN * 2 + 100):
            a, b = ledger.get_entry(lite, entry_id), ledger.get_entry(pg, entry_id)
            assert (a.idempotency_key, a.postings, a.metadata, a.description) == (
                b.idempotency_key,
                b.postings,
                b.metadata,
                b.description,
            )
    finally:
        pg.dispose()
        lite.dispose()
        drop_pg_schema(schema)


# --- closing ------------------------------------------------------------------------------


def test_close_refused_with_a_balance(db: Database) -> None:
    open_accounts(db, ("old", AccountType.ASSET, USD), ("eq", AccountType.EQUITY, USD))
    ledger.book_entry(db, transfer("in", "old", "eq", 500))
    before = snapshot(db)
    with pytest.raises(LendcoreError) as caught:
        ledger.close_account(db, "old")
    assert caught.value.code == "ACCOUNT_NOT_EMPTY"
    assert snapshot(db) == before
    assert ledger.get_account(db, "old").status.value == "open"
    # Emptied by a reversal, it closes; then it takes no more postings.
    ledger.reverse_entry(db, 1, "in-rev")
    closed = ledger.close_account(db, "old")
    assert (closed.status.value, closed.closed_on) == ("closed", business_date(db))
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entry(db, transfer("again", "old", "eq", 1))
    assert caught.value.code == "ACCOUNT_CLOSED"
    assert verify_ledger(db).ok


def test_reversal_swaps_sides_and_is_linked(db: Database) -> None:
    open_accounts(
        db,
        ("cash", AccountType.ASSET, USD),
        ("eq", AccountType.EQUITY, USD),
        ("yen", AccountType.ASSET, JPY),
        ("yeq", AccountType.EQUITY, JPY),
    )
    original = ledger.book_entry(
        db,
        EntrySpec(
            "two-currencies",
            (
                PostingSpec("cash", Side.DEBIT, 1_000, USD),
                PostingSpec("eq", Side.CREDIT, 1_000, USD),
                PostingSpec("yen", Side.DEBIT, 150, JPY),
                PostingSpec("yeq", Side.CREDIT, 150, JPY),
            ),
            description="Mixed",
        ),
    )
    reversal = ledger.reverse_entry(db, original.id, "rev")
    assert reversal.reverses_entry_id == original.id
    assert reversal.description == f"Reversal of entry {original.id}"
    assert [(p.account, p.side, p.amount_minor, p.currency) for p in reversal.postings] == [
        ("cash", Side.CREDIT, 1_000, USD),
        ("eq", Side.DEBIT, 1_000, USD),
        ("yen", Side.CREDIT, 150, JPY),
        ("yeq", Side.DEBIT, 150, JPY),
    ]
    assert stored_totals(db) == {
        "cash": (1_000, 1_000, 0, 0),
        "eq": (1_000, 1_000, 0, 0),
        "yen": (150, 150, 0, 0),
        "yeq": (150, 150, 0, 0),
    }
    assert [e.id for e in ledger.list_entries(db, account="yen")] == [original.id, reversal.id]
    assert verify_ledger(db).ok
