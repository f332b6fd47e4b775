"""Ledger use cases: open accounts, book entries (one or thousands), reverse,
hold and post, read balances. Each public function is one transaction.

Concurrency: a booking locks the balance rows it touches in ascending account
id order (so two bookings never deadlock), checks balance constraints on the
locked values, writes, and takes the chain head last, so bookings on different
accounts wait on each other only for the seal itself.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from lendcore.errors import (
    AccountClosed,
    AccountExists,
    AccountNotEmpty,
    AccountNotFound,
    CurrencyMismatch,
    EntryAlreadyReversed,
    EntryIsReversal,
    EntryNotFound,
    HoldExceeded,
    HoldExpired,
    HoldNotFound,
    HoldResolved,
    IdempotencyConflict,
    InvalidAccount,
    InvalidEntry,
    InvalidInput,
    ValueDateInFuture,
)
from lendcore.ledger.chain import (
    PostingRow,
    encode_id_ranges,
    entry_content_of,
    seal_hash,
    seal_suffix,
)
from lendcore.ledger.model import (
    ENTRIES_PER_BATCH_MAX,
    AccountSpec,
    AccountStatus,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    NormalSide,
    PostingSpec,
    Side,
    Totals,
    balance_on_normal_side,
    canonical_json,
    check_constraint,
    metadata_text,
    request_fingerprint,
    reversal_postings,
    validate_account_spec,
    validate_amount,
    validate_description,
    validate_entry,
    validate_idempotency_key,
)
from lendcore.money import Money
from lendcore.money import currency as lookup_currency
from lendcore.services.clock import (
    cached_business_date,
    current_business_date,
    remember_business_date,
    utc_timestamp,
)
from lendcore.services.commands import command, note_result, query
from lendcore.services.events import emit
from lendcore.store.bulk import COPY_ROWS_MIN, copy_rows, execute_many, insert_rows
from lendcore.store.database import (
    TX_INFO_PREFIX,
    Database,
    before_this_commit,
    run_now,
    run_together,
    send_later,
)
from lendcore.store.schema import (
    account_balances,
    account_daily_balances,
    accounts,
    holds,
    journal_entries,
    postings,
)

# How many values go into one IN (...) list.
IN_CHUNK = 500
# PostgreSQL: up to this many values go as an IN list of parameters (psycopg
# adapts scalars in C; a list goes through Python), more as one array.
SHORT_LIST_MAX = 16
# A booking that loses a race (deadlock, duplicate key) is retried this often.
RETRIES_MAX = 3
# When this transaction's entries were recorded (one timestamp per booking).
_RECORDED_AT = TX_INFO_PREFIX + "recorded_at"
# A booking of more entries than this announces one batch event, not one per entry.
EVENTS_PER_ENTRY_MAX = 100
# Lists return at most this many rows per page.
PAGE_SIZE_MAX = 1_000


# --- results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    code: str
    name: str
    type: AccountType
    currency: str
    normal_side: NormalSide
    parent_code: str | None
    status: AccountStatus
    balance_constraint: BalanceConstraint
    opened_on: date
    closed_on: date | None


@dataclass(frozen=True, slots=True)
class PostedLine:
    account: str
    side: Side
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class BookedEntry:
    id: int
    idempotency_key: str
    business_date: date
    value_date: date
    recorded_at: str
    description: str
    metadata: Mapping[str, Any]
    reverses_entry_id: int | None
    hold_id: int | None
    postings: tuple[PostedLine, ...]
    # True when the idempotency key had booked this entry already.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class BulkResult:
    entry_ids: list[int]
    booked_count: int
    replayed_count: int
    seal_seq: int | None


@dataclass(frozen=True, slots=True)
class Balance:
    account: str
    currency: str
    normal_side: NormalSide
    as_of: date | None
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def posted(self) -> int:
        return balance_on_normal_side(self.debits_posted, self.credits_posted, self.normal_side)

    @property
    def available(self) -> int:
        away = self.credits_pending if self.normal_side is NormalSide.DEBIT else self.debits_pending
        return self.posted - away


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    idempotency_key: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    status: str
    expires_on: date
    business_date: date
    resolved_on: date | None
    description: str


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    code: str
    name: str
    type: AccountType
    currency: str
    parent_code: str | None
    depth: int
    debit_minor: int
    credit_minor: int


@dataclass(frozen=True, slots=True)
class TrialBalance:
    as_of: date
    rows: list[TrialBalanceRow]
    # Per currency: (total debit balances, total credit balances).
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return all(debit == credit for debit, credit in self.totals.values())


# --- accounts ------------------------------------------------------------------


@command("ledger.account.open")
def open_account(db: Database, spec: AccountSpec) -> Account:
    validate_account_spec(spec)
    lookup_currency(spec.currency)
    with db.transaction() as conn:
        existing = conn.execute(select(accounts.c.id).where(accounts.c.code == spec.code)).first()
        if existing is not None:
            raise AccountExists(f"account {spec.code} exists already", account=spec.code)
        parent_id = None
        if spec.parent_code is not None:
            parent = _account_row(conn, spec.parent_code)
            if parent.currency != spec.currency.upper():
                raise InvalidAccount(
                    f"account {spec.code} in {spec.currency.upper()} cannot roll up into "
                    f"{parent.code} in {parent.currency}"
                )
            parent_id = parent.id
        today = current_business_date(conn)
        try:
            account_id = conn.execute(
                insert(accounts)
                .values(
                    code=spec.code,
                    name=spec.name.strip(),
                    type=spec.type.value,
                    currency=spec.currency.upper(),
                    normal_side=spec.effective_normal_side.value,
                    parent_id=parent_id,
                    status=AccountStatus.OPEN.value,
                    balance_constraint=spec.balance_constraint.value,
                    opened_on=today,
                    created_at=utc_timestamp(),
                )
                .returning(accounts.c.id)
            ).scalar_one()
        except IntegrityError as exc:
            # A concurrent caller opened the same code after the check above.
            if not any(name in str(exc.orig) for name in ("accounts_code", "accounts.code")):
                raise
            raise AccountExists(f"account {spec.code} exists already", account=spec.code) from exc
        conn.execute(
            insert(account_balances).values(
                account_id=account_id,
                debits_posted=0,
                credits_posted=0,
                debits_pending=0,
                credits_pending=0,
            )
        )
        account = _account_row(conn, spec.code)
        emit(conn, "account.opened", "account", account.code, _account_event(account))
        return account


@command("ledger.account.close")
def close_account(db: Database, code: str) -> Account:
    with db.transaction() as conn:
        locked = _lock_accounts(conn, [code])[code]
        if locked.status is AccountStatus.CLOSED:
            raise AccountClosed(f"account {code} is closed already", account=code)
        t = locked.totals
        if t.debits_posted != t.credits_posted or t.debits_pending or t.credits_pending:
            raise AccountNotEmpty(
                f"account {code} still has a balance or pending holds; move them before closing",
                account=code,
            )
        conn.execute(
            update(accounts)
            .where(accounts.c.id == locked.id)
            .values(status=AccountStatus.CLOSED.value, closed_on=current_business_date(conn))
        )
        account = _account_row(conn, code)
        emit(conn, "account.closed", "account", code, _account_event(account))
        return account


def _account_event(account: Account) -> dict[str, Any]:
    return {
        "code": account.code,
        "name": account.name,
        "type": account.type.value,
        "currency": account.currency,
        "status": account.status.value,
        "parent": account.parent_code,
    }


@query("ledger.read")
def get_account(db: Database, code: str) -> Account:
    with db.reading() as conn:
        return _account_row(conn, code)


@query("ledger.read")
def list_accounts(db: Database) -> list[Account]:
    with db.reading() as conn:
        return [
            _to_account(row) for row in conn.execute(_account_query().order_by(accounts.c.code))
        ]


def _build_account_query() -> Any:
    parent = accounts.alias("parent")
    return select(accounts, parent.c.code.label("parent_code")).outerjoin(
        parent, accounts.c.parent_id == parent.c.id
    )


# Built once: a new alias per call would make SQLAlchemy redo its cache-key work.
_ACCOUNT_QUERY = _build_account_query()


def _account_query() -> Any:
    return _ACCOUNT_QUERY


def _to_account(row: Any) -> Account:
    return Account(
        id=row.id,
        code=row.code,
        name=row.name,
        type=AccountType(row.type),
        currency=row.currency,
        normal_side=NormalSide(row.normal_side),
        parent_code=row.parent_code,
        status=AccountStatus(row.status),
        balance_constraint=BalanceConstraint(row.balance_constraint),
        opened_on=row.opened_on,
        closed_on=row.closed_on,
    )


def _account_row(conn: Connection, code: str) -> Account:
    row = conn.execute(_account_query().where(accounts.c.code == code)).first()
    if row is None:
        raise AccountNotFound(f"no account with code {code}", account=code)
    return _to_account(row)


# --- locking ---------------------------------------------------------------------
#
# The booking path runs prebuilt driver SQL (see lendcore.store.bulk): a
# SQLAlchemy Core statement costs more CPU to build than a small statement
# costs the database to run. On PostgreSQL a booking is two round trips: its
# reads and locks in one pipeline, then its writes, seal, outbox events and the
# COMMIT in another.


@dataclass(slots=True)
class _Locked:
    """An account with its balance row locked for this transaction."""

    id: int
    code: str
    currency: str
    status: AccountStatus
    normal_side: NormalSide
    constraint: BalanceConstraint
    totals: Totals
    original: Totals


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_LOCK_COLUMNS = (
    "SELECT a.id, a.code, a.currency, a.status, a.normal_side, a.balance_constraint, "
    "b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending "
    "FROM accounts a JOIN account_balances b ON b.account_id = a.id "
)
# Rows are locked in ascending id order (the lock is taken above the sort), so
# two bookings never deadlock. The account row is locked too: a booking that
# waited for a close to commit must see the account closed (PostgreSQL re-reads
# only the rows it locks). NO KEY UPDATE does not block foreign-key checks.
_LOCK_SQL_PG = _LOCK_COLUMNS + "WHERE a.code {codes} ORDER BY a.id FOR NO KEY UPDATE OF b, a"


def _lock_statement(conn: Connection, codes: Sequence[str]) -> list[tuple[str, Sequence[Any]]]:
    """The statements that lock (and read) the balance rows of `codes`."""
    if conn.dialect.name == "postgresql":
        if len(codes) > SHORT_LIST_MAX:
            return [(_LOCK_SQL_PG.format(codes="= ANY(%s)"), (list(codes),))]
        return [(_LOCK_SQL_PG.format(codes=f"IN ({', '.join(['%s'] * len(codes))})"), codes)]
    # SQLite: BEGIN IMMEDIATE holds the database's write lock already.
    return [
        (_LOCK_COLUMNS + f"WHERE a.code IN ({', '.join('?' * len(chunk))})", tuple(chunk))
        for chunk in _chunks(codes)
    ]


def _mark(conn: Connection) -> str:
    return "%s" if conn.dialect.name == "postgresql" else "?"


def _to_locked(rows: Iterable[Sequence[Any]]) -> dict[str, _Locked]:
    locked: dict[str, _Locked] = {}
    for account_id, code, currency, status, normal_side, constraint, dp, cp, dq, cq in rows:
        totals = Totals(dp, cp, dq, cq)
        locked[code] = _Locked(
            id=account_id,
            code=code,
            currency=currency,
            status=AccountStatus(status),
            normal_side=NormalSide(normal_side),
            constraint=BalanceConstraint(constraint),
            totals=totals,
            original=totals,
        )
    return locked


def _lock_accounts(conn: Connection, codes: Iterable[str]) -> dict[str, _Locked]:
    """Lock the balance rows of `codes` in ascending id order; unknown codes raise."""
    wanted = sorted(set(codes))
    results = run_together(conn, _lock_statement(conn, wanted))
    locked = _to_locked(row for rows in results for row in rows)
    _require_known(wanted, locked)
    return locked


def _require_known(wanted: Sequence[str], found: Mapping[str, Any]) -> None:
    missing = [code for code in wanted if code not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise AccountNotFound(f"no account with code {shown}", accounts=missing[:20])


_TOTALS_SQL_PG = (
    "UPDATE account_balances AS b SET debits_posted = v.dp, credits_posted = v.cp, "
    "debits_pending = v.dq, credits_pending = v.cq "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
    "AS v(id, dp, cp, dq, cq) WHERE b.account_id = v.id"
)
_TOTALS_SQL_SQLITE = (
    "UPDATE account_balances SET debits_posted = ?, credits_posted = ?, "
    "debits_pending = ?, credits_pending = ? WHERE account_id = ?"
)
_DAILY_UPSERT = (
    "ON CONFLICT (account_id, business_date) DO UPDATE "
    "SET debits_posted = excluded.debits_posted, credits_posted = excluded.credits_posted"
)
_DAILY_SQL_PG = (
    "INSERT INTO account_daily_balances (account_id, business_date, debits_posted, "
    "credits_posted) SELECT v.id, %s, v.dp, v.cp "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, dp, cp) " + _DAILY_UPSERT
)
_DAILY_SQL_SQLITE = (
    "INSERT INTO account_daily_balances (account_id, business_date, debits_posted, "
    "credits_posted) VALUES (?, ?, ?, ?) " + _DAILY_UPSERT
)


def _write_totals(conn: Connection, locked: Iterable[_Locked], business_date: date) -> None:
    """Write the changed totals and each changed account's end-of-day row (one
    set-based statement each on PostgreSQL, sent with the commit)."""
    changed = [a for a in locked if a.totals != a.original]
    if not changed:
        return
    posted_changed = [
        a
        for a in changed
        if (a.totals.debits_posted, a.totals.credits_posted)
        != (a.original.debits_posted, a.original.credits_posted)
    ]
    if conn.dialect.name == "postgresql":
        send_later(
            conn,
            _TOTALS_SQL_PG,
            (
                [a.id for a in changed],
                [a.totals.debits_posted for a in changed],
                [a.totals.credits_posted for a in changed],
                [a.totals.debits_pending for a in changed],
                [a.totals.credits_pending for a in changed],
            ),
        )
        if posted_changed:
            send_later(
                conn,
                _DAILY_SQL_PG,
                (
                    business_date,
                    [a.id for a in posted_changed],
                    [a.totals.debits_posted for a in posted_changed],
                    [a.totals.credits_posted for a in posted_changed],
                ),
            )
        return
    execute_many(
        conn,
        _TOTALS_SQL_SQLITE,
        [
            (
                a.totals.debits_posted,
                a.totals.credits_posted,
                a.totals.debits_pending,
                a.totals.credits_pending,
                a.id,
            )
            for a in changed
        ],
    )
    day = business_date.isoformat()
    execute_many(
        conn,
        _DAILY_SQL_SQLITE,
        [(a.id, day, a.totals.debits_posted, a.totals.credits_posted) for a in posted_changed],
    )


# --- booking -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    spec: EntrySpec
    fingerprint: str
    metadata_json: str
    reverses_entry_id: int | None = None
    hold_id: int | None = None


def _request(spec: EntrySpec, *, reverses: int | None = None, hold: int | None = None) -> _Request:
    """A validated entry with its fingerprint; the metadata is encoded once, for both."""
    metadata_json = metadata_text(spec.metadata)
    fingerprint = request_fingerprint(
        spec, reverses=reverses, hold=hold, metadata_json=metadata_json
    )
    return _Request(spec, fingerprint, metadata_json, reverses, hold)


def _with_retries(operation: Any) -> Any:
    """Run a booking transaction again when it lost a race it could not see coming."""
    for attempt in range(RETRIES_MAX + 1):
        try:
            return operation()
        except IntegrityError as exc:
            # Two callers raced on one idempotency key, or on reversing one entry:
            # the retry finds the winner (and replays it or refuses with a typed error).
            if attempt == RETRIES_MAX or not any(
                name in str(exc.orig) for name in ("idempotency_key", "reverses_entry_id")
            ):
                raise
        except DBAPIError as exc:
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if attempt == RETRIES_MAX or sqlstate not in ("40P01", "40001"):
                raise
    raise RuntimeError("unreachable")


def book_entry(db: Database, spec: EntrySpec) -> BookedEntry:
    """Book one journal entry. The same idempotency key with the same content
    returns the original entry; with other content it is refused."""
    validate_entry(spec)
    request = _request(spec)

    def run() -> BookedEntry:
        with db.transaction() as conn:
            return _book_one(conn, request)

    if db.is_postgres:

        def run_guarded() -> BookedEntry:
            with db.transaction() as conn:
                return _book_one_guarded(conn, request)

        try:
            guarded: BookedEntry = _with_retries(run_guarded)
            return guarded
        except DBAPIError as exc:
            if _GUARD_MARK not in str(exc.orig):
                raise
            # The guard refused (a constraint, or an account closed meanwhile):
            # book the usual way, which locks first and names what was refused.
    result: BookedEntry = _with_retries(run)
    return result


def book_entry_on(conn: Connection, spec: EntrySpec) -> BookedEntry:
    """Book one entry inside the caller's transaction (an approved command runs this)."""
    validate_entry(spec)
    return _book_one(conn, _request(spec))


def check_entry_accounts(conn: Connection, spec: EntrySpec) -> None:
    """Check, without locking, that every posting names an open account in its
    currency: a maker hears of a typo when submitting, not at approval."""
    codes = sorted({p.account for p in spec.postings})
    found = {
        r.code: r
        for r in conn.execute(
            select(accounts.c.code, accounts.c.currency, accounts.c.status).where(
                accounts.c.code.in_(codes)
            )
        )
    }
    _require_known(codes, found)
    for p in spec.postings:
        account = found[p.account]
        if account.status == AccountStatus.CLOSED.value:
            raise AccountClosed(f"account {p.account} is closed", account=p.account)
        if account.currency != p.currency.upper():
            raise CurrencyMismatch(
                f"account {p.account} is in {account.currency}, the posting is in "
                f"{p.currency.upper()}",
                account=p.account,
            )


def _book_one(conn: Connection, request: _Request) -> BookedEntry:
    ids, flags = _book_many(conn, [request])
    if flags[0]:
        return _load_entries(conn, ids, replayed=True)[0]
    return _booked(request, ids[0], current_business_date(conn), conn.info[_RECORDED_AT])


def _booked(request: _Request, entry_id: int, business_date: date, recorded_at: str) -> BookedEntry:
    """The entry just booked, as the caller asked for it (nothing to read back)."""
    spec = request.spec
    return BookedEntry(
        id=entry_id,
        idempotency_key=spec.idempotency_key,
        business_date=business_date,
        value_date=spec.value_date or business_date,
        recorded_at=recorded_at,
        description=spec.description,
        metadata=dict(spec.metadata),
        reverses_entry_id=request.reverses_entry_id,
        hold_id=request.hold_id,
        postings=tuple(
            PostedLine(p.account, p.side, p.amount_minor, p.currency.upper()) for p in spec.postings
        ),
    )


# --- one entry on PostgreSQL: locks taken last -------------------------------------
#
# A booking of one entry reads what it needs without locks (business date, a new
# id, the idempotency key, the accounts), computes its rows and digest, and then
# sends one guarded statement with the seal, the outbox events and the COMMIT.
# The statement locks the balance rows (ascending id), recomputes the totals
# from the locked values, and checks every account is still open and within its
# constraint; if one is not, it fails (a cast error carrying _GUARD_MARK) and
# nothing is written. book_entry then books the usual way (lock, check in
# Python), which refuses with the precise error. So the hot rows are held only
# while the server runs that statement, the seal and the commit, never while the
# client computes or a packet travels.

_GUARD_MARK = "lendcore_guard_refused"


@lru_cache(maxsize=SHORT_LIST_MAX)
def _read_unlocked_sql_pg(accounts_count: int) -> str:
    marks = ", ".join(["%s"] * accounts_count)
    return (
        "WITH d AS (SELECT business_date, "
        "nextval(pg_get_serial_sequence('journal_entries', 'id')) AS next_id "
        "FROM institution WHERE id = 1), "
        "k AS (SELECT id, request_hash FROM journal_entries WHERE idempotency_key = %s) "
        "SELECT d.business_date, d.next_id, k.id, k.request_hash, "
        "a.id, a.code, a.currency, a.status "
        f"FROM d LEFT JOIN k ON true LEFT JOIN accounts a ON a.code IN ({marks})"
    )


@lru_cache(maxsize=64)
def _guarded_booking_sql_pg(accounts_count: int, postings_count: int) -> str:
    """The guarded statement for one entry (see above). Its last conditions are
    constraint_breach in SQL: they may refuse more than Python would (Python has
    the last word), never less."""
    ids = ", ".join(["%s"] * accounts_count)
    moves = ", ".join(
        ["(%s::bigint, %s::bigint, %s::bigint)"] + ["(%s, %s, %s)"] * (accounts_count - 1)
    )
    # Typed, so a column of NULLs (no reversal, no hold) is not read as text.
    entry = (
        "(%s::bigint, %s::text, %s::text, %s::date, %s::date, %s::text, %s::text, %s::text, "
        "%s::bigint, %s::bigint, %s::text)"
    )
    typed_line = "(%s::bigint, %s::smallint, %s::bigint, %s::text, %s::bigint, %s::text)"
    plain_line = "(" + ", ".join(["%s"] * len(_POSTING_COLUMNS)) + ")"
    lines = ", ".join([typed_line] + [plain_line] * (postings_count - 1))
    return (
        "WITH l AS (SELECT a.id, a.status, a.normal_side, a.balance_constraint, "
        "b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending "
        "FROM accounts a JOIN account_balances b ON b.account_id = a.id "
        f"WHERE a.id IN ({ids}) ORDER BY a.id FOR NO KEY UPDATE OF b, a), "
        "n AS (SELECT l.id, l.status, l.normal_side, l.balance_constraint, "
        "l.debits_posted + v.dp AS dp, l.credits_posted + v.cp AS cp, "
        "l.debits_pending AS dq, l.credits_pending AS cq "
        f"FROM l JOIN (VALUES {moves}) AS v(id, dp, cp) ON v.id = l.id), "
        "bad AS (SELECT %s - count(*) + count(*) FILTER (WHERE n.status <> 'open' "
        "OR (n.balance_constraint = 'non_negative' AND CASE WHEN n.normal_side = 'debit' "
        "THEN n.dp - n.cp - n.cq ELSE n.cp - n.dp - n.dq END < 0) "
        "OR (n.balance_constraint = 'non_positive' AND CASE WHEN n.normal_side = 'debit' "
        "THEN n.dp - n.cp + n.dq ELSE n.cp - n.dp + n.cq END > 0)) AS refused FROM n), "
        "guard AS (SELECT CASE WHEN refused <> 0 "
        f"THEN ('{_GUARD_MARK} ' || refused::text)::int END AS stop FROM bad), "
        "t AS (UPDATE account_balances b SET debits_posted = n.dp, credits_posted = n.cp "
        "FROM n, guard WHERE b.account_id = n.id), "
        "dd AS (INSERT INTO account_daily_balances (account_id, business_date, "
        "debits_posted, credits_posted) SELECT n.id, %s::date, n.dp, n.cp FROM n, guard "
        + _DAILY_UPSERT
        + "), "
        f"e AS (INSERT INTO journal_entries ({', '.join(_ENTRY_COLUMNS)}) "
        f"SELECT v.* FROM (VALUES {entry}) AS v, guard) "
        f"INSERT INTO postings ({', '.join(_POSTING_COLUMNS)}) "
        f"SELECT v.* FROM (VALUES {lines}) AS v, guard"
    )


def _book_one_guarded(conn: Connection, request: _Request) -> BookedEntry:
    spec = request.spec
    key = spec.idempotency_key
    codes = sorted({p.account for p in spec.postings})
    if len(codes) > SHORT_LIST_MAX:
        return _book_one(conn, request)
    rows = run_now(conn, _read_unlocked_sql_pg(len(codes)), (key, *codes))
    if not rows:
        raise RuntimeError("the institution row is missing")
    first = rows[0]
    business_date = remember_business_date(conn, first[0])
    entry_id = int(first[1])
    if first[2] is not None:
        if first[3] != request.fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was used for entry {first[2]} with other content",
                idempotency_key=key,
                entry_id=first[2],
            )
        return _load_entries(conn, [int(first[2])], replayed=True)[0]
    # The same checks, in the same order, as _book_many.
    if spec.value_date is not None and spec.value_date > business_date:
        raise ValueDateInFuture(
            f"value date {spec.value_date.isoformat()} is after the business date "
            f"{business_date.isoformat()}"
        )
    found = {row[5]: row for row in rows if row[4] is not None}
    _require_known(codes, found)
    moves: dict[int, list[int]] = {}
    for p in spec.postings:
        account_id, _code, currency, status = found[p.account][4:8]
        if status == AccountStatus.CLOSED.value:
            raise AccountClosed(f"account {p.account} is closed", account=p.account)
        if currency != p.currency and currency != p.currency.upper():
            raise CurrencyMismatch(
                f"account {p.account} is in {currency}, the posting is in {p.currency.upper()}",
                account=p.account,
            )
        sums = moves.setdefault(account_id, [0, 0])
        sums[0 if p.side is Side.DEBIT else 1] += p.amount_minor
    recorded_at = utc_timestamp()
    conn.info[_RECORDED_AT] = recorded_at
    posting_rows: list[tuple[Any, ...]] = []
    id_of_account = {code: row[4] for code, row in found.items()}
    row = _entry_row(
        entry_id, request, id_of_account, business_date, recorded_at, True, posting_rows
    )
    account_ids = sorted(moves)
    params: list[Any] = [*account_ids]
    for account_id in account_ids:
        params += (account_id, *moves[account_id])
    params += (len(account_ids), business_date, *row)
    params += [value for line in posting_rows for value in line]
    send_later(conn, _guarded_booking_sql_pg(len(account_ids), len(posting_rows)), params)
    _add_to_seal(conn, [entry_id], [row[-1]])
    _announce(conn, [entry_id], [request])
    return _booked(request, entry_id, business_date, recorded_at)


def book_entries(db: Database, specs: Sequence[EntrySpec]) -> BulkResult:
    """Book many entries in one transaction, all or nothing (end of day uses this).

    Entries whose idempotency key booked the same content before are skipped
    and reported as replayed, so a whole batch can be retried safely. The batch
    is sealed as one link of the chain.
    """
    if not specs:
        raise InvalidEntry("a batch needs at least one entry")
    if len(specs) > ENTRIES_PER_BATCH_MAX:
        raise InvalidEntry(f"a batch may hold at most {ENTRIES_PER_BATCH_MAX} entries")
    with _gc_paused(len(specs) >= GC_PAUSE_ENTRIES_MIN):
        return _book_entries(db, specs)


# A batch of at least this many entries books with the cyclic garbage collector
# paused: it makes hundreds of thousands of tuples and lists, none in a cycle,
# and collections triggered by their count would walk them again and again.
GC_PAUSE_ENTRIES_MIN = 1_000


@contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    was_enabled = gc.isenabled()
    if pause and was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if pause and was_enabled:
            gc.enable()


def _book_entries(db: Database, specs: Sequence[EntrySpec]) -> BulkResult:
    keys_seen: set[str] = set()
    requests: list[_Request] = []
    for spec in specs:
        validate_entry(spec)
        if spec.idempotency_key in keys_seen:
            raise InvalidEntry(
                f"idempotency key {spec.idempotency_key!r} appears twice in one batch",
                idempotency_key=spec.idempotency_key,
            )
        keys_seen.add(spec.idempotency_key)
        requests.append(_request(spec))

    def run() -> BulkResult:
        with db.transaction() as conn:
            ids, replayed_flags = _book_many(conn, requests, seal_now=True)
            replayed = sum(replayed_flags)
            seal_seq = conn.info.get(_LAST_SEAL) if replayed < len(ids) else None
            return BulkResult(ids, len(ids) - replayed, replayed, seal_seq)

    result: BulkResult = _with_retries(run)
    return result


_KEYS_SQL_PG = (
    # One statement with an array: a long IN list of parameters, once psycopg
    # prepares it, can get a cached generic plan that scans the whole journal.
    "SELECT idempotency_key, id, request_hash FROM journal_entries WHERE idempotency_key = ANY(%s)"
)
_IDS_SQL_PG = (
    "SELECT nextval(pg_get_serial_sequence('journal_entries', 'id')) FROM generate_series(1, %s)"
)
_BUSINESS_DATE_SQL = "SELECT business_date FROM institution WHERE id = 1"
_DATE_AND_ID_SQL_PG = (
    "SELECT business_date, nextval(pg_get_serial_sequence('journal_entries', 'id')) "
    "FROM institution WHERE id = 1"
)


def _key_statements(conn: Connection, keys: Sequence[str]) -> list[tuple[str, Sequence[Any]]]:
    if conn.dialect.name == "postgresql" and len(keys) > SHORT_LIST_MAX:
        return [(_KEYS_SQL_PG, (list(keys),))]
    mark = _mark(conn)
    return [
        (
            "SELECT idempotency_key, id, request_hash FROM journal_entries "
            f"WHERE idempotency_key IN ({', '.join([mark] * len(chunk))})",
            tuple(chunk),
        )
        for chunk in _chunks(keys)
    ]


@dataclass(slots=True)
class _Reads:
    """What a booking reads before it writes (one round trip on PostgreSQL)."""

    business_date: date
    existing: dict[str, tuple[int, str]]
    locked: dict[str, _Locked]
    # PostgreSQL, a single request: its entry id, drawn from the sequence.
    ids: list[int]


def _read_for_booking(conn: Connection, requests: Sequence[_Request]) -> _Reads:
    """Business date, entries booked already under the keys, the locked accounts
    and (PostgreSQL, one request) its entry id: in one pipeline on PostgreSQL.
    Unknown accounts are simply missing from `locked` (a replay needs none)."""
    keys = [r.spec.idempotency_key for r in requests]
    codes = sorted({p.account for r in requests for p in r.spec.postings})
    if conn.dialect.name == "postgresql" and len(keys) == 1 and len(codes) <= SHORT_LIST_MAX:
        return _read_one_pg(conn, keys[0], codes)
    cached = cached_business_date(conn)
    # One entry: its id comes in the same round trip (a replay wastes one number
    # of the sequence, as a rolled-back booking does). A batch draws its ids once
    # it knows how many are new, so a retried batch wastes none.
    draw_id = conn.dialect.name == "postgresql" and len(requests) == 1
    statements: list[tuple[str, Sequence[Any] | None]] = []
    if draw_id:
        statements.append((_DATE_AND_ID_SQL_PG, None))
    elif cached is None:
        statements.append((_BUSINESS_DATE_SQL, None))
    first = len(statements)
    key_statements = _key_statements(conn, keys)
    lock_statements = _lock_statement(conn, codes)
    statements += key_statements
    statements += lock_statements
    results = run_together(conn, statements)
    ids: list[int] = []
    if first:
        head = results[0][0]
        if cached is None:
            cached = remember_business_date(conn, head[0])
        if draw_id:
            ids = [int(head[1])]
    if cached is None:
        raise RuntimeError("no business date")
    existing: dict[str, tuple[int, str]] = {}
    for rows in results[first : first + len(key_statements)]:
        existing.update((key, (entry_id, fingerprint)) for key, entry_id, fingerprint in rows)
    at = first + len(key_statements)
    locked = _to_locked(row for rows in results[at:] for row in rows)
    return _Reads(cached, existing, locked, ids)


@lru_cache(maxsize=SHORT_LIST_MAX)
def _read_one_sql_pg(accounts_count: int) -> str:
    """PostgreSQL, one entry: business date, a new entry id, the entry booked
    already under the key (if any) and the locked accounts, in one statement
    (one row per account; the first columns repeat)."""
    marks = ", ".join(["%s"] * accounts_count)
    return (
        "WITH d AS (SELECT business_date, "
        "nextval(pg_get_serial_sequence('journal_entries', 'id')) AS next_id "
        "FROM institution WHERE id = 1), "
        "k AS (SELECT id, request_hash FROM journal_entries WHERE idempotency_key = %s), "
        "l AS (" + _LOCK_SQL_PG.format(codes=f"IN ({marks})") + ") "
        "SELECT d.business_date, d.next_id, k.id, k.request_hash, l.* "
        "FROM d LEFT JOIN k ON true LEFT JOIN l ON true"
    )


def _read_one_pg(conn: Connection, key: str, codes: Sequence[str]) -> _Reads:
    rows = run_now(conn, _read_one_sql_pg(len(codes)), (key, *codes))
    if not rows:
        raise RuntimeError("the institution row is missing")
    first = rows[0]
    business_date = remember_business_date(conn, first[0])
    existing = {} if first[2] is None else {key: (int(first[2]), str(first[3]))}
    locked = _to_locked(row[4:] for row in rows if row[4] is not None)
    return _Reads(business_date, existing, locked, [int(first[1])])


_ENTRY_COLUMNS = (
    "id",
    "idempotency_key",
    "request_hash",
    "business_date",
    "value_date",
    "recorded_at",
    "description",
    "metadata_json",
    "reverses_entry_id",
    "hold_id",
    "entry_digest",
)
_POSTING_COLUMNS = ("entry_id", "line_no", "account_id", "side", "amount_minor", "currency")


def _book_many(
    conn: Connection,
    requests: Sequence[_Request],
    *,
    before_apply: Any = None,
    seal_now: bool = False,
) -> tuple[list[int], list[bool]]:
    """The one booking path: idempotency, locks, checks, rows, balances, seal.

    The seal is written at the end of the transaction (every booking of the
    transaction in one link), unless `seal_now` asks for it at once (a bulk
    booking reports its seal number)."""
    reads = _read_for_booking(conn, requests)
    business_date = reads.business_date
    existing = reads.existing
    new_requests: list[_Request] = []
    for request in requests:
        found = existing.get(request.spec.idempotency_key)
        if found is None:
            new_requests.append(request)
        elif found[1] != request.fingerprint:
            raise IdempotencyConflict(
                f"idempotency key {request.spec.idempotency_key!r} was used for entry "
                f"{found[0]} with other content",
                idempotency_key=request.spec.idempotency_key,
                entry_id=found[0],
            )
    if not new_requests:
        return [existing[r.spec.idempotency_key][0] for r in requests], [True] * len(requests)

    for request in new_requests:
        value_date = request.spec.value_date
        if value_date is not None and value_date > business_date:
            raise ValueDateInFuture(
                f"value date {value_date.isoformat()} is after the business date "
                f"{business_date.isoformat()}"
            )

    locked = reads.locked
    _require_known(sorted({p.account for r in new_requests for p in r.spec.postings}), locked)
    if before_apply is not None:
        before_apply(locked)
    _apply_postings(new_requests, locked)

    is_pg = conn.dialect.name == "postgresql"
    new_ids = reads.ids or _next_ids(conn, len(new_requests))
    recorded_at = utc_timestamp()
    conn.info[_RECORDED_AT] = recorded_at
    posting_rows: list[tuple[Any, ...]] = []
    digests: list[str] = []
    id_of_account = {code: account.id for code, account in locked.items()}

    def entry_rows() -> Iterator[tuple[Any, ...]]:
        """Each new entry's row; its postings and digest are collected on the way."""
        for entry_id, request in zip(new_ids, new_requests, strict=True):
            row = _entry_row(
                entry_id, request, id_of_account, business_date, recorded_at, is_pg, posting_rows
            )
            digests.append(row[-1])
            yield row

    if is_pg and len(new_requests) >= COPY_ROWS_MIN:
        # Streamed: the server stores entries while the next digests are computed.
        copy_rows(conn, "journal_entries", _ENTRY_COLUMNS, entry_rows())
        copy_rows(conn, "postings", _POSTING_COLUMNS, posting_rows)
        _write_totals(conn, locked.values(), business_date)
    else:
        rows = list(entry_rows())
        if is_pg and len(posting_rows) < COPY_ROWS_MIN:
            _send_booking_pg(conn, rows, posting_rows, locked.values(), business_date)
        else:
            insert_rows(conn, "journal_entries", _ENTRY_COLUMNS, rows)
            insert_rows(conn, "postings", _POSTING_COLUMNS, posting_rows)
            _write_totals(conn, locked.values(), business_date)
    _add_to_seal(conn, new_ids, digests)
    if seal_now:
        _seal_pending(conn)
    _announce(conn, new_ids, new_requests)

    new_id_of = {r.spec.idempotency_key: i for r, i in zip(new_requests, new_ids, strict=True)}
    ids: list[int] = []
    flags: list[bool] = []
    for request in requests:
        key = request.spec.idempotency_key
        if key in new_id_of:
            ids.append(new_id_of[key])
            flags.append(False)
        else:
            ids.append(existing[key][0])
            flags.append(True)
    return ids, flags


@lru_cache(maxsize=128)
def _booking_sql_pg(entries: int, postings: int, changed: int, posted: int) -> str:
    """PostgreSQL: a booking's rows, its accounts' totals and end-of-day rows in one
    statement, sent with the COMMIT. Scalar parameters (psycopg adapts a list in
    Python, a scalar in C); the text depends only on the counts, so the server
    keeps each shape prepared."""

    def rows(count: int, width: int, first: str | None = None) -> str:
        plain = "(" + ", ".join(["%s"] * width) + ")"
        head = first or plain
        return ", ".join([head] + [plain] * (count - 1))

    parts = [
        f"e AS (INSERT INTO journal_entries ({', '.join(_ENTRY_COLUMNS)}) "
        f"VALUES {rows(entries, len(_ENTRY_COLUMNS))})",
        f"p AS (INSERT INTO postings ({', '.join(_POSTING_COLUMNS)}) "
        f"VALUES {rows(postings, len(_POSTING_COLUMNS))})",
    ]
    if changed:
        typed = "(" + ", ".join(["%s::bigint"] * 5) + ")"
        parts.append(
            "t AS (UPDATE account_balances AS b SET debits_posted = v.dp, "
            "credits_posted = v.cp, debits_pending = v.dq, credits_pending = v.cq "
            f"FROM (VALUES {rows(changed, 5, typed)}) AS v(id, dp, cp, dq, cq) "
            "WHERE b.account_id = v.id)"
        )
    main = "SELECT 1"
    if posted:
        main = (
            "INSERT INTO account_daily_balances (account_id, business_date, debits_posted, "
            f"credits_posted) VALUES {rows(posted, 4)} " + _DAILY_UPSERT
        )
    return "WITH " + ", ".join(parts) + " " + main


def _entry_row(
    entry_id: int,
    request: _Request,
    id_of_account: Mapping[str, int],
    business_date: date,
    recorded_at: str,
    is_pg: bool,
    posting_rows: list[tuple[Any, ...]],
) -> tuple[Any, ...]:
    """The journal row of a new entry, its digest last; its posting rows are
    appended to `posting_rows`. SQLite stores dates as ISO text, psycopg sends
    date objects."""
    spec = request.spec
    lines: list[PostingRow] = []
    line_no = 0
    for p in spec.postings:
        line_no += 1  # noqa: SIM113 (a bare counter is cheaper than enumerate here)
        currency = p.currency if p.currency.isupper() else p.currency.upper()
        line = (line_no, id_of_account[p.account], _SIDE_CODE[p.side], p.amount_minor, currency)
        lines.append(line)
        posting_rows.append((entry_id, *line))
    business_iso = business_date.isoformat()
    value_date = spec.value_date or business_date
    value_iso = business_iso if spec.value_date is None else value_date.isoformat()
    digest = sha256(
        entry_content_of(
            entry_id,
            spec.idempotency_key,
            request.fingerprint,
            business_iso,
            value_iso,
            recorded_at,
            spec.description,
            request.metadata_json,
            request.reverses_entry_id,
            request.hold_id,
            lines,
        ).encode()
    ).hexdigest()
    return (
        entry_id,
        spec.idempotency_key,
        request.fingerprint,
        business_date if is_pg else business_iso,
        value_date if is_pg else value_iso,
        recorded_at,
        spec.description,
        request.metadata_json,
        request.reverses_entry_id,
        request.hold_id,
        digest,
    )


def _send_booking_pg(
    conn: Connection,
    entry_rows: Sequence[tuple[Any, ...]],
    posting_rows: Sequence[tuple[Any, ...]],
    locked: Iterable[_Locked],
    business_date: date,
) -> None:
    changed = [a for a in locked if a.totals != a.original]
    posted = [
        a
        for a in changed
        if (a.totals.debits_posted, a.totals.credits_posted)
        != (a.original.debits_posted, a.original.credits_posted)
    ]
    params: list[Any] = [value for row in entry_rows for value in row]
    params += [value for row in posting_rows for value in row]
    for a in changed:
        t = a.totals
        params += (a.id, t.debits_posted, t.credits_posted, t.debits_pending, t.credits_pending)
    for a in posted:
        params += (a.id, business_date, a.totals.debits_posted, a.totals.credits_posted)
    sql = _booking_sql_pg(len(entry_rows), len(posting_rows), len(changed), len(posted))
    send_later(conn, sql, params)


def _announce(conn: Connection, new_ids: Sequence[int], new_requests: Sequence[_Request]) -> None:
    """Domain events for what was booked: one per entry, or one per large batch
    (sealed already: the event names its seal)."""
    if len(new_ids) > EVENTS_PER_ENTRY_MAX:
        seal_seq = conn.info.get(_LAST_SEAL)
        if seal_seq is None:
            seal_seq = _seal_pending(conn)
        if not isinstance(seal_seq, int):
            raise RuntimeError("a booked batch has no seal")
        emit(
            conn,
            "journal_batch.booked",
            "journal_seal",
            seal_seq,
            {
                "entries": len(new_ids),
                "first_entry_id": min(new_ids),
                "last_entry_id": max(new_ids),
            },
        )
        note_result(entries=len(new_ids), seal_seq=seal_seq)
        return
    for entry_id, request in zip(new_ids, new_requests, strict=True):
        emit(
            conn,
            "journal_entry.booked",
            "journal_entry",
            entry_id,
            {
                "entry_id": entry_id,
                "idempotency_key": request.spec.idempotency_key,
                "description": request.spec.description,
                "reverses_entry_id": request.reverses_entry_id,
                "hold_id": request.hold_id,
                "postings": [
                    {
                        "account": p.account,
                        "side": p.side.value,
                        "amount_minor": p.amount_minor,
                        "currency": p.currency.upper(),
                    }
                    for p in request.spec.postings
                ],
            },
            plain=True,
        )
    note_result(entry_ids=list(new_ids))


def _apply_postings(requests: Sequence[_Request], locked: dict[str, _Locked]) -> None:
    """Apply each entry in order to the locked totals, checking every constraint
    after each entry (an entry is atomic; its lines are not checked one by one).

    Unconstrained accounts only need their final totals: their moves are summed
    and applied once at the end."""
    moved: dict[str, list[int]] = {}
    for request in requests:
        touched: list[_Locked] = []
        for p in request.spec.postings:
            account = locked[p.account]
            if account.status is AccountStatus.CLOSED:
                raise AccountClosed(f"account {p.account} is closed", account=p.account)
            if account.currency != p.currency and account.currency != p.currency.upper():
                raise CurrencyMismatch(
                    f"account {p.account} is in {account.currency}, the posting is in "
                    f"{p.currency.upper()}",
                    account=p.account,
                )
            if account.constraint is BalanceConstraint.NONE:
                sums = moved.get(p.account)
                if sums is None:
                    sums = moved[p.account] = [0, 0]
                sums[0 if p.side is Side.DEBIT else 1] += p.amount_minor
                continue
            account.totals = account.totals.posted(p.side, p.amount_minor)
            touched.append(account)
        for account in touched:
            check_constraint(account.code, account.totals, account.normal_side, account.constraint)
    for code, (debits, credits) in moved.items():
        account = locked[code]
        t = account.totals
        account.totals = Totals(
            t.debits_posted + debits,
            t.credits_posted + credits,
            t.debits_pending,
            t.credits_pending,
        )


# The one-letter code of each side, as stored (faster than the enum's .value).
_SIDE_CODE: Mapping[Side, str] = {side: side.value for side in Side}


def _next_ids(conn: Connection, count: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        return sorted(int(r[0]) for r in run_now(conn, _IDS_SQL_PG, (count,)))
    # SQLite: the write lock is held since BEGIN IMMEDIATE, so max(id) is ours.
    top = run_now(conn, "SELECT coalesce(max(id), 0) FROM journal_entries")[0][0]
    return list(range(int(top) + 1, int(top) + 1 + count))


# --- the seal --------------------------------------------------------------------
#
# Every transaction that books appends one link to the chain, covering all its
# entries, at its very end: the head row is the one lock every booking shares,
# and it is held only for the seal, the outbox write and the commit (on
# PostgreSQL those go to the server in one round trip with the COMMIT).

# Entries booked in this transaction and not sealed yet: (ids, digests).
_UNSEALED = TX_INFO_PREFIX + "unsealed"
# The seal this transaction wrote last.
_LAST_SEAL = TX_INFO_PREFIX + "last_seal"

# PostgreSQL computes the link itself (sha256()), from the head row it locks, so
# the head is read, locked and moved on without a round trip in between. The
# hashed text is the one seal_hash() hashes: "{seq}:{prev_hash}" + seal_suffix.
_SEAL_SQL_PG = (
    "WITH s AS (INSERT INTO ledger_seals (seq, prev_hash, seal_hash, entry_ids, entry_count, "
    "sealed_at) SELECT h.seq + 1, h.seal_hash, "
    "encode(sha256(convert_to((h.seq + 1)::text || ':' || h.seal_hash || %s::text, 'UTF8')), "
    "'hex'), %s, %s, %s FROM ledger_chain_head h WHERE h.id = 1 FOR UPDATE "
    "RETURNING seq, seal_hash) "
    "UPDATE ledger_chain_head h SET seq = s.seq, seal_hash = s.seal_hash FROM s "
    "WHERE h.id = 1 RETURNING s.seq"
)


def _add_to_seal(conn: Connection, entry_ids: Sequence[int], digests: Sequence[str]) -> None:
    unsealed: list[tuple[int, str]] = conn.info.setdefault(_UNSEALED, [])
    unsealed.extend(zip(entry_ids, digests, strict=True))
    before_this_commit(conn, "ledger_seal", _seal_at_commit)


def _seal_at_commit(conn: Connection) -> None:
    _seal_pending(conn, wait_for_seq=False)


def _seal_pending(conn: Connection, *, wait_for_seq: bool = True) -> int | None:
    """Append one link covering the entries booked and not sealed yet in this
    transaction; returns its number (None when it was left to run with the
    commit, or when there was nothing to seal)."""
    unsealed: list[tuple[int, str]] = conn.info.pop(_UNSEALED, [])
    if not unsealed:
        return None
    unsealed.sort()
    ids = [entry_id for entry_id, _ in unsealed]
    digests = [digest for _, digest in unsealed]
    sealed_at = conn.info.get(_RECORDED_AT) or utc_timestamp()
    id_ranges = encode_id_ranges(ids)
    if conn.dialect.name == "postgresql":
        params = (seal_suffix(ids, digests), id_ranges, len(ids), sealed_at)
        if not wait_for_seq:
            send_later(conn, _SEAL_SQL_PG, params)
            return None
        rows = run_now(conn, _SEAL_SQL_PG, params)
        if len(rows) != 1:
            raise RuntimeError("the chain head is missing")
        seq = int(rows[0][0])
        conn.info[_LAST_SEAL] = seq
        return seq
    head_seq, head_hash = run_now(
        conn, "SELECT seq, seal_hash FROM ledger_chain_head WHERE id = 1"
    )[0]
    seq = int(head_seq) + 1
    link = seal_hash(seq, head_hash, ids, digests)
    execute_many(
        conn,
        "INSERT INTO ledger_seals (seq, prev_hash, seal_hash, entry_ids, entry_count, "
        "sealed_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(seq, head_hash, link, id_ranges, len(ids), sealed_at)],
    )
    execute_many(
        conn, "UPDATE ledger_chain_head SET seq = ?, seal_hash = ? WHERE id = 1", [(seq, link)]
    )
    conn.info[_LAST_SEAL] = seq
    return seq


# --- reading entries -------------------------------------------------------------


def _load_entries(
    conn: Connection, ids: Sequence[int], *, replayed: bool = False
) -> list[BookedEntry]:
    headers: dict[int, Any] = {}
    lines: dict[int, list[PostedLine]] = {}
    for chunk in _chunks(list(ids)):
        for row in conn.execute(select(journal_entries).where(journal_entries.c.id.in_(chunk))):
            headers[row.id] = row
        for row in conn.execute(
            select(postings, accounts.c.code)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.entry_id.in_(chunk))
            .order_by(postings.c.entry_id, postings.c.line_no)
        ):
            lines.setdefault(row.entry_id, []).append(
                PostedLine(row.code, Side(row.side), row.amount_minor, row.currency)
            )
    result = []
    for entry_id in ids:
        h = headers.get(entry_id)
        if h is None:
            raise EntryNotFound(f"no journal entry {entry_id}", entry_id=entry_id)
        result.append(
            BookedEntry(
                id=h.id,
                idempotency_key=h.idempotency_key,
                business_date=h.business_date,
                value_date=h.value_date,
                recorded_at=h.recorded_at,
                description=h.description,
                metadata=json.loads(h.metadata_json),
                reverses_entry_id=h.reverses_entry_id,
                hold_id=h.hold_id,
                postings=tuple(lines.get(entry_id, [])),
                replayed=replayed,
            )
        )
    return result


@query("ledger.read")
def get_entry(db: Database, entry_id: int) -> BookedEntry:
    with db.reading() as conn:
        return _load_entries(conn, [entry_id])[0]


@query("ledger.read")
def list_entries(
    db: Database,
    *,
    account: str | None = None,
    business_date: date | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[BookedEntry]:
    """Entries in booking order, after `after_id` (a cursor), optionally filtered."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    with db.reading() as conn:
        query = select(journal_entries.c.id).where(journal_entries.c.id > after_id)
        if business_date is not None:
            query = query.where(journal_entries.c.business_date == business_date)
        if account is not None:
            account_id = _account_row(conn, account).id
            query = query.where(
                journal_entries.c.id.in_(
                    select(postings.c.entry_id).where(postings.c.account_id == account_id)
                )
            )
        ids = list(conn.execute(query.order_by(journal_entries.c.id).limit(limit)).scalars())
        return _load_entries(conn, ids)


# --- reversal ----------------------------------------------------------------------


def reverse_entry(
    db: Database, entry_id: int, idempotency_key: str, description: str | None = None
) -> BookedEntry:
    """Book the entry that undoes `entry_id`: same lines, sides swapped. The
    journal keeps both; an entry can be reversed once, and a reversal is final."""
    validate_idempotency_key(idempotency_key)

    def run() -> BookedEntry:
        with db.transaction() as conn:
            return reverse_entry_on(conn, entry_id, idempotency_key, description)

    result: BookedEntry = _with_retries(run)
    return result


def reverse_entry_on(
    conn: Connection, entry_id: int, idempotency_key: str, description: str | None = None
) -> BookedEntry:
    """Reverse inside the caller's transaction (an approved reversal runs this)."""
    validate_idempotency_key(idempotency_key)
    original = _load_entries(conn, [entry_id])[0]
    if original.reverses_entry_id is not None:
        raise EntryIsReversal(
            f"entry {entry_id} is itself a reversal of entry "
            f"{original.reverses_entry_id}; book a new entry instead",
            entry_id=entry_id,
        )
    spec = EntrySpec(
        idempotency_key=idempotency_key,
        postings=reversal_postings(
            [PostingSpec(p.account, p.side, p.amount_minor, p.currency) for p in original.postings]
        ),
        description=description or f"Reversal of entry {entry_id}",
        metadata={"reverses": entry_id},
    )
    validate_entry(spec)
    request = _request(spec, reverses=entry_id)
    already = conn.execute(
        select(journal_entries.c.id, journal_entries.c.idempotency_key).where(
            journal_entries.c.reverses_entry_id == entry_id
        )
    ).first()
    if already is not None and already.idempotency_key != idempotency_key:
        raise EntryAlreadyReversed(
            f"entry {entry_id} was reversed already by entry {already.id}",
            entry_id=entry_id,
            reversal_id=already.id,
        )
    return _book_one(conn, request)


# --- holds ---------------------------------------------------------------------------


@command("ledger.hold.place")
def place_hold(
    db: Database,
    *,
    idempotency_key: str,
    debit_account: str,
    credit_account: str,
    amount_minor: int,
    currency: str,
    expires_on: date,
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> Hold:
    """Reserve `amount_minor` to move from `credit_account` to `debit_account`
    (the entry a post will book); reserved amounts count against constraints."""
    validate_idempotency_key(idempotency_key)
    validate_amount(amount_minor)
    currency = currency.upper()
    lookup_currency(currency)
    if debit_account == credit_account:
        raise InvalidEntry("a hold moves money between two different accounts")
    validate_description(description)
    metadata_json = canonical_json(dict(metadata or {}))
    # A digest, not the JSON itself: holds.request_hash holds 64 characters and
    # PostgreSQL refuses (SQLite silently keeps) anything longer.
    fingerprint = sha256(
        canonical_json(
            [
                debit_account,
                credit_account,
                amount_minor,
                currency,
                expires_on.isoformat(),
                description,
                metadata_json,
            ]
        ).encode()
    ).hexdigest()

    def run() -> Hold:
        with db.transaction() as conn:
            found = conn.execute(
                select(holds.c.id, holds.c.request_hash).where(
                    holds.c.idempotency_key == idempotency_key
                )
            ).first()
            if found is not None:
                if found.request_hash != fingerprint:
                    raise IdempotencyConflict(
                        f"idempotency key {idempotency_key!r} was used for hold {found.id} with "
                        "other content",
                        idempotency_key=idempotency_key,
                    )
                return _load_hold(conn, found.id)
            today = current_business_date(conn)
            if expires_on < today:
                raise InvalidInput(
                    f"hold expiry {expires_on.isoformat()} is before the business date {today.isoformat()}"
                )
            locked = _lock_accounts(conn, [debit_account, credit_account])
            for code in (debit_account, credit_account):
                account = locked[code]
                if account.status is AccountStatus.CLOSED:
                    raise AccountClosed(f"account {code} is closed", account=code)
                if account.currency != currency:
                    raise CurrencyMismatch(
                        f"account {code} is in {account.currency}, the hold is in {currency}",
                        account=code,
                    )
            _reserve(locked[debit_account], Side.DEBIT, amount_minor)
            _reserve(locked[credit_account], Side.CREDIT, amount_minor)
            hold_id = conn.execute(
                insert(holds)
                .values(
                    idempotency_key=idempotency_key,
                    request_hash=fingerprint,
                    debit_account_id=locked[debit_account].id,
                    credit_account_id=locked[credit_account].id,
                    amount_minor=amount_minor,
                    currency=currency,
                    status="pending",
                    expires_on=expires_on,
                    business_date=today,
                    description=description,
                    metadata_json=metadata_json,
                    recorded_at=utc_timestamp(),
                )
                .returning(holds.c.id)
            ).scalar_one()
            _write_totals(conn, locked.values(), today)
            hold = _load_hold(conn, hold_id)
            emit(conn, "hold.placed", "hold", hold_id, _hold_event(hold))
            return hold

    result: Hold = _with_retries(run)
    return result


def _reserve(account: _Locked, side: Side, amount_minor: int) -> None:
    account.totals = account.totals.reserved(side, amount_minor)
    check_constraint(account.code, account.totals, account.normal_side, account.constraint)


@command("ledger.hold.post")
def post_hold(
    db: Database,
    hold_id: int,
    *,
    idempotency_key: str,
    amount_minor: int | None = None,
    description: str | None = None,
) -> BookedEntry:
    """Book a pending hold in full (no amount) or in part; the rest is released."""
    validate_idempotency_key(idempotency_key)
    if amount_minor is not None:
        validate_amount(amount_minor)

    def run() -> BookedEntry:
        with db.transaction() as conn:
            hold = _load_hold(conn, hold_id, lock=True)
            amount = hold.amount_minor if amount_minor is None else amount_minor
            spec = EntrySpec(
                idempotency_key=idempotency_key,
                postings=(
                    PostingSpec(hold.debit_account, Side.DEBIT, amount, hold.currency),
                    PostingSpec(hold.credit_account, Side.CREDIT, amount, hold.currency),
                ),
                description=description or hold.description or f"Posting of hold {hold_id}",
                metadata={"hold": hold_id},
            )
            validate_entry(spec)
            request = _request(spec, hold=hold_id)
            posted = conn.execute(
                select(
                    journal_entries.c.id,
                    journal_entries.c.idempotency_key,
                    journal_entries.c.request_hash,
                ).where(journal_entries.c.hold_id == hold_id)
            ).first()
            if posted is not None and posted.idempotency_key == idempotency_key:
                # A retry replays the posting only if it asks for the same thing.
                if posted.request_hash != request.fingerprint:
                    raise IdempotencyConflict(
                        f"idempotency key {idempotency_key!r} was used for entry {posted.id} "
                        "with other content",
                        idempotency_key=idempotency_key,
                        entry_id=posted.id,
                    )
                return _load_entries(conn, [posted.id], replayed=True)[0]
            _require_pending(conn, hold)
            if amount > hold.amount_minor:
                raise HoldExceeded(
                    f"hold {hold_id} reserves {hold.amount_minor} minor units; "
                    f"cannot post {amount}",
                    hold_id=hold_id,
                )

            def release(locked: dict[str, _Locked]) -> None:
                locked[hold.debit_account].totals = locked[hold.debit_account].totals.reserved(
                    Side.DEBIT, -hold.amount_minor
                )
                locked[hold.credit_account].totals = locked[hold.credit_account].totals.reserved(
                    Side.CREDIT, -hold.amount_minor
                )

            ids, flags = _book_many(conn, [request], before_apply=release)
            if flags[0]:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} booked another entry already",
                    idempotency_key=idempotency_key,
                )
            _resolve_hold(conn, hold_id, "posted")
            emit(conn, "hold.posted", "hold", hold_id, {**_hold_event(hold), "entry_id": ids[0]})
            return _load_entries(conn, ids)[0]

    result: BookedEntry = _with_retries(run)
    return result


@command("ledger.hold.void")
def void_hold(db: Database, hold_id: int) -> Hold:
    """Release a pending hold without booking anything."""
    with db.transaction() as conn:
        hold = _load_hold(conn, hold_id, lock=True)
        _require_pending(conn, hold)
        _release_holds(conn, [hold], "voided")
        emit(conn, "hold.voided", "hold", hold_id, _hold_event(hold))
        return _load_hold(conn, hold_id)


def expire_holds(conn: Connection, business_date: date) -> int:
    """Void every pending hold whose expiry date is before `business_date`."""
    ids = list(
        conn.execute(
            select(holds.c.id).where(
                holds.c.status == "pending", holds.c.expires_on < business_date
            )
        ).scalars()
    )
    if ids:
        _release_holds(conn, [_load_hold(conn, i, lock=True) for i in ids], "expired")
    return len(ids)


def _require_pending(conn: Connection, hold: Hold) -> None:
    if hold.status == "expired":
        # Expiry is a resolution of its own; say so rather than "resolved already".
        raise HoldExpired(
            f"hold {hold.id} expired on {hold.expires_on.isoformat()}", hold_id=hold.id
        )
    if hold.status != "pending":
        raise HoldResolved(f"hold {hold.id} is {hold.status} already", hold_id=hold.id)
    if hold.expires_on < current_business_date(conn):
        raise HoldExpired(
            f"hold {hold.id} expired on {hold.expires_on.isoformat()}", hold_id=hold.id
        )


def _release_holds(conn: Connection, released: Sequence[Hold], status: str) -> None:
    locked = _lock_accounts(
        conn, [c for h in released for c in (h.debit_account, h.credit_account)]
    )
    for hold in released:
        debit, credit = locked[hold.debit_account], locked[hold.credit_account]
        debit.totals = debit.totals.reserved(Side.DEBIT, -hold.amount_minor)
        credit.totals = credit.totals.reserved(Side.CREDIT, -hold.amount_minor)
        _resolve_hold(conn, hold.id, status)
        if status == "expired":
            emit(conn, "hold.expired", "hold", hold.id, _hold_event(hold))
    _write_totals(conn, locked.values(), current_business_date(conn))


def _resolve_hold(conn: Connection, hold_id: int, status: str) -> None:
    conn.execute(
        update(holds)
        .where(holds.c.id == hold_id)
        .values(status=status, resolved_on=current_business_date(conn))
    )


def _hold_event(hold: Hold) -> dict[str, Any]:
    return {
        "hold_id": hold.id,
        "debit_account": hold.debit_account,
        "credit_account": hold.credit_account,
        "amount_minor": hold.amount_minor,
        "currency": hold.currency,
        "expires_on": hold.expires_on,
    }


def _build_hold_query() -> Any:
    debit = accounts.alias("debit")
    credit = accounts.alias("credit")
    return (
        select(holds, debit.c.code.label("debit_code"), credit.c.code.label("credit_code"))
        .join(debit, debit.c.id == holds.c.debit_account_id)
        .join(credit, credit.c.id == holds.c.credit_account_id)
    )


_HOLD_QUERY = _build_hold_query()


def _hold_query() -> Any:
    return _HOLD_QUERY


def _to_hold(row: Any) -> Hold:
    return Hold(
        id=row.id,
        idempotency_key=row.idempotency_key,
        debit_account=row.debit_code,
        credit_account=row.credit_code,
        amount_minor=row.amount_minor,
        currency=row.currency,
        status=row.status,
        expires_on=row.expires_on,
        business_date=row.business_date,
        resolved_on=row.resolved_on,
        description=row.description,
    )


def _load_hold(conn: Connection, hold_id: int, *, lock: bool = False) -> Hold:
    """Read a hold; with `lock`, hold its row until commit (before any balance lock)."""
    query = _hold_query().where(holds.c.id == hold_id)
    if lock:
        query = query.with_for_update(of=holds)
    row = conn.execute(query).first()
    if row is None:
        raise HoldNotFound(f"no hold {hold_id}", hold_id=hold_id)
    return _to_hold(row)


@query("ledger.read")
def get_hold(db: Database, hold_id: int) -> Hold:
    with db.reading() as conn:
        return _load_hold(conn, hold_id)


@query("ledger.read")
def list_holds(
    db: Database, *, status: str | None = None, after_id: int = 0, limit: int = 100
) -> list[Hold]:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    with db.reading() as conn:
        query = _hold_query().where(holds.c.id > after_id)
        if status is not None:
            query = query.where(holds.c.status == status)
        return [_to_hold(r) for r in conn.execute(query.order_by(holds.c.id).limit(limit))]


# --- balances ----------------------------------------------------------------------


@query("ledger.read")
def account_balance(db: Database, code: str, as_of: date | None = None) -> Balance:
    """The account's balance now (with pending holds) or at the end of a past business date."""
    with db.reading() as conn:
        account = _account_row(conn, code)
        if as_of is None:
            row = conn.execute(
                select(account_balances).where(account_balances.c.account_id == account.id)
            ).one()
            return Balance(
                code,
                account.currency,
                account.normal_side,
                None,
                row.debits_posted,
                row.credits_posted,
                row.debits_pending,
                row.credits_pending,
            )
        debits, credits = _posted_as_of(conn, [account.id], as_of).get(account.id, (0, 0))
        return Balance(code, account.currency, account.normal_side, as_of, debits, credits, 0, 0)


def _posted_as_of(
    conn: Connection, account_ids: Sequence[int] | None, as_of: date
) -> dict[int, tuple[int, int]]:
    """Posted totals at the end of `as_of`: each account's latest daily row on or before it."""
    daily = account_daily_balances
    latest = (
        select(daily.c.account_id, func.max(daily.c.business_date).label("day"))
        .where(daily.c.business_date <= as_of)
        .group_by(daily.c.account_id)
    )
    if account_ids is not None:
        latest = latest.where(daily.c.account_id.in_(account_ids))
    latest_sq = latest.subquery()
    rows = conn.execute(
        select(daily.c.account_id, daily.c.debits_posted, daily.c.credits_posted).join(
            latest_sq,
            (latest_sq.c.account_id == daily.c.account_id)
            & (latest_sq.c.day == daily.c.business_date),
        )
    )
    return {r.account_id: (r.debits_posted, r.credits_posted) for r in rows}


@query("ledger.read")
def trial_balance(
    db: Database, as_of: date | None = None, *, roll_up: bool = False
) -> TrialBalance:
    """Every account's balance as a debit or a credit, with totals per currency.

    With `roll_up`, a parent's line also carries the balances of its descendants
    (the per-currency totals always count each account once)."""
    with db.reading() as conn:
        today = current_business_date(conn)
        date_of = as_of or today
        all_accounts = [
            _to_account(r) for r in conn.execute(_account_query().order_by(accounts.c.code))
        ]
        if as_of is None:
            totals_by_id = {
                r.account_id: (r.debits_posted, r.credits_posted)
                for r in conn.execute(select(account_balances))
            }
        else:
            totals_by_id = _posted_as_of(conn, None, as_of)
    return build_trial_balance(all_accounts, totals_by_id, date_of, roll_up=roll_up)


def build_trial_balance(
    all_accounts: Sequence[Account],
    totals_by_id: Mapping[int, tuple[int, int]],
    as_of: date,
    *,
    roll_up: bool = False,
) -> TrialBalance:
    """Pure: lay out the trial balance from accounts and their posted totals."""
    children: dict[str | None, list[Account]] = {}
    for account in all_accounts:
        children.setdefault(account.parent_code, []).append(account)

    def subtree_totals(account: Account) -> tuple[int, int]:
        debits, credits = totals_by_id.get(account.id, (0, 0))
        for child in children.get(account.code, []):
            child_debits, child_credits = subtree_totals(child)
            debits, credits = debits + child_debits, credits + child_credits
        return debits, credits

    rows: list[TrialBalanceRow] = []
    totals: dict[str, tuple[int, int]] = {}

    def visit(account: Account, depth: int) -> None:
        own_debits, own_credits = totals_by_id.get(account.id, (0, 0))
        debits, credits = subtree_totals(account) if roll_up else (own_debits, own_credits)
        net = debits - credits
        rows.append(
            TrialBalanceRow(
                code=account.code,
                name=account.name,
                type=account.type,
                currency=account.currency,
                parent_code=account.parent_code,
                depth=depth,
                debit_minor=max(net, 0),
                credit_minor=max(-net, 0),
            )
        )
        own_net = own_debits - own_credits
        total_debit, total_credit = totals.get(account.currency, (0, 0))
        totals[account.currency] = (total_debit + max(own_net, 0), total_credit + max(-own_net, 0))
        for child in children.get(account.code, []):
            visit(child, depth + 1)

    known = {a.code for a in all_accounts}
    for account in all_accounts:
        if account.parent_code is None or account.parent_code not in known:
            visit(account, 0)
    return TrialBalance(as_of=as_of, rows=rows, totals=totals)


# --- input in major units ------------------------------------------------------------


def parse_side(text: str) -> Side:
    value = text.strip().upper()
    if value in ("D", "DR", "DEBIT"):
        return Side.DEBIT
    if value in ("C", "CR", "CREDIT"):
        return Side.CREDIT
    raise InvalidEntry(f"side must be D (debit) or C (credit), got {text!r}")


def postings_from_text(
    db: Database, lines: Sequence[tuple[str, str, str, str | None]]
) -> tuple[PostingSpec, ...]:
    """Postings from (side, account code, amount in major units, currency or None).

    An amount without a currency is read in its account's currency; its decimals
    are checked against that currency's minor unit.
    """
    with db.reading() as conn:
        currency_of = dict(
            conn.execute(
                select(accounts.c.code, accounts.c.currency).where(
                    accounts.c.code.in_(sorted({code for _s, code, _a, _c in lines}))
                )
            ).all()
        )
    specs = []
    for side, code, amount_text, cur in lines:
        if code not in currency_of:
            raise AccountNotFound(f"no account with code {code}", account=code)
        cur_code = (cur or currency_of[code]).upper()
        amount = Money.parse(amount_text, cur_code)
        specs.append(PostingSpec(code, parse_side(side), amount.amount_minor, cur_code))
    return tuple(specs)
