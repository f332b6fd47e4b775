"""Polars frames into and out of the database through each driver's fastest path.

End of day moves one row per loan of the book each night; built as SQLAlchemy
statements, the parameters alone cost more than the database's work. Here a
frame goes to SQLite as one prebuilt statement run for every row
(`executemany`), and to PostgreSQL as CSV text that Polars writes and COPY
reads, into the table or into a temporary table that one statement then
applies. Dates travel as ISO 8601 text and every value keeps its column's type.
"""

from __future__ import annotations

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


def _portable(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as ISO text: the form both databases' date columns take."""
    return frame.with_columns(pl.col(pl.Date).dt.to_string("%Y-%m-%d"))


def read_frame(
    conn: Connection,
    sql: str,
    params: Sequence[Any],
    schema: dict[str, Any],
    *,
    chunk: int = 100_000,
) -> pl.DataFrame:
    """The rows of a query in the driver's placeholders (`?` on SQLite, `%s` on
    PostgreSQL), as a frame of `schema`, built `chunk` rows at a time (the rows
    are never all held as Python objects)."""
    flush_queued(conn)
    note_statement(sql)
    # SQLite hands dates over as ISO text and booleans as 0 and 1.
    wire = schema
    if conn.dialect.name == "sqlite":
        wire = {
            name: pl.String if dtype == pl.Date else pl.Int8 if dtype == pl.Boolean else dtype
            for name, dtype in schema.items()
        }
    raw = driver_connection(conn)
    parts = [pl.DataFrame(schema=wire)]
    with driver_errors(conn, sql):
        cursor = raw.cursor()
        try:
            cursor.execute(sql, tuple(params))
            while rows := cursor.fetchmany(chunk):
                parts.append(pl.DataFrame(rows, schema=wire, orient="row"))
        finally:
            cursor.close()
    frame = pl.concat(parts)
    if wire is schema:
        return frame
    return frame.with_columns(
        pl.col(name).str.to_date() if dtype == pl.Date else pl.col(name).cast(dtype)
        for name, dtype in schema.items()
        if wire[name] != dtype
    )


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
            f"SELECT {key}, {guard or key} FROM {table} WHERE {condition.format(t=table)}",
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
