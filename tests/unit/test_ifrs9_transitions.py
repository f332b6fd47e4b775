"""The delinquency Markov chain: estimation, cumulative and marginal PD."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.ifrs9.config import Ifrs9InputInvalid
from lendcore.ifrs9.transitions import (
    STATES,
    TransitionMatrix,
    cumulative_default,
    estimate_matrix,
    pd_term_structure,
    twelve_month_pd,
)

HAND = TransitionMatrix.of(
    ["good", "bad", "default"],
    [
        [0.90, 0.08, 0.02],
        [0.30, 0.50, 0.20],
        [0.00, 0.00, 1.00],
    ],
    default_state="default",
)


def test_hand_three_state_cumulative_default() -> None:
    # Month 1: the default column.           good 0.02, bad 0.2
    # Month 2: good 0.9*0.02 + 0.08*0.2 + 0.02*1 = 0.018 + 0.016 + 0.02 = 0.054
    #          bad  0.3*0.02 + 0.5*0.2  + 0.2*1  = 0.006 + 0.1   + 0.2  = 0.306
    # Month 3: good 0.9*0.054 + 0.08*0.306 + 0.02 = 0.0486 + 0.02448 + 0.02 = 0.09308
    assert cumulative_default(HAND, "good", 3) == pytest.approx([0.02, 0.054, 0.09308], abs=1e-15)
    assert cumulative_default(HAND, "bad", 2) == pytest.approx([0.2, 0.306], abs=1e-15)
    assert cumulative_default(HAND, "default", 2) == [1.0, 1.0]
    assert cumulative_default(HAND, "good", 0) == []


def test_hand_three_state_term_structure() -> None:
    frame = pd_term_structure(HAND, 3)
    assert frame.schema == pl.Schema(
        {
            "state": pl.String,
            "month": pl.Int32,
            "cumulative_pd": pl.Float64,
            "marginal_pd": pl.Float64,
        }
    )
    good = frame.filter(pl.col("state") == "good")
    assert good.get_column("month").to_list() == [1, 2, 3]
    assert good.get_column("cumulative_pd").to_list() == pytest.approx([0.02, 0.054, 0.09308])
    # Marginal: 0.02, 0.054 - 0.02 = 0.034, 0.09308 - 0.054 = 0.03908
    assert good.get_column("marginal_pd").to_list() == pytest.approx([0.02, 0.034, 0.03908])
    # Already in default: cumulative 1 from the start, so nothing new each month.
    default = frame.filter(pl.col("state") == "default")
    assert default.get_column("cumulative_pd").to_list() == [1.0, 1.0, 1.0]
    assert default.get_column("marginal_pd").to_list() == [0.0, 0.0, 0.0]
    assert frame.get_column("state").to_list() == ["good"] * 3 + ["bad"] * 3 + ["default"] * 3


def test_twelve_month_pd() -> None:
    stay = TransitionMatrix.of(["ok", "default"], [[0.99, 0.01], [0.0, 1.0]])
    # 1 - 0.99^12 = 0.1136151282838...
    assert twelve_month_pd(stay)["ok"] == pytest.approx(0.11361512828387, abs=1e-13)


def test_matrix_is_checked() -> None:
    with pytest.raises(Ifrs9InputInvalid, match="do not add up"):
        TransitionMatrix.of(["a", "default"], [[0.5, 0.4], [0.0, 1.0]])
    with pytest.raises(Ifrs9InputInvalid, match="absorbing"):
        TransitionMatrix.of(["a", "default"], [[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(Ifrs9InputInvalid, match="x 2"):
        TransitionMatrix.of(["a", "default"], [[1.0]])
    with pytest.raises(Ifrs9InputInvalid, match="between 0 and 1"):
        TransitionMatrix.of(["a", "default"], [[1.5, -0.5], [0.0, 1.0]])
    with pytest.raises(Ifrs9InputInvalid, match="not a state"):
        cumulative_default(HAND, "ugly", 1)
    with pytest.raises(Ifrs9InputInvalid, match="months"):
        cumulative_default(HAND, "good", -1)


def history(rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "loan_id": [r[0] for r in rows],
            "month": [date.fromisoformat(r[1] + "-01") for r in rows],
            "state": [r[2] for r in rows],
        }
    )


def test_estimate_matrix_by_hand() -> None:
    frame = history(
        [
            # loan 1: current -> current -> 1-30 -> current -> 31-60 (4 moves)
            (1, "2024-01", "current"),
            (1, "2024-02", "current"),
            (1, "2024-03", "1-30"),
            (1, "2024-04", "current"),
            (1, "2024-05", "31-60"),
            # loan 2: current -> 1-30 -> default -> current (a cure out of default is not a move)
            (2, "2024-01", "current"),
            (2, "2024-02", "1-30"),
            (2, "2024-03", "default"),
            (2, "2024-04", "current"),
            # loan 3: a gap (Mar missing) breaks the chain: only Jan -> Feb counts
            (3, "2024-01", "current"),
            (3, "2024-02", "current"),
            (3, "2024-04", "61-90"),
            (3, "2024-05", "closed"),
        ]
    )
    matrix = estimate_matrix(frame.sample(fraction=1.0, shuffle=True, seed=7))
    p = dict(zip(STATES, matrix.probabilities.tolist(), strict=True))
    i = {s: n for n, s in enumerate(STATES)}
    # From current: loan 1 -> current, -> 1-30, -> 31-60; loan 2 -> 1-30; loan 3 -> current
    #   5 moves: current 2/5, 1-30 2/5, 31-60 1/5
    assert p["current"][i["current"]] == pytest.approx(0.4)
    assert p["current"][i["1-30"]] == pytest.approx(0.4)
    assert p["current"][i["31-60"]] == pytest.approx(0.2)
    # From 1-30: loan 1 -> current, loan 2 -> default: 1/2 each
    assert p["1-30"][i["current"]] == pytest.approx(0.5)
    assert p["1-30"][i["default"]] == pytest.approx(0.5)
    # From 61-90: loan 3 -> closed, 1/1
    assert p["61-90"][i["closed"]] == 1.0
    # 31-60 never moved: stays; default and closed absorbing regardless of the cure seen
    assert p["31-60"] == [1.0 if s == "31-60" else 0.0 for s in STATES]
    assert p["default"] == [1.0 if s == "default" else 0.0 for s in STATES]
    assert p["closed"] == [1.0 if s == "closed" else 0.0 for s in STATES]
    assert matrix.observations == (5, 2, 0, 1, 0, 0)
    assert matrix.fallback_states == ("31-60",)
    assert HAND.fallback_states == ()


def test_to_frame() -> None:
    frame = HAND.to_frame()
    assert frame.height == 9
    row = frame.filter(pl.col("from_state") == "bad", pl.col("to_state") == "default")
    assert row.get_column("probability").to_list() == [0.2]


def test_bad_history_is_refused() -> None:
    with pytest.raises(Ifrs9InputInvalid, match="state outside"):
        estimate_matrix(history([(1, "2024-01", "late")]))
    with pytest.raises(Ifrs9InputInvalid, match="repeat"):
        estimate_matrix(history([(1, "2024-01", "current"), (1, "2024-01", "1-30")]))
    with pytest.raises(Ifrs9InputInvalid, match="1st"):
        estimate_matrix(
            pl.DataFrame({"loan_id": [1], "month": [date(2024, 1, 15)], "state": ["current"]})
        )
    with pytest.raises(Ifrs9InputInvalid, match="lacks"):
        estimate_matrix(pl.DataFrame({"loan_id": [1], "state": ["current"]}))


def test_empty_history_gives_stay_everywhere() -> None:
    empty = pl.DataFrame(schema={"loan_id": pl.Int64, "month": pl.Date, "state": pl.String})
    matrix = estimate_matrix(empty)
    assert np.array_equal(matrix.probabilities, np.eye(len(STATES)))
    assert matrix.fallback_states == ("current", "1-30", "31-60", "61-90")


@st.composite
def histories(draw: st.DrawFn) -> pl.DataFrame:
    rows: list[tuple[int, str, str]] = []
    for loan in range(draw(st.integers(1, 8))):
        start = draw(st.integers(0, 11))
        for k in range(draw(st.integers(1, 14))):
            if draw(st.booleans()) and k:  # sometimes skip a month (a gap)
                continue
            month = start + k
            rows.append(
                (loan, f"{2020 + month // 12}-{month % 12 + 1:02d}", draw(st.sampled_from(STATES)))
            )
    return history(rows)


@settings(max_examples=50, deadline=None)
@given(histories())
def test_estimated_rows_add_up_to_one(frame: pl.DataFrame) -> None:
    matrix = estimate_matrix(frame)
    assert np.allclose(matrix.probabilities.sum(axis=1), 1.0, atol=1e-12)
    assert (matrix.probabilities >= 0).all()
    for state in ("default", "closed"):
        k = STATES.index(state)
        assert matrix.probabilities[k, k] == 1.0


@st.composite
def stochastic_matrices(draw: st.DrawFn) -> TransitionMatrix:
    n = len(STATES)
    rows = []
    for i, state in enumerate(STATES):
        if state in ("default", "closed"):
            rows.append([1.0 if j == i else 0.0 for j in range(n)])
            continue
        weights = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
        total = sum(weights)
        rows.append(
            [w / total for w in weights] if total > 0 else [float(j == i) for j in range(n)]
        )
    return TransitionMatrix.of(STATES, rows)


@settings(max_examples=60, deadline=None)
@given(stochastic_matrices(), st.integers(1, 60))
def test_cumulative_pd_never_decreases(matrix: TransitionMatrix, horizon: int) -> None:
    frame = pd_term_structure(matrix, horizon)
    assert frame.height == len(STATES) * horizon
    for state in STATES:
        path = cumulative_default(matrix, state, horizon)
        assert all(b >= a for a, b in itertools.pairwise(path))
        assert all(0.0 <= x <= 1.0 for x in path)
        part = frame.filter(pl.col("state") == state)
        assert part.get_column("cumulative_pd").to_list() == path
        assert (part.get_column("marginal_pd") >= 0).all()
        # Marginals add up to the cumulative PD (less the month-0 value).
        start = 1.0 if state == "default" else 0.0
        assert part.get_column("marginal_pd").sum() == pytest.approx(path[-1] - start, abs=1e-12)
