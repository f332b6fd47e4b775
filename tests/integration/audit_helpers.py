"""Helpers for the authorization tests: what a command wrote, read behind lendcore's back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, select, text

from lendcore.store.database import Database
from lendcore.store.schema import audit_chain_head, audit_log

AUDIT_TABLES = ("audit_log", "audit_chain_head")


def table_contents(db: Database, *, skip: tuple[str, ...] = AUDIT_TABLES) -> dict[str, list[Any]]:
    """Every row of every table (but `skip`), each table's rows in a stable order."""
    with db.reading() as conn:
        names = sorted(n for n in inspect(conn).get_table_names() if n not in skip)
        contents = {
            name: sorted(
                tuple(repr(v) for v in row) for row in conn.execute(text(f"SELECT * FROM {name}"))
            )
            for name in names
        }
    if "journal_entries" not in contents or "users" not in contents:
        raise AssertionError(f"lendcore's tables are missing: {sorted(contents)}")
    return contents


def text_values(db: Database) -> list[tuple[str, str, str]]:
    """(table, column, value) for every non-null value of every table, as text."""
    found = []
    with db.reading() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            result = conn.execute(text(f"SELECT * FROM {name}"))
            columns = list(result.keys())
            for row in result:
                found += [
                    (name, c, str(v)) for c, v in zip(columns, row, strict=True) if v is not None
                ]
    return found


def audit_after(db: Database, seq: int) -> list[Any]:
    """Audit records written after record `seq`, in order."""
    with db.reading() as conn:
        return list(
            conn.execute(select(audit_log).where(audit_log.c.seq > seq).order_by(audit_log.c.seq))
        )


def audit_head(db: Database) -> tuple[int, str]:
    with db.reading() as conn:
        seq, digest = conn.execute(
            select(audit_chain_head.c.seq, audit_chain_head.c.record_hash)
        ).one()
    return int(seq), digest


def count(db: Database, table: str) -> int:
    with db.reading() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
