"""end of day

Revision ID: 0005
Revises: 0004
End of day's runs, the loans behind each summarised posting, and IFRS 9
provisions (each loan's stage and ECL, the stage mix and the allowance's
movements per day). Loans gain their credit risk at booking and a forbearance
flag.

Create Date: 2026-11-26 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lendcore.store.migrations.ddl import append_only, drop_append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EOD_APPEND_ONLY = (
    "eod_runs",
    "gl_drill",
    "provision_movements",
    "provision_stage_mix",
    "delinquency_history",
)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("pd_origination", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("risk_band", sa.String(length=8), nullable=True))
        batch.add_column(
            sa.Column("forborne", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    op.create_table(
        "eod_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.String(length=32), nullable=False),
        sa.Column("finished_at", sa.String(length=32), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", name=op.f("pk_eod_runs")),
    )
    op.create_table(
        "gl_drill",
        sa.Column("entry_id", _id(), nullable=False),
        sa.Column("loan_id", _id(), nullable=False),
        sa.Column("deltas_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "loan_id", name=op.f("pk_gl_drill")),
    )
    op.create_table(
        "loan_provisions",
        sa.Column("loan_id", _id(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("qualifying_stage", sa.SmallInteger(), nullable=True),
        sa.Column("qualifying_since", sa.Date(), nullable=True),
        sa.Column("pd_now", sa.String(length=32), nullable=False),
        sa.Column("exposure_minor", sa.BigInteger(), nullable=False),
        sa.Column("ecl_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_provisions_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_provisions")),
    )
    op.create_table(
        "provision_movements",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("stage_from", sa.SmallInteger(), nullable=True),
        sa.Column("stage_to", sa.SmallInteger(), nullable=True),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("amount_out_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_in_minor", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provision_movements")),
    )
    op.create_index(
        op.f("ix_provision_movements_date"),
        "provision_movements",
        ["business_date"],
        unique=False,
    )
    op.create_table(
        "provision_stage_mix",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("exposure_minor", sa.BigInteger(), nullable=False),
        sa.Column("ecl_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "business_date", "product_code", "stage", name=op.f("pk_provision_stage_mix")
        ),
    )
    op.create_table(
        "delinquency_history",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("loan_id", _id(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("month", "loan_id", name=op.f("pk_delinquency_history")),
    )
    append_only(EOD_APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(EOD_APPEND_ONLY, drop_function=False)
    op.drop_table("delinquency_history")
    op.drop_table("provision_stage_mix")
    op.drop_index(op.f("ix_provision_movements_date"), table_name="provision_movements")
    op.drop_table("provision_movements")
    op.drop_table("loan_provisions")
    op.drop_table("gl_drill")
    op.drop_table("eod_runs")
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("forborne")
        batch.drop_column("risk_band")
        batch.drop_column("pd_origination")
