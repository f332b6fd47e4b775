"""End of day over the whole book on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from lendcore.eod.kernel import ROLES
from lendcore.services import eod
from lendcore.store.database import Database
from tests.integration.eod_helpers import (
    business_date,
    live_day,
    lived,
    open_book,
    replayed,
    stored,
)


def test_closing_days_keeps_every_loan_equal_to_its_replay(db: Database) -> None:
    book = open_book(db, 40, seed=3)
    rng = random.Random(5)
    for _ in range(70):
        live_day(book, rng)
        eod.run_day(book.servicing)
    today = business_date(db)
    closed_through = today.fromordinal(today.toordinal() - 1)
    for loan_id, (status, dpd, overdue, principal, positions) in stored(db).items():
        want = replayed(db, loan_id, closed_through)
        assert positions == want.positions, loan_id
        assert (status, dpd, overdue, principal) == (
            want.status.value,
            want.days_past_due,
            want.overdue,
            want.principal_outstanding,
        ), loan_id
    assert set(ROLES) == set(positions)
    statuses = [s[0] for s in stored(db).values()]
    in_arrears = [s for s in stored(db).values() if s[1] > 0]
    print("statuses", {x: statuses.count(x) for x in set(statuses)}, "arrears", len(in_arrears))
    print(eod.status(book.servicing))


def test_allowance_on_the_ledger_equals_the_sum_of_loan_ecls(db: Database) -> None:
    """The loss allowance account of each product holds the sum of its open
    loans' expected credit losses, and every day's movements explain the change."""
    from sqlalchemy import func, select

    from lendcore.services import ledger
    from lendcore.store.schema import loan_provisions, loans, provision_movements

    book = open_book(db, 30, seed=8)
    rng = random.Random(9)
    for _ in range(45):
        live_day(book, rng)
        eod.run_day(book.servicing)
    with db.reading() as conn:
        per_product = dict(
            conn.execute(
                select(loans.c.product_code, func.sum(loan_provisions.c.ecl_minor))
                .select_from(loan_provisions.join(loans, loans.c.id == loan_provisions.c.loan_id))
                .group_by(loans.c.product_code)
            ).all()
        )
        moved = dict(
            conn.execute(
                select(
                    provision_movements.c.product_code, func.sum(provision_movements.c.amount_minor)
                ).group_by(provision_movements.c.product_code)
            ).all()
        )
        stages = set(conn.execute(select(loan_provisions.c.stage)).scalars())
    assert per_product and all(v > 0 for v in per_product.values())
    for name, product in book.products.items():
        account = product.accounting.loss_allowance
        assert account is not None
        assert ledger.account_balance(db, account).posted == per_product.get(name, 0), name
        assert moved.get(name, 0) == per_product.get(name, 0), name
    assert 1 in stages and (2 in stages or 3 in stages)


def test_a_repayment_taken_while_the_day_is_being_closed_is_dated_and_booked_once(
    db: Database,
) -> None:
    """Live operations go on during end of day: nothing is locked while the
    book is read and computed. A repayment that lands then is dated by the
    still-open business date; the run leaves that loan to it and books the rest."""
    from lendcore.services import loans as loan_service

    book = open_book(db, 8, seed=4)
    for _ in range(35):
        eod.run_day(book.servicing)
    today = business_date(db)
    target = book.loan_ids[0]
    taken: list[object] = []

    def meanwhile(step: str) -> None:
        # Called by the run after it has read and computed the book, before it writes.
        if step == "servicing" and not taken:
            view = loan_service.get_loan(book.servicing, target)
            taken.append(loan_service.repay(book.servicing, target, 5_000, view.currency))

    close = eod.run_day(book.servicing, progress=meanwhile)
    assert taken and close.loans_left_to_live_operations == 1
    events = loan_service.get_loan(book.servicing, target)
    assert any(a.value_date == today and a.amount == 5_000 for a in events.state.allocations)
    for loan_id, (status, dpd, overdue, principal, positions) in stored(db).items():
        want = replayed(db, loan_id, today)
        assert positions == want.positions, loan_id
        assert (status, dpd, overdue, principal) == (
            want.status.value,
            want.days_past_due,
            want.overdue,
            want.principal_outstanding,
        ), loan_id


def test_month_ends_build_the_history_a_transition_pd_is_estimated_on(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each month end records every loan's delinquency state; with PD from
    transitions, a history too thin to fill each state's row falls back to the
    scorecard PD, and says so in the run summary."""
    import yaml
    from sqlalchemy import func, select

    from lendcore.ifrs9.config import load_config
    from lendcore.store.schema import delinquency_history

    settings = load_config().model_dump(mode="json")
    settings["pd"]["source"] = "transition"
    path = tmp_path / "ifrs9.yaml"
    path.write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("LENDCORE_IFRS9_CONFIG", str(path))
    book = open_book(db, 16, seed=6)
    rng = random.Random(2)
    month_ends = []
    for _ in range(70):
        live_day(book, rng)
        close = eod.run_day(book.servicing)
        if business_date(db).day == 1:
            month_ends.append(close.business_date)
    assert len(month_ends) >= 2
    with db.reading() as conn:
        per_month = dict(
            conn.execute(
                select(delinquency_history.c.month, func.count()).group_by(
                    delinquency_history.c.month
                )
            ).all()
        )
    assert sorted(per_month) == [d.replace(day=1) for d in month_ends]
    assert all(count >= 1 for count in per_month.values())
    assert close.pd_source.startswith("scorecard (transition history too thin)")


def test_a_product_whose_last_loan_is_repaid_has_its_allowance_released(db: Database) -> None:
    from lendcore.services import ledger
    from lendcore.services import loans as loan_service

    book = open_book(db, 4, seed=1)  # one loan of each product
    for _ in range(3):
        eod.run_day(book.servicing)
    bullet = book.products["working-capital-bullet"]
    loan_id = next(
        i
        for i in book.loan_ids
        if loan_service.get_loan(book.servicing, i).product_code == bullet.code
    )
    allowance = bullet.accounting.loss_allowance
    assert allowance is not None
    assert ledger.account_balance(db, allowance).posted > 0
    view = loan_service.get_loan(book.servicing, loan_id)
    loan_service.repay(book.servicing, loan_id, view.state.payoff, view.currency)
    close = eod.run_day(book.servicing)
    assert ledger.account_balance(db, allowance).posted == 0
    assert close.ecl_change_minor["USD"] < 0


def test_each_summarised_entry_drills_down_to_the_loans_that_make_it(db: Database) -> None:
    """`gl drill`: the loans' parts of an end-of-day entry, per role, put through
    the product's accounting give exactly the entry's postings."""
    from lendcore.services.loans import postings_for
    from lendcore.store.schema import accounts, gl_drill, postings

    book = lived(db, 12, seed=47, nights=3, per_day=3)
    with db.reading() as conn:
        entries = conn.execute(select(gl_drill.c.entry_id)).scalars().all()
        booked = {
            e: sorted(
                tuple(r)
                for r in conn.execute(
                    select(accounts.c.code, postings.c.side, postings.c.amount_minor)
                    .join(accounts, accounts.c.id == postings.c.account_id)
                    .where(postings.c.entry_id == e)
                )
            )
            for e in entries
        }
    assert len(entries) >= 6  # accruals and allowance moves, per product and night
    for entry_id in entries:
        head, lines = eod.drill(db, entry_id)
        assert lines and all(line.deltas for line in lines)
        totals: dict[str, int] = {}
        for line in lines:
            for role, amount in line.deltas.items():
                totals[role] = totals.get(role, 0) + amount
        if set(totals) == {"loss_allowance"}:
            assert abs(totals["loss_allowance"]) == booked[entry_id][0][2]
            continue
        product = next(p for p in book.products.values() if p.code in head["description"])
        drilled = sorted(
            (p.account, p.side.value, p.amount_minor) for p in postings_for(product, totals)
        )
        assert drilled == booked[entry_id]
