"""A hypothesis state machine over the ledger, checked against an in-memory model.

Random sequences of: opening and closing accounts (USD and JPY, some that may
not go below zero, some that may not go above zero), entries (good, bad,
single or in batches, one or two currencies), holds (place, post in full or in
part, over-post, void), reversals, business-date advances (which expire holds)
and retried idempotency keys. The model predicts every outcome, refusals
included; after every step the invariants compare the database with the model
and with itself, and `verify_ledger` must be ok.

Every example gets a fresh database: a copy of the migrated SQLite template,
or a new PostgreSQL schema.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

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
from lendcore.store.database import Database, open_database
from tests.conftest import create_pg_schema, drop_pg_schema, fresh_sqlite_url, requires_pg
from tests.integration.ledger_helpers import snapshot

CURRENCIES = ("USD", "JPY")
ACCOUNTS_MAX = 9
D, C = Side.DEBIT, Side.CREDIT
NN, NP, NONE = (
    BalanceConstraint.NON_NEGATIVE,
    BalanceConstraint.NON_POSITIVE,
    BalanceConstraint.NONE,
)

Line = tuple[str, Side, int, str]


# --- the model -----------------------------------------------------------------------------


@dataclass
class MAccount:
    code: str
    currency: str
    normal_debit: bool
    constraint: BalanceConstraint
    closed: bool = False
    dp: int = 0  # debits posted
    cp: int = 0  # credits posted
    dh: int = 0  # debits held (pending)
    ch: int = 0  # credits held (pending)

    def totals(self) -> tuple[int, int, int, int]:
        return (self.dp, self.cp, self.dh, self.ch)

    def broken(self) -> bool:
        """The constraint, written here independently of lendcore's model module."""
        if self.normal_debit:
            posted, away, toward = self.dp - self.cp, self.ch, self.dh
        else:
            posted, away, toward = self.cp - self.dp, self.dh, self.ch
        if self.constraint is NN:
            return posted - away < 0
        if self.constraint is NP:
            return posted + toward > 0
        return False


@dataclass
class MHold:
    id: int
    key: str
    debit: str
    credit: str
    amount: int
    currency: str
    expires_on: date
    status: str = "pending"


@dataclass
class MEntry:
    id: int
    lines: tuple[Line, ...]
    reverses: int | None = None
    reversed_by: int | None = None


@dataclass
class Retry:
    """A call that succeeded once: `same` must replay it, `other` must be refused."""

    what: str
    expected_id: int
    same: Callable[[], int]
    other: Callable[[], object]


@dataclass
class Model:
    today: date
    accounts: dict[str, MAccount] = field(default_factory=dict)
    holds: dict[int, MHold] = field(default_factory=dict)
    entries: dict[int, MEntry] = field(default_factory=dict)

    def apply(self, lines: tuple[Line, ...], totals: dict[str, list[int]]) -> None:
        for code, side, amount, _cur in lines:
            totals[code][0 if side is D else 1] += amount

    def outcome(self, entries: list[tuple[Line, ...]]) -> str | None:
        """What booking `entries` in order (all or nothing) would fail with, or None."""
        trial = {code: list(a.totals()) for code, a in self.accounts.items()}
        for lines in entries:
            for code, _side, _amount, cur in lines:
                account = self.accounts[code]
                if account.closed:
                    return "ACCOUNT_CLOSED"
                if account.currency != cur:
                    return "CURRENCY_MISMATCH"
            self.apply(lines, trial)
            if any(self._would_break(code, trial[code]) for code, *_ in lines):
                return "BALANCE_CONSTRAINT_VIOLATED"
        return None

    def _would_break(self, code: str, totals: list[int]) -> bool:
        a = self.accounts[code]
        probe = MAccount(a.code, a.currency, a.normal_debit, a.constraint)
        probe.dp, probe.cp, probe.dh, probe.ch = totals
        return probe.broken()

    def book(self, entry_id: int, lines: tuple[Line, ...], reverses: int | None = None) -> None:
        for code, side, amount, _cur in lines:
            account = self.accounts[code]
            if side is D:
                account.dp += amount
            else:
                account.cp += amount
        self.entries[entry_id] = MEntry(entry_id, lines, reverses)
        if reverses is not None:
            self.entries[reverses].reversed_by = entry_id

    def release(self, hold: MHold, status: str) -> None:
        self.accounts[hold.debit].dh -= hold.amount
        self.accounts[hold.credit].ch -= hold.amount
        hold.status = status


def reversed_lines(lines: tuple[Line, ...]) -> tuple[Line, ...]:
    return tuple((code, C if side is D else D, amount, cur) for code, side, amount, cur in lines)


def as_lines(entry: ledger.BookedEntry) -> tuple[Line, ...]:
    return tuple((p.account, p.side, p.amount_minor, p.currency) for p in entry.postings)


def spec_of(key: str, lines: tuple[Line, ...], **kwargs: Any) -> EntrySpec:
    return EntrySpec(key, tuple(PostingSpec(*line) for line in lines), **kwargs)


# --- the machine -----------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Subclasses say where each example's fresh database comes from."""

    def new_database(self) -> tuple[str, Callable[[], None]]:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        url, self.cleanup = self.new_database()
        self.db: Database = open_database(url)
        self.model = Model(today=business_date(self.db))
        self.retries: list[Retry] = []
        self.serial = 0
        self.checks = 0

    def teardown(self) -> None:
        try:
            # The run ends with `ledger verify` ok; hypothesis calls teardown from a
            # `finally`, so skip it when a step failed (its error is the one to see).
            if sys.exc_info()[0] is None:
                self.verify()
        finally:
            self.db.dispose()
            self.cleanup()

    def verify(self) -> None:
        report = verify_ledger(self.db)
        assert report.ok, report.problems
        assert report.entries_checked == len(self.model.entries)
        assert report.accounts_checked == len(self.model.accounts)

    # --- helpers ---

    def key(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def refused(self, code: str, call: Callable[[], object]) -> None:
        """`call` must fail with `code` and write nothing."""
        event(f"refused {code}")
        before = snapshot(self.db)
        try:
            call()
        except LendcoreError as error:
            assert error.code == code, f"expected {code}, got {error.code}: {error}"
        else:
            raise AssertionError(f"expected {code}, the call succeeded")
        assert snapshot(self.db) == before

    def new_id(self, entry_id: int) -> None:
        assert entry_id not in self.model.entries
        assert entry_id > max(self.model.entries, default=0)

    def accounts_in(self, currency: str, *, open_only: bool = False) -> list[str]:
        return sorted(
            code
            for code, a in self.model.accounts.items()
            if a.currency == currency and not (open_only and a.closed)
        )

    def open(self, currency: str, normal_debit: bool, constraint: BalanceConstraint) -> None:
        code = f"{currency[0]}{len(self.model.accounts) + 1}"
        account_type = AccountType.ASSET if normal_debit else AccountType.LIABILITY
        opened = ledger.open_account(
            self.db,
            AccountSpec(
                code, f"Account {code}", account_type, currency, balance_constraint=constraint
            ),
        )
        assert (opened.code, opened.currency, opened.balance_constraint) == (
            code,
            currency,
            constraint,
        )
        assert opened.normal_side.value == ("debit" if normal_debit else "credit")
        self.model.accounts[code] = MAccount(code, currency, normal_debit, constraint)

    def balanced_lines(self, data: st.DataObject, currency: str) -> list[Line]:
        """1-2 debit lines and 1-2 credit lines in `currency` with equal totals
        (on a closed account now and then)."""
        with_closed = data.draw(st.integers(0, 9), label="closed too") == 0
        codes = self.accounts_in(currency, open_only=not with_closed) or self.accounts_in(currency)
        debits = data.draw(st.integers(1, 2))
        credits = data.draw(st.integers(1, 2))
        total = data.draw(st.integers(max(debits, credits), 4_000))
        lines: list[Line] = []
        for side, count in ((D, debits), (C, credits)):
            cut = data.draw(st.integers(1, total - 1)) if count == 2 else total
            for amount in [cut, total - cut] if count == 2 else [total]:
                lines.append((data.draw(st.sampled_from(codes)), side, amount, currency))
        return data.draw(st.permutations(lines))

    def entry_lines(self, data: st.DataObject) -> tuple[Line, ...]:
        currencies = data.draw(
            st.sampled_from([("USD",), ("JPY",), ("USD", "JPY")]), label="currencies"
        )
        return tuple(line for cur in currencies for line in self.balanced_lines(data, cur))

    # --- rules: accounts ---

    @initialize()
    def open_first_accounts(self) -> None:
        for currency in CURRENCIES:
            self.open(currency, True, NONE)
            self.open(currency, False, NONE)

    @precondition(lambda self: len(self.model.accounts) < ACCOUNTS_MAX)
    @rule(
        currency=st.sampled_from(CURRENCIES),
        normal_debit=st.booleans(),
        constraint=st.sampled_from([NN, NN, NP, NONE]),
    )
    def open_account(
        self, currency: str, normal_debit: bool, constraint: BalanceConstraint
    ) -> None:
        self.open(currency, normal_debit, constraint)

    # The first four accounts stay open so that most steps can book something.
    @precondition(lambda self: len(self.model.accounts) > len(CURRENCIES) * 2)
    @rule(data=st.data())
    def close_account(self, data: st.DataObject) -> None:
        code = data.draw(
            st.sampled_from(list(self.model.accounts)[len(CURRENCIES) * 2 :]), label="account"
        )
        account = self.model.accounts[code]
        if account.closed:
            self.refused("ACCOUNT_CLOSED", lambda: ledger.close_account(self.db, code))
        elif account.dp != account.cp or account.dh or account.ch:
            self.refused("ACCOUNT_NOT_EMPTY", lambda: ledger.close_account(self.db, code))
        else:
            closed = ledger.close_account(self.db, code)
            event("closed an account")
            assert (closed.status.value, closed.closed_on) == ("closed", self.model.today)
            account.closed = True

    # --- rules: entries ---

    @rule(data=st.data())
    def book(self, data: st.DataObject) -> None:
        lines = self.entry_lines(data)
        key = self.key("e")
        back = data.draw(st.integers(0, 3), label="value date back")
        value_date = self.model.today - timedelta(days=back) if back else None
        description = data.draw(st.sampled_from(["", "repayment", "fee", "ÄÖ €"]))
        spec = spec_of(key, lines, description=description, value_date=value_date)
        expected = self.model.outcome([lines])
        if expected is not None:
            self.refused(expected, lambda: ledger.book_entry(self.db, spec))
            return
        booked = ledger.book_entry(self.db, spec)
        event("booked an entry")
        self.new_id(booked.id)
        assert booked.replayed is False
        assert as_lines(booked) == lines
        assert (booked.business_date, booked.value_date) == (
            self.model.today,
            value_date or self.model.today,
        )
        self.model.book(booked.id, lines)
        other = spec_of(key, lines, description=description + "!", value_date=value_date)
        self.retries.append(
            Retry(
                "entry",
                booked.id,
                lambda: ledger.book_entry(self.db, spec).id,
                lambda: ledger.book_entry(self.db, other),
            )
        )

    @rule(data=st.data())
    def book_batch(self, data: st.DataObject) -> None:
        batch = [self.entry_lines(data) for _ in range(data.draw(st.integers(2, 4)))]
        specs = [spec_of(self.key("b"), lines) for lines in batch]
        expected = self.model.outcome(batch)
        if expected is not None:
            self.refused(expected, lambda: ledger.book_entries(self.db, specs))
            return
        result = ledger.book_entries(self.db, specs)
        event("booked a batch")
        assert (result.booked_count, result.replayed_count) == (len(specs), 0)
        assert result.entry_ids == sorted(result.entry_ids)
        self.new_id(result.entry_ids[0])
        for entry_id, lines in zip(result.entry_ids, batch, strict=True):
            self.model.book(entry_id, lines)
        # Retrying the whole batch replays every entry; changing one entry is refused.
        changed = [*specs[:-1], spec_of(specs[-1].idempotency_key, batch[-1], description="x")]
        self.retries.append(
            Retry(
                "batch",
                result.entry_ids[0],
                lambda: _replayed_batch(ledger.book_entries(self.db, specs)),
                lambda: ledger.book_entries(self.db, changed),
            )
        )

    @precondition(lambda self: all(self.accounts_in(cur, open_only=True) for cur in CURRENCIES))
    @rule(
        data=st.data(),
        kind=st.sampled_from(
            [
                "unbalanced",
                "zero",
                "negative",
                "unknown-account",
                "currency-mismatch",
                "future-value-date",
                "one-line",
                "bad-batch",
                "unknown-entry",
            ]
        ),
    )
    def book_bad(self, data: st.DataObject, kind: str) -> None:
        key = self.key("x")
        usd = self.accounts_in("USD", open_only=True)
        jpy = self.accounts_in("JPY", open_only=True)
        amount = data.draw(st.integers(1, 1_000))
        if kind == "unknown-entry":
            missing = max(self.model.entries, default=0) + 1_000
            self.refused("ENTRY_NOT_FOUND", lambda: ledger.reverse_entry(self.db, missing, key))
            return
        if kind == "bad-batch":
            # Good entries first, then one that breaks: the whole batch is refused.
            good = [spec_of(self.key("g"), self.entry_lines(data)) for _ in range(2)]
            lines = ((usd[0], D, amount, "USD"), (usd[0], C, amount + 1, "USD"))
            self.refused(
                "ENTRY_UNBALANCED",
                lambda: ledger.book_entries(self.db, [*good, spec_of(key, lines)]),
            )
            return
        code, spec = {
            "unbalanced": (
                "ENTRY_UNBALANCED",
                spec_of(key, ((usd[0], D, amount + 1, "USD"), (usd[-1], C, amount, "USD"))),
            ),
            "zero": (
                "AMOUNT_NOT_POSITIVE",
                spec_of(key, ((jpy[0], D, 0, "JPY"), (jpy[-1], C, 0, "JPY"))),
            ),
            "negative": (
                "AMOUNT_NOT_POSITIVE",
                spec_of(key, ((usd[0], D, -amount, "USD"), (usd[-1], C, -amount, "USD"))),
            ),
            "unknown-account": (
                "ACCOUNT_NOT_FOUND",
                spec_of(key, ((usd[0], D, amount, "USD"), ("NOPE", C, amount, "USD"))),
            ),
            "currency-mismatch": (
                "CURRENCY_MISMATCH",
                spec_of(key, ((usd[0], D, amount, "JPY"), (jpy[0], C, amount, "JPY"))),
            ),
            "future-value-date": (
                "VALUE_DATE_IN_FUTURE",
                spec_of(
                    key,
                    ((usd[0], D, amount, "USD"), (usd[-1], C, amount, "USD")),
                    value_date=self.model.today + timedelta(days=1),
                ),
            ),
            "one-line": ("ENTRY_INVALID", spec_of(key, ((usd[0], D, amount, "USD"),))),
        }[kind]
        self.refused(code, lambda: ledger.book_entry(self.db, spec))

    @precondition(lambda self: bool(self.retries))
    @rule(data=st.data(), same=st.booleans())
    def retry(self, data: st.DataObject, same: bool) -> None:
        retry = data.draw(st.sampled_from(self.retries), label="retry")
        if same:
            before = snapshot(self.db)
            assert retry.same() == retry.expected_id
            event(f"replayed a {retry.what}")
            # A retry creates nothing: same entries, postings, seals, holds, balances.
            assert snapshot(self.db) == before
        else:
            self.refused("IDEMPOTENCY_KEY_REUSED", retry.other)

    @precondition(lambda self: bool(self.model.entries))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        entry_id = data.draw(st.sampled_from(sorted(self.model.entries)), label="entry")
        entry = self.model.entries[entry_id]
        key = self.key("r")
        if entry.reverses is not None:
            self.refused("ENTRY_IS_REVERSAL", lambda: ledger.reverse_entry(self.db, entry_id, key))
            return
        if entry.reversed_by is not None:
            self.refused(
                "ENTRY_ALREADY_REVERSED", lambda: ledger.reverse_entry(self.db, entry_id, key)
            )
            return
        lines = reversed_lines(entry.lines)
        expected = self.model.outcome([lines])
        if expected is not None:
            self.refused(expected, lambda: ledger.reverse_entry(self.db, entry_id, key))
            return
        booked = ledger.reverse_entry(self.db, entry_id, key)
        event("reversed an entry")
        self.new_id(booked.id)
        assert (booked.reverses_entry_id, as_lines(booked)) == (entry_id, lines)
        self.model.book(booked.id, lines, reverses=entry_id)
        self.retries.append(
            Retry(
                "reversal",
                booked.id,
                lambda: ledger.reverse_entry(self.db, entry_id, key).id,
                lambda: ledger.reverse_entry(self.db, entry_id, key, description="other"),
            )
        )

    # --- rules: holds ---

    @rule(data=st.data())
    def place_hold(self, data: st.DataObject) -> None:
        currency = data.draw(st.sampled_from(CURRENCIES))
        with_closed = data.draw(st.integers(0, 9), label="closed too") == 0
        codes = self.accounts_in(currency, open_only=not with_closed)
        if len(codes) < 2:
            codes = self.accounts_in(currency)
        debit, credit = data.draw(
            st.lists(st.sampled_from(codes), min_size=2, max_size=2, unique=True), label="pair"
        )
        amount = data.draw(st.integers(1, 3_000))
        expires_on = self.model.today + timedelta(days=data.draw(st.integers(0, 3)))
        key = self.key("h")

        def place(amount_minor: int = amount) -> ledger.Hold:
            return ledger.place_hold(
                self.db,
                idempotency_key=key,
                debit_account=debit,
                credit_account=credit,
                amount_minor=amount_minor,
                currency=currency,
                expires_on=expires_on,
                description="authorisation of a card payment at a merchant abroad",
            )

        model = self.model
        if model.accounts[debit].closed or model.accounts[credit].closed:
            self.refused("ACCOUNT_CLOSED", place)
            return
        trial_debit = list(model.accounts[debit].totals())
        trial_debit[2] += amount
        trial_credit = list(model.accounts[credit].totals())
        trial_credit[3] += amount
        if model._would_break(debit, trial_debit) or model._would_break(credit, trial_credit):
            self.refused("BALANCE_CONSTRAINT_VIOLATED", place)
            return
        hold = place()
        event("placed a hold")
        assert hold.id not in model.holds
        assert (hold.status, hold.amount_minor, hold.expires_on) == ("pending", amount, expires_on)
        model.accounts[debit].dh += amount
        model.accounts[credit].ch += amount
        model.holds[hold.id] = MHold(hold.id, key, debit, credit, amount, currency, expires_on)
        self.retries.append(Retry("hold", hold.id, lambda: place().id, lambda: place(amount + 1)))

    def pick_hold(self, data: st.DataObject) -> MHold:
        """Mostly a pending hold (when there is one), sometimes any hold."""
        pending = [i for i, h in self.model.holds.items() if h.status == "pending"]
        any_hold = data.draw(st.integers(0, 3), label="any hold") == 0
        choices = sorted(self.model.holds) if any_hold or not pending else pending
        return self.model.holds[data.draw(st.sampled_from(choices), label="hold")]

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data(), mode=st.sampled_from(["full", "part", "over"]))
    def post_hold(self, data: st.DataObject, mode: str) -> None:
        hold = self.pick_hold(data)
        amount = {
            "full": None,
            "part": data.draw(st.integers(1, hold.amount)),
            "over": hold.amount + data.draw(st.integers(1, 50)),
        }[mode]
        key = self.key("p")

        def post(amount_minor: int | None = amount) -> ledger.BookedEntry:
            return ledger.post_hold(
                self.db, hold.id, idempotency_key=key, amount_minor=amount_minor
            )

        if hold.status == "expired":
            self.refused("HOLD_EXPIRED", post)
            return
        if hold.status != "pending":
            self.refused("HOLD_ALREADY_RESOLVED", post)
            return
        if mode == "over":
            self.refused("HOLD_EXCEEDED", post)
            return
        posted_amount = hold.amount if amount is None else amount
        lines: tuple[Line, ...] = (
            (hold.debit, D, posted_amount, hold.currency),
            (hold.credit, C, posted_amount, hold.currency),
        )
        booked = post()
        event(f"posted a hold ({mode})")
        self.new_id(booked.id)
        assert (booked.hold_id, as_lines(booked)) == (hold.id, lines)
        self.model.release(hold, "posted")
        self.model.book(booked.id, lines)
        self.retries.append(
            Retry(
                "post",
                booked.id,
                lambda: post().id,
                lambda: post(posted_amount - 1 if posted_amount > 1 else 2),
            )
        )

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data())
    def void_hold(self, data: st.DataObject) -> None:
        hold = self.pick_hold(data)
        if hold.status == "expired":
            self.refused("HOLD_EXPIRED", lambda: ledger.void_hold(self.db, hold.id))
            return
        if hold.status != "pending":
            self.refused("HOLD_ALREADY_RESOLVED", lambda: ledger.void_hold(self.db, hold.id))
            return
        voided = ledger.void_hold(self.db, hold.id)
        event("voided a hold")
        assert (voided.status, voided.resolved_on) == ("voided", self.model.today)
        self.model.release(hold, "voided")

    # --- rules: the business date ---

    @rule(days=st.integers(1, 3))
    def advance(self, days: int) -> None:
        new_date = advance_business_date(self.db, days)
        self.model.today += timedelta(days=days)
        assert new_date == self.model.today
        for hold in self.model.holds.values():
            if hold.status == "pending" and hold.expires_on < self.model.today:
                self.model.release(hold, "expired")
                event("expired a hold")

    # --- invariants ---

    @invariant()
    def ledger_agrees_with_itself_and_the_model(self) -> None:
        with self.db.reading() as conn:

            def rows(sql: str) -> list[Any]:
                return list(conn.execute(text(sql)))

            # Per currency, debits equal credits over all postings.
            for currency, debits, credits in rows(
                "SELECT currency, SUM(CASE WHEN side = 'D' THEN amount_minor ELSE 0 END), "
                "SUM(CASE WHEN side = 'C' THEN amount_minor ELSE 0 END) "
                "FROM postings GROUP BY currency"
            ):
                assert debits == credits, f"{currency}: debits {debits} != credits {credits}"
            stored = {
                r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4]))
                for r in rows(
                    "SELECT a.code, b.debits_posted, b.credits_posted, b.debits_pending, "
                    "b.credits_pending FROM accounts a JOIN account_balances b "
                    "ON b.account_id = a.id"
                )
            }
            journal = {
                r[0]: (int(r[1]), int(r[2]))
                for r in rows(
                    "SELECT a.code, "
                    "COALESCE(SUM(CASE WHEN p.side = 'D' THEN p.amount_minor END), 0), "
                    "COALESCE(SUM(CASE WHEN p.side = 'C' THEN p.amount_minor END), 0) "
                    "FROM accounts a LEFT JOIN postings p ON p.account_id = a.id GROUP BY a.code"
                )
            }
            held: dict[str, list[int]] = {code: [0, 0] for code in stored}
            for debit, credit, amount in rows(
                "SELECT d.code, c.code, h.amount_minor FROM holds h "
                "JOIN accounts d ON d.id = h.debit_account_id "
                "JOIN accounts c ON c.id = h.credit_account_id WHERE h.status = 'pending'"
            ):
                held[debit][0] += int(amount)
                held[credit][1] += int(amount)
            hold_status = {int(r[0]): r[1] for r in rows("SELECT id, status FROM holds")}
            entry_count = rows("SELECT count(*) FROM journal_entries")[0][0]
            closed = {r[0] for r in rows("SELECT code FROM accounts WHERE status = 'closed'")}
            today = rows("SELECT business_date FROM institution")[0][0]

        # Each stored balance is the sum of its postings and its pending holds.
        for code, totals in stored.items():
            assert totals == (*journal[code], *held[code]), code
        # The model agrees: balances, constraints, holds, entries, closures, the date.
        model = self.model
        assert stored == {code: a.totals() for code, a in model.accounts.items()}
        assert [code for code, a in model.accounts.items() if a.broken()] == []
        assert hold_status == {h.id: h.status for h in model.holds.values()}
        # A retry or a refusal creates nothing: the count moves only with the model.
        assert entry_count == len(model.entries)
        assert closed == {code for code, a in model.accounts.items() if a.closed}
        assert str(today) == model.today.isoformat()
        # The whole `ledger verify` (chain included) every few steps and at the end.
        self.checks += 1
        if self.checks % 5 == 0:
            self.verify()


def _replayed_batch(result: ledger.BulkResult) -> int:
    assert (result.booked_count, result.seal_seq) == (0, None)
    assert result.replayed_count == len(result.entry_ids)
    return result.entry_ids[0]


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


def test_ledger_state_machine_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    class SqliteLedger(LedgerMachine):
        def new_database(self) -> tuple[str, Callable[[], None]]:
            url = fresh_sqlite_url(sqlite_template, tmp_path)
            path = Path(url.removeprefix("sqlite:///"))

            def remove() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

            return url, remove

    run_state_machine_as_test(
        SqliteLedger, settings=settings(max_examples=30, stateful_step_count=30, **SETTINGS)
    )


@requires_pg
@pytest.mark.pg
def test_ledger_state_machine_postgres() -> None:
    class PostgresLedger(LedgerMachine):
        def new_database(self) -> tuple[str, Callable[[], None]]:
            schema, url = create_pg_schema()
            return url, lambda: drop_pg_schema(schema)

    run_state_machine_as_test(
        PostgresLedger, settings=settings(max_examples=10, stateful_step_count=30, **SETTINGS)
    )
