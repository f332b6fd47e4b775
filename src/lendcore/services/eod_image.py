"""End of day's image of the decoded book.

Every night end of day needs each active loan's snapshot as the kernel's
columns (`eod.kernel.LOAN_SCHEMA` and `DUE_SCHEMA`). Decoding a snapshot's JSON
is most of the cost of a night, yet a snapshot changes only when its loan's
events do: a few loans in a hundred on a given day. So the decoded frames are
kept in the database (`eod_image`, compressed Parquet), each loan's valid while
its `last_seq` is the one recorded beside it, and a night decodes only the
loans the image lacks or holds at another `last_seq`.

The image is a cache that the database holds: read in the same snapshot as the
book, so it is never ahead of the loans; written by end of day alone, under the
run lock; droppable at any time (the next night decodes everything). It is kept
as base parts (whole slices of the book, by loan id) and delta parts (the loans
decoded on a night). A loan's latest part wins. When the deltas grow past a
fifth of the base, or their number past `COMPACT_PARTS`, the night writes a new
base from the frames it has in hand and the old parts are deleted.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Connection, and_, delete, insert, select

from lendcore.eod.kernel import DUE_SCHEMA, LOAN_SCHEMA, frames_from_json
from lendcore.errors import Conflict
from lendcore.store.bulk import placeholders
from lendcore.store.frames import read_frame
from lendcore.store.schema import eod_image

IMAGE_LOAN_SCHEMA: dict[str, Any] = {"last_seq": pl.Int64, **LOAN_SCHEMA}
# Parts written by another layout of the kernel's columns are not read.
FORMAT = hashlib.sha256(
    repr(
        (sorted((k, str(v)) for k, v in IMAGE_LOAN_SCHEMA.items()), list(DUE_SCHEMA.items()))
    ).encode()
).hexdigest()[:16]
COMPACT_SHARE = 0.2
COMPACT_PARTS = 30
_IN_LIST = 500  # loan ids per IN (...) when only a few of a slice need decoding
DECODE_BATCH = 20_000
_BASE_CACHE = 2  # decoded base parts kept while the slices walk the book


class EodSnapshotMissing(Conflict):
    code = "EOD_SNAPSHOT_MISSING"


def encode(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=False)
    return buffer.getvalue()


def decode(body: bytes, schema: dict[str, Any] | None = None) -> pl.DataFrame:
    frame = pl.read_parquet(io.BytesIO(body))
    if schema is None:
        return frame
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


@dataclass(frozen=True, slots=True)
class _Part:
    id: int
    kind: str
    first_loan_id: int
    last_loan_id: int
    loans: int


def latest(loans_: pl.DataFrame, dues: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each loan's frames from its latest part (the `part` column: higher wins)."""
    chosen = loans_.sort("part").unique("loan_id", keep="last")
    kept = dues.join(chosen.select("loan_id", "part"), on=["loan_id", "part"], how="semi")
    return chosen.drop("part"), kept.drop("part")


def held_and_missing(
    image_loans: pl.DataFrame, wanted: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Of the loans `wanted` (`loan_id`, `last_seq`): the image's rows that hold
    them at that `last_seq`, and the loans it lacks (to decode)."""
    held = image_loans.join(wanted, on=["loan_id", "last_seq"], how="semi")
    missing = wanted.join(held.select("loan_id"), on="loan_id", how="anti")
    return held, missing


@dataclass
class BookImage:
    """The image as one night reads and renews it, slice by slice."""

    parts: list[_Part]
    compact: bool
    decoded: int = 0
    reused: int = 0
    _fresh_loans: list[pl.DataFrame] = field(default_factory=list)
    _fresh_dues: list[pl.DataFrame] = field(default_factory=list)
    _new_bases: list[tuple[int, int, int, bytes, bytes]] = field(default_factory=list)
    _bases: dict[int, tuple[pl.DataFrame, pl.DataFrame]] = field(default_factory=dict)
    _deltas: tuple[pl.DataFrame, pl.DataFrame] | None = None

    @classmethod
    def open(cls, conn: Connection) -> BookImage:
        rows = conn.execute(
            select(
                eod_image.c.id,
                eod_image.c.kind,
                eod_image.c.format,
                eod_image.c.first_loan_id,
                eod_image.c.last_loan_id,
                eod_image.c.loans,
            ).order_by(eod_image.c.id)
        ).all()
        parts = [
            _Part(r.id, r.kind, r.first_loan_id, r.last_loan_id, r.loans)
            for r in rows
            if r.format == FORMAT
        ]
        base = sum(p.loans for p in parts if p.kind == "base")
        deltas = [p for p in parts if p.kind == "delta"]
        compact = (
            base == 0
            or len(parts) < len(rows)
            or sum(p.loans for p in deltas) > COMPACT_SHARE * base
            or len(deltas) >= COMPACT_PARTS
        )
        return cls(parts=parts, compact=compact)

    # --- reading ------------------------------------------------------------------------

    def frames(self, conn: Connection, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The kernel's frames of the loans in `rows` (in loan order, with
        `last_seq`): from the image where it holds a loan at its `last_seq`,
        else decoded from the loan's snapshot now."""
        if rows.is_empty():
            return pl.DataFrame(schema=LOAN_SCHEMA), pl.DataFrame(schema=DUE_SCHEMA)
        low, high = int(rows["loan_id"][0]), int(rows["loan_id"][-1])
        image_loans, image_dues = self._range(conn, low, high)
        held, missing = held_and_missing(image_loans, rows.select("loan_id", "last_seq"))
        new_loans, new_dues = self._decode(conn, missing)
        book_loans = pl.concat([held, new_loans]).sort("loan_id")
        book_dues = pl.concat(
            [image_dues.join(held.select("loan_id"), on="loan_id", how="semi"), new_dues]
        ).sort("loan_id", "idx")
        self.reused += held.height
        if self.compact:
            self._new_bases.append(
                (low, high, book_loans.height, encode(book_loans), encode(book_dues))
            )
        return book_loans.drop("last_seq"), book_dues

    def _range(self, conn: Connection, low: int, high: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        pieces = [
            self._base(conn, part)
            for part in self.parts
            if part.kind == "base" and part.first_loan_id <= high and part.last_loan_id >= low
        ]
        pieces.append(self._delta(conn))
        in_range = pl.col("loan_id").is_between(low, high)
        return latest(
            pl.concat([p[0].filter(in_range) for p in pieces]),
            pl.concat([p[1].filter(in_range) for p in pieces]),
        )

    def _read(self, conn: Connection, where: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        found_loans = [pl.DataFrame(schema={"part": pl.Int64, **IMAGE_LOAN_SCHEMA})]
        found_dues = [pl.DataFrame(schema={"part": pl.Int64, **DUE_SCHEMA})]
        query_ = select(eod_image.c.id, eod_image.c.loans_body, eod_image.c.dues_body).where(
            and_(eod_image.c.format == FORMAT, where)
        )
        for row in conn.execute(query_):
            part = pl.lit(row.id, dtype=pl.Int64).alias("part")
            found_loans.append(decode(row.loans_body, IMAGE_LOAN_SCHEMA).select(part, pl.all()))
            found_dues.append(decode(row.dues_body, DUE_SCHEMA).select(part, pl.all()))
        return pl.concat(found_loans), pl.concat(found_dues)

    def _base(self, conn: Connection, part: _Part) -> tuple[pl.DataFrame, pl.DataFrame]:
        if part.id not in self._bases:
            while len(self._bases) >= _BASE_CACHE:
                self._bases.pop(next(iter(self._bases)))
            self._bases[part.id] = self._read(conn, eod_image.c.id == part.id)
        return self._bases[part.id]

    def _delta(self, conn: Connection) -> tuple[pl.DataFrame, pl.DataFrame]:
        if self._deltas is None:
            ids = [p.id for p in self.parts if p.kind == "delta"]
            self._deltas = self._read(conn, eod_image.c.id.in_(ids))
        return self._deltas

    def _decode(self, conn: Connection, missing: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Decode the snapshots of the `missing` loans, `DECODE_BATCH` at a time
        (the JSON text is the bulk of a loan: memory follows the batch)."""
        loans_parts = [pl.DataFrame(schema=IMAGE_LOAN_SCHEMA)]
        dues_parts = [pl.DataFrame(schema=DUE_SCHEMA)]
        for batch in missing.select("loan_id").sort("loan_id").iter_slices(DECODE_BATCH):
            found = self._snapshots(conn, batch["loan_id"])
            if found["snapshot_json"].null_count():
                loan = int(found.filter(pl.col("snapshot_json").is_null())["loan_id"][0])
                raise EodSnapshotMissing(
                    f"active loan {loan} has no servicing snapshot", loan_id=loan
                )
            new_loans, new_dues = frames_from_json(found.drop("last_seq"))
            loans_parts.append(
                new_loans.join(found.select("loan_id", "last_seq"), on="loan_id").select(
                    list(IMAGE_LOAN_SCHEMA)
                )
            )
            dues_parts.append(new_dues)
        new_loans, new_dues = pl.concat(loans_parts), pl.concat(dues_parts)
        self.decoded += new_loans.height
        self._fresh_loans.append(new_loans)
        self._fresh_dues.append(new_dues)
        return new_loans, new_dues

    @staticmethod
    def _snapshots(conn: Connection, ids: pl.Series) -> pl.DataFrame:
        """The snapshots of loans `ids` (in loan order), with their keys."""
        schema = {
            "loan_id": pl.Int64,
            "product_code": pl.String,
            "product_version": pl.Int32,
            "last_seq": pl.Int64,
            "snapshot_json": pl.String,
        }
        mark = placeholders(conn, 1)
        select_ = (
            "SELECT l.id AS loan_id, l.product_code, l.product_version, l.last_seq, "
            "s.snapshot_json FROM loans l LEFT JOIN loan_snapshots s ON s.loan_id = l.id WHERE "
        )
        low, high = int(ids[0]), int(ids[-1])
        if ids.len() * 2 > high - low + 1:
            # Most loans of the id range: one range read, then keep the ones wanted.
            return read_frame(
                conn, select_ + f"l.id BETWEEN {mark} AND {mark}", (low, high), schema
            ).filter(pl.col("loan_id").is_in(ids.implode()))
        return pl.concat(
            read_frame(conn, select_ + f"l.id IN ({placeholders(conn, len(part))})", part, schema)
            for part in (
                [int(i) for i in ids[start : start + _IN_LIST]]
                for start in range(0, ids.len(), _IN_LIST)
            )
        )

    # --- writing ------------------------------------------------------------------------

    @property
    def changed(self) -> bool:
        return self.compact or self.decoded > 0

    def save(self, conn: Connection, today: date) -> None:
        """Write tonight's renewal: a new base (and the old parts gone), or a
        delta part holding the loans decoded tonight."""
        if self.compact:
            conn.execute(delete(eod_image))
            for low, high, count, loans_body, dues_body in self._new_bases:
                self._insert(conn, "base", low, high, count, loans_body, dues_body, today)
        elif self.decoded:
            fresh_loans = pl.concat(self._fresh_loans).sort("loan_id")
            fresh_dues = pl.concat(self._fresh_dues).sort("loan_id", "idx")
            self._insert(
                conn,
                "delta",
                int(fresh_loans["loan_id"][0]),
                int(fresh_loans["loan_id"][-1]),
                fresh_loans.height,
                encode(fresh_loans),
                encode(fresh_dues),
                today,
            )

    @staticmethod
    def _insert(
        conn: Connection,
        kind: str,
        low: int,
        high: int,
        count: int,
        loans_body: bytes,
        dues_body: bytes,
        today: date,
    ) -> None:
        conn.execute(
            insert(eod_image).values(
                kind=kind,
                format=FORMAT,
                first_loan_id=low,
                last_loan_id=high,
                loans=count,
                written_on=today,
                loans_body=loans_body,
                dues_body=dues_body,
            )
        )
