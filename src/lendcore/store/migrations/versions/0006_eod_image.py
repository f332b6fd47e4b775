"""end of day's image of the decoded book; the loans' snapshots apart

Revision ID: 0006
Revises: 0005
The loans' snapshots decoded into end of day's columns, kept as Parquet parts
checked loan by loan against `last_seq`, so a night decodes only the loans
whose events moved. The snapshots themselves move from the loan's row to a
table of their own, so that end of day's nightly update of every loan's row
does not rewrite its snapshot too.

Create Date: 2026-11-26 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "eod_image",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("first_loan_id", _id(), nullable=False),
        sa.Column("last_loan_id", _id(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("written_on", sa.Date(), nullable=False),
        sa.Column("loans_body", sa.LargeBinary(), nullable=False),
        sa.Column("dues_body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eod_image")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The bodies are compressed Parquet already: store them as they are.
        op.execute("ALTER TABLE eod_image ALTER COLUMN loans_body SET STORAGE EXTERNAL")
        op.execute("ALTER TABLE eod_image ALTER COLUMN dues_body SET STORAGE EXTERNAL")

    op.create_table(
        "loan_snapshots",
        sa.Column("loan_id", _id(), nullable=False),
        sa.Column("snapshot_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_snapshots_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_snapshots")),
    )
    op.execute(
        "INSERT INTO loan_snapshots (loan_id, snapshot_json) "
        "SELECT id, snapshot_json FROM loans WHERE snapshot_json IS NOT NULL"
    )
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("snapshot_json")


def downgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("snapshot_json", sa.Text(), nullable=True))
    op.execute(
        "UPDATE loans SET snapshot_json = "
        "(SELECT s.snapshot_json FROM loan_snapshots s WHERE s.loan_id = loans.id)"
    )
    op.drop_table("loan_snapshots")
    op.drop_table("eod_image")
