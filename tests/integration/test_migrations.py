"""Migrations and the schema module agree; downgrade and upgrade round-trip."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, Column, MetaData, inspect, text

from lendcore.ledger.model import AccountType
from lendcore.services import ledger
from lendcore.services.verify import verify_ledger
from lendcore.store import migrations
from lendcore.store.database import Database
from lendcore.store.schema import APPEND_ONLY_TABLES, metadata
from tests.integration.ledger_helpers import open_accounts, transfer

LEDGER_TABLES = {
    "institution",
    "accounts",
    "account_balances",
    "account_daily_balances",
    "journal_entries",
    "postings",
    "holds",
    "ledger_seals",
    "ledger_chain_head",
}


def differences(db: Database, target: MetaData) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))


def test_migrated_database_matches_the_schema_module(db: Database) -> None:
    assert differences(db, metadata) == []
    with db.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision()
        assert LEDGER_TABLES | {"alembic_version"} <= set(inspect(conn).get_table_names())


def test_comparison_sees_a_difference(db: Database) -> None:
    """The check above is not vacuous: a column the database lacks is reported."""
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["postings"].append_column(Column("extra_minor", BigInteger, nullable=True))
    diff = differences(db, changed)
    assert len(diff) == 1
    kind, _schema, table, column = diff[0]  # type: ignore[misc]
    assert (kind, table, column.name) == ("add_column", "postings", "extra_minor")


def _triggers(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        if db.is_postgres:
            sql = (
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            )
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return {row[0] for row in conn.execute(text(sql))}


def test_downgrade_to_base_and_upgrade_again(db: Database) -> None:
    open_accounts(db, ("cash", AccountType.ASSET, "USD"), ("equity", AccountType.EQUITY, "USD"))
    ledger.book_entry(db, transfer("before", "cash", "equity", 100))
    if db.is_postgres:
        expected_triggers = {
            f"{t}_{kind}" for t in APPEND_ONLY_TABLES for kind in ("append_only", "no_truncate")
        }
    else:
        expected_triggers = {
            f"{t}_{kind}" for t in APPEND_ONLY_TABLES for kind in ("no_update", "no_delete")
        }
    # Later migrations may guard more tables; the journal's guards are always there.
    assert expected_triggers <= _triggers(db)

    with db.engine.connect() as conn, conn.begin():
        command.downgrade(migrations.alembic_config(conn), "base")
    with db.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
        assert migrations.current_revision(conn) is None
    assert _triggers(db) == set()

    migrations.upgrade(db)
    assert differences(db, metadata) == []
    assert expected_triggers <= _triggers(db)
    # A fresh, working ledger: empty, and it books and verifies again.
    assert ledger.list_accounts(db) == []
    open_accounts(db, ("cash", AccountType.ASSET, "USD"), ("equity", AccountType.EQUITY, "USD"))
    entry = ledger.book_entry(db, transfer("after", "cash", "equity", 100))
    assert entry.id == 1
    report = verify_ledger(db)
    assert report.ok
    assert (report.entries_checked, report.head_seq) == (1, 1)


def test_end_of_day_history_survives_0006_down_and_up(db: Database) -> None:
    """0006 moves the loans' snapshots to a table of their own and the drill
    rows into one body per entry: down to 0005 and up again keeps both."""
    from lendcore.services import eod
    from lendcore.services import loans as loan_service
    from tests.integration.eod_helpers import lived

    book = lived(db, 6, seed=31, nights=2, per_day=2)
    with db.reading() as conn:
        entries = [r[0] for r in conn.execute(text("SELECT entry_id FROM gl_drill"))]
    drills = {e: eod.drill(db, e) for e in entries}
    views = {i: loan_service.get_loan(db, i).state for i in book.loan_ids}

    with db.engine.connect() as conn, conn.begin():
        command.downgrade(migrations.alembic_config(conn), "0005")
    with db.engine.connect() as conn:
        held = conn.execute(
            text("SELECT count(*) FROM loans WHERE snapshot_json IS NOT NULL")
        ).scalar_one()
        assert held == len(book.loan_ids)
    migrations.upgrade(db)
    assert differences(db, metadata) == []
    assert {e: eod.drill(db, e) for e in entries} == drills
    assert {i: loan_service.get_loan(db, i).state for i in book.loan_ids} == views
