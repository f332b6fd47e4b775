"""Bulk writes through each database's fastest path (COPY on PostgreSQL).

Statements here are prebuilt driver SQL: building a SQLAlchemy Core statement
costs more CPU than the database spends running a small one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from lendcore.store.database import (
    driver_connection,
    driver_errors,
    flush_queued,
    note_statement,
    send_later,
)

# Below this many rows a multi-row statement beats setting up a COPY.
COPY_ROWS_MIN = 256


def placeholders(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    return ", ".join([mark] * count)


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert `rows` into `table` inside the caller's transaction.

    On PostgreSQL a large set streams through COPY (after anything queued); a
    small one is queued as one statement to go with the commit."""
    if not rows:
        return
    column_list = ", ".join(columns)
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_ROWS_MIN:
        copy_rows(conn, table, columns, rows)
        return
    if conn.dialect.name == "postgresql":
        row_marks = "(" + placeholders(conn, len(columns)) + ")"
        values = ", ".join([row_marks] * len(rows))
        send_later(
            conn,
            f"INSERT INTO {table} ({column_list}) VALUES {values}",
            [value for row in rows for value in row],
        )
        return
    execute_many(
        conn,
        f"INSERT INTO {table} ({column_list}) VALUES ({placeholders(conn, len(columns))})",
        rows,
    )


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """PostgreSQL: stream `rows` into `table` through COPY (after anything queued).

    `rows` may be a generator: each row goes to the server as it is made, so
    the server stores rows while the caller computes the next ones."""
    flush_queued(conn)
    raw = driver_connection(conn)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    note_statement(sql)
    with driver_errors(conn, sql), raw.cursor() as cursor, cursor.copy(sql) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def execute_many(conn: Connection, sql_qmark: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement (written with `?` marks) for every row, in the caller's
    transaction: at once on SQLite, with the commit (pipelined) on PostgreSQL."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        note_statement(sql_qmark)
        with driver_errors(conn, sql_qmark):
            driver_connection(conn).executemany(sql_qmark, rows)
        return
    sql = sql_qmark.replace("?", "%s")
    for row in rows:
        send_later(conn, sql, row)
