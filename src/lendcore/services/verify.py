"""`ledger verify`: recompute the audit chain and every invariant from the rows."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, func, select

from lendcore.ledger.chain import EntryHeader, PostingRow
from lendcore.ledger.model import BalanceConstraint, NormalSide, Totals
from lendcore.ledger.verify import (
    AccountState,
    Problem,
    SealRow,
    VerifyReport,
    check_account,
    check_chain,
    check_entry,
)
from lendcore.services.audit import verify_audit_on
from lendcore.services.commands import query
from lendcore.store.database import Database
from lendcore.store.schema import (
    account_balances,
    account_daily_balances,
    accounts,
    holds,
    journal_entries,
    ledger_chain_head,
    ledger_seals,
    postings,
)

# Entries read per round trip while streaming the journal.
PAGE_ENTRIES = 5_000


@query("ledger.verify")
def verify_ledger(db: Database) -> VerifyReport:
    report = VerifyReport()
    with db.reading() as conn:
        digest_of: dict[int, str] = {}
        posted: dict[int, tuple[int, int]] = {}
        for header, lines, stored_digest in _stream_entries(conn):
            digest, problems = check_entry(header, lines, stored_digest)
            report.add(problems)
            digest_of[header.id] = digest
            report.entries_checked += 1
            report.postings_checked += len(lines)
            for _line, account_id, side, amount, _currency in lines:
                debits, credits = posted.get(account_id, (0, 0))
                posted[account_id] = (
                    (debits + amount, credits) if side == "D" else (debits, credits + amount)
                )

        head_seq, head_hash = conn.execute(
            select(ledger_chain_head.c.seq, ledger_chain_head.c.seal_hash).where(
                ledger_chain_head.c.id == 1
            )
        ).one()
        report.head_seq, report.head_hash = int(head_seq), head_hash
        seals = (
            SealRow(r.seq, r.prev_hash, r.seal_hash, r.entry_ids, r.entry_count)
            for r in conn.execute(select(ledger_seals).order_by(ledger_seals.c.seq))
        )
        report.seals_checked, problems = check_chain(seals, digest_of, int(head_seq), head_hash)
        report.add(problems)

        audit = verify_audit_on(conn)
        report.audit_records_checked = audit.records_checked
        report.add(Problem("AUDIT_CHAIN_BROKEN", message) for message in audit.problems)

        pending = _pending_by_account(conn)
        for state in _account_states(conn):
            report.accounts_checked += 1
            report.add(
                check_account(state, posted.get(state.id, (0, 0)), pending.get(state.id, (0, 0)))
            )
    return report


def _stream_entries(conn: Connection) -> Iterator[tuple[EntryHeader, list[PostingRow], str]]:
    last_id = 0
    while True:
        headers = conn.execute(
            select(journal_entries)
            .where(journal_entries.c.id > last_id)
            .order_by(journal_entries.c.id)
            .limit(PAGE_ENTRIES)
        ).all()
        if not headers:
            return
        first, last = headers[0].id, headers[-1].id
        lines: dict[int, list[PostingRow]] = {}
        for p in conn.execute(
            select(postings)
            .where(postings.c.entry_id >= first, postings.c.entry_id <= last)
            .order_by(postings.c.entry_id, postings.c.line_no)
        ):
            lines.setdefault(p.entry_id, []).append(
                (p.line_no, p.account_id, p.side, p.amount_minor, p.currency)
            )
        for h in headers:
            header = EntryHeader(
                id=h.id,
                idempotency_key=h.idempotency_key,
                request_hash=h.request_hash,
                business_date=h.business_date,
                value_date=h.value_date,
                recorded_at=h.recorded_at,
                description=h.description,
                metadata_json=h.metadata_json,
                reverses_entry_id=h.reverses_entry_id,
                hold_id=h.hold_id,
            )
            yield header, lines.get(h.id, []), h.entry_digest
        last_id = last


def _pending_by_account(conn: Connection) -> dict[int, tuple[int, int]]:
    pending: dict[int, tuple[int, int]] = {}
    for r in conn.execute(
        select(holds.c.debit_account_id, holds.c.credit_account_id, holds.c.amount_minor).where(
            holds.c.status == "pending"
        )
    ):
        debits, credits = pending.get(r.debit_account_id, (0, 0))
        pending[r.debit_account_id] = (debits + r.amount_minor, credits)
        debits, credits = pending.get(r.credit_account_id, (0, 0))
        pending[r.credit_account_id] = (debits, credits + r.amount_minor)
    return pending


def _account_states(conn: Connection) -> Iterator[AccountState]:
    daily = account_daily_balances
    latest_day = (
        select(daily.c.account_id, func.max(daily.c.business_date).label("day"))
        .group_by(daily.c.account_id)
        .subquery()
    )
    latest = (
        select(daily.c.account_id, daily.c.debits_posted, daily.c.credits_posted)
        .join(
            latest_day,
            (latest_day.c.account_id == daily.c.account_id)
            & (latest_day.c.day == daily.c.business_date),
        )
        .subquery()
    )
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.code,
            accounts.c.normal_side,
            accounts.c.balance_constraint,
            account_balances.c.debits_posted,
            account_balances.c.credits_posted,
            account_balances.c.debits_pending,
            account_balances.c.credits_pending,
            latest.c.debits_posted.label("daily_debits"),
            latest.c.credits_posted.label("daily_credits"),
        )
        .join(account_balances, account_balances.c.account_id == accounts.c.id)
        .outerjoin(latest, latest.c.account_id == accounts.c.id)
        .order_by(accounts.c.id)
    )
    for r in rows:
        yield AccountState(
            id=r.id,
            code=r.code,
            normal_side=NormalSide(r.normal_side),
            constraint=BalanceConstraint(r.balance_constraint),
            stored=Totals(r.debits_posted, r.credits_posted, r.debits_pending, r.credits_pending),
            latest_daily=None if r.daily_debits is None else (r.daily_debits, r.daily_credits),
        )
