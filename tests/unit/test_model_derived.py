"""Derived characteristics (pure): the scorer computes them from the application's
features exactly as training did; monitoring compares them too; the PSI of a few
applications does not read an empty bin as a shift by itself; the monitoring window."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.errors import InvalidInput
from lendcore.risk.errors import FeatureInvalid, ModelArtifactInvalid
from lendcore.risk.model import Derived, Scorecard, load_model, seal
from lendcore.risk.monitoring import SHARE_FLOOR, model_stability, population_stability, psi
from lendcore.risk.train import derive_column
from lendcore.services.models import MONITOR_DAYS_MAX, monitoring_window
from tests.unit.test_risk_scoring import card

LATE = ("times_30_59_days_late", "times_60_89_days_late", "times_90_days_late")


def late_card(**changes: Any) -> dict[str, Any]:
    """The tiny card's utilisation (300 points below 0.3), and all late payments
    together as a derived characteristic."""
    document = {k: v for k, v in card().items() if k != "version"}
    utilisation = document["characteristics"][0]
    distribution = document["training"]["distribution"]
    document.update(
        features=["revolving_utilization", *LATE],
        derived=[{"name": "times_late_total", "op": "sum", "of": list(LATE)}],
        characteristics=[
            utilisation,
            {
                "name": "times_late_total",
                "kind": "numeric",
                "edges": [1, 3],
                "labels": ["0", "1-2", "3+", "Missing"],
                "points": [320, 290, 240],
                "missing_points": 300,
                "reason_code": "RC_LATE_ANY",
                "reason_text": "Number of late payments in the last two years",
            },
        ],
        training={
            "distribution": {
                "score": distribution["score"],
                "features": {
                    "times_late_total": {
                        "kind": "numeric",
                        "edges": [1, 3],
                        "shares": [0.8, 0.15, 0.05, 0.0],
                    }
                },
            }
        },
    )
    document.update(changes)
    return seal(document)


def test_the_scorer_derives_the_characteristic_from_the_features() -> None:
    model = load_model(late_card())
    assert isinstance(model, Scorecard)
    # The application supplies the three counts; the total is the scorer's business.
    assert model.features == ("revolving_utilization", *LATE)
    clean = {"revolving_utilization": 0.2, **dict.fromkeys(LATE, 0)}
    assert model.score(clean).score == 300 + 320
    once_each = {"revolving_utilization": 0.2, **dict.fromkeys(LATE, 1)}
    scored = model.score(once_each)
    assert scored.score == 300 + 240
    assert [(r.code, r.characteristic, r.points_lost) for r in scored.reasons] == [
        ("RC_LATE_ANY", "times_late_total", 80)
    ]
    # A value passed under the derived name is the scorer's to compute, not the caller's.
    assert model.score({**clean, "times_late_total": 9}).score == 620
    # Any input missing: the derived characteristic is missing.
    assert model.score({"revolving_utilization": 0.2, LATE[0]: 1, LATE[1]: None}).score == 600
    assert model.points_of(once_each) == [300, 240]
    assert model.characteristic_values(once_each)["times_late_total"] == 3.0
    with pytest.raises(FeatureInvalid):
        model.score({"revolving_utilization": 0.2, LATE[0]: "often", LATE[1]: 0, LATE[2]: 0})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "derived",
    [
        [{"name": "t", "op": "mean", "of": list(LATE)}],
        [{"name": "t", "op": "sum", "of": [LATE[0]]}],
        [{"name": "t", "op": "sum", "of": list(LATE)}, {"name": "t", "op": "sum", "of": LATE[:2]}],
        [{"name": "t", "op": "sum", "of": LATE[:2]}, {"name": "u", "op": "sum", "of": ["t", "x"]}],
        [{"name": "t", "of": list(LATE)}],
        {"name": "t"},
    ],
)
def test_a_malformed_derived_characteristic_is_refused(derived: Any) -> None:
    with pytest.raises(ModelArtifactInvalid):
        load_model(late_card(derived=derived))


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False) | st.integers(0, 98)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite, finite | st.none()), min_size=1, max_size=20))
def test_training_and_scoring_derive_the_same_value_to_the_bit(rows: list[Any]) -> None:
    for op in ("sum", "product"):
        spec = Derived("x", op, ("a", "b", "c"))
        arrays = {
            name: np.array([math.nan if r[i] is None else float(r[i]) for r in rows])
            for i, name in enumerate(("a", "b", "c"))
        }
        trained = derive_column(arrays, spec).tolist()
        scored = [spec.value(dict(zip(("a", "b", "c"), r, strict=True))) for r in rows]
        for t, s in zip(trained, scored, strict=True):
            assert (s is None and math.isnan(t)) or t == s


def test_monitoring_compares_the_derived_characteristic_too() -> None:
    model = load_model(late_card())
    recent = [{"revolving_utilization": 0.1, **dict.fromkeys(LATE, 2)}] * 40
    report = model_stability(model, recent)
    by = {r.quantity: r for r in report.rows}
    # Every application has 6 late payments in all: the 3+ bin (5 % in training).
    assert by["times_late_total"].actual == (0.0, 0.0, 1.0, 0.0)
    assert by["times_late_total"].status == "warning"
    assert by["score"].actual == (1.0, 0.0, 0.0)  # 300 + 240 = 540: the lowest band


def test_a_few_applications_leaving_a_bin_empty_is_not_a_shift_by_itself() -> None:
    expected = [0.3, 0.3, 0.3, 0.1]
    actual = [0.3, 0.35, 0.35, 0.0]  # 20 applications, none in the last bin
    floor = 0.5 / 20
    by_hand = sum(
        (max(a, floor) - e) * math.log(max(a, floor) / e)
        for e, a in zip(expected, actual, strict=True)
    )
    # A bin empty on both sides (training had no missing value) adds nothing.
    assert psi([*expected, 0.0], [*actual, 0.0], floor) == pytest.approx(by_hand, rel=1e-12)
    assert psi(expected, actual, floor) == pytest.approx(by_hand, rel=1e-12)
    assert psi(expected, actual, floor) < psi(expected, actual, SHARE_FLOOR)
    distribution = {
        "features": {"u": {"kind": "numeric", "edges": [1, 2, 3], "shares": [*expected, 0.0]}}
    }
    recent = [{"u": v} for v in [0.5] * 6 + [1.5] * 7 + [2.5] * 7]
    row = population_stability(distribution, recent).rows[0]
    assert row.psi == pytest.approx(psi([*expected, 0.0], [*actual, 0.0], floor), rel=1e-12)
    assert row.status == "watch"  # with the floor at 0.0001 it would read as a warning
    assert psi([*expected, 0.0], [*actual, 0.0]) > 0.25


def test_the_monitoring_window() -> None:
    today = date(2026, 11, 26)
    assert monitoring_window(today, None, None, None) == (date(2026, 8, 29), today)
    assert monitoring_window(today, None, date(2026, 6, 30), 30) == (
        date(2026, 6, 1),
        date(2026, 6, 30),
    )
    assert monitoring_window(today, date(2026, 1, 1), None, None) == (date(2026, 1, 1), today)
    assert monitoring_window(today, today, today, None) == (today, today)
    for date_from, date_to, days in (
        (date(2026, 12, 1), None, None),
        (date(2026, 1, 1), None, 30),
        (None, None, 0),
        (None, None, MONITOR_DAYS_MAX + 1),
        (date(2000, 1, 1), None, None),
    ):
        with pytest.raises(InvalidInput):
            monitoring_window(today, date_from, date_to, days)
