"""Loan servicing commands: book, disburse, repay, reverse, waive, reschedule,
write off; and the one read of a loan.

Every command runs the same steps in one transaction: lock the loan, check the
request against the loan's state, append one event, replay the events into the
state as of the business date (`servicing.replay`, the one rule), and book in
the ledger the difference between the state's accounting positions and what
the ledger already holds for the loan. A backdated repayment or a reversal is
no special case: the replay gives the new truth and the difference is booked.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from threading import Lock
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, insert, select, update

from lendcore.errors import Conflict, CurrencyMismatch, IdempotencyConflict, InvalidInput, NotFound
from lendcore.ledger.model import EntrySpec, PostingSpec, Side
from lendcore.money import currency as lookup_currency
from lendcore.money import parse_minor
from lendcore.products.model import Component, Product
from lendcore.schedules.terms import InvalidTerms, ScheduleTerms
from lendcore.services import approvals, ledger
from lendcore.services.approvals import PendingApproval
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, current_actor, note_result, query
from lendcore.services.events import emit
from lendcore.services.products import product_on
from lendcore.servicing.contract import terms_from_doc, terms_to_doc
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import (
    ROLES_CREDIT,
    Allocation,
    LoanContract,
    LoanState,
    LoanStatus,
    appends_to,
    position_deltas,
    resume,
    resume_after,
)
from lendcore.store.database import Database, run_now, send_later
from lendcore.store.schema import accounts, loan_events, loans

PAGE_SIZE_MAX = 500
# A loan's read shows its latest events; older ones come page by page (a cursor).
HISTORY_PAGE_DEFAULT = 10
HISTORY_PAGE_MAX = 500
WRITE_OFF = "loan.write_off"
RESCHEDULE = "loan.reschedule"
WAIVE = "loan.waive"


class LoanNotFound(NotFound):
    code = "LOAN_NOT_FOUND"


class LoanNotActive(Conflict):
    code = "LOAN_NOT_ACTIVE"


class DisbursementExceedsApproved(Conflict):
    code = "DISBURSEMENT_EXCEEDS_APPROVED"


class ValueDateInvalid(InvalidInput):
    code = "VALUE_DATE_INVALID"


class RepaymentNotFound(NotFound):
    code = "REPAYMENT_NOT_FOUND"


class WaiverExceedsDue(Conflict):
    code = "WAIVER_EXCEEDS_DUE"


class ProductAccountsMissing(Conflict):
    code = "PRODUCT_ACCOUNTS_MISSING"


class LoanRecord(NamedTuple):
    """One event as the history shows it (an immutable record; a tuple, cheap to
    build for each event of a history page)."""

    seq: int
    kind: str
    value_date: date
    business_date: date
    amount_minor: int
    payload: Mapping[str, Any]
    entry_id: int | None
    actor: str
    created_at: str


@dataclass(frozen=True, slots=True)
class LoanView:
    """A loan read whole: contract, state, schedule with what is paid, history."""

    id: int
    product_code: str
    product_version: int
    currency: str
    exponent: int
    borrower: str | None
    approved_minor: int
    terms: ScheduleTerms
    state: LoanState
    # A page of the loan's events, oldest first: the latest ones, or those
    # before the cursor the read was given.
    history: tuple[LoanRecord, ...]
    # What the ledger holds for the loan (equal to state.positions after a command).
    posted: Mapping[str, int]
    # The seq to read the page of events before this one with; None at the first event.
    history_next: int | None = None
    # How each repayment in `history` was applied (state.allocations has them all).
    allocations: tuple[Allocation, ...] = ()


# --- products and amounts ------------------------------------------------------------


def _product(conn: Connection, code: str, version: int | None = None) -> tuple[Product, int]:
    stored = product_on(conn, code, version)
    return stored.product, stored.version


def amount_minor(text: str | int, code: str, *, allow_zero: bool = False) -> int:
    """Minor units of a decimal string in major units (an int is minor units already)."""
    if isinstance(text, int) and not isinstance(text, bool):
        minor = text
    else:
        minor = parse_minor(str(text), lookup_currency(code).exponent, currency_code=code)
    if minor < 0 or (minor == 0 and not allow_zero):
        raise InvalidInput("the amount must be positive", amount=str(text))
    return minor


def _check_accounts(conn: Connection, product: Product) -> None:
    wanted = {code for code in product.accounting.model_dump().values() if code is not None}
    found = {
        r.code: r
        for r in conn.execute(
            select(accounts.c.code, accounts.c.currency, accounts.c.status).where(
                accounts.c.code.in_(sorted(wanted))
            )
        )
    }
    missing = sorted(wanted - set(found))
    wrong = sorted(
        c for c, r in found.items() if r.currency != product.currency or r.status != "open"
    )
    if missing or wrong:
        raise ProductAccountsMissing(
            f"product {product.code} books to accounts that are not open in {product.currency}: "
            + ", ".join(missing + wrong),
            accounts=missing + wrong,
        )


# --- booking a loan ------------------------------------------------------------------


def book_loan_on(
    conn: Connection,
    actor: str,
    product: Product,
    product_version: int,
    principal_minor: int,
    *,
    annual_rate: Decimal,
    term: int,
    start: date,
    first_repayment: date | None = None,
    application_id: int | None = None,
    borrower: str | None = None,
    pd_origination: str | None = None,
    risk_band: str | None = None,
) -> LoanView:
    """Book a loan inside the caller's transaction, within the product's limits.

    Not a command of its own: a loan is booked only from an approved application
    (`services.applications.book_application`), which runs the controls first.
    """
    _check_accounts(conn, product)
    today = current_business_date(conn)
    terms = product.terms(
        principal_minor, start, annual_rate=annual_rate, term=term, first_repayment=first_repayment
    )
    positions = dict.fromkeys(_ROLES, 0)
    loan_id = conn.execute(
        insert(loans)
        .values(
            product_code=product.code,
            product_version=product_version,
            currency=product.currency,
            borrower=borrower,
            approved_minor=principal_minor,
            terms_json=json.dumps(terms_to_doc(terms), sort_keys=True),
            status=LoanStatus.APPROVED.value,
            principal_outstanding_minor=0,
            overdue_minor=0,
            days_past_due=0,
            state_as_of=today,
            positions_json=json.dumps(positions, sort_keys=True),
            last_seq=0,
            pd_origination=pd_origination,
            risk_band=risk_band,
            booked_by=actor,
            business_date=today,
            created_at=utc_timestamp(),
        )
        .returning(loans.c.id)
    ).scalar_one()
    emit(
        conn,
        "loan.booked",
        "loan",
        loan_id,
        {
            "product": product.code,
            "amount_minor": principal_minor,
            "application_id": application_id,
        },
    )
    return _view(conn, loan_id)


def _rate(value: Decimal | str) -> Decimal:
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise InvalidTerms(f"annual rate {value!r} is not a decimal (0.12 for 12 %)") from None
    if not rate.is_finite():
        raise InvalidTerms(f"annual rate {value!r} is not a finite decimal")
    return rate


_ROLES = (
    "principal",
    "interest_receivable",
    "fee_receivable",
    "write_off_expense",
    "fund_source",
    *ROLES_CREDIT,
)


# --- the common path of every loan command --------------------------------------------


class _LoanRow(NamedTuple):
    """The columns of a loan's row that its commands and its read use."""

    id: int
    product_code: str
    product_version: int
    currency: str
    borrower: str | None
    approved_minor: int
    terms_json: str
    status: str
    positions_json: str
    snapshot_json: str | None
    last_seq: int


@dataclass(slots=True)
class _Loaded:
    row: _LoanRow
    product: Product
    contract: LoanContract
    # All the loan's events, read only when a command needs them (`_events`):
    # a backdated event, a reversal. Reads and most commands start from the
    # snapshot on the loan's row and never read them (DESIGN principle 7).
    events: list[LoanEvent] | None = None


# Prebuilt driver SQL (`?` marks; `_sql` adapts them): building a SQLAlchemy Core
# statement costs more than SQLite spends running one of these.
_LOAN_ROW_SQL = (
    "SELECT "
    + ", ".join(f"s.{f}" if f == "snapshot_json" else f"l.{f}" for f in _LoanRow._fields)
    + " FROM loans l LEFT JOIN loan_snapshots s ON s.loan_id = l.id WHERE l.id = ?"
)
_PRODUCT_DIGEST_SQL = "SELECT digest FROM products WHERE code = ? AND version = ?"
_EVENTS_SQL = (
    "SELECT seq, kind, value_date, amount_minor, payload_json FROM loan_events"
    " WHERE loan_id = ? ORDER BY seq"
)
_DISBURSED_SQL = (
    "SELECT min(value_date), coalesce(sum(amount_minor), 0) FROM loan_events"
    " WHERE loan_id = ? AND kind = 'disbursement'"
)
# Products parsed, by the digest of their stored definition (immutable).
PRODUCTS_CACHED_MAX = 256
_products: OrderedDict[str, Product] = OrderedDict()
_products_lock = Lock()


def _sql(conn: Connection, text: str) -> str:
    return text if conn.dialect.name == "sqlite" else text.replace("?", "%s")


def _to_date(value: date | str) -> date:
    # SQLite hands dates over as ISO text, PostgreSQL as dates.
    return value if isinstance(value, date) else date.fromisoformat(value)


def _load(conn: Connection, loan_id: int, *, lock: bool) -> _Loaded:
    """The loan's row, product and contract; its events only when asked (`_events`)."""
    sql = _LOAN_ROW_SQL + (" FOR UPDATE OF l" if lock and conn.dialect.name == "postgresql" else "")
    rows = run_now(conn, _sql(conn, sql), (loan_id,))
    if not rows:
        raise LoanNotFound(f"no loan {loan_id}", loan_id=loan_id)
    row = _LoanRow(*rows[0])
    product = _product_cached(conn, row.product_code, row.product_version)
    contract = LoanContract(row.id, product, _terms(row.terms_json), row.approved_minor)
    return _Loaded(row, product, contract)


def _product_cached(conn: Connection, code: str, version: int) -> Product:
    """The loan's product version: one small query for its digest; parsed once."""
    found = run_now(conn, _sql(conn, _PRODUCT_DIGEST_SQL), (code, version))
    digest = found[0][0] if found else None
    with _products_lock:
        cached = _products.get(digest) if digest is not None else None
    if cached is not None:
        return cached
    stored = product_on(conn, code, version)  # raises ProductNotFound
    with _products_lock:
        _products[stored.digest] = stored.product
        while len(_products) > PRODUCTS_CACHED_MAX:
            _products.popitem(last=False)
    return stored.product


def _events(conn: Connection, loaded: _Loaded) -> list[LoanEvent]:
    """All the loan's events, in entry order (read once per command)."""
    if loaded.events is None:
        rows = run_now(conn, _sql(conn, _EVENTS_SQL), (loaded.row.id,))
        loaded.events = [_event(*r) for r in rows]
    return loaded.events


def _disbursed(conn: Connection, loaded: _Loaded) -> tuple[date | None, int]:
    """The first disbursement's value date and the amount disbursed so far."""
    ((first, amount),) = run_now(conn, _sql(conn, _DISBURSED_SQL), (loaded.row.id,))
    return (None if first is None else _to_date(first)), int(amount)


@lru_cache(maxsize=1024)
def _terms(terms_json: str) -> ScheduleTerms:
    # Immutable once booked; parsed once per process.
    return terms_from_doc(json.loads(terms_json))


def _event(
    seq: int, kind: str, value_date: date | str, amount: int, payload_json: str
) -> LoanEvent:
    payload = json.loads(payload_json)
    return LoanEvent(
        seq=seq,
        kind=EventKind(kind),
        value_date=_to_date(value_date),
        amount_minor=amount,
        reverses_seq=payload.get("reverses_seq"),
        component=Component(payload["component"]) if payload.get("component") else None,
        annual_rate=Decimal(payload["annual_rate"]) if payload.get("annual_rate") else None,
        extend_by=int(payload.get("extend_by", 0)),
        payment_holiday=int(payload.get("payment_holiday", 0)),
    )


def _record(
    conn: Connection,
    actor: str,
    loaded: _Loaded,
    event: LoanEvent,
    *,
    idempotency_key: str | None,
    payload: Mapping[str, Any],
    description: str,
) -> LoanView:
    """Append `event`, replay, book the difference, update the loan's summary."""
    today = current_business_date(conn)
    snapshot = _snapshot(loaded.row)
    if _snapshot_holds(loaded, snapshot) and appends_to(snapshot, event):
        # The usual case: the event sorts last, so only it is applied to the snapshot.
        state, snapshot = resume_after(loaded.contract, snapshot, [event], today)
    else:
        events = [*_events(conn, loaded), event]
        state, snapshot = resume(loaded.contract, events, today, snapshot)
    if event.kind is EventKind.WAIVER:
        before = _replayed(conn, loaded)
        if len(state.notes) > len(before.notes):
            raise WaiverExceedsDue(state.notes[-1], loan_id=loaded.row.id)
    posted = json.loads(loaded.row.positions_json)
    entry_id = _book_difference(conn, loaded, event, posted, state.positions, description)
    send_later(
        conn,
        _sql(conn, _INSERT_EVENT_SQL),
        (
            loaded.row.id,
            event.seq,
            event.kind.value,
            _date_param(conn, event.value_date),
            _date_param(conn, today),
            event.amount_minor,
            json.dumps(dict(payload), sort_keys=True),
            idempotency_key,
            entry_id,
            actor,
            utc_timestamp(),
        ),
    )
    _save_summary(conn, loaded.row.id, state, event.seq, snapshot)
    if event.kind is EventKind.RESCHEDULE:
        # A reschedule is treated as forbearance (IFRS 9 stage 2 until cured).
        conn.execute(update(loans).where(loans.c.id == loaded.row.id).values(forborne=True))
    emit(
        conn,
        f"loan.{event.kind.value}",
        "loan",
        loaded.row.id,
        {
            "seq": event.seq,
            "value_date": event.value_date.isoformat(),
            "amount_minor": event.amount_minor,
            "status": state.status.value,
            "entry_id": entry_id,
        },
    )
    note_result(loan_id=loaded.row.id, seq=event.seq, entry_id=entry_id)
    return _view(conn, loaded.row.id, state)


def _snapshot(row: _LoanRow) -> dict[str, Any] | None:
    return None if row.snapshot_json is None else dict(json.loads(row.snapshot_json))


def _snapshot_holds(loaded: _Loaded, snapshot: dict[str, Any] | None) -> bool:
    """Whether the row's snapshot is the replay of all the loan's events: every
    command writes it with the last event's seq, in the event's transaction, so
    it is, unless it is missing while events exist (then the events are read)."""
    return snapshot is not None or loaded.row.last_seq == 0


def _save_summary(
    conn: Connection,
    loan_id: int,
    state: LoanState,
    last_seq: int | None,
    snapshot: dict[str, Any] | None = None,
) -> None:
    values: tuple[Any, ...] = (
        state.status.value,
        state.principal_outstanding,
        state.overdue,
        state.days_past_due,
        _date_param(conn, state.as_of),
        json.dumps(state.positions, sort_keys=True),
    )
    if last_seq is None:
        send_later(conn, _sql(conn, _UPDATE_SUMMARY_SQL), (*values, loan_id))
        return
    send_later(conn, _sql(conn, _UPDATE_SUMMARY_SEQ_SQL), (*values, last_seq, loan_id))
    if snapshot is None:
        send_later(conn, _sql(conn, _DELETE_SNAPSHOT_SQL), (loan_id,))
    else:
        send_later(conn, _sql(conn, _SAVE_SNAPSHOT_SQL), (loan_id, json.dumps(snapshot)))


_INSERT_EVENT_SQL = (
    "INSERT INTO loan_events (loan_id, seq, kind, value_date, business_date, amount_minor,"
    " payload_json, idempotency_key, entry_id, actor, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SUMMARY_SET = (
    "UPDATE loans SET status = ?, principal_outstanding_minor = ?, overdue_minor = ?,"
    " days_past_due = ?, state_as_of = ?, positions_json = ?"
)
_UPDATE_SUMMARY_SQL = _SUMMARY_SET + " WHERE id = ?"
_UPDATE_SUMMARY_SEQ_SQL = _SUMMARY_SET + ", last_seq = ? WHERE id = ?"
_SAVE_SNAPSHOT_SQL = (
    "INSERT INTO loan_snapshots (loan_id, snapshot_json) VALUES (?, ?)"
    " ON CONFLICT (loan_id) DO UPDATE SET snapshot_json = excluded.snapshot_json"
)
_DELETE_SNAPSHOT_SQL = "DELETE FROM loan_snapshots WHERE loan_id = ?"


def _date_param(conn: Connection, value: date) -> date | str:
    # SQLite keeps dates as ISO text (as SQLAlchemy's Date does there).
    return value.isoformat() if conn.dialect.name == "sqlite" else value


def _book_difference(
    conn: Connection,
    loaded: _Loaded,
    event: LoanEvent,
    posted: Mapping[str, int],
    target: Mapping[str, int],
    description: str,
) -> int | None:
    """One journal entry moving the ledger from `posted` to `target` for this loan."""
    deltas = position_deltas(dict(posted), dict(target))
    if not deltas:
        return None
    postings = postings_for(loaded.product, deltas)
    if not postings:
        return None
    spec = EntrySpec(
        idempotency_key=f"loan:{loaded.row.id}:event:{event.seq}",
        postings=postings,
        description=description,
        metadata={"loan_id": loaded.row.id, "event_seq": event.seq, "event": event.kind.value},
        value_date=event.value_date,
    )
    return ledger.book_entry_on(conn, spec).id


def _next_seq(loaded: _Loaded) -> int:
    return int(loaded.row.last_seq) + 1


def _replayed(conn: Connection, loaded: _Loaded) -> LoanState:
    """The loan's state at the end of the business date, from its snapshot."""
    today = current_business_date(conn)
    snapshot = _snapshot(loaded.row)
    if _snapshot_holds(loaded, snapshot):
        return resume_after(loaded.contract, snapshot, [], today, keep=False)[0]
    return resume(loaded.contract, _events(conn, loaded), today, snapshot, keep=False)[0]


def _value_date(conn: Connection, loaded: _Loaded, value_date: date | None) -> date:
    today = current_business_date(conn)
    value = value_date or today
    if value > today:
        raise ValueDateInvalid(
            f"value date {value} is after the business date {today}", value_date=value.isoformat()
        )
    first, _ = _disbursed(conn, loaded)
    if first is not None and value < first:
        raise ValueDateInvalid(
            f"value date {value} is before the loan was disbursed on {first}",
            value_date=value.isoformat(),
        )
    return value


def _replay_key(
    conn: Connection, key: str | None, loan_id: int, payload: Mapping[str, Any]
) -> LoanView | None:
    """The same idempotency key with the same request returns the loan as it is;
    with another request it is refused."""
    if key is None:
        return None
    found = conn.execute(
        select(loan_events.c.loan_id, loan_events.c.payload_json).where(
            loan_events.c.idempotency_key == key
        )
    ).first()
    if found is None:
        return None
    if found.loan_id != loan_id or json.loads(found.payload_json) != json.loads(
        json.dumps(dict(payload), sort_keys=True)
    ):
        raise IdempotencyConflict(
            f"idempotency key {key!r} was used for another loan request", idempotency_key=key
        )
    return _view(conn, loan_id)


# --- commands ------------------------------------------------------------------------


@command("loan.disburse")
def disburse(
    db: Database,
    loan_id: int,
    amount: str | int | None = None,
    *,
    value_date: date | None = None,
    idempotency_key: str | None = None,
) -> LoanView:
    """Pay out the loan, in full or a tranche; the product's fee is deducted or financed."""
    with db.transaction() as conn:
        loaded = _load(conn, loan_id, lock=True)
        if loaded.row.status in (LoanStatus.CLOSED.value, LoanStatus.WRITTEN_OFF.value):
            raise LoanNotActive(f"loan {loan_id} is {loaded.row.status}", loan_id=loan_id)
        _, disbursed = _disbursed(conn, loaded)
        left = loaded.row.approved_minor - disbursed
        minor = left if amount is None else amount_minor(amount, loaded.row.currency)
        payload = {
            "amount_minor": minor,
            "value_date": (value_date or current_business_date(conn)).isoformat(),
        }
        replayed = _replay_key(conn, idempotency_key, loan_id, payload)
        if replayed is not None:
            return replayed
        if minor <= 0 or minor > left:
            raise DisbursementExceedsApproved(
                f"disbursing {minor} minor units would exceed the approved amount "
                f"({loaded.row.approved_minor}; {disbursed} disbursed already)",
                loan_id=loan_id,
            )
        value = _value_date(conn, loaded, value_date)
        if disbursed == 0:
            terms = loaded.contract.terms
            if terms.first_repayment is not None and terms.first_repayment <= value:
                raise ValueDateInvalid(
                    f"the first repayment {terms.first_repayment} must fall after the disbursement"
                )
        event = LoanEvent(_next_seq(loaded), EventKind.DISBURSEMENT, value, minor)
        return _record(
            conn,
            db.actor.label,
            loaded,
            event,
            idempotency_key=idempotency_key,
            payload=payload,
            description=f"Disbursement of loan {loan_id}",
        )


@command("loan.repay")
def repay(
    db: Database,
    loan_id: int,
    amount: str | int,
    currency: str,
    *,
    value_date: date | None = None,
    idempotency_key: str | None = None,
) -> LoanView:
    """Take a repayment; it is applied by the product's waterfall, the rest per its
    prepayment policy. A value date before the loan's last event replays the loan."""
    with db.transaction() as conn:
        loaded = _load(conn, loan_id, lock=True)
        if currency.upper() != loaded.row.currency:
            raise CurrencyMismatch(
                f"loan {loan_id} is in {loaded.row.currency}, the repayment is in {currency.upper()}",
                loan_id=loan_id,
            )
        minor = amount_minor(amount, loaded.row.currency)
        payload = {
            "amount_minor": minor,
            "value_date": (value_date or current_business_date(conn)).isoformat(),
        }
        replayed = _replay_key(conn, idempotency_key, loan_id, payload)
        if replayed is not None:
            return replayed
        if loaded.row.status == LoanStatus.APPROVED.value:
            raise LoanNotActive(f"loan {loan_id} has not been disbursed", loan_id=loan_id)
        if loaded.row.status == LoanStatus.CLOSED.value:
            raise LoanNotActive(f"loan {loan_id} is closed: it takes no repayment", loan_id=loan_id)
        value = _value_date(conn, loaded, value_date)
        event = LoanEvent(_next_seq(loaded), EventKind.REPAYMENT, value, minor)
        return _record(
            conn,
            db.actor.label,
            loaded,
            event,
            idempotency_key=idempotency_key,
            payload=payload,
            description=f"Repayment on loan {loan_id}",
        )


@command("loan.repayment.reverse")
def reverse_repayment(db: Database, loan_id: int, seq: int, reason: str) -> LoanView:
    """Undo a repayment (a bounced payment, a mistake); everything after it is recomputed."""
    if not reason or not reason.strip():
        raise InvalidInput("a reversal needs a reason")
    with db.transaction() as conn:
        loaded = _load(conn, loan_id, lock=True)
        events = _events(conn, loaded)
        target = next((e for e in events if e.seq == seq), None)
        if target is None or target.kind is not EventKind.REPAYMENT:
            raise RepaymentNotFound(
                f"loan {loan_id} has no repayment {seq}", loan_id=loan_id, seq=seq
            )
        if any(e.reverses_seq == seq for e in events):
            raise Conflict(f"repayment {seq} of loan {loan_id} is reversed already")
        today = current_business_date(conn)
        event = LoanEvent(
            _next_seq(loaded), EventKind.REPAYMENT_REVERSAL, today, 0, reverses_seq=seq
        )
        return _record(
            conn,
            db.actor.label,
            loaded,
            event,
            idempotency_key=None,
            payload={"reverses_seq": seq, "reason": reason.strip()},
            description=f"Reversal of repayment {seq} on loan {loan_id}: {reason.strip()}",
        )


def _submit(
    db: Database, command_name: str, loan_id: int, payload: dict[str, Any], summary: str
) -> PendingApproval:
    with db.transaction() as conn:
        loaded = _load(conn, loan_id, lock=False)
        if loaded.row.status != LoanStatus.ACTIVE.value:
            raise LoanNotActive(f"loan {loan_id} is {loaded.row.status}", loan_id=loan_id)
        return approvals.submit(conn, db, command_name, {"loan_id": loan_id, **payload}, summary)


@command(WAIVE)
def waive(db: Database, loan_id: int, component: str, amount: str | int) -> PendingApproval:
    """Ask to waive part of what is due (penalty, fee or interest); another person approves."""
    try:
        part = Component(component)
    except ValueError:
        raise InvalidInput(f"cannot waive {component!r}: penalty, fee or interest") from None
    if part is Component.PRINCIPAL:
        raise InvalidInput("principal is not waived: write the loan off instead")
    with db.reading() as conn:
        row = conn.execute(select(loans.c.currency).where(loans.c.id == loan_id)).first()
    if row is None:
        raise LoanNotFound(f"no loan {loan_id}", loan_id=loan_id)
    minor = amount_minor(amount, row.currency)
    return _submit(
        db,
        WAIVE,
        loan_id,
        {"component": part.value, "amount_minor": minor},
        f"Waive {part.value} of {minor} minor units on loan {loan_id}",
    )


@approvals.executes(WAIVE)
def _approved_waiver(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _execute_approved(
        conn,
        payload,
        EventKind.WAIVER,
        int(payload["amount_minor"]),
        component=Component(payload["component"]),
    )


@command(RESCHEDULE)
def reschedule(
    db: Database,
    loan_id: int,
    *,
    annual_rate: Decimal | str | None = None,
    extend_by: int = 0,
    payment_holiday: int = 0,
) -> PendingApproval:
    """Ask to reschedule from the current period: a new rate, a longer term, a
    payment holiday that capitalises interest; another person approves."""
    if extend_by < 0 or payment_holiday < 0:
        raise InvalidInput("extension and holiday are numbers of periods, not negative")
    rate = None if annual_rate is None else str(_rate(annual_rate))
    if rate is None and not extend_by and not payment_holiday:
        raise InvalidInput("a reschedule changes the rate, the term or adds a payment holiday")
    return _submit(
        db,
        RESCHEDULE,
        loan_id,
        {"annual_rate": rate, "extend_by": extend_by, "payment_holiday": payment_holiday},
        f"Reschedule loan {loan_id}",
    )


@approvals.executes(RESCHEDULE)
def _approved_reschedule(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    rate = payload.get("annual_rate")
    return _execute_approved(
        conn,
        payload,
        EventKind.RESCHEDULE,
        0,
        annual_rate=Decimal(rate) if rate else None,
        extend_by=int(payload["extend_by"]),
        payment_holiday=int(payload["payment_holiday"]),
    )


@command(WRITE_OFF)
def write_off(db: Database, loan_id: int, reason: str) -> PendingApproval:
    """Ask to write the loan off; another person approves. Later payments are recoveries."""
    if not reason or not reason.strip():
        raise InvalidInput("a write-off needs a reason")
    return _submit(
        db,
        WRITE_OFF,
        loan_id,
        {"reason": reason.strip()},
        f"Write off loan {loan_id}: {reason.strip()}",
    )


@approvals.executes(WRITE_OFF)
def _approved_write_off(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _execute_approved(conn, payload, EventKind.WRITE_OFF, 0)


def _execute_approved(
    conn: Connection, payload: Mapping[str, Any], kind: EventKind, amount: int, **fields: Any
) -> Mapping[str, Any]:
    loan_id = int(payload["loan_id"])
    loaded = _load(conn, loan_id, lock=True)
    if loaded.row.status != LoanStatus.ACTIVE.value:
        raise LoanNotActive(f"loan {loan_id} is {loaded.row.status}", loan_id=loan_id)
    event = LoanEvent(_next_seq(loaded), kind, current_business_date(conn), amount, **fields)
    actor = current_actor()
    view = _record(
        conn,
        actor.label if actor else "system",
        loaded,
        event,
        idempotency_key=None,
        payload={k: v for k, v in payload.items() if k != "loan_id"},
        description=f"{kind.value.capitalize()} of loan {loan_id}",
    )
    return {"loan_id": loan_id, "seq": event.seq, "status": view.state.status.value}


# --- reads ---------------------------------------------------------------------------


def _view(
    conn: Connection,
    loan_id: int,
    state: LoanState | None = None,
    *,
    history_before: int | None = None,
    history_limit: int = HISTORY_PAGE_DEFAULT,
) -> LoanView:
    """The loan read whole with a page of its history; `state` when the caller
    replayed it already."""
    loaded = _load(conn, loan_id, lock=False)
    if state is None:
        state = _replayed(conn, loaded)
    history, history_next = _history_page(conn, loan_id, history_before, history_limit)
    paged = {h.seq for h in history}
    row = loaded.row
    return LoanView(
        id=row.id,
        product_code=row.product_code,
        product_version=row.product_version,
        currency=row.currency,
        exponent=lookup_currency(row.currency).exponent,
        borrower=row.borrower,
        approved_minor=row.approved_minor,
        terms=loaded.contract.terms,
        state=state,
        history=history,
        posted=json.loads(row.positions_json),
        history_next=history_next,
        allocations=tuple(a for a in state.allocations if a.seq in paged),
    )


_HISTORY_COLUMNS = (
    "seq, kind, value_date, business_date, amount_minor, payload_json, entry_id, actor, created_at"
)
if LoanRecord._fields[6:] != ("entry_id", "actor", "created_at"):
    raise RuntimeError("_history_page builds LoanRecord from _HISTORY_COLUMNS by position")
_HISTORY_SQL = (
    f"SELECT {_HISTORY_COLUMNS} FROM loan_events WHERE loan_id = ? ORDER BY seq DESC LIMIT ?"
)
_HISTORY_BEFORE_SQL = (
    f"SELECT {_HISTORY_COLUMNS} FROM loan_events WHERE loan_id = ? AND seq < ?"
    " ORDER BY seq DESC LIMIT ?"
)


# A stored payload is json.dumps' output: raw_decode skips json.loads' checks.
_decode_json = json.JSONDecoder().raw_decode


def _history_page(
    conn: Connection, loan_id: int, before: int | None, limit: int
) -> tuple[tuple[LoanRecord, ...], int | None]:
    """The last `limit` events before seq `before` (the latest when None), oldest
    first, and the cursor of the page before them (None when none is left)."""
    if not 1 <= limit <= HISTORY_PAGE_MAX:
        raise InvalidInput(
            f"a history page holds 1 to {HISTORY_PAGE_MAX} events", history_limit=limit
        )
    if before is None:
        rows = run_now(conn, _sql(conn, _HISTORY_SQL), (loan_id, limit + 1))
    elif before < 1:
        raise InvalidInput("the history cursor is an event's seq (1 or more)", before=before)
    else:
        rows = run_now(conn, _sql(conn, _HISTORY_BEFORE_SQL), (loan_id, before, limit + 1))
    # Positional, in _HISTORY_COLUMNS' order (LoanRecord's fields).
    page = [
        LoanRecord(
            seq, kind, _to_date(value), _to_date(booked), amount, _decode_json(payload)[0], *rest
        )
        for seq, kind, value, booked, amount, payload, *rest in reversed(rows[:limit])
    ]
    return tuple(page), (page[0].seq if len(rows) > limit else None)


@query("loan.read")
def get_loan(
    db: Database,
    loan_id: int,
    *,
    history_before: int | None = None,
    history_limit: int = HISTORY_PAGE_DEFAULT,
) -> LoanView:
    """The loan whole: state, balances, schedule with paid and unpaid, arrears, and
    a page of its history: the latest `history_limit` events, or those before the
    seq `history_before` (a view's `history_next`)."""
    with db.reading() as conn:
        return _view(conn, loan_id, history_before=history_before, history_limit=history_limit)


@dataclass(frozen=True, slots=True)
class LoanSummary:
    id: int
    product_code: str
    product_version: int
    currency: str
    borrower: str | None
    approved_minor: int
    status: str
    principal_outstanding_minor: int
    overdue_minor: int
    days_past_due: int
    state_as_of: date


@query("loan.read")
def list_loans(
    db: Database,
    *,
    status: str | None = None,
    product_code: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[LoanSummary]:
    """Loans by id, as of their last command; filter by status and product."""
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    query_ = select(loans).where(loans.c.id > after_id)
    if status is not None:
        query_ = query_.where(loans.c.status == status)
    if product_code is not None:
        query_ = query_.where(loans.c.product_code == product_code)
    with db.reading() as conn:
        return [
            LoanSummary(
                r.id,
                r.product_code,
                r.product_version,
                r.currency,
                r.borrower,
                r.approved_minor,
                r.status,
                r.principal_outstanding_minor,
                r.overdue_minor,
                r.days_past_due,
                r.state_as_of,
            )
            for r in conn.execute(query_.order_by(loans.c.id).limit(limit))
        ]


def count_loans(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(loans)).scalar_one())


def events_of(conn: Connection, loan_id: int) -> Sequence[LoanEvent]:
    return _events(conn, _load(conn, loan_id, lock=False))


# --- recognising accrual for the whole book ----------------------------------------------


@dataclass(frozen=True, slots=True)
class AccrualRun:
    business_date: date
    loans_seen: int
    loans_changed: int
    entry_ids: tuple[int, ...]
    # Per product: the interest and penalty income recognised by this run.
    interest_minor: Mapping[str, int]
    penalty_minor: Mapping[str, int]


@command("loan.accrue")
def accrue_book(db: Database) -> AccrualRun:
    """Bring every active loan's ledger position up to the business date: interest
    accrued, instalments fallen due, late fees and penalty interest. One entry
    per product for the whole book (not one per loan per day); each loan's
    posted position moves with it. End of day runs the same rule as columns."""
    with db.transaction() as conn:
        today = current_business_date(conn)
        ids = list(
            conn.execute(
                select(loans.c.id)
                .where(loans.c.status == LoanStatus.ACTIVE.value)
                .order_by(loans.c.id)
            ).scalars()
        )
        per_product: dict[tuple[str, int], dict[str, int]] = {}
        products_seen: dict[tuple[str, int], Product] = {}
        changed: list[int] = []
        for loan_id in ids:
            loaded = _load(conn, loan_id, lock=True)
            state = _replayed(conn, loaded)
            deltas = position_deltas(json.loads(loaded.row.positions_json), state.positions)
            if deltas:
                key = (loaded.row.product_code, loaded.row.product_version)
                products_seen[key] = loaded.product
                total = per_product.setdefault(key, {})
                for role, delta in deltas.items():
                    total[role] = total.get(role, 0) + delta
                changed.append(loan_id)
            _save_summary(conn, loan_id, state, None)
        entry_ids = []
        for (code, version), deltas in sorted(per_product.items()):
            product = products_seen[(code, version)]
            postings = postings_for(product, deltas)
            if not postings:
                continue
            digest = hashlib.sha256(json.dumps(sorted(deltas.items())).encode()).hexdigest()[:16]
            spec = EntrySpec(
                idempotency_key=f"accrual:{code}:v{version}:{today.isoformat()}:{digest}",
                postings=postings,
                description=f"Accrual and dues of {code} v{version} for {today.isoformat()}",
                metadata={"product": code, "product_version": version, "kind": "accrual"},
            )
            entry_ids.append(ledger.book_entry_on(conn, spec).id)
        run = AccrualRun(
            business_date=today,
            loans_seen=len(ids),
            loans_changed=len(changed),
            entry_ids=tuple(entry_ids),
            interest_minor={c: d.get("interest_income", 0) for (c, _v), d in per_product.items()},
            penalty_minor={c: d.get("penalty_income", 0) for (c, _v), d in per_product.items()},
        )
        note_result(loans_changed=len(changed), entry_ids=list(entry_ids))
        return run


def postings_for(product: Product, deltas: Mapping[str, int]) -> tuple[PostingSpec, ...]:
    """Postings that move the product's accounts by `deltas` (per accounting role)."""
    mapping = product.accounting.model_dump()
    net: dict[str, int] = {}  # account -> signed amount, debit positive
    for role, delta in deltas.items():
        signed = -delta if role in ROLES_CREDIT else delta
        net[mapping[role]] = net.get(mapping[role], 0) + signed
    return tuple(
        PostingSpec(account, Side.DEBIT if value > 0 else Side.CREDIT, abs(value), product.currency)
        for account, value in sorted(net.items())
        if value != 0
    )
