"""end of day's image of the decoded book; the loans' snapshots apart

Revision ID: 0006
Revises: 0005
The loans' snapshots decoded into end of day's columns, kept as Parquet parts
checked loan by loan against `last_seq`, so a night decodes only the loans
whose events moved. The snapshots themselves move from the loan's row to a
table of their own, so that end of day's nightly update of every loan's row
does not rewrite its snapshot too. The loans behind each summarised entry
(`gl_drill`) become one row per entry, their parts in a Parquet body.

Create Date: 2026-11-26 17:30:00.000000
"""

from __future__ import annotations

import io
import json

import polars as pl
import sqlalchemy as sa
from alembic import op

from lendcore.store.migrations.ddl import append_only

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
        # End of day updates every loan's row and provision each night: room on
        # each page lets the new row version stay there (a HOT update, no new
        # index entries). New pages keep it; VACUUM FULL rewrites the old ones.
        op.execute("ALTER TABLE loans SET (fillfactor = 70)")
        op.execute("ALTER TABLE loan_provisions SET (fillfactor = 70)")

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
    # SQLite (3.35 and later) drops a column in place; rebuilding the table
    # would drop a table the loans' events and provisions refer to.
    op.drop_column("loans", "snapshot_json")

    _drill_to_bodies()


def _drill_to_bodies() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT entry_id, loan_id, deltas_json FROM gl_drill ORDER BY entry_id, loan_id")
    ).all()
    op.drop_table("gl_drill")
    table = op.create_table(
        "gl_drill",
        sa.Column("entry_id", _id(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_gl_drill")),
    )
    append_only(("gl_drill",))
    by_entry: dict[int, list[dict[str, int]]] = {}
    for entry_id, loan_id, deltas in rows:
        by_entry.setdefault(entry_id, []).append({"loan_id": loan_id, **json.loads(deltas)})
    for entry_id, lines in by_entry.items():
        frame = pl.DataFrame(lines).fill_null(0)
        frame = frame.select("loan_id", *sorted(c for c in frame.columns if c != "loan_id"))
        buffer = io.BytesIO()
        frame.cast(pl.Int64).write_parquet(buffer, compression="zstd", statistics=False)
        op.bulk_insert(
            table, [{"entry_id": entry_id, "loans": frame.height, "body": buffer.getvalue()}]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans RESET (fillfactor)")
        op.execute("ALTER TABLE loan_provisions RESET (fillfactor)")
    op.add_column("loans", sa.Column("snapshot_json", sa.Text(), nullable=True))
    op.execute(
        "UPDATE loans SET snapshot_json = "
        "(SELECT s.snapshot_json FROM loan_snapshots s WHERE s.loan_id = loans.id)"
    )
    op.drop_table("loan_snapshots")
    op.drop_table("eod_image")
    bodies = op.get_bind().execute(sa.text("SELECT entry_id, body FROM gl_drill")).all()
    op.drop_table("gl_drill")
    table = op.create_table(
        "gl_drill",
        sa.Column("entry_id", _id(), nullable=False),
        sa.Column("loan_id", _id(), nullable=False),
        sa.Column("deltas_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "loan_id", name=op.f("pk_gl_drill")),
    )
    append_only(("gl_drill",))
    for entry_id, body in bodies:
        frame = pl.read_parquet(io.BytesIO(body))
        roles = [c for c in frame.columns if c != "loan_id"]
        op.bulk_insert(
            table,
            [
                {
                    "entry_id": entry_id,
                    "loan_id": row["loan_id"],
                    "deltas_json": json.dumps({r: row[r] for r in roles if row[r]}, sort_keys=True),
                }
                for row in frame.iter_rows(named=True)
            ],
        )
