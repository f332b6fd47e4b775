"""products and loans

Revision ID: 0003
Revises: 0002
Products: versioned, append-only definitions (a change is a new version).
Loans: added here by servicing, in its own block below.

Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lendcore.store.migrations.ddl import append_only, drop_append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PRODUCT_TABLES = ("products",)
LOAN_TABLES = ("loan_events",)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # --- products (begin) --------------------------------------------------------------
    op.create_table(
        "products",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("definition_json", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("loaded_by", sa.String(length=100), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_products_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_products_code_version")),
    )
    append_only(PRODUCT_TABLES)
    # --- products (end) ----------------------------------------------------------------
    # --- loans (begin) -----------------------------------------------------------------
    op.create_table(
        "loans",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("product_version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("borrower", sa.String(length=200), nullable=True),
        sa.Column("approved_minor", sa.BigInteger(), nullable=False),
        sa.Column("terms_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("principal_outstanding_minor", sa.BigInteger(), nullable=False),
        sa.Column("overdue_minor", sa.BigInteger(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("state_as_of", sa.Date(), nullable=False),
        sa.Column("positions_json", sa.Text(), nullable=False),
        sa.Column("snapshot_json", sa.Text(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("booked_by", sa.String(length=100), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint("approved_minor > 0", name=op.f("ck_loans_approved_positive")),
        sa.ForeignKeyConstraint(
            ["product_code", "product_version"],
            ["products.code", "products.version"],
            name=op.f("fk_loans_product_code_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
    )
    op.create_index(op.f("ix_loans_status"), "loans", ["status"], unique=False)
    op.create_table(
        "loan_events",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("loan_id", _id(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("entry_id", _id(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_loan_events_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_events_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_events")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_loan_events_idempotency_key")),
        sa.UniqueConstraint("loan_id", "seq", name=op.f("uq_loan_events_loan_id_seq")),
    )
    append_only(LOAN_TABLES)
    # --- loans (end) -------------------------------------------------------------------


def downgrade() -> None:
    # --- loans (begin) -----------------------------------------------------------------
    drop_append_only(LOAN_TABLES, drop_function=False)
    op.drop_table("loan_events")
    op.drop_index(op.f("ix_loans_status"), table_name="loans")
    op.drop_table("loans")
    # --- loans (end) -------------------------------------------------------------------
    # --- products (begin) --------------------------------------------------------------
    drop_append_only(PRODUCT_TABLES, drop_function=False)
    op.drop_table("products")
    # --- products (end) ----------------------------------------------------------------
