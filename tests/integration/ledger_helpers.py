"""Helpers shared by the ledger integration tests: building specs and reading
the raw tables behind lendcore's back (to check what was or was not written)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from lendcore.ledger.model import (
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.services import ledger
from lendcore.store.database import Database


def transfer(
    key: str,
    debit: str,
    credit: str,
    amount_minor: int,
    currency: str = "USD",
    *,
    description: str = "",
    value_date: date | None = None,
) -> EntrySpec:
    """A two-line entry: debit `debit`, credit `credit`, one amount."""
    return EntrySpec(
        key,
        (
            PostingSpec(debit, Side.DEBIT, amount_minor, currency),
            PostingSpec(credit, Side.CREDIT, amount_minor, currency),
        ),
        description=description,
        value_date=value_date,
    )


def open_accounts(
    db: Database,
    *specs: tuple[str, AccountType, str] | tuple[str, AccountType, str, BalanceConstraint],
) -> None:
    """Open accounts from (code, type, currency[, constraint]) tuples."""
    for spec in specs:
        code, account_type, currency = spec[0], spec[1], spec[2]
        constraint = spec[3] if len(spec) == 4 else BalanceConstraint.NONE
        ledger.open_account(
            db,
            AccountSpec(
                code, f"Account {code}", account_type, currency, balance_constraint=constraint
            ),
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything a failed command must leave unchanged."""

    journal_entries: int
    postings: int
    holds: tuple[tuple[Any, ...], ...]
    seals: int
    chain_head: tuple[Any, ...]
    balances: tuple[tuple[Any, ...], ...]
    daily_balances: tuple[tuple[Any, ...], ...]
    accounts: tuple[tuple[Any, ...], ...]
    business_date: Any


def snapshot(db: Database) -> Snapshot:
    with db.reading() as conn:

        def rows(sql: str) -> tuple[tuple[Any, ...], ...]:
            return tuple(tuple(r) for r in conn.execute(text(sql)))

        return Snapshot(
            journal_entries=_count(conn, "journal_entries"),
            postings=_count(conn, "postings"),
            holds=rows("SELECT id, status, amount_minor, resolved_on FROM holds ORDER BY id"),
            seals=_count(conn, "ledger_seals"),
            chain_head=rows("SELECT seq, seal_hash FROM ledger_chain_head")[0],
            balances=rows(
                "SELECT account_id, debits_posted, credits_posted, debits_pending, "
                "credits_pending FROM account_balances ORDER BY account_id"
            ),
            daily_balances=rows(
                "SELECT account_id, business_date, debits_posted, credits_posted "
                "FROM account_daily_balances ORDER BY account_id, business_date"
            ),
            accounts=rows("SELECT id, code, status FROM accounts ORDER BY id"),
            business_date=rows("SELECT business_date FROM institution")[0][0],
        )


def _count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def count_rows(db: Database, table: str) -> int:
    with db.reading() as conn:
        return _count(conn, table)


def stored_totals(db: Database) -> dict[str, tuple[int, int, int, int]]:
    """account code -> (debits posted, credits posted, debits pending, credits pending)."""
    with db.reading() as conn:
        return {
            r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4]))
            for r in conn.execute(
                text(
                    "SELECT a.code, b.debits_posted, b.credits_posted, b.debits_pending, "
                    "b.credits_pending FROM accounts a JOIN account_balances b "
                    "ON b.account_id = a.id"
                )
            )
        }


def journal_totals(db: Database) -> dict[str, tuple[int, int]]:
    """account code -> (sum of debit postings, sum of credit postings), from the journal."""
    with db.reading() as conn:
        result = {
            r[0]: (int(r[1]), int(r[2]))
            for r in conn.execute(
                text(
                    "SELECT a.code, "
                    "COALESCE(SUM(CASE WHEN p.side = 'D' THEN p.amount_minor END), 0), "
                    "COALESCE(SUM(CASE WHEN p.side = 'C' THEN p.amount_minor END), 0) "
                    "FROM accounts a LEFT JOIN postings p ON p.account_id = a.id "
                    "GROUP BY a.code"
                )
            )
        }
    return result


def pending_totals(db: Database) -> dict[str, tuple[int, int]]:
    """account code -> (debits reserved, credits reserved) by pending holds, from `holds`."""
    with db.reading() as conn:
        result: dict[str, tuple[int, int]] = {
            r[0]: (0, 0) for r in conn.execute(text("SELECT code FROM accounts"))
        }
        for debit, credit, amount in conn.execute(
            text(
                "SELECT d.code, c.code, h.amount_minor FROM holds h "
                "JOIN accounts d ON d.id = h.debit_account_id "
                "JOIN accounts c ON c.id = h.credit_account_id WHERE h.status = 'pending'"
            )
        ):
            result[debit] = (result[debit][0] + int(amount), result[debit][1])
            result[credit] = (result[credit][0], result[credit][1] + int(amount))
    return result


def net_by_currency(db: Database) -> dict[str, int]:
    """Per currency: sum of debit postings minus sum of credit postings (must be 0)."""
    with db.reading() as conn:
        return {
            r[0]: int(r[1])
            for r in conn.execute(
                text(
                    "SELECT currency, SUM(CASE WHEN side = 'D' THEN amount_minor "
                    "ELSE -amount_minor END) FROM postings GROUP BY currency"
                )
            )
        }
