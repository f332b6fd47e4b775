"""Loss-allowance movements, the report tables and the workbook."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.ifrs9.config import Ifrs9InputInvalid, Ifrs9ReportUnreconciled
from lendcore.ifrs9.report import (
    MOVEMENT_COLUMNS,
    ProvisionReport,
    classify_movements,
    provision_tables,
    write_xlsx,
)

PREV_SCHEMA = {
    "loan_id": pl.Int64,
    "product_code": pl.String,
    "stage": pl.Int8,
    "ecl_minor": pl.Int64,
}
NEW_SCHEMA = {**PREV_SCHEMA, "exit": pl.String}


def prev_book(*rows: tuple[int, str, int, int]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PREV_SCHEMA, orient="row")


def new_book(*rows: tuple[int, str, int | None, int, str | None]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=NEW_SCHEMA, orient="row")


PREV = prev_book(
    (1, "car", 1, 100),  # stays in 1: 100 -> 110
    (2, "car", 2, 200),  # 2 -> 3: 200 -> 900
    (3, "home", 1, 50),  # repaid today
    (4, "home", 3, 1000),  # written off today
    (5, "car", 1, 30),  # gone without an exit: repaid
    (6, "home", 2, 400),  # 2 -> 1: 400 -> 60
)
NEW = new_book(
    (1, "car", 1, 110, None),
    (2, "car", 3, 900, None),
    (3, "home", 1, 0, "repaid"),
    (4, "home", None, 0, "written_off"),
    (6, "home", 1, 60, None),
    (7, "car", 1, 40, None),  # new loan
    (8, "car", None, 0, "repaid"),  # new and repaid the same day: no row
)


def test_classify_by_hand() -> None:
    out = classify_movements(PREV, NEW)
    assert out.schema == pl.Schema(MOVEMENT_COLUMNS)
    assert out.rows() == [
        # product, kind, from, to, loans, amount, out, in
        ("car", "new_loans", None, 1, 1, 40, 0, 40),
        ("car", "transfer_to_3", 2, 3, 1, 700, -200, 900),
        ("car", "remeasurement", 1, 1, 1, 10, -100, 110),
        ("car", "repaid", 1, None, 1, -30, -30, 0),
        ("home", "transfer_to_1", 2, 1, 1, -340, -400, 60),
        ("home", "repaid", 1, None, 1, -50, -50, 0),
        ("home", "written_off", 3, None, 1, -1000, -1000, 0),
    ]
    # total new 1110 - total prev 1780 = -670
    assert out.get_column("amount_minor").sum() == -670


def test_movements_sum_by_group() -> None:
    prev = prev_book((1, "car", 1, 10), (2, "car", 1, 20), (3, "car", 1, 5))
    new = new_book((1, "car", 1, 15, None), (2, "car", 1, 18, None), (3, "car", 2, 50, None))
    out = classify_movements(prev, new)
    assert out.rows() == [
        ("car", "transfer_to_2", 1, 2, 1, 45, -5, 50),
        ("car", "remeasurement", 1, 1, 2, 3, -30, 33),
    ]


def test_bad_movement_input_is_refused() -> None:
    with pytest.raises(Ifrs9InputInvalid, match="exit with ECL"):
        classify_movements(PREV, new_book((1, "car", 1, 5, "repaid")))
    with pytest.raises(Ifrs9InputInvalid, match="exit outside"):
        classify_movements(PREV, new_book((1, "car", 1, 0, "sold")))
    with pytest.raises(Ifrs9InputInvalid, match="no stage"):
        classify_movements(PREV, new_book((1, "car", None, 5, None)))
    with pytest.raises(Ifrs9InputInvalid, match="repeats"):
        classify_movements(pl.concat([PREV, PREV]), NEW)
    with pytest.raises(Ifrs9InputInvalid, match="lacks"):
        classify_movements(PREV, NEW.drop("exit"))


def stage_mix(book: pl.DataFrame) -> pl.DataFrame:
    """The stage mix of a close, exposure 10x the ECL for the test."""
    live = book.filter(pl.col("exit").is_null()) if "exit" in book.columns else book
    return live.group_by("product_code", "stage").agg(
        loans=pl.len().cast(pl.Int64),
        exposure_minor=pl.col("ecl_minor").sum() * 10,
        ecl_minor=pl.col("ecl_minor").sum(),
    )


def test_provision_tables_by_hand() -> None:
    report = provision_tables(stage_mix(NEW), classify_movements(PREV, NEW), stage_mix(PREV))
    movements = {r[0]: r[2:] for r in report.movements.rows()}
    # Opening: stage 1 = 100 + 50 + 30 = 180, stage 2 = 200 + 400 = 600, stage 3 = 1000.
    assert movements["opening"] == (180, 600, 1000, 1780)
    assert movements["new_loans"] == (40, 0, 0, 40)
    assert movements["transfer_to_1"] == (60, -400, 0, -340)
    assert movements["transfer_to_2"] == (0, 0, 0, 0)
    assert movements["transfer_to_3"] == (0, -200, 900, 700)
    assert movements["remeasurement"] == (10, 0, 0, 10)
    assert movements["repaid"] == (-80, 0, 0, -80)
    assert movements["written_off"] == (0, 0, -1000, -1000)
    # Closing: stage 1 = 110 + 60 + 40 = 210, stage 3 = 900.
    assert movements["closing"] == (210, 0, 900, 1110)
    assert report.movements.get_column("label").to_list()[0] == "Opening loss allowance"

    assert report.stage_mix.rows() == [
        (1, 3, 2100, 210, 0.1),
        (2, 0, 0, 0, None),
        (3, 1, 9000, 900, 0.1),
        (None, 4, 11100, 1110, 0.1),
    ]
    assert report.ecl_by_product.rows() == [
        ("car", 150, 0, 900, 1050),
        ("home", 60, 0, 0, 60),
        (None, 210, 0, 900, 1110),
    ]


def test_unreconciled_period_is_refused() -> None:
    movements = classify_movements(PREV, NEW)
    with pytest.raises(Ifrs9ReportUnreconciled, match="stage 1") as info:
        provision_tables(stage_mix(NEW), movements.slice(1), stage_mix(PREV))
    assert info.value.code == "IFRS9_REPORT_UNRECONCILED"
    assert info.value.details["gaps"] == {"1": -40, "2": 0, "3": 0}
    with pytest.raises(Ifrs9ReportUnreconciled):
        provision_tables(stage_mix(NEW), movements, stage_mix(NEW))


books = st.dictionaries(
    st.integers(1, 30),
    st.tuples(st.sampled_from(["car", "home"]), st.integers(1, 3), st.integers(0, 10**6)),
    max_size=15,
)


def total(frame: pl.DataFrame, column: str) -> int:
    return int(frame.get_column(column).sum())


def _prev(book: dict[int, tuple[str, int, int]]) -> pl.DataFrame:
    return prev_book(*[(k, *v) for k, v in sorted(book.items())])


def _next(
    prev: dict[int, tuple[str, int, int]],
    new: dict[int, tuple[str, int, int]],
    exits: dict[int, str],
) -> pl.DataFrame:
    rows: list[tuple[int, str, int | None, int, str | None]] = [
        (k, *v, None) for k, v in sorted(new.items()) if k not in exits
    ]
    rows += [(k, prev[k][0], None, 0, how) for k, how in sorted(exits.items()) if k in prev]
    return new_book(*rows)


@settings(max_examples=60, deadline=None)
@given(
    books,
    books,
    books,
    st.dictionaries(st.integers(1, 30), st.sampled_from(["repaid", "written_off"])),
)
def test_movements_explain_the_whole_change_and_reconcile(
    day0: dict[int, tuple[str, int, int]],
    day1: dict[int, tuple[str, int, int]],
    day2: dict[int, tuple[str, int, int]],
    exits: dict[int, str],
) -> None:
    first = _next(day0, day1, exits)
    one = classify_movements(_prev(day0), first)
    assert total(one, "amount_minor") == (
        total(first, "ecl_minor") - total(_prev(day0), "ecl_minor")
    )
    live1 = {k: v for k, v in day1.items() if k not in exits}
    second = _next(live1, day2, {})
    two = classify_movements(_prev(live1), second)
    assert total(two, "amount_minor") == (
        total(second, "ecl_minor") - total(_prev(live1), "ecl_minor")
    )
    # Two days of movements explain the period from day 0 to day 2, stage by stage.
    report = provision_tables(stage_mix(second), pl.concat([one, two]), stage_mix(_prev(day0)))
    table = report.movements
    body = table.filter(~pl.col("line").is_in(["opening", "closing"]))
    opening = table.filter(pl.col("line") == "opening").drop("line", "label")
    closing = table.filter(pl.col("line") == "closing").drop("line", "label")
    assert (opening + body.drop("line", "label").sum()).rows() == closing.rows()
    assert closing.item(0, "total_minor") == total(second, "ecl_minor")


# --- workbook -------------------------------------------------------------------------------

M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
BUILTIN_FORMATS = {0: "General", 3: "#,##0", 4: "#,##0.00", 10: "0.00%"}


def read_xlsx(path: Path) -> dict[str, dict[str, tuple[Any, str]]]:
    """{sheet: {cell: (value, number format)}}, read with the standard library."""
    with zipfile.ZipFile(path) as z:
        workbook = ET.fromstring(z.read("xl/workbook.xml"))
        rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels}
        shared = [
            "".join(t.text or "" for t in si.iter(f"{M}t"))
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(f"{M}si")
        ]
        styles = ET.fromstring(z.read("xl/styles.xml"))
        formats = dict(BUILTIN_FORMATS)
        for fmt in styles.iter(f"{M}numFmt"):
            formats[int(fmt.get("numFmtId", "0"))] = fmt.get("formatCode", "")
        xfs = styles.find(f"{M}cellXfs")
        assert xfs is not None
        cell_formats = [formats[int(xf.get("numFmtId", "0"))] for xf in xfs]
        sheets: dict[str, dict[str, tuple[Any, str]]] = {}
        for sheet in workbook.iter(f"{M}sheet"):
            target = str(targets[sheet.get(f"{R}id")])
            root = ET.fromstring(z.read("xl/" + target.removeprefix("/xl/")))
            cells: dict[str, tuple[Any, str]] = {}
            for c in root.iter(f"{M}c"):
                v = c.find(f"{M}v")
                value: Any = None
                if v is not None and v.text is not None:
                    value = shared[int(v.text)] if c.get("t") == "s" else float(v.text)
                cells[str(c.get("r"))] = (value, cell_formats[int(c.get("s", "0"))])
            sheets[str(sheet.get("name"))] = cells
    return sheets


def _report() -> ProvisionReport:
    prev = prev_book((1, "car", 1, 123456), (2, "home", 2, 5000))
    new = new_book((1, "car", 2, 234567, None), (2, "home", 2, 4000, None), (3, "car", 1, 1, None))
    return provision_tables(stage_mix(new), classify_movements(prev, new), stage_mix(prev))


def test_write_xlsx_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "provision.xlsx"
    write_xlsx(_report(), path)
    sheets = read_xlsx(path)
    assert list(sheets) == ["Stage mix", "ECL by product", "Movements"]

    mix = sheets["Stage mix"]
    assert [mix[c][0] for c in ("A1", "B1", "C1", "D1", "E1")] == [
        "Stage",
        "Loans",
        "Exposure",
        "ECL",
        "Coverage",
    ]
    # Stage 2: loans 1 (car) + 1 (home), ECL 234,567 + 4,000 minor = 2,385.67
    assert mix["A3"] == ("Stage 2", "General")
    assert mix["B3"] == (2.0, "#,##0")
    assert mix["D3"] == (2385.67, "#,##0.00")
    assert mix["E3"] == (pytest.approx(0.1), "0.00%")
    assert mix["A5"][0] == "Total"
    assert mix["D5"][0] == pytest.approx(2385.68)

    product = sheets["ECL by product"]
    assert product["A2"][0] == "car" and product["C2"] == (2345.67, "#,##0.00")
    assert product["A4"][0] == "Total"

    moves = sheets["Movements"]
    assert moves["A2"][0] == "Opening loss allowance"
    # Opening stage 1: 123,456 minor = 1,234.56; stage 2: 50.00
    assert moves["B2"] == (1234.56, "#,##0.00")
    assert moves["C2"][0] == 50.0
    # Transfer to stage 2: -1,234.56 out of stage 1, +2,345.67 into stage 2
    assert moves["A5"][0] == "Transfers to stage 2"
    assert moves["B5"][0] == -1234.56
    assert moves["C5"][0] == 2345.67
    assert moves["A10"][0] == "Closing loss allowance"
    assert moves["E10"][0] == pytest.approx(2385.68)


def test_write_xlsx_other_exponents(tmp_path: Path) -> None:
    path = tmp_path / "jpy.xlsx"
    write_xlsx(_report(), path, currency_exponent=0)
    assert read_xlsx(path)["Movements"]["B2"] == (123456.0, "#,##0")
    path = tmp_path / "kwd.xlsx"
    write_xlsx(_report(), path, currency_exponent=3)
    assert read_xlsx(path)["Movements"]["B2"] == (123.456, "#,##0.000")
    with pytest.raises(Ifrs9InputInvalid, match="currency_exponent"):
        write_xlsx(_report(), tmp_path / "bad.xlsx", currency_exponent=-1)
