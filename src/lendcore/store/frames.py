"""Polars frames into and out of the database through each driver's fastest path.

End of day moves one row per loan of the book each night; built as SQLAlchemy
statements, the parameters alone cost more than the database's work. Here a
frame goes to SQLite as one prebuilt statement run for every row
(`executemany`), and to PostgreSQL as CSV text that Polars writes and COPY
reads, into the table or into a temporary table that one statement then
applies. Dates travel as ISO 8601 text and every value keeps its column's type.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl
from sqlalchemy import Connection

from lendcore.store.database import (
    driver_connection,
    driver_errors,
    flush_queued,
    note_statement,
)

_COPY_CHUNK = 8 * 2**20  # bytes of CSV per write to the COPY stream
# Field separator of SQLite's joined rows: JSON escapes control characters,
# and no other text the book holds has one.
_UNIT = "\x1f"


def _portable(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as ISO text: the form both databases' date columns take."""
    return frame.with_columns(pl.col(pl.Date).dt.to_string("%Y-%m-%d"))


def read_frame(
    conn: Connection, sql: str, params: Sequence[Any], schema: dict[str, Any]
) -> pl.DataFrame:
    """The rows of a query as a frame of `schema`, whose names the query's
    columns carry. Placeholders are the driver's (`?` on SQLite, `%s` on
    PostgreSQL).

    The rows never become Python objects one value at a time: SQLite joins
    them into one text (`group_concat`) and PostgreSQL sends them as CSV
    (`COPY ... TO STDOUT`), and Polars parses the text."""
    flush_queued(conn)
    names = list(schema)
    raw = driver_connection(conn)
    if conn.dialect.name == "sqlite":
        fields = " || char(31) || ".join(f"coalesce(CAST(q.{n} AS TEXT), '')" for n in names)
        wrapped = f"SELECT group_concat({fields}, char(10)) FROM ({sql}) AS q"
        note_statement(wrapped)
        with driver_errors(conn, wrapped):
            text = raw.execute(wrapped, tuple(params)).fetchone()[0]
        data = b"" if text is None else text.encode()
        separator, quote = _UNIT, None
        # SQLite's text of a boolean is 0 or 1.
        wire = {n: pl.Int8 if t == pl.Boolean else t for n, t in schema.items()}
    else:
        copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
        note_statement(copy_sql)
        buffer = bytearray()
        with (
            driver_errors(conn, copy_sql),
            raw.cursor() as cursor,
            cursor.copy(copy_sql, tuple(params) or None) as copy,
        ):
            for block in copy:
                buffer += block
        data = bytes(buffer)
        separator, quote = ",", '"'
        # PostgreSQL's CSV writes a boolean as t or f.
        wire = {n: pl.String if t == pl.Boolean else t for n, t in schema.items()}
    wire = {n: pl.String if t == pl.Date else t for n, t in wire.items()}
    if not data:
        return pl.DataFrame(schema=schema)
    frame = pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        new_columns=names,
        separator=separator,
        quote_char=quote,
        schema=wire,
    )
    return frame.with_columns(
        _from_wire(pl.col(n), wire[n], t) for n, t in schema.items() if wire[n] != t
    )


def _from_wire(column: pl.Expr, wire: Any, dtype: Any) -> pl.Expr:
    if dtype == pl.Date:
        return column.str.to_date("%Y-%m-%d")
    if wire == pl.String:  # a PostgreSQL boolean
        return column == "t"
    return column.cast(dtype)


def _copy(conn: Connection, table: str, frame: pl.DataFrame) -> None:
    sql = f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)"
    note_statement(sql)
    text = _portable(frame).write_csv(include_header=False, null_value="")
    data = text.encode()
    raw = driver_connection(conn)
    with driver_errors(conn, sql), raw.cursor() as cursor, cursor.copy(sql) as copy:
        for start in range(0, len(data), _COPY_CHUNK):
            copy.write(data[start : start + _COPY_CHUNK])


def _staged(conn: Connection, table: str, frame: pl.DataFrame) -> str:
    """PostgreSQL: `frame` in a temporary table shaped like `table`'s columns
    (dropped at commit); returns its name."""
    stage = f"frame_{table}"
    columns = ", ".join(frame.columns)
    raw = driver_connection(conn)
    sql = (
        f"DROP TABLE IF EXISTS {stage}; "
        f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"
    )
    note_statement(sql)
    with driver_errors(conn, sql):
        raw.execute(sql)
    _copy(conn, stage, frame)
    return stage


def _run(conn: Connection, sql: str, rows: Any = None, *, fetch: bool = False) -> Any:
    note_statement(sql)
    raw = driver_connection(conn)
    with driver_errors(conn, sql):
        if rows is not None:
            raw.executemany(sql, rows)
            return None
        cursor = raw.execute(sql)
        return cursor.fetchall() if fetch else None


def insert_frame(conn: Connection, table: str, frame: pl.DataFrame, *, conflict: str = "") -> None:
    """Insert every row of `frame` (its columns named as `table`'s), with an
    `ON CONFLICT ...` clause when given."""
    if frame.is_empty():
        return
    flush_queued(conn)
    columns = ", ".join(frame.columns)
    if conn.dialect.name == "postgresql" and not conflict:
        _copy(conn, table, frame)
    elif conn.dialect.name == "postgresql":
        stage = _staged(conn, table, frame)
        _run(conn, f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} {conflict}")
    else:
        marks = ", ".join("?" * frame.width)
        _run(
            conn,
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) {conflict}",
            _portable(frame).iter_rows(),
        )


def update_frame(
    conn: Connection,
    table: str,
    frame: pl.DataFrame,
    *,
    key: str,
    guard: str | None = None,
    condition: str = "TRUE",
) -> pl.Series:
    """Set each row's other columns where `table.key` is the row's `key`, and
    the row's `guard` column (when given) still equals the table's and
    `condition` holds (SQL over the table's columns, each written `{t}.name`).
    Returns the keys not updated: a guard or condition that no longer held, or
    no such row.

    The guard is checked by the UPDATE itself on PostgreSQL, so a row a
    concurrent transaction changed first is left alone; SQLite's writer holds
    the database, so it is read first."""
    if frame.is_empty():
        return pl.Series(key, [], dtype=frame.schema.get(key, pl.Int64))
    flush_queued(conn)
    values = [c for c in frame.columns if c not in (key, guard)]
    if conn.dialect.name == "postgresql":
        stage = _staged(conn, table, frame)
        sets = ", ".join(f"{c} = s.{c}" for c in values)
        guarded = f" AND t.{guard} = s.{guard}" if guard else ""
        skipped = _run(
            conn,
            f"WITH done AS (UPDATE {table} t SET {sets} FROM {stage} s "
            f"WHERE t.{key} = s.{key}{guarded} AND ({condition.format(t='t')}) "
            f"RETURNING t.{key}) "
            f"SELECT s.{key} FROM {stage} s LEFT JOIN done d ON d.{key} = s.{key} "
            f"WHERE d.{key} IS NULL",
            fetch=True,
        )
        return pl.Series(key, [r[0] for r in skipped], dtype=frame.schema[key])
    fresh = frame
    if guard or condition != "TRUE":
        held = read_frame(
            conn,
            f"SELECT {key}, {guard or key} AS {guard or key}_now FROM {table} "
            f"WHERE {condition.format(t=table)}",
            (),
            {key: frame.schema[key], f"{guard or key}_now": frame.schema[guard or key]},
        )
        on = [key, guard] if guard else [key]
        fresh = frame.join(
            held.rename({f"{guard or key}_now": guard}) if guard else held.select(key),
            on=on,
            how="semi",
        )
    sets = ", ".join(f"{c} = ?" for c in values)
    _run(
        conn,
        f"UPDATE {table} SET {sets} WHERE {key} = ?",
        _portable(fresh.select(*values, key)).iter_rows(),
    )
    return frame.join(fresh.select(key), on=key, how="anti")[key]


def upsert_frame(conn: Connection, table: str, frame: pl.DataFrame, *, key: str) -> None:
    """Insert each row, or set its other columns where `key` exists already."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in frame.columns if c != key)
    insert_frame(conn, table, frame, conflict=f"ON CONFLICT ({key}) DO UPDATE SET {sets}")
