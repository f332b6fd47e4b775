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


def downgrade() -> None:
    # --- products (begin) --------------------------------------------------------------
    drop_append_only(PRODUCT_TABLES, drop_function=False)
    op.drop_table("products")
    # --- products (end) ----------------------------------------------------------------
