"""The one SQLAlchemy Core schema for SQLite and PostgreSQL.

Alembic migrations are generated from this metadata; a test checks that a
migrated database and this module agree. Amounts are BIGINT minor units.
Timestamps that enter the audit chain are ISO 8601 UTC text, so they
round-trip byte for byte on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

# Naming convention so constraint names are the same on both databases and
# migrations can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-assigns INTEGER PRIMARY KEY (a rowid alias), not BIGINT.
Id = BigInteger().with_variant(Integer, "sqlite")

# The institution: one row holding the business date end of day advances.
institution = Table(
    "institution",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("business_date", Date, nullable=False),
    Column("updated_at", String(32), nullable=False),
    CheckConstraint("id = 1", name="singleton"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("type", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("normal_side", String(6), nullable=False),
    Column("parent_id", Id, ForeignKey("accounts.id"), nullable=True),
    Column("status", String(8), nullable=False),
    Column("balance_constraint", String(16), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("closed_on", Date, nullable=True),
    Column("created_at", String(32), nullable=False),
    CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"),
    CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side"),
    CheckConstraint("status IN ('open', 'closed')", name="status"),
    CheckConstraint(
        "balance_constraint IN ('none', 'non_negative', 'non_positive')",
        name="balance_constraint",
    ),
)
Index("ix_accounts_parent_id", accounts.c.parent_id)

# Current balance per account, maintained in the booking transaction. Pending
# amounts are reserved by holds and count against balance constraints.
account_balances = Table(
    "account_balances",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    CheckConstraint(
        "debits_posted >= 0 AND credits_posted >= 0 "
        "AND debits_pending >= 0 AND credits_pending >= 0",
        name="non_negative_totals",
    ),
)

# Cumulative posted totals at the end of each business date on which the
# account moved: the balance as of any past date is one indexed lookup.
account_daily_balances = Table(
    "account_daily_balances",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    Column("business_date", Date, primary_key=True),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("description", String(500), nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("reverses_entry_id", Id, ForeignKey("journal_entries.id"), nullable=True, unique=True),
    Column("hold_id", Id, ForeignKey("holds.id"), nullable=True, unique=True),
    Column("entry_digest", String(64), nullable=False),
)
Index("ix_journal_entries_business_date", journal_entries.c.business_date)

postings = Table(
    "postings",
    metadata,
    Column(
        "entry_id",
        Id,
        ForeignKey("journal_entries.id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("line_no", SmallInteger, primary_key=True, autoincrement=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("side", String(1), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    CheckConstraint("side IN ('D', 'C')", name="side"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
)
Index("ix_postings_account_id_entry_id", postings.c.account_id, postings.c.entry_id)

# Two-phase transfers: a hold reserves an amount moving from one account to
# another; it is later posted (in full or in part), voided, or expires.
holds = Table(
    "holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("debit_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(8), nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("resolved_on", Date, nullable=True),
    Column("description", String(500), nullable=False),
    Column("metadata_json", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status"),
)
Index("ix_holds_status_expires_on", holds.c.status, holds.c.expires_on)

# The audit chain: each seal covers one entry or a batch of entries (by id)
# and the previous seal's hash. Append-only like the journal.
ledger_seals = Table(
    "ledger_seals",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("prev_hash", String(64), nullable=False),
    Column("seal_hash", String(64), nullable=False),
    Column("entry_ids", Text, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("sealed_at", String(32), nullable=False),
)

# The head of the chain: a single row locked last in every booking
# transaction, so seals follow commit order.
ledger_chain_head = Table(
    "ledger_chain_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("seal_hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="singleton"),
)

# Tables the database itself keeps append-only (triggers in the migration).
APPEND_ONLY_TABLES: tuple[str, ...] = ("journal_entries", "postings", "ledger_seals")
