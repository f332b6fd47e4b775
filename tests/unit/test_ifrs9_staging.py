"""IFRS 9 settings, staging (rules, cure and probation) and PD now."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.ifrs9.config import (
    Ifrs9Config,
    Ifrs9ConfigInvalid,
    Ifrs9InputInvalid,
    PdSource,
    load_config,
    parse_config,
)
from lendcore.ifrs9.staging import (
    assign_stages,
    pd_now,
    pd_now_from_matrix,
    pd_now_scorecard,
)
from lendcore.ifrs9.transitions import STATES, TransitionMatrix

AS_OF = date(2025, 6, 30)

SETTINGS: dict[str, Any] = {
    "sicr": {"relative": 2.5, "absolute": 0.03, "dpd_stage2": 30, "dpd_stage3": 90},
    "probation_days": {"stage2_to_1": 90, "stage3_to_2": 180},
    "lgd": {"default": 0.45, "by_product": {"p": 0.4}},
    "pd": {
        "source": "scorecard",
        "delinquency_multipliers": {"current": 1.0, "1-30": 4.0, "31-60": 8.0, "61-90": 12.0},
        "band_pd_12m": {"A": 0.01, "B": 0.02},
        "default_pd_12m": 0.05,
    },
    "scenarios": [{"name": "base", "weight": "1", "pd_multiplier": 1.0}],
}


def config(**changes: Any) -> Ifrs9Config:
    document = copy.deepcopy(SETTINGS)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = document
        for part in path:
            node = node[part]
        node[last] = value
    return parse_config(document)


CONFIG = config()


def book(*rows: dict[str, Any]) -> pl.DataFrame:
    base: dict[str, Any] = {
        "dpd": 0,
        "pd_origination": 0.01,
        "pd_now": 0.01,
        "forborne": False,
        "credit_impaired": False,
        "prev_stage": None,
        "qualifying_stage": None,
        "qualifying_since": None,
    }
    full = [{"loan_id": i + 1, **base, **row} for i, row in enumerate(rows)]
    return pl.DataFrame(
        full,
        schema={
            "loan_id": pl.Int64,
            "dpd": pl.Int32,
            "pd_origination": pl.Float64,
            "pd_now": pl.Float64,
            "forborne": pl.Boolean,
            "credit_impaired": pl.Boolean,
            "prev_stage": pl.Int8,
            "qualifying_stage": pl.Int8,
            "qualifying_since": pl.Date,
        },
    )


# --- settings ----------------------------------------------------------------------


def test_packaged_defaults_load() -> None:
    cfg = load_config()
    assert cfg.sicr.relative == 2.5
    assert cfg.sicr.absolute == 0.03
    assert (cfg.sicr.dpd_stage2, cfg.sicr.dpd_stage3) == (30, 90)
    assert (cfg.probation_days.stage2_to_1, cfg.probation_days.stage3_to_2) == (90, 180)
    assert cfg.lgd.default == 0.45
    assert cfg.pd.source is PdSource.SCORECARD
    assert sum(s.weight for s in cfg.scenarios) == Decimal(1)
    assert all(isinstance(s.weight, Decimal) for s in cfg.scenarios)


def test_config_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ifrs9.yaml"
    path.write_text(
        (Path(__file__).parents[2] / "src/lendcore/ifrs9/default.yaml")
        .read_text()
        .replace("relative: 2.5", "relative: 3")
    )
    assert load_config(path).sicr.relative == 3.0


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"scenarios": [{"name": "a", "weight": "0.5", "pd_multiplier": 1.0}]}, "scenarios"),
        (
            {
                "scenarios": [
                    {"name": "a", "weight": "0.3333", "pd_multiplier": 1.0},
                    {"name": "b", "weight": "0.6667", "pd_multiplier": 1.2},
                    {"name": "c", "weight": "0.0001", "pd_multiplier": 1.2},
                ]
            },
            "scenarios",
        ),
        ({"scenarios": [{"name": "a", "weight": 1.0, "pd_multiplier": 1.0}]}, "weight"),
        (
            {
                "scenarios": [
                    {"name": n, "weight": w, "pd_multiplier": 1.0}
                    for n, w in [("a", "0.25"), ("b", "0.25"), ("c", "0.25"), ("d", "0.25")]
                ]
            },
            "scenarios",
        ),
        (
            {
                "scenarios": [
                    {"name": "a", "weight": "0.5", "pd_multiplier": 1.0},
                    {"name": "a", "weight": "0.5", "pd_multiplier": 2.0},
                ]
            },
            "scenarios",
        ),
        ({"scenarios": []}, "scenarios"),
        ({"sicr__dpd_stage3": 30}, "sicr"),
        ({"sicr__relative": 0.5}, "sicr.relative"),
        ({"sicr__surprise": 1}, "sicr.surprise"),
        ({"lgd__default": 1.2}, "lgd.default"),
        ({"pd__source": "oracle"}, "pd.source"),
        ({"pd__delinquency_multipliers": {"current": 1.0, "1-30": 2.0}}, "pd.delinquency"),
        ({"probation_days__stage2_to_1": -1}, "probation_days.stage2_to_1"),
        ({"probation_days__stage2_to_1": "90"}, "probation_days.stage2_to_1"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    changes: dict[str, Any], where: str
) -> None:
    with pytest.raises(Ifrs9ConfigInvalid) as info:
        config(**changes)
    assert info.value.code == "IFRS9_CONFIG_INVALID"
    assert where in str(info.value)


def test_unreadable_or_invalid_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Ifrs9ConfigInvalid, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sicr: [unclosed\n")
    with pytest.raises(Ifrs9ConfigInvalid, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(Ifrs9ConfigInvalid, match="one mapping"):
        load_config(bad)


def test_weights_are_exact_decimals() -> None:
    # 0.1 + 0.2 + 0.7 is exactly 1 as decimals (it is not as binary floats).
    cfg = config(
        scenarios=[
            {"name": "a", "weight": "0.1", "pd_multiplier": 0.8},
            {"name": "b", "weight": "0.2", "pd_multiplier": 1.0},
            {"name": "c", "weight": "0.7", "pd_multiplier": 1.5},
        ]
    )
    assert [s.weight for s in cfg.scenarios] == [Decimal("0.1"), Decimal("0.2"), Decimal("0.7")]


# --- raw stage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "raw", "sicr"),
    [
        ({}, 1, False),
        ({"dpd": 30}, 1, False),  # 30 is not more than 30
        ({"dpd": 31}, 2, False),
        ({"dpd": 90}, 2, False),
        ({"dpd": 91}, 3, False),
        ({"credit_impaired": True}, 3, False),
        ({"forborne": True}, 2, False),
        ({"forborne": True, "dpd": 120}, 3, False),
        # SICR: 0.05 / 0.02 = 2.5 >= 2.5 and 0.05 - 0.02 = 0.03 >= 0.03 (both exactly met)
        ({"pd_origination": 0.02, "pd_now": 0.05}, 2, True),
        # Thresholds met exactly in decimals, not quite in binary floats
        # (0.03133 - 0.00133 = 0.029999999999999995; 0.020001 * 2.5 = 0.050002500000000005)
        ({"pd_origination": 0.00133, "pd_now": 0.03133}, 2, True),
        ({"pd_origination": 0.020001, "pd_now": 0.0500025}, 2, True),
        # 0.049 / 0.02 = 2.45 < 2.5
        ({"pd_origination": 0.02, "pd_now": 0.049}, 1, False),
        # ratio 20, but the increase 0.019 is below 0.03
        ({"pd_origination": 0.001, "pd_now": 0.02}, 1, False),
        # increase 0.1, but the ratio 1.5 is below 2.5
        ({"pd_origination": 0.2, "pd_now": 0.3}, 1, False),
        # origination PD 0: any PD now >= 0.03 is significant
        ({"pd_origination": 0.0, "pd_now": 0.03}, 2, True),
        # no PD at origination: segment default 0.05; 0.125 / 0.05 = 2.5, +0.075
        ({"pd_origination": None, "pd_now": 0.125}, 2, True),
        ({"pd_origination": None, "pd_now": 0.12}, 1, False),
    ],
)
def test_raw_stage_rules(row: dict[str, Any], raw: int, sicr: bool) -> None:
    out = assign_stages(book(row), CONFIG, AS_OF)
    assert out.get_column("raw_stage").to_list() == [raw]
    assert out.get_column("sicr").to_list() == [sicr]
    assert out.get_column("stage").to_list() == [raw]  # a new loan takes its raw stage
    assert out.get_column("qualifying_stage").to_list() == [None]


def test_band_gives_the_missing_origination_pd() -> None:
    # Band A: 0.01 -> 0.04 is 4x and +0.03 (SICR); band B: 0.02 -> 0.04 is 2x (not);
    # band Z is unknown: segment default 0.05 (not).
    frame = book(
        {"pd_origination": None, "pd_now": 0.04},
        {"pd_origination": None, "pd_now": 0.04},
        {"pd_origination": None, "pd_now": 0.04},
        {"pd_origination": None, "pd_now": 0.04},
    ).with_columns(band=pl.Series(["A", "B", "Z", None]))
    out = assign_stages(frame, CONFIG, AS_OF)
    assert out.get_column("sicr").to_list() == [True, False, False, False]
    assert out.get_column("raw_stage").to_list() == [2, 1, 1, 1]


def test_thresholds_come_from_the_settings() -> None:
    cfg = config(sicr__dpd_stage2=10, sicr__dpd_stage3=60)
    out = assign_stages(book({"dpd": 11}, {"dpd": 61}, {"dpd": 10}), cfg, AS_OF)
    assert out.get_column("raw_stage").to_list() == [2, 3, 1]


# --- cure and probation -------------------------------------------------------------------


def run_days(
    first: date, dpd_by_day: list[int], prev_stage: int, cfg: Ifrs9Config = CONFIG
) -> list[tuple[int, int, int | None, date | None]]:
    """Stage one loan day after day, carrying the state as the EOD does:
    (raw_stage, stage, qualifying_stage, qualifying_since) per day."""
    frame = book({"prev_stage": prev_stage})
    out: list[tuple[int, int, int | None, date | None]] = []
    for day, dpd in enumerate(dpd_by_day):
        staged = assign_stages(
            frame.with_columns(dpd=pl.lit(dpd, dtype=pl.Int32)), cfg, first + timedelta(days=day)
        )
        row = staged.row(0, named=True)
        out.append(
            (row["raw_stage"], row["stage"], row["qualifying_stage"], row["qualifying_since"])
        )
        frame = staged.select(
            "loan_id",
            "dpd",
            "pd_origination",
            "pd_now",
            "forborne",
            "credit_impaired",
            pl.col("stage").alias("prev_stage"),
            "qualifying_stage",
            "qualifying_since",
        )
    return out


def first_day_at(days: list[tuple[int, int, int | None, date | None]], stage: int) -> int:
    return next(i for i, d in enumerate(days) if d[1] == stage)


def test_stage_2_cures_to_1_after_90_days() -> None:
    start = date(2025, 1, 1)
    days = run_days(start, [0] * 100, prev_stage=2)
    # Qualifies for stage 1 from day 0 (2025-01-01); day 90 is 90 days later.
    assert [d[1] for d in days[:90]] == [2] * 90
    assert days[0][2:] == (1, start)
    assert days[89][2:] == (1, start)
    assert days[90] == (1, 1, None, None)
    assert first_day_at(days, 1) == 90


def test_a_relapse_restarts_the_probation() -> None:
    start = date(2025, 1, 1)
    dpd = [0] * 50 + [31] + [0] * 100  # day 50 is past due again (raw 2)
    days = run_days(start, dpd, prev_stage=2)
    assert days[50] == (2, 2, None, None)
    assert days[51][2:] == (1, start + timedelta(days=51))
    assert first_day_at(days, 1) == 51 + 90


def test_worse_applies_at_once() -> None:
    start = date(2025, 1, 1)
    days = run_days(start, [0] * 10 + [95], prev_stage=2)
    assert days[10] == (3, 3, None, None)
    days = run_days(start, [95], prev_stage=1)
    assert days[0] == (3, 3, None, None)


def test_stage_3_cures_through_stage_2() -> None:
    start = date(2025, 1, 1)
    days = run_days(start, [0] * 300, prev_stage=3)
    # 180 days in stage 3, then the stage-1 probation of 90 days from day 180.
    assert first_day_at(days, 2) == 180
    assert days[180][2:] == (1, start + timedelta(days=180))
    assert first_day_at(days, 1) == 270
    assert {d[1] for d in days[:180]} == {3}


def test_stage_3_run_with_a_stage_2_day_restarts_stage_1_probation_from_stage_2() -> None:
    start = date(2025, 1, 1)
    # Day 0 only out of default (raw 2), then current: the run for stage 2
    # starts on day 0, the run for stage 1 only on day 1.
    days = run_days(start, [45] + [0] * 299, prev_stage=3)
    assert days[0][2:] == (2, start)
    assert days[1][2:] == (2, start)  # still the stage-2 run (worst raw of the run)
    assert first_day_at(days, 2) == 180
    # Moved to 2 on day 180 while qualifying for 1: stage-1 probation from that day.
    assert days[180][2:] == (1, start + timedelta(days=180))
    assert first_day_at(days, 1) == 270


def test_stage_3_to_1_directly_when_both_probations_passed() -> None:
    since = AS_OF - timedelta(days=270)
    frame = book(
        {"prev_stage": 3, "qualifying_stage": 1, "qualifying_since": since},
        {"prev_stage": 3, "qualifying_stage": 1, "qualifying_since": since + timedelta(days=1)},
        {"prev_stage": 3, "qualifying_stage": 2, "qualifying_since": since},
        {"prev_stage": 3, "qualifying_stage": 1, "qualifying_since": AS_OF},
    )
    out = assign_stages(frame, CONFIG, AS_OF)
    assert out.get_column("stage").to_list() == [1, 2, 2, 3]
    assert out.get_column("qualifying_stage").to_list() == [None, 1, 1, 1]
    assert out.get_column("qualifying_since").to_list() == [
        None,
        since + timedelta(days=1 + 180),  # stage-1 probation counts from reaching stage 2
        AS_OF,  # qualified for stage 1 only since some day after `since`: from today
        AS_OF,
    ]


def test_zero_probation_cures_at_once() -> None:
    cfg = config(probation_days__stage2_to_1=0, probation_days__stage3_to_2=0)
    out = assign_stages(book({"prev_stage": 3}, {"prev_stage": 2}), cfg, AS_OF)
    assert out.get_column("stage").to_list() == [1, 1]


def test_bad_staging_input_is_refused() -> None:
    with pytest.raises(Ifrs9InputInvalid, match="lacks column"):
        assign_stages(book({}).drop("forborne"), CONFIG, AS_OF)
    with pytest.raises(Ifrs9InputInvalid, match="only one of"):
        assign_stages(book({"prev_stage": 2, "qualifying_stage": 1}), CONFIG, AS_OF)
    with pytest.raises(Ifrs9InputInvalid, match="not better"):
        assign_stages(
            book({"prev_stage": 2, "qualifying_stage": 2, "qualifying_since": AS_OF}),
            CONFIG,
            AS_OF,
        )
    with pytest.raises(Ifrs9InputInvalid, match="after"):
        assign_stages(
            book(
                {
                    "prev_stage": 2,
                    "qualifying_stage": 1,
                    "qualifying_since": AS_OF + timedelta(days=1),
                }
            ),
            CONFIG,
            AS_OF,
        )
    with pytest.raises(Ifrs9InputInvalid, match="pd_now outside"):
        assign_stages(book({"pd_now": 1.5}), CONFIG, AS_OF)
    with pytest.raises(Ifrs9InputInvalid, match="repeats"):
        assign_stages(pl.concat([book({}), book({})]), CONFIG, AS_OF)
    with pytest.raises(Ifrs9InputInvalid, match="dpd is Float64"):
        assign_stages(book({}).with_columns(dpd=pl.lit(1.5)), CONFIG, AS_OF)


stage_rows = st.fixed_dictionaries(
    {
        "dpd": st.integers(0, 200),
        "pd_origination": st.none() | st.floats(0, 1),
        "pd_now": st.floats(0, 1),
        "forborne": st.booleans(),
        "credit_impaired": st.booleans(),
        "prev_stage": st.none() | st.integers(1, 3),
        "run": st.none() | st.tuples(st.integers(1, 2), st.integers(0, 400)),
    }
)


def _row(draw: dict[str, Any]) -> dict[str, Any]:
    row = dict(draw)
    run = row.pop("run")
    if run is not None and row["prev_stage"] is not None and run[0] < row["prev_stage"]:
        row["qualifying_stage"] = run[0]
        row["qualifying_since"] = AS_OF - timedelta(days=run[1])
    return row


@settings(max_examples=60, deadline=None)
@given(st.lists(stage_rows, min_size=1, max_size=12))
def test_staging_invariants_and_rows_are_independent(rows: list[dict[str, Any]]) -> None:
    frame = book(*[_row(r) for r in rows])
    out = assign_stages(frame, CONFIG, AS_OF)
    assert out.height == frame.height
    for row in out.iter_rows(named=True):
        raw, stage, prev = row["raw_stage"], row["stage"], row["prev_stage"]
        # Worse applies at once; better only up to where it was yesterday.
        assert raw <= stage <= max(raw, prev or raw)
        if stage == raw:
            assert row["qualifying_stage"] is None and row["qualifying_since"] is None
        else:
            assert row["qualifying_stage"] is not None
            assert raw <= row["qualifying_stage"] < stage
            assert row["qualifying_since"] <= AS_OF
    # The columnar run gives each loan what it gets alone.
    alone = pl.concat(
        [assign_stages(frame.slice(i, 1), CONFIG, AS_OF) for i in range(frame.height)]
    )
    assert out.equals(alone)


# --- PD now -------------------------------------------------------------------------


def test_scorecard_pd_now() -> None:
    frame = pl.DataFrame(
        {
            "dpd": [0, 15, 45, 75, 91, 75, 0, 0, 30],
            "pd_origination": [0.02, 0.02, 0.02, 0.02, 0.02, 0.1, None, None, None],
            "band": [None, None, None, None, None, None, "B", "Z", "A"],
        }
    )
    out = pd_now_scorecard(frame, CONFIG).to_list()
    # x1, x4, x8, x12, default, min(1, 1.2), band B 0.02, default 0.05, band A 0.01 x4
    expected = [0.02, 0.08, 0.16, 0.24, 1.0, 1.0, 0.02, 0.05, 0.04]
    assert out == pytest.approx(expected, abs=1e-15)
    assert pd_now(frame, CONFIG).to_list() == out
    no_band = pd_now_scorecard(frame.drop("band"), CONFIG).to_list()
    assert no_band[6:] == pytest.approx([0.05, 0.05, 0.2], abs=1e-15)


def hazard_matrix(hazards: dict[str, float]) -> TransitionMatrix:
    # Each non-absorbing state stays or defaults: 12-month PD = 1 - (1 - h) ** 12.
    rows = []
    for i, state in enumerate(STATES):
        row = [0.0] * len(STATES)
        h = hazards.get(state, 0.0)
        row[i] = 1.0 - h
        row[STATES.index("default")] += h
        rows.append(row)
    return TransitionMatrix.of(STATES, rows)


def test_transition_pd_now() -> None:
    matrix = hazard_matrix({"current": 0.01, "1-30": 0.05, "31-60": 0.1, "61-90": 0.2})
    frame = pl.DataFrame({"dpd": [0, 10, 40, 70, 100]})
    out = pd_now_from_matrix(frame, matrix).to_list()
    # 1 - 0.99^12 = 0.11361512828387..., 1 - 0.95^12 = 0.45963991233736...,
    # 1 - 0.9^12 = 0.717570463519, 1 - 0.8^12 = 0.931280523264, default 1.
    expected = [0.11361512828387, 0.45963991233736, 0.717570463519, 0.931280523264, 1.0]
    assert out == pytest.approx(expected, abs=1e-12)
    cfg = config(pd__source="transition")
    assert pd_now(frame, cfg, matrix).to_list() == out
    with pytest.raises(Ifrs9InputInvalid, match="needs an estimated"):
        pd_now(frame, cfg)


def test_transition_pd_needs_the_delinquency_states() -> None:
    hand = TransitionMatrix.of(["good", "default"], [[0.9, 0.1], [0.0, 1.0]])
    with pytest.raises(Ifrs9InputInvalid, match="states"):
        pd_now_from_matrix(pl.DataFrame({"dpd": [0]}), hand)
