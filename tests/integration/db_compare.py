"""Whole-database state, read generically, to compare two databases.

Every table the database holds is read (so tables added later are compared
too), rows sorted, leaving out only what differs between two runs of the same
commands by construction:

- wall-clock columns (every column named `*_at`: created_at, recorded_at,
  started_at, finished_at, updated_at, sealed_at, ...), and the values derived
  from them: the ledger's entry digests and seal hashes and the audit chain's
  hashes (their validity is checked by `ledger verify` instead, see
  `verify_report`), request ids and event ids (random per command);
- inside JSON text: the same keys, `seconds` (time per step of a run),
  `snapshots_decoded` (how much of a run's book came from end of day's image),
  and memory addresses in the repr of Python objects;
- end of day's image of the decoded book (`eod_image`), a cache whose content
  depends on which runs wrote it, not on the book (test_eod_image holds a
  night from it equal to a night from every snapshot).

Ids drawn from a sequence are compared by rank: on PostgreSQL a transaction
that was rolled back (or a process killed mid-transaction) has consumed
sequence values, so the same rows can carry ids with gaps. Every table with a
single integer primary key `id` has its ids renumbered 1..n in id order, and
every reference to them (foreign keys; `*_id` columns named after the table;
entry ids in JSON, in outbox aggregate ids and in ledger seals) with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from lendcore.cli import app
from lendcore.ledger.chain import decode_id_ranges
from lendcore.store.database import normalise_url

# Columns whose values depend on the wall clock, randomness or hash chains.
DERIVED_COLUMNS = frozenset(
    {"entry_digest", "prev_hash", "seal_hash", "record_hash", "request_id", "event_id"}
)
DROPPED_JSON_KEYS = frozenset({"seconds", "snapshots_decoded", "request_id", "event_id"})
CACHE_TABLES = frozenset({"eod_image"})
# The repr of a Python object carries its memory address (the audit log records
# `eod.run`'s progress callback so): the address is left out.
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")
JOURNAL = "journal_entries"
# Outbox aggregate types whose aggregate_id is a row id of a table.
AGGREGATE_TABLES = {"journal_entry": JOURNAL, "loan": "loans", "approval": "pending_approvals"}

Row = tuple[Any, ...]


@dataclass(frozen=True)
class TableState:
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


State = dict[str, TableState]


def _wall_clock(column: str) -> bool:
    return column.endswith("_at")


def _kept(column: str) -> bool:
    return not _wall_clock(column) and column not in DERIVED_COLUMNS


def read_state(url: str, *, same: Mapping[str, str] | None = None) -> State:
    """Every table of the database at `url`, normalised (see the module doc).

    `same`: string values to read as another (in columns and inside JSON), for
    comparing runs that differ in a known way (an engine's name, say)."""
    engine = create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            tables = sorted(set(inspector.get_table_names()) - CACHE_TABLES)
            raw: dict[str, tuple[list[str], list[Row]]] = {}
            for table in tables:
                result = conn.execute(text(f'SELECT * FROM "{table}"'))
                raw[table] = (list(result.keys()), [tuple(r) for r in result])
            references = _references(inspector, tables, raw)
    finally:
        engine.dispose()
    ranks = _ranks(raw)
    alias = dict(same or {})
    return {table: _normalise(table, raw[table], references, ranks, alias) for table in tables}


def _serial_tables(raw: Mapping[str, tuple[list[str], list[Row]]]) -> list[str]:
    found = []
    for table, (columns, rows) in raw.items():
        if "id" in columns and all(isinstance(r[columns.index("id")], int) for r in rows):
            found.append(table)
    return found


def _ranks(raw: Mapping[str, tuple[list[str], list[Row]]]) -> dict[str, dict[int, int]]:
    ranks: dict[str, dict[int, int]] = {}
    for table in _serial_tables(raw):
        columns, rows = raw[table]
        at = columns.index("id")
        ranks[table] = {old: new for new, old in enumerate(sorted(r[at] for r in rows), start=1)}
    return ranks


def _table_for(column: str, serial: Iterable[str]) -> str | None:
    """The table a `*_id` column without a foreign key refers to, by its name."""
    if column == "id" or not column.endswith("_id"):
        return None
    stem = column[: -len("_id")]
    if stem == "entry" or stem.endswith("_entry"):
        return JOURNAL
    known = set(serial)
    words = stem.split("_")
    for start in range(len(words)):
        candidate = "_".join(words[start:]) + "s"
        if candidate in known:
            return candidate
    return None


def _references(
    inspector: Any, tables: list[str], raw: Mapping[str, tuple[list[str], list[Row]]]
) -> dict[tuple[str, str], str]:
    """(table, column) -> the table whose ids it holds."""
    serial = _serial_tables(raw)
    found: dict[tuple[str, str], str] = {}
    for table in tables:
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_columns"] == ["id"] and len(fk["constrained_columns"]) == 1:
                found[(table, fk["constrained_columns"][0])] = fk["referred_table"]
        for column in raw[table][0]:
            if (table, column) not in found:
                target = _table_for(column, serial)
                if target is not None:
                    found[(table, column)] = target
    return found


def _normalise(
    table: str,
    content: tuple[list[str], list[Row]],
    references: Mapping[tuple[str, str], str],
    ranks: Mapping[str, Mapping[int, int]],
    same: Mapping[str, str],
) -> TableState:
    columns, rows = content
    keep = [i for i, c in enumerate(columns) if _kept(c)]
    journal = ranks.get(JOURNAL, {})
    out = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        new: list[Any] = []
        for i in keep:
            column, value = columns[i], row[i]
            target = table if column == "id" and table in ranks else references.get((table, column))
            if target is not None and isinstance(value, int):
                value = ranks.get(target, {}).get(value, value)
            elif table == "outbox_events" and column == "aggregate_id":
                value = _aggregate(values.get("aggregate_type"), value, ranks)
            elif table == "ledger_seals" and column == "entry_ids":
                value = tuple(journal.get(i, i) for i in decode_id_ranges(value))
            elif isinstance(value, str) and value[:1] in ("{", "["):
                value = _json_text(value, journal, same)
            elif isinstance(value, str):
                value = same.get(value, value)
            new.append(value)
        out.append(tuple(new))
    out.sort(key=lambda r: json.dumps(r, default=str, sort_keys=True))
    return TableState(tuple(columns[i] for i in keep), tuple(out))


def _aggregate(kind: Any, value: Any, ranks: Mapping[str, Mapping[int, int]]) -> Any:
    target = AGGREGATE_TABLES.get(str(kind))
    if target is None or not str(value).isdigit():
        return value
    return str(ranks.get(target, {}).get(int(value), int(value)))


def _json_text(value: str, journal: Mapping[int, int], same: Mapping[str, str]) -> Any:
    try:
        doc = json.loads(value)
    except ValueError:
        return same.get(value, value)
    return json.dumps(_scrub(doc, journal, same), sort_keys=True)


def _scrub(doc: Any, journal: Mapping[int, int], same: Mapping[str, str], key: str = "") -> Any:
    if isinstance(doc, dict):
        return {
            k: _scrub(v, journal, same, k)
            for k, v in doc.items()
            if k not in DROPPED_JSON_KEYS and not _wall_clock(k)
        }
    if isinstance(doc, list):
        if key.endswith(("entries", "entry_ids")) and all(isinstance(v, int) for v in doc):
            return [journal.get(v, v) for v in doc]
        return [_scrub(v, journal, same) for v in doc]
    if isinstance(doc, int) and not isinstance(doc, bool) and key.endswith("entry_id"):
        return journal.get(doc, doc)
    if isinstance(doc, str):
        return same.get(doc, ADDRESS.sub(" at 0x?>", doc))
    return doc


def differences(left: State, right: State, *, limit: int = 12) -> list[str]:
    """What differs between two states, table by table (at most `limit` lines)."""
    found: list[str] = []
    for table in sorted(set(left) | set(right)):
        if table not in left or table not in right:
            found.append(f"{table}: only in {'right' if table not in left else 'left'}")
            continue
        a, b = left[table], right[table]
        if a.columns != b.columns:
            found.append(f"{table}: columns {a.columns} != {b.columns}")
            continue
        if a.rows == b.rows:
            continue
        only_a = sorted(set(a.rows) - set(b.rows), key=repr)
        only_b = sorted(set(b.rows) - set(a.rows), key=repr)
        found.append(
            f"{table}: {len(a.rows)} rows vs {len(b.rows)}; "
            f"{len(only_a)} only left, {len(only_b)} only right"
        )
        for label, rows in (("left ", only_a), ("right", only_b)):
            for r in rows[:2]:
                found.append(f"  {label} {dict(zip(a.columns, r, strict=True))}"[:600])
    return found[:limit] if len(found) > limit else found


def assert_same_state(left: State, right: State, what: str = "") -> None:
    diff = differences(left, right)
    assert not diff, f"{what} databases differ:\n" + "\n".join(diff)


def row_count(state: State) -> int:
    return sum(len(t.rows) for t in state.values())


_runner = CliRunner()


def verify_report(url: str) -> dict[str, Any]:
    """`lendcore ledger verify --json`: the ledger's and audit log's chains
    recomputed; the head hash left out (it covers wall-clock times)."""
    result = _runner.invoke(app, ["--db", url, "ledger", "verify", "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True, report["problems"]
    report["chain_head"].pop("hash")
    return dict(report)
