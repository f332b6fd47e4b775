"""Tampering behind lendcore's back: `ledger verify` must notice and name the entry.

On a SQLite file the tests drop the append-only triggers with the plain
`sqlite3` module (what an attacker with the file would do), change rows, and
check `verify_ledger` and the `lendcore ledger verify` command. The triggers
themselves are checked on both databases.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lendcore.ledger.chain import EntryHeader, entry_digest
from lendcore.ledger.model import AccountType, EntrySpec, PostingSpec, Side
from lendcore.ledger.verify import VerifyReport
from lendcore.services import ledger
from lendcore.services.verify import verify_ledger
from lendcore.store.database import Database, open_database
from lendcore.store.schema import APPEND_ONLY_TABLES
from tests.integration.ledger_helpers import open_accounts, snapshot, transfer

USD = "USD"


@pytest.fixture
def booked(sqlite_url: str) -> Iterator[tuple[Database, Path]]:
    """A SQLite file with five entries, each in its own seal: ids 1..5, seals 1..5."""
    db = open_database(sqlite_url)
    open_accounts(
        db,
        ("cash", AccountType.ASSET, USD),
        ("loans", AccountType.ASSET, USD),
        ("equity", AccountType.EQUITY, USD),
        ("income", AccountType.INCOME, USD),
    )
    ledger.book_entry(db, transfer("e1", "cash", "equity", 100_000, description="capital"))
    ledger.book_entry(db, transfer("e2", "loans", "cash", 40_000, description="disburse"))
    ledger.book_entry(
        db,
        EntrySpec(
            "e3",
            (
                PostingSpec("cash", Side.DEBIT, 5_500, USD),
                PostingSpec("loans", Side.CREDIT, 5_000, USD),
                PostingSpec("income", Side.CREDIT, 500, USD),
            ),
            description="repayment",
        ),
    )
    ledger.book_entry(db, transfer("e4", "loans", "income", 300, description="accrual"))
    ledger.book_entry(db, transfer("e5", "cash", "equity", 1_000, description="top-up"))
    assert verify_ledger(db).ok
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    try:
        yield db, path
    finally:
        db.dispose()


def tamper(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    """Drop the triggers and run `statements` with the plain sqlite3 module."""
    conn = sqlite3.connect(path)
    try:
        for table in APPEND_ONLY_TABLES:
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
        conn.commit()
    finally:
        conn.close()


def codes(report: VerifyReport) -> set[str]:
    return {p.code for p in report.problems}


def test_altered_posting_amount(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(path, "UPDATE postings SET amount_minor = 5600 WHERE entry_id = 3 AND line_no = 1")
    report = verify_ledger(db)
    assert not report.ok
    assert report.first_bad_entry == 3
    assert codes(report) == {
        "ENTRY_ALTERED",
        "ENTRY_UNBALANCED",
        "SEAL_ALTERED",
        "BALANCE_MISMATCH",
        "DAILY_BALANCE_MISMATCH",
    }
    assert {p.entry_id for p in report.problems if p.entry_id is not None} == {3}
    mismatched = {p.account for p in report.problems if p.code == "BALANCE_MISMATCH"}
    assert mismatched == {"cash"}


def test_balanced_alteration_with_forged_balances_is_still_caught(
    booked: tuple[Database, Path],
) -> None:
    """A careful forger changes both lines and every derived balance: only the
    chain can tell."""
    db, path = booked
    tamper(
        path,
        "UPDATE postings SET amount_minor = 41000 WHERE entry_id = 2",
        "UPDATE account_balances SET debits_posted = debits_posted + 1000 "
        "WHERE account_id = (SELECT id FROM accounts WHERE code = 'loans')",
        "UPDATE account_balances SET credits_posted = credits_posted + 1000 "
        "WHERE account_id = (SELECT id FROM accounts WHERE code = 'cash')",
        "UPDATE account_daily_balances SET debits_posted = debits_posted + 1000 "
        "WHERE account_id = (SELECT id FROM accounts WHERE code = 'loans')",
        "UPDATE account_daily_balances SET credits_posted = credits_posted + 1000 "
        "WHERE account_id = (SELECT id FROM accounts WHERE code = 'cash')",
    )
    report = verify_ledger(db)
    assert codes(report) == {"ENTRY_ALTERED", "SEAL_ALTERED"}
    assert report.first_bad_entry == 2
    assert [(p.code, p.entry_id, p.seal_seq) for p in report.problems] == [
        ("ENTRY_ALTERED", 2, None),
        ("SEAL_ALTERED", 2, 2),
    ]


def test_altered_description(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(path, "UPDATE journal_entries SET description = 'disbursement' WHERE id = 2")
    report = verify_ledger(db)
    assert not report.ok
    assert report.first_bad_entry == 2
    assert [(p.code, p.entry_id) for p in report.problems] == [
        ("ENTRY_ALTERED", 2),
        ("SEAL_ALTERED", 2),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET value_date = '2001-01-01' WHERE id = 4",
        "UPDATE journal_entries SET metadata_json = '{\"x\":1}' WHERE id = 4",
        "UPDATE journal_entries SET idempotency_key = 'other' WHERE id = 4",
        "UPDATE postings SET account_id = (SELECT id FROM accounts WHERE code = 'cash') "
        "WHERE entry_id = 4 AND line_no = 1",
        "UPDATE postings SET side = 'C' WHERE entry_id = 4 AND line_no = 1",
    ],
    ids=["value-date", "metadata", "key", "account", "side"],
)
def test_any_altered_field_is_caught(booked: tuple[Database, Path], statement: str) -> None:
    db, path = booked
    tamper(path, statement)
    report = verify_ledger(db)
    assert not report.ok
    assert report.first_bad_entry == 4
    assert "ENTRY_ALTERED" in codes(report)


def test_inserted_entry(booked: tuple[Database, Path]) -> None:
    """A forged entry with a correct digest, its postings and matching balances:
    it is in no seal, so the chain names it."""
    db, path = booked
    conn = sqlite3.connect(path)
    cash_id, equity_id = (
        conn.execute("SELECT id FROM accounts WHERE code = ?", (code,)).fetchone()[0]
        for code in ("cash", "equity")
    )
    conn.close()
    header = EntryHeader(
        id=6,
        idempotency_key="forged",
        request_hash="0" * 64,
        business_date=date(2026, 1, 2),
        value_date=date(2026, 1, 2),
        recorded_at="2026-01-02T00:00:00.000000Z",
        description="looks legit",
        metadata_json="{}",
        reverses_entry_id=None,
        hold_id=None,
    )
    lines = [(1, cash_id, "D", 777, USD), (2, equity_id, "C", 777, USD)]
    digest = entry_digest(header, lines)
    tamper(
        path,
        "INSERT INTO journal_entries (id, idempotency_key, request_hash, business_date, "
        "value_date, recorded_at, description, metadata_json, reverses_entry_id, hold_id, "
        f"entry_digest) VALUES (6, 'forged', '{'0' * 64}', '2026-01-02', '2026-01-02', "
        f"'2026-01-02T00:00:00.000000Z', 'looks legit', '{{}}', NULL, NULL, '{digest}')",
        f"INSERT INTO postings VALUES (6, 1, {cash_id}, 'D', 777, 'USD')",
        f"INSERT INTO postings VALUES (6, 2, {equity_id}, 'C', 777, 'USD')",
        "UPDATE account_balances SET debits_posted = debits_posted + 777 "
        f"WHERE account_id = {cash_id}",
        "UPDATE account_balances SET credits_posted = credits_posted + 777 "
        f"WHERE account_id = {equity_id}",
        "UPDATE account_daily_balances SET debits_posted = debits_posted + 777 "
        f"WHERE account_id = {cash_id}",
        "UPDATE account_daily_balances SET credits_posted = credits_posted + 777 "
        f"WHERE account_id = {equity_id}",
    )
    report = verify_ledger(db)
    assert [(p.code, p.entry_id) for p in report.problems] == [("ENTRY_UNSEALED", 6)]
    assert report.first_bad_entry == 6
    assert report.entries_checked == 6


def test_inserted_entry_without_care(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(
        path,
        "INSERT INTO journal_entries (id, idempotency_key, request_hash, business_date, "
        "value_date, recorded_at, description, metadata_json, entry_digest) VALUES "
        f"(6, 'x', 'h', '2026-01-02', '2026-01-02', 't', 'd', '{{}}', '{'a' * 64}')",
        "INSERT INTO postings VALUES (6, 1, 1, 'D', 5, 'USD')",
        "INSERT INTO postings VALUES (6, 2, 3, 'C', 5, 'USD')",
    )
    report = verify_ledger(db)
    assert report.first_bad_entry == 6
    assert {"ENTRY_ALTERED", "ENTRY_UNSEALED", "BALANCE_MISMATCH"} <= codes(report)


def test_deleted_entry(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(
        path, "DELETE FROM postings WHERE entry_id = 3", "DELETE FROM journal_entries WHERE id = 3"
    )
    report = verify_ledger(db)
    assert not report.ok
    assert report.first_bad_entry == 3
    assert report.entries_checked == 4
    removed = [p for p in report.problems if p.code == "ENTRY_REMOVED"]
    assert [(p.entry_id, p.seal_seq) for p in removed] == [(3, 3)]
    assert {p.account for p in report.problems if p.code == "BALANCE_MISMATCH"} == {
        "cash",
        "loans",
        "income",
    }


def test_deleted_posting_only(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(path, "DELETE FROM postings WHERE entry_id = 3 AND line_no = 3")
    report = verify_ledger(db)
    assert report.first_bad_entry == 3
    assert {"ENTRY_ALTERED", "ENTRY_UNBALANCED"} <= codes(report)


def test_deleted_last_entry_and_its_seal(booked: tuple[Database, Path]) -> None:
    """Removing the newest entry with its seal leaves the head pointing past the end."""
    db, path = booked
    tamper(
        path,
        "DELETE FROM postings WHERE entry_id = 5",
        "DELETE FROM journal_entries WHERE id = 5",
        "DELETE FROM ledger_seals WHERE seq = 5",
    )
    report = verify_ledger(db)
    assert "CHAIN_HEAD_MISMATCH" in codes(report)
    assert not report.ok


def test_altered_seal_hash(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(path, f"UPDATE ledger_seals SET seal_hash = '{'f' * 64}' WHERE seq = 2")
    report = verify_ledger(db)
    assert not report.ok
    # Seal 2 covers entry 2 alone, so the entry is named; seal 3 no longer links to it.
    assert report.first_bad_entry == 2
    assert [(p.code, p.seal_seq, p.entry_id) for p in report.problems] == [
        ("SEAL_ALTERED", 2, 2),
        ("SEAL_BROKEN", 3, None),
    ]


def test_altered_chain_head(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(path, "UPDATE ledger_chain_head SET seq = 4")
    report = verify_ledger(db)
    assert [p.code for p in report.problems] == ["CHAIN_HEAD_MISMATCH"]
    assert report.first_bad_entry is None


def test_altered_balance_only(booked: tuple[Database, Path]) -> None:
    db, path = booked
    tamper(
        path,
        "UPDATE account_balances SET credits_posted = credits_posted + 1 "
        "WHERE account_id = (SELECT id FROM accounts WHERE code = 'income')",
    )
    report = verify_ledger(db)
    assert [(p.code, p.account) for p in report.problems] == [("BALANCE_MISMATCH", "income")]
    assert report.first_bad_entry is None


# --- the command line -------------------------------------------------------------------


def lendcore_command() -> list[str]:
    """The `lendcore` console script of the interpreter running the tests."""
    script = Path(sys.executable).parent / "lendcore"
    if script.exists():
        return [str(script)]
    found = shutil.which("lendcore")
    if found is None:
        pytest.skip("the lendcore console script is not installed")
    return [found]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LENDCORE_DB_URL"}
    return subprocess.run(
        [*lendcore_command(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_cli_verify_names_the_first_bad_entry(booked: tuple[Database, Path]) -> None:
    _db, path = booked
    url = f"sqlite:///{path}"
    good = run_cli("--db", url, "ledger", "verify", "--json")
    assert good.returncode == 0, good.stderr
    document = json.loads(good.stdout)
    assert (document["ok"], document["entries_checked"], document["first_bad_entry"]) == (
        True,
        5,
        None,
    )

    tamper(
        path,
        "UPDATE postings SET amount_minor = 5600 WHERE entry_id = 3 AND line_no = 1",
        "UPDATE journal_entries SET description = 'top-up!' WHERE id = 5",
    )
    plain = run_cli("--db", url, "ledger", "verify")
    assert plain.returncode != 0
    error_lines = plain.stderr.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("error[LEDGER_VERIFY_FAILED]: first bad entry 3: ")

    as_json = run_cli("--db", url, "ledger", "verify", "--json")
    assert as_json.returncode != 0
    document = json.loads(as_json.stdout)  # one document, nothing else on stdout
    assert document["ok"] is False
    assert document["first_bad_entry"] == 3
    assert {p["entry_id"] for p in document["problems"] if p["entry_id"] is not None} == {3, 5}
    assert as_json.stderr.strip().startswith("error[LEDGER_VERIFY_FAILED]: first bad entry 3")


# --- the database refuses changes to the journal -------------------------------------------


JOURNAL_CHANGES = [
    ("journal_entries", "UPDATE journal_entries SET description = 'x' WHERE id = 1"),
    ("journal_entries", "DELETE FROM journal_entries WHERE id = 2"),
    ("postings", "UPDATE postings SET amount_minor = 1 WHERE entry_id = 1"),
    ("postings", "DELETE FROM postings WHERE entry_id = 2"),
    ("ledger_seals", "UPDATE ledger_seals SET seal_hash = 'x' WHERE seq = 1"),
    ("ledger_seals", "DELETE FROM ledger_seals WHERE seq = 2"),
]


def test_database_refuses_update_and_delete(db: Database) -> None:
    open_accounts(db, ("cash", AccountType.ASSET, USD), ("equity", AccountType.EQUITY, USD))
    ledger.book_entry(db, transfer("a", "cash", "equity", 10))
    ledger.book_entry(db, transfer("b", "cash", "equity", 20))
    before = snapshot(db)
    for table, statement in JOURNAL_CHANGES:
        with pytest.raises(DBAPIError) as caught, db.transaction() as conn:
            conn.execute(text(statement))
        action = statement.split()[0]
        assert f"{table} is append-only: {action} refused" in str(caught.value.orig), statement
        assert snapshot(db) == before
    assert verify_ledger(db).ok


@pytest.mark.pg
def test_postgres_refuses_truncate(pg_url: str) -> None:
    db = open_database(pg_url)
    try:
        open_accounts(db, ("cash", AccountType.ASSET, USD), ("equity", AccountType.EQUITY, USD))
        ledger.book_entry(db, transfer("a", "cash", "equity", 10))
        before = snapshot(db)
        for table in APPEND_ONLY_TABLES:
            with pytest.raises(DBAPIError) as caught, db.transaction() as conn:
                conn.execute(text(f"TRUNCATE {table} CASCADE"))
            # CASCADE reaches postings too; whichever table's trigger fires first refuses.
            assert "is append-only: TRUNCATE refused" in str(caught.value.orig), table
            assert snapshot(db) == before
        assert verify_ledger(db).ok
    finally:
        db.dispose()
