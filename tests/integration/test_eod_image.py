"""End of day's image of the decoded book (`services.eod_image`).

The image only saves work: whatever it holds, a day's close must give exactly
what decoding every snapshot gives. Each night here is closed both ways on the
same read of the database, while live servicing moves loans between nights,
so the image is read whole, renewed by deltas and compacted.
"""

from __future__ import annotations

import random

import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import func, select, update

from lendcore.services import eod
from lendcore.services import loans as loan_service
from lendcore.services.clock import current_business_date
from lendcore.services.eod_image import COMPACT_SHARE, BookImage, encode
from lendcore.store.database import Database
from lendcore.store.schema import eod_image, loans
from tests.integration.eod_helpers import live_day, open_book


def _both_ways(db: Database) -> tuple[pl.DataFrame, pl.DataFrame, BookImage]:
    with db.reading() as conn:
        today = current_business_date(conn)
        book = eod.read_book(conn, snapshots=True)
        by_json = eod.compute_day(book, today, "local")
        image = BookImage.open(conn)
        without = eod.read_book(conn)
        by_image = eod.compute_day(without, today, "local", image=(conn, image))
    return by_json.sort("loan_id"), by_image.sort("loan_id"), image


def _parts(db: Database) -> list[tuple[str, int]]:
    with db.reading() as conn:
        return [
            (r.kind, r.loans)
            for r in conn.execute(select(eod_image.c.kind, eod_image.c.loans).order_by("id"))
        ]


def test_a_night_from_the_image_equals_a_night_from_every_snapshot(db: Database) -> None:
    book = open_book(db, 60, seed=91)
    rng = random.Random(92)
    eod.run_day(book.servicing)  # the first night decodes all and writes the base
    assert _parts(db) == [("base", 60)]
    seen_delta = False
    for _ in range(12):
        live_day(book, rng, per_day=4)
        with db.reading() as conn:
            active = conn.execute(
                select(func.count()).where(loans.c.status == "active")
            ).scalar_one()
        by_json, by_image, image = _both_ways(db)
        assert_frame_equal(by_json, by_image)
        # Only the loans whose events moved since the image was written are decoded.
        assert image.decoded <= 4 * 12
        assert image.decoded + image.reused == active
        close = eod.run_day(book.servicing)
        assert close.snapshots_decoded == image.decoded
        kinds = [kind for kind, _ in _parts(db)]
        seen_delta = seen_delta or "delta" in kinds
        # Deltas never outgrow a fifth of the base for long: a night compacts them.
        base = sum(n for kind, n in _parts(db) if kind == "base")
        deltas = sum(n for kind, n in _parts(db) if kind == "delta")
        assert deltas <= COMPACT_SHARE * base + 4
    assert seen_delta


def test_a_loan_whose_events_moved_is_decoded_again(db: Database) -> None:
    book = open_book(db, 8, seed=93)
    eod.run_day(book.servicing)
    loan_id = book.loan_ids[3]
    view = loan_service.get_loan(book.servicing, loan_id)
    loan_service.repay(book.servicing, loan_id, view.state.payoff // 3, view.currency)
    by_json, by_image, image = _both_ways(db)
    assert image.decoded == 1
    assert_frame_equal(by_json, by_image)


def test_parts_of_another_layout_are_ignored_and_replaced(db: Database) -> None:
    book = open_book(db, 6, seed=95)
    eod.run_day(book.servicing)
    # A part written by another layout of the kernel's columns, claiming every loan.
    with db.transaction() as conn:
        conn.execute(update(eod_image).values(format="another"))
    by_json, by_image, image = _both_ways(db)
    assert image.decoded == 6 and image.compact
    assert_frame_equal(by_json, by_image)
    eod.run_day(book.servicing)
    assert _parts(db) == [("base", 6)]


def test_a_dropped_image_costs_only_a_full_decode(db: Database) -> None:
    book = open_book(db, 6, seed=97)
    eod.run_day(book.servicing)
    with db.transaction() as conn:
        conn.execute(eod_image.delete())
    by_json, by_image, image = _both_ways(db)
    assert image.decoded == 6
    assert_frame_equal(by_json, by_image)


def test_encoded_frames_keep_their_columns() -> None:
    frame = pl.DataFrame({"loan_id": [1, 2], "amount": [10**15, -3]})
    assert pl.read_parquet(encode(frame)).equals(frame)
