"""Bad input gets a typed error with a stable code and changes nothing.

Every test runs on SQLite and (when configured) PostgreSQL. Each refusal is
checked the same way: take a snapshot of every ledger table (entries,
postings, holds, seals, chain head, balances, daily balances, accounts, the
business date), make one bad call, check the error's code and details, and
check the snapshot is unchanged: no partial write. Tests group related
refusals so each database is set up once per group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

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
from lendcore.services.business_date import advance_business_date, business_date, set_business_date
from lendcore.services.verify import verify_ledger
from lendcore.store.database import Database
from tests.integration.ledger_helpers import open_accounts, snapshot, stored_totals, transfer

USD = "USD"
JPY = "JPY"
D, C = Side.DEBIT, Side.CREDIT


@dataclass(frozen=True)
class Book:
    db: Database
    today: date
    funding_id: int
    reversed_id: int
    reversal_id: int
    hold_id: int

    def refused(self, code: str, call: Callable[[], Any]) -> LendcoreError:
        """Run `call`, expect the typed error `code`, and check nothing was written."""
        before = snapshot(self.db)
        with pytest.raises(LendcoreError) as caught:
            call()
        assert caught.value.code == code, caught.value
        assert snapshot(self.db) == before
        return caught.value

    def hold(self, key: str, amount: int, *, days: int = 0, **kwargs: Any) -> ledger.Hold:
        """A hold moving `amount` out of cash into deposits."""
        args: dict[str, Any] = {
            "idempotency_key": key,
            "debit_account": "deposits",
            "credit_account": "cash",
            "amount_minor": amount,
            "currency": USD,
            "expires_on": self.today + timedelta(days=days),
        }
        args.update(kwargs)
        return ledger.place_hold(self.db, **args)


@pytest.fixture
def book(db: Database) -> Book:
    """cash (USD, must not go below zero) funded with 10,000.00 of which 1,000.00 is held;
    an entry already reversed; a closed account; a JPY pair."""
    open_accounts(
        db,
        ("cash", AccountType.ASSET, USD, BalanceConstraint.NON_NEGATIVE),
        ("deposits", AccountType.LIABILITY, USD),
        ("equity", AccountType.EQUITY, USD),
        ("fees", AccountType.INCOME, USD),
        ("old", AccountType.ASSET, USD),
        ("yen", AccountType.ASSET, JPY),
        ("yen_equity", AccountType.EQUITY, JPY),
    )
    ledger.close_account(db, "old")
    today = business_date(db)
    funding = ledger.book_entry(db, transfer("fund", "cash", "equity", 1_000_000))
    fee = ledger.book_entry(db, transfer("fee", "deposits", "fees", 2_500))
    reversal = ledger.reverse_entry(db, fee.id, "fee-rev")
    partial = Book(db, today, funding.id, fee.id, reversal.id, 0)
    hold = partial.hold("hold-1", 100_000, days=5)
    return Book(db, today, funding.id, fee.id, reversal.id, hold.id)


def entry(key: str, *lines: tuple[Any, ...], **kwargs: Any) -> EntrySpec:
    return EntrySpec(key, tuple(PostingSpec(*line) for line in lines), **kwargs)


def test_unbalanced_entries(book: Book) -> None:
    error = book.refused(
        "ENTRY_UNBALANCED",
        lambda: ledger.book_entry(
            book.db, entry("u1", ("cash", D, 100, USD), ("equity", C, 99, USD))
        ),
    )
    assert error.details["unbalanced_minor"] == {"USD": 1}
    assert "USD debits exceed credits by 1" in error.message

    # Balanced in USD, unbalanced in JPY.
    error = book.refused(
        "ENTRY_UNBALANCED",
        lambda: ledger.book_entry(
            book.db,
            entry(
                "u2",
                ("cash", D, 100, USD),
                ("equity", C, 100, USD),
                ("yen", D, 10, JPY),
                ("yen_equity", C, 15, JPY),
            ),
        ),
    )
    assert error.details["unbalanced_minor"] == {"JPY": -5}
    assert "JPY credits exceed debits by 5" in error.message

    # 100 USD against 100 JPY: the sums match, the currencies do not.
    error = book.refused(
        "ENTRY_UNBALANCED",
        lambda: ledger.book_entry(
            book.db, entry("u3", ("cash", D, 100, USD), ("yen_equity", C, 100, JPY))
        ),
    )
    assert error.details["unbalanced_minor"] == {"USD": 100, "JPY": -100}


def test_amounts_and_malformed_entries(book: Book) -> None:
    for amount in (0, -1, -500):
        book.refused(
            "AMOUNT_NOT_POSITIVE",
            lambda amount=amount: ledger.book_entry(
                book.db, entry("z", ("cash", D, amount, USD), ("equity", C, amount, USD))
            ),
        )
    malformed = {
        "empty key": entry("", ("cash", D, 1, USD), ("equity", C, 1, USD)),
        "long key": entry("k" * 129, ("cash", D, 1, USD), ("equity", C, 1, USD)),
        "one line": entry("one-line", ("cash", D, 1, USD)),
        "long description": entry(
            "long", ("cash", D, 1, USD), ("equity", C, 1, USD), description="d" * 501
        ),
        "float amount": entry("float", ("cash", D, 1.0, USD), ("equity", C, 1.0, USD)),
        "amount over 2^62": entry(
            "huge", ("cash", D, 2**62 + 1, USD), ("equity", C, 2**62 + 1, USD)
        ),
    }
    for name, spec in malformed.items():
        error = book.refused("ENTRY_INVALID", lambda spec=spec: ledger.book_entry(book.db, spec))
        assert error.message, name


def test_text_the_database_could_not_store(book: Book) -> None:
    """NUL characters and over-long text: PostgreSQL would refuse them with a raw
    driver error, SQLite would keep them. Both databases give the same typed error."""
    nul = "card\x00payment"
    book.refused(
        "ENTRY_INVALID",
        lambda: ledger.book_entry(book.db, transfer("t1", "cash", "equity", 1, description=nul)),
    )
    book.refused("ENTRY_INVALID", lambda: book.hold("t2", 1, description=nul))
    for description in (nul, "r" * 501):
        book.refused(
            "ENTRY_INVALID",
            lambda description=description: ledger.reverse_entry(
                book.db, book.funding_id, "t3", description=description
            ),
        )
        book.refused(
            "ENTRY_INVALID",
            lambda description=description: ledger.post_hold(
                book.db, book.hold_id, idempotency_key="t4", description=description
            ),
        )
    for name in ("n" * 201, "Cash\x00"):
        book.refused(
            "ACCOUNT_INVALID",
            lambda name=name: ledger.open_account(
                book.db, AccountSpec("t5", name, AccountType.ASSET, USD)
            ),
        )
    # The longest text that fits is stored as given.
    opened = ledger.open_account(book.db, AccountSpec("t6", "n" * 200, AccountType.ASSET, USD))
    assert opened.name == "n" * 200
    long_hold = book.hold("t7", 1, description="h" * 500)
    assert long_hold.description == "h" * 500
    posted = ledger.post_hold(book.db, long_hold.id, idempotency_key="t8")
    assert posted.description == "h" * 500


def test_accounts_unknown_closed_or_in_another_currency(book: Book) -> None:
    error = book.refused(
        "ACCOUNT_NOT_FOUND",
        lambda: ledger.book_entry(book.db, transfer("n1", "cash", "nowhere", 100)),
    )
    assert error.details["accounts"] == ["nowhere"]
    book.refused("ACCOUNT_NOT_FOUND", lambda: book.hold("hn", 1, debit_account="nowhere"))

    error = book.refused(
        "ACCOUNT_CLOSED", lambda: ledger.book_entry(book.db, transfer("c1", "old", "equity", 100))
    )
    assert error.details["account"] == "old"
    book.refused("ACCOUNT_CLOSED", lambda: book.hold("hc", 1, debit_account="old"))
    book.refused("ACCOUNT_CLOSED", lambda: ledger.close_account(book.db, "old"))

    # Balanced in JPY, but "cash" is a USD account.
    error = book.refused(
        "CURRENCY_MISMATCH",
        lambda: ledger.book_entry(book.db, transfer("m1", "cash", "yen_equity", 100, JPY)),
    )
    assert error.details["account"] == "cash"
    error = book.refused("CURRENCY_MISMATCH", lambda: book.hold("hm", 1, debit_account="yen"))
    assert error.details["account"] == "yen"

    book.refused(
        "ACCOUNT_EXISTS",
        lambda: ledger.open_account(book.db, AccountSpec("cash", "Cash", AccountType.ASSET, USD)),
    )
    book.refused(
        "CURRENCY_UNKNOWN",
        lambda: ledger.open_account(book.db, AccountSpec("x1", "X", AccountType.ASSET, "XYZ")),
    )
    book.refused(
        "ACCOUNT_INVALID",
        lambda: ledger.open_account(book.db, AccountSpec("a b", "X", AccountType.ASSET, USD)),
    )
    book.refused(
        "ACCOUNT_INVALID",
        lambda: ledger.open_account(
            book.db, AccountSpec("y1", "Yen child", AccountType.ASSET, JPY, parent_code="cash")
        ),
    )
    book.refused(
        "ACCOUNT_NOT_FOUND",
        lambda: ledger.open_account(
            book.db, AccountSpec("y2", "Orphan", AccountType.ASSET, USD, parent_code="ghost")
        ),
    )


def test_too_many_decimals_in_major_units(book: Book) -> None:
    cases = [
        ([("D", "cash", "1.005", None), ("C", "equity", "1.005", None)], USD),
        ([("D", "yen", "10.5", None), ("C", "yen_equity", "10.5", None)], JPY),
        ([("D", "cash", "0.001", "USD"), ("C", "equity", "0.001", "USD")], USD),
    ]
    for lines, currency_shown in cases:
        error = book.refused(
            "AMOUNT_TOO_PRECISE", lambda lines=lines: ledger.postings_from_text(book.db, lines)
        )
        assert currency_shown in error.message
    # Trailing zeros and the currency's own decimals are fine, and exact.
    specs = ledger.postings_from_text(
        book.db,
        [("D", "cash", "12.30", None), ("CR", "equity", "12.3", "usd"), ("d", "yen", "500", None)],
    )
    assert specs == (
        PostingSpec("cash", D, 1230, USD),
        PostingSpec("equity", C, 1230, USD),
        PostingSpec("yen", D, 500, JPY),
    )
    book.refused(
        "ACCOUNT_NOT_FOUND",
        lambda: ledger.postings_from_text(book.db, [("D", "ghost", "1", None)]),
    )
    book.refused(
        "ENTRY_INVALID", lambda: ledger.postings_from_text(book.db, [("X", "cash", "1", None)])
    )


def test_idempotency_key_reused_with_other_content(book: Book) -> None:
    error = book.refused(
        "IDEMPOTENCY_KEY_REUSED",
        lambda: ledger.book_entry(book.db, transfer("fund", "cash", "equity", 1_000_001)),
    )
    assert error.details == {"idempotency_key": "fund", "entry_id": book.funding_id}
    others = [
        transfer("fund", "cash", "equity", 1_000_000, description="other words"),
        transfer("fund", "equity", "cash", 1_000_000),
        entry(
            "fund", ("cash", D, 1_000_000, USD), ("equity", C, 1_000_000, USD), metadata={"a": 1}
        ),
        transfer("fund", "cash", "equity", 1_000_000, value_date=book.today),
    ]
    for spec in others:
        book.refused("IDEMPOTENCY_KEY_REUSED", lambda spec=spec: ledger.book_entry(book.db, spec))
    # The same content replays the original entry and writes nothing.
    before = snapshot(book.db)
    again = ledger.book_entry(book.db, transfer("fund", "cash", "equity", 1_000_000))
    assert (again.id, again.replayed) == (book.funding_id, True)
    assert snapshot(book.db) == before

    # Holds, hold postings and reversals keep the same rule.
    book.refused("IDEMPOTENCY_KEY_REUSED", lambda: book.hold("hold-1", 100_001, days=5))
    assert book.hold("hold-1", 100_000, days=5).id == book.hold_id
    book.refused(
        "IDEMPOTENCY_KEY_REUSED",
        lambda: ledger.post_hold(book.db, book.hold_id, idempotency_key="fund"),
    )
    book.refused(
        "IDEMPOTENCY_KEY_REUSED",
        lambda: ledger.reverse_entry(book.db, book.funding_id, "fee"),
    )
    book.refused(
        "IDEMPOTENCY_KEY_REUSED",
        lambda: ledger.reverse_entry(book.db, book.reversed_id, "fee-rev", description="other"),
    )
    assert snapshot(book.db) == before


def test_balance_constraints(book: Book) -> None:
    # 10,000.00 posted, 1,000.00 held: taking all 10,000.00 leaves -1,000.00 available.
    error = book.refused(
        "BALANCE_CONSTRAINT_VIOLATED",
        lambda: ledger.book_entry(book.db, transfer("b1", "deposits", "cash", 1_000_000)),
    )
    assert error.details == {"account": "cash", "balance_minor": -100_000}
    assert "cash may not go below zero" in error.message
    # A hold counts the same way.
    error = book.refused("BALANCE_CONSTRAINT_VIOLATED", lambda: book.hold("h-big", 900_001))
    assert error.details == {"account": "cash", "balance_minor": -1}

    # The check is on the whole entry: 9,000.01 out and 0.02 back in is 8,999.99
    # out of 9,000.00 available, so it is allowed as one entry...
    ledger.book_entry(
        book.db,
        entry(
            "b2",
            ("deposits", D, 900_001, USD),
            ("cash", C, 900_001, USD),
            ("cash", D, 2, USD),
            ("equity", C, 2, USD),
        ),
    )
    assert ledger.account_balance(book.db, "cash").available == 1
    # ...while two cents more is not.
    error = book.refused(
        "BALANCE_CONSTRAINT_VIOLATED",
        lambda: ledger.book_entry(book.db, transfer("b3", "deposits", "cash", 2)),
    )
    assert error.details == {"account": "cash", "balance_minor": -1}
    # Reversing the funding now would take cash to -9,000.00 (holds included).
    error = book.refused(
        "BALANCE_CONSTRAINT_VIOLATED",
        lambda: ledger.reverse_entry(book.db, book.funding_id, "fund-rev"),
    )
    assert error.details == {"account": "cash", "balance_minor": -999_999}


def test_non_positive_constraint(db: Database) -> None:
    open_accounts(
        db,
        ("provision", AccountType.ASSET, USD, BalanceConstraint.NON_POSITIVE),
        ("expense", AccountType.EXPENSE, USD),
    )
    ledger.book_entry(db, transfer("p1", "expense", "provision", 500))
    assert ledger.account_balance(db, "provision").posted == -500
    before = snapshot(db)
    with pytest.raises(LendcoreError) as caught:
        ledger.book_entry(db, transfer("p2", "provision", "expense", 501))
    assert caught.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    assert caught.value.details == {"account": "provision", "balance_minor": 1}
    assert snapshot(db) == before
    # Exactly back to zero is allowed.
    ledger.book_entry(db, transfer("p3", "provision", "expense", 500))
    assert ledger.account_balance(db, "provision").posted == 0


def test_hold_refusals(book: Book) -> None:
    error = book.refused(
        "HOLD_EXCEEDED",
        lambda: ledger.post_hold(
            book.db, book.hold_id, idempotency_key="over", amount_minor=100_001
        ),
    )
    assert error.details == {"hold_id": book.hold_id}
    for amount in (0, -7):
        book.refused("AMOUNT_NOT_POSITIVE", lambda amount=amount: book.hold("hz", amount))
        book.refused(
            "AMOUNT_NOT_POSITIVE",
            lambda amount=amount: ledger.post_hold(
                book.db, book.hold_id, idempotency_key="pz", amount_minor=amount
            ),
        )
    book.refused("HOLD_NOT_FOUND", lambda: ledger.post_hold(book.db, 999, idempotency_key="x"))
    book.refused("HOLD_NOT_FOUND", lambda: ledger.void_hold(book.db, 999))
    book.refused("INVALID_INPUT", lambda: book.hold("past", 1, days=-1))
    book.refused("ENTRY_INVALID", lambda: book.hold("same", 1, debit_account="cash"))
    book.refused("ENTRY_INVALID", lambda: book.hold("long", 1, description="x" * 501))

    # Posted (in part): no second post, no void; the same request replays.
    posted = ledger.post_hold(book.db, book.hold_id, idempotency_key="post-1", amount_minor=400)
    book.refused(
        "HOLD_ALREADY_RESOLVED",
        lambda: ledger.post_hold(book.db, book.hold_id, idempotency_key="post-2"),
    )
    book.refused("HOLD_ALREADY_RESOLVED", lambda: ledger.void_hold(book.db, book.hold_id))
    before = snapshot(book.db)
    again = ledger.post_hold(book.db, book.hold_id, idempotency_key="post-1", amount_minor=400)
    assert (again.id, again.replayed) == (posted.id, True)
    assert snapshot(book.db) == before
    # The same key asking for another amount is not a retry: refused.
    error = book.refused(
        "IDEMPOTENCY_KEY_REUSED",
        lambda: ledger.post_hold(book.db, book.hold_id, idempotency_key="post-1", amount_minor=401),
    )
    assert error.details["entry_id"] == posted.id

    # Voided: no post, no second void.
    voided = ledger.void_hold(book.db, book.hold("to-void", 50).id)
    assert voided.status == "voided"
    book.refused(
        "HOLD_ALREADY_RESOLVED",
        lambda: ledger.post_hold(book.db, voided.id, idempotency_key="late"),
    )
    book.refused("HOLD_ALREADY_RESOLVED", lambda: ledger.void_hold(book.db, voided.id))


def test_hold_expired_by_business_date_advance(book: Book) -> None:
    hold = book.hold("short", 300)
    assert stored_totals(book.db)["cash"] == (1_000_000, 0, 0, 100_300)
    # Still pending on its expiry date...
    assert ledger.get_hold(book.db, hold.id).status == "pending"
    advance_business_date(book.db)
    # ...expired the day after, and what it reserved is free again.
    expired = ledger.get_hold(book.db, hold.id)
    assert (expired.status, expired.resolved_on) == ("expired", book.today + timedelta(days=1))
    assert stored_totals(book.db)["cash"] == (1_000_000, 0, 0, 100_000)
    error = book.refused(
        "HOLD_EXPIRED", lambda: ledger.post_hold(book.db, hold.id, idempotency_key="too-late")
    )
    assert error.details == {"hold_id": hold.id}
    book.refused("HOLD_EXPIRED", lambda: ledger.void_hold(book.db, hold.id))
    # The five-day hold is untouched.
    assert ledger.get_hold(book.db, book.hold_id).status == "pending"


def test_reversal_refusals(book: Book) -> None:
    error = book.refused(
        "ENTRY_ALREADY_REVERSED",
        lambda: ledger.reverse_entry(book.db, book.reversed_id, "fee-rev-2"),
    )
    assert error.details == {"entry_id": book.reversed_id, "reversal_id": book.reversal_id}
    # The first key replays the first reversal and writes nothing.
    before = snapshot(book.db)
    again = ledger.reverse_entry(book.db, book.reversed_id, "fee-rev")
    assert (again.id, again.replayed) == (book.reversal_id, True)
    assert snapshot(book.db) == before
    book.refused(
        "ENTRY_IS_REVERSAL", lambda: ledger.reverse_entry(book.db, book.reversal_id, "rev-rev")
    )
    book.refused("ENTRY_NOT_FOUND", lambda: ledger.reverse_entry(book.db, 999, "rev-x"))
    book.refused("ENTRY_INVALID", lambda: ledger.reverse_entry(book.db, book.funding_id, ""))


def test_value_dates(book: Book) -> None:
    tomorrow = book.today + timedelta(days=1)
    error = book.refused(
        "VALUE_DATE_IN_FUTURE",
        lambda: ledger.book_entry(
            book.db, transfer("v1", "cash", "equity", 100, value_date=tomorrow)
        ),
    )
    assert tomorrow.isoformat() in error.message
    # A past value date is kept; the business date is still today's.
    earlier = book.today - timedelta(days=3)
    booked = ledger.book_entry(book.db, transfer("v2", "cash", "equity", 100, value_date=earlier))
    assert (booked.business_date, booked.value_date) == (book.today, earlier)
    assert ledger.get_entry(book.db, booked.id).value_date == earlier


def test_batch_with_one_bad_entry_writes_nothing(book: Book) -> None:
    good = [transfer(f"g{i}", "cash", "equity", 10 + i) for i in range(5)]
    book.refused(
        "ACCOUNT_CLOSED",
        lambda: ledger.book_entries(book.db, [*good, transfer("bad", "old", "equity", 1)]),
    )
    book.refused(
        "BALANCE_CONSTRAINT_VIOLATED",
        lambda: ledger.book_entries(book.db, [*good, transfer("bad", "deposits", "cash", 10**9)]),
    )
    book.refused(
        "ENTRY_INVALID",
        lambda: ledger.book_entries(book.db, [*good, transfer("g0", "cash", "equity", 10)]),
    )
    book.refused("ENTRY_INVALID", lambda: ledger.book_entries(book.db, []))
    assert ledger.book_entries(book.db, good).booked_count == 5


def test_close_refused_with_a_balance_or_a_hold(book: Book) -> None:
    error = book.refused("ACCOUNT_NOT_EMPTY", lambda: ledger.close_account(book.db, "cash"))
    assert error.details == {"account": "cash"}
    # deposits is back to zero after the reversed fee, but a hold is pending on it.
    assert stored_totals(book.db)["deposits"] == (2_500, 2_500, 100_000, 0)
    book.refused("ACCOUNT_NOT_EMPTY", lambda: ledger.close_account(book.db, "deposits"))
    ledger.void_hold(book.db, book.hold_id)
    closed = ledger.close_account(book.db, "deposits")
    assert (closed.status.value, closed.closed_on) == ("closed", book.today)


def test_business_date_refusals(book: Book) -> None:
    book.refused(
        "BUSINESS_DATE_BACKWARDS",
        lambda: set_business_date(book.db, book.today - timedelta(days=1)),
    )
    book.refused("INVALID_INPUT", lambda: advance_business_date(book.db, 0))
    book.refused("INVALID_INPUT", lambda: advance_business_date(book.db, 367))


def test_after_refusals_the_ledger_verifies(book: Book) -> None:
    for attempt in (
        lambda: ledger.book_entry(book.db, transfer("x1", "deposits", "cash", 10**9)),
        lambda: ledger.book_entry(book.db, transfer("x2", "old", "equity", 1)),
        lambda: ledger.reverse_entry(book.db, book.reversed_id, "x3"),
        lambda: ledger.post_hold(book.db, book.hold_id, idempotency_key="x4", amount_minor=10**9),
    ):
        with pytest.raises(LendcoreError):
            attempt()
    report = verify_ledger(book.db)
    assert report.ok, report.problems
    assert (report.entries_checked, report.postings_checked, report.seals_checked) == (3, 6, 3)
