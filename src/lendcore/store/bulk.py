"""Bulk writes through each database's fastest path (COPY on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

# Below this many rows a pipelined executemany beats setting up a COPY.
COPY_ROWS_MIN = 256


def placeholders(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    return ", ".join([mark] * count)


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` into `table` inside the caller's transaction."""
    if not rows:
        return
    column_list = ", ".join(columns)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_ROWS_MIN:
        raw = conn.connection.driver_connection
        if raw is None:
            raise RuntimeError("no driver connection for COPY")
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders(conn, len(columns))})"
    conn.exec_driver_sql(sql, list(rows))


def execute_many(conn: Connection, sql_qmark: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement (written with `?` marks) for every row."""
    if not rows:
        return
    sql = sql_qmark if conn.dialect.name == "sqlite" else sql_qmark.replace("?", "%s")
    conn.exec_driver_sql(sql, list(rows))
