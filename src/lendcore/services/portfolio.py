"""The portfolio report: what the risk manager and the board read about the book.

Figures per currency (amounts are never added across currencies), read from
the database as the last end of day left it:

- loans by status; disbursed (every disbursement) and collected (every
  repayment not reversed, recoveries included);
- outstanding: the principal of active loans; PAR30 and PAR90: the outstanding
  principal of active loans more than 30 (90) days past due over all of it;
- interest, fee, penalty and recovery income and the amount written off, as the
  general ledger holds them on the products' accounts;
- the IFRS 9 stage mix and expected credit loss of the last day provisioned
  (`provision_stage_mix`; zeros until provisioning has run);
- vintage curves: for each monthly booking cohort, the cumulative share of its
  loans that reached 90 or more days past due or were written off, by months on
  book. The day a loan first reached 90 days past due comes from its events (the
  record), replayed as of the days it could have: each instalment's due date
  plus 90 days, oldest first, until one is still unpaid then.

`position` is the cheap part (one grouped read of the loans): the simulator
records it every day for the charts over time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from sqlalchemy import Connection, case, func, select

from lendcore.products.model import Product
from lendcore.services.clock import current_business_date
from lendcore.services.commands import query
from lendcore.services.loans import events_of
from lendcore.services.products import product_on
from lendcore.servicing.contract import terms_from_doc
from lendcore.servicing.events import EventKind, LoanEvent
from lendcore.servicing.replay import LoanContract, replay
from lendcore.store.database import Database
from lendcore.store.schema import (
    account_balances,
    accounts,
    eod_runs,
    loan_events,
    loans,
    products,
    provision_stage_mix,
)

READ: Final = "portfolio.read"
STAGES: Final = (1, 2, 3)
PAR30_DPD: Final = 30  # PAR30 counts loans more than this many days past due
PAR90_DPD: Final = 90
BAD_DPD: Final = 90  # a vintage counts a loan bad from 90 days past due on
RATIO_QUANTUM: Final = Decimal("0.000001")
# The general-ledger figures of the report: role -> the side its balance sits on.
_GL_ROLES: Final = {
    "interest_income": "credit",
    "fee_income": "credit",
    "penalty_income": "credit",
    "recovery_income": "credit",
    "write_off_expense": "debit",
}
_READ_CHUNK: Final = 500  # loans replayed per batch of reads


def ratio(part: int, whole: int) -> Decimal:
    """part / whole to six places (0 when there is no whole)."""
    if whole <= 0:
        return Decimal(0)
    return (Decimal(part) / Decimal(whole)).quantize(RATIO_QUANTUM, ROUND_HALF_EVEN)


# --- the figures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageFigures:
    stage: int
    loans: int
    exposure_minor: int
    ecl_minor: int


@dataclass(frozen=True, slots=True)
class Position:
    """A currency's book at the end of a day: what is outstanding and how late."""

    currency: str
    loans_active: int
    outstanding_minor: int
    par30_minor: int
    par90_minor: int
    stages: tuple[StageFigures, ...]  # stages 1, 2 and 3, zeros when not provisioned

    @property
    def par30(self) -> Decimal:
        return ratio(self.par30_minor, self.outstanding_minor)

    @property
    def par90(self) -> Decimal:
        return ratio(self.par90_minor, self.outstanding_minor)

    @property
    def ecl_minor(self) -> int:
        return sum(s.ecl_minor for s in self.stages)

    @property
    def exposure_minor(self) -> int:
        return sum(s.exposure_minor for s in self.stages)

    @property
    def coverage(self) -> Decimal:
        """ECL over the exposure it covers."""
        return ratio(self.ecl_minor, self.exposure_minor)


@dataclass(frozen=True, slots=True)
class PortfolioDay:
    """The positions of every currency after one day's close."""

    business_date: date
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    position: Position
    loans_closed: int
    loans_written_off: int
    disbursed_minor: int
    collected_minor: int
    interest_income_minor: int
    fee_income_minor: int
    penalty_income_minor: int
    recovery_income_minor: int
    written_off_minor: int

    @property
    def currency(self) -> str:
        return self.position.currency


@dataclass(frozen=True, slots=True)
class ProductFigures:
    product_code: str
    currency: str
    loans_active: int
    outstanding_minor: int
    par30_minor: int
    par90_minor: int
    ecl_minor: int

    @property
    def par30(self) -> Decimal:
        return ratio(self.par30_minor, self.outstanding_minor)

    @property
    def par90(self) -> Decimal:
        return ratio(self.par90_minor, self.outstanding_minor)


@dataclass(frozen=True, slots=True)
class VintagePoint:
    months_on_book: int
    bad: int  # loans of the cohort bad within this many months of their booking
    share: Decimal


@dataclass(frozen=True, slots=True)
class Vintage:
    cohort: str  # the booking month, YYYY-MM
    loans: int
    points: tuple[VintagePoint, ...]


@dataclass(frozen=True, slots=True)
class PortfolioReport:
    business_date: date  # the open business date
    as_of: date | None  # the last day closed by end of day (None before the first)
    provisioned_on: date | None  # the last day with a stage mix
    currencies: tuple[CurrencyFigures, ...]
    products: tuple[ProductFigures, ...]
    vintages: tuple[Vintage, ...]


# --- pure parts ------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later, the month's last day when it has no such day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(f"no day {months} months after {day}")  # unreachable: day 28 exists


def vintage_curves(loans_: Iterable[tuple[date, date | None]], as_of: date) -> tuple[Vintage, ...]:
    """(booked on, bad on or None) per loan -> one curve per booking month: at
    `m` months on book, the share of the cohort's loans bad within `m` months
    of their booking. A point is shown once the cohort's first day is `m`
    months behind `as_of`, so every cohort's curve ends where it is observed."""
    cohorts: dict[date, list[tuple[date, date | None]]] = defaultdict(list)
    for booked_on, bad_on in loans_:
        cohorts[booked_on.replace(day=1)].append((booked_on, bad_on))
    curves = []
    for start, members in sorted(cohorts.items()):
        points = []
        months = 1
        while add_months(start, months) <= as_of:
            bad = sum(
                1
                for booked_on, bad_on in members
                if bad_on is not None and bad_on <= add_months(booked_on, months)
            )
            points.append(VintagePoint(months, bad, ratio(bad, len(members))))
            months += 1
        curves.append(Vintage(start.strftime("%Y-%m"), len(members), tuple(points)))
    return tuple(curves)


def first_bad_day(contract: LoanContract, events: Sequence[LoanEvent], as_of: date) -> date | None:
    """The first day the loan was `BAD_DPD` or more days past due or written off,
    up to `as_of`. Days past due count from the oldest unpaid instalment's due
    date, and what was paid by a day stays paid (a reversal removes its
    repayment from every day), so the first such day is the first instalment's
    due date + `BAD_DPD` on which it was still unpaid."""
    written_off = min((e.value_date for e in events if e.kind is EventKind.WRITE_OFF), default=None)
    limit = as_of if written_off is None else min(as_of, written_off)
    state = replay(contract, events, limit)
    if state.disbursed == 0:
        return None
    for instalment in state.instalments:
        day = instalment.due_date + timedelta(days=BAD_DPD)
        if day > limit:
            break
        if replay(contract, events, day).days_past_due >= BAD_DPD:
            return day
    return written_off


# --- reading the book -------------------------------------------------------------------


def _last_closed(conn: Connection) -> date | None:
    value = conn.execute(select(func.max(eod_runs.c.business_date))).scalar_one()
    return None if value is None else value


def _stage_mix(
    conn: Connection, as_of: date | None
) -> tuple[date | None, dict[tuple[str, str, int], StageFigures]]:
    """(the last provisioned day, figures per product, currency and stage)."""
    latest = select(func.max(provision_stage_mix.c.business_date))
    if as_of is not None:
        latest = latest.where(provision_stage_mix.c.business_date <= as_of)
    day = conn.execute(latest).scalar_one()
    if day is None:
        return None, {}
    rows = conn.execute(
        select(
            provision_stage_mix.c.product_code,
            provision_stage_mix.c.currency,
            provision_stage_mix.c.stage,
            provision_stage_mix.c.loans,
            provision_stage_mix.c.exposure_minor,
            provision_stage_mix.c.ecl_minor,
        ).where(provision_stage_mix.c.business_date == day)
    )
    return day, {
        (r.product_code, r.currency, int(r.stage)): StageFigures(
            int(r.stage), int(r.loans), int(r.exposure_minor), int(r.ecl_minor)
        )
        for r in rows
    }


def _stages(
    mix: dict[tuple[str, str, int], StageFigures], currency: str, product: str | None = None
) -> tuple[StageFigures, ...]:
    totals = {s: [0, 0, 0] for s in STAGES}
    for (product_code, row_currency, stage), figures in mix.items():
        if row_currency != currency or (product is not None and product_code != product):
            continue
        total = totals.setdefault(stage, [0, 0, 0])
        total[0] += figures.loans
        total[1] += figures.exposure_minor
        total[2] += figures.ecl_minor
    return tuple(StageFigures(s, *totals[s]) for s in sorted(totals))


def _active_by(conn: Connection, *keys: Any) -> list[Any]:
    principal = loans.c.principal_outstanding_minor
    dpd = loans.c.days_past_due
    return list(
        conn.execute(
            select(
                *keys,
                func.count().label("active"),
                func.coalesce(func.sum(principal), 0).label("outstanding"),
                func.coalesce(func.sum(case((dpd > PAR30_DPD, principal), else_=0)), 0).label(
                    "par30"
                ),
                func.coalesce(func.sum(case((dpd > PAR90_DPD, principal), else_=0)), 0).label(
                    "par90"
                ),
            )
            .where(loans.c.status == "active")
            .group_by(*keys)
            .order_by(*keys)
        )
    )


def _positions(conn: Connection, mix: dict[tuple[str, str, int], StageFigures]) -> list[Position]:
    found = {r.currency: r for r in _active_by(conn, loans.c.currency)}
    currencies = sorted(set(found) | {currency for _p, currency, _s in mix})
    positions = []
    for code in currencies:
        row = found.get(code)
        positions.append(
            Position(
                currency=code,
                loans_active=int(row.active) if row else 0,
                outstanding_minor=int(row.outstanding) if row else 0,
                par30_minor=int(row.par30) if row else 0,
                par90_minor=int(row.par90) if row else 0,
                stages=_stages(mix, code),
            )
        )
    return positions


@query(READ)
def position(db: Database) -> PortfolioDay:
    """Each currency's book as the last end of day (and any command since) left it."""
    with db.reading() as conn:
        as_of = _last_closed(conn)
        _day, mix = _stage_mix(conn, as_of)
        return PortfolioDay(
            business_date=as_of or current_business_date(conn),
            positions=tuple(_positions(conn, mix)),
        )


def _sums_by_currency(conn: Connection, kind: EventKind) -> dict[str, int]:
    rows = conn.execute(
        select(loans.c.currency, func.coalesce(func.sum(loan_events.c.amount_minor), 0))
        .join(loans, loans.c.id == loan_events.c.loan_id)
        .where(loan_events.c.kind == kind.value)
        .group_by(loans.c.currency)
    )
    return {currency: int(total) for currency, total in rows}


def _collected(conn: Connection) -> dict[str, int]:
    """Repayments by currency, less the ones reversed since."""
    collected = _sums_by_currency(conn, EventKind.REPAYMENT)
    reversed_ = {
        (loan_id, int(json.loads(payload)["reverses_seq"]))
        for loan_id, payload in conn.execute(
            select(loan_events.c.loan_id, loan_events.c.payload_json).where(
                loan_events.c.kind == EventKind.REPAYMENT_REVERSAL.value
            )
        )
    }
    by_loan: dict[int, set[int]] = defaultdict(set)
    for loan_id, seq in reversed_:
        by_loan[loan_id].add(seq)
    ids = sorted(by_loan)
    for start in range(0, len(ids), _READ_CHUNK):
        chunk = ids[start : start + _READ_CHUNK]
        rows = conn.execute(
            select(
                loan_events.c.loan_id,
                loan_events.c.seq,
                loan_events.c.amount_minor,
                loans.c.currency,
            )
            .join(loans, loans.c.id == loan_events.c.loan_id)
            .where(
                loan_events.c.loan_id.in_(chunk),
                loan_events.c.kind == EventKind.REPAYMENT.value,
            )
        )
        for loan_id, seq, amount_minor, currency in rows:
            if seq in by_loan[loan_id]:
                collected[currency] = collected.get(currency, 0) - int(amount_minor)
    return collected


def _products(conn: Connection) -> dict[tuple[str, int], Product]:
    keys = conn.execute(select(products.c.code, products.c.version)).all()
    return {(code, version): product_on(conn, code, version).product for code, version in keys}


def _general_ledger(
    conn: Connection, book: dict[tuple[str, int], Product]
) -> dict[tuple[str, str], int]:
    """(currency, role) -> the balance of the role's accounts over every product."""
    codes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for product in book.values():
        mapping = product.accounting.model_dump()
        for role in _GL_ROLES:
            if mapping.get(role):
                codes[(product.currency, role)].add(mapping[role])
    wanted = sorted({code for found in codes.values() for code in found})
    balances: dict[tuple[str, str], tuple[int, int]] = {}
    if wanted:
        rows = conn.execute(
            select(
                accounts.c.code,
                accounts.c.currency,
                account_balances.c.debits_posted,
                account_balances.c.credits_posted,
            )
            .join(account_balances, account_balances.c.account_id == accounts.c.id)
            .where(accounts.c.code.in_(wanted))
        )
        balances = {
            (r.code, r.currency): (int(r.debits_posted), int(r.credits_posted)) for r in rows
        }
    result: dict[tuple[str, str], int] = {}
    for (currency, role), found in codes.items():
        total = 0
        for code in found:
            debits, credits = balances.get((code, currency), (0, 0))
            total += credits - debits if _GL_ROLES[role] == "credit" else debits - credits
        result[(currency, role)] = total
    return result


def _first_bad_days(
    conn: Connection, book: dict[tuple[str, int], Product], as_of: date
) -> list[tuple[date, date | None]]:
    """(booked on, first bad day) for every disbursed loan, read in batches."""
    ids = list(
        conn.execute(
            select(loans.c.id).where(loans.c.status != "approved").order_by(loans.c.id)
        ).scalars()
    )
    result = []
    for start in range(0, len(ids), _READ_CHUNK):
        chunk = ids[start : start + _READ_CHUNK]
        for r in conn.execute(
            select(
                loans.c.id,
                loans.c.product_code,
                loans.c.product_version,
                loans.c.terms_json,
                loans.c.approved_minor,
                loans.c.business_date,
            )
            .where(loans.c.id.in_(chunk))
            .order_by(loans.c.id)
        ):
            contract = LoanContract(
                r.id,
                book[(r.product_code, r.product_version)],
                terms_from_doc(json.loads(r.terms_json)),
                r.approved_minor,
            )
            events = events_of(conn, r.id)
            result.append((r.business_date, first_bad_day(contract, events, as_of)))
    return result


@query(READ)
def portfolio_report(db: Database) -> PortfolioReport:
    """The whole report (see the module docstring) as of the last closed day."""
    with db.reading() as conn:
        today = current_business_date(conn)
        as_of = _last_closed(conn)
        provisioned_on, mix = _stage_mix(conn, as_of)
        book = _products(conn)
        statuses: dict[tuple[str, str], int] = {
            (currency, status): int(count)
            for currency, status, count in conn.execute(
                select(loans.c.currency, loans.c.status, func.count()).group_by(
                    loans.c.currency, loans.c.status
                )
            )
        }
        disbursed = _sums_by_currency(conn, EventKind.DISBURSEMENT)
        collected = _collected(conn)
        gl = _general_ledger(conn, book)
        positions = _positions(conn, mix)
        seen = {p.currency for p in positions}
        for currency in sorted({c for c, _s in statuses} - seen):
            positions.append(Position(currency, 0, 0, 0, 0, _stages(mix, currency)))
        currencies = tuple(
            CurrencyFigures(
                position=p,
                loans_closed=statuses.get((p.currency, "closed"), 0),
                loans_written_off=statuses.get((p.currency, "written-off"), 0),
                disbursed_minor=disbursed.get(p.currency, 0),
                collected_minor=collected.get(p.currency, 0),
                interest_income_minor=gl.get((p.currency, "interest_income"), 0),
                fee_income_minor=gl.get((p.currency, "fee_income"), 0),
                penalty_income_minor=gl.get((p.currency, "penalty_income"), 0),
                recovery_income_minor=gl.get((p.currency, "recovery_income"), 0),
                written_off_minor=gl.get((p.currency, "write_off_expense"), 0),
            )
            for p in sorted(positions, key=lambda p: p.currency)
        )
        product_rows = _active_by(conn, loans.c.product_code, loans.c.currency)
        by_product = tuple(
            ProductFigures(
                product_code=r.product_code,
                currency=r.currency,
                loans_active=int(r.active),
                outstanding_minor=int(r.outstanding),
                par30_minor=int(r.par30),
                par90_minor=int(r.par90),
                ecl_minor=sum(s.ecl_minor for s in _stages(mix, r.currency, r.product_code)),
            )
            for r in product_rows
        )
        vintages = vintage_curves(_first_bad_days(conn, book, as_of or today), as_of or today)
    return PortfolioReport(
        business_date=today,
        as_of=as_of,
        provisioned_on=provisioned_on,
        currencies=currencies,
        products=by_product,
        vintages=vintages,
    )
