"""Scorecard scoring (pure): bins, points, PD, reason codes, content hash, PSI, bad input."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lendcore.errors import InvalidInput
from lendcore.risk.datasets import read_table
from lendcore.risk.errors import (
    ColumnMissing,
    ConstantColumn,
    DataFileEmpty,
    FeatureInvalid,
    ModelArtifactInvalid,
    NonNumericValue,
    TargetInvalid,
    TargetMissing,
)
from lendcore.risk.model import (
    CANONICAL_FEATURES,
    SCORECARD_FORMAT,
    Scorecard,
    ScoringModel,
    artifact_text,
    content_hash,
    demo_model_path,
    load_model,
    seal,
    sigmoid_decimal,
)
from lendcore.risk.monitoring import PSI_WARNING, population_stability, psi


def card() -> dict[str, Any]:
    """Two characteristics: utilisation (numeric) and housing (categorical)."""
    return seal(
        {
            "format": SCORECARD_FORMAT,
            "kind": "scorecard",
            "name": "tiny",
            "features": ["revolving_utilization", "housing"],
            "characteristics": [
                {
                    "name": "revolving_utilization",
                    "kind": "numeric",
                    "edges": [0.3, 0.7],
                    "labels": ["<0.3", "0.3-0.7", ">=0.7", "Missing"],
                    "points": [300, 280, 250],
                    "missing_points": 270,
                    "reason_code": "RC_UTIL_HIGH",
                    "reason_text": "Revolving credit utilisation is high",
                },
                {
                    "name": "housing",
                    "kind": "categorical",
                    "categories": [["own"], ["rent", "free"]],
                    "labels": ["own", "rent, free", "Missing"],
                    "points": [310, 290],
                    "missing_points": 295,
                    "reason_code": "RC_HOUSING",
                    "reason_text": "Housing status",
                },
            ],
            "scaling": {"base_score": 600, "base_odds": 50, "pdo": 20},
            "calibration": {"intercept": "17.0", "slope": "-0.035"},
            "training": {
                "distribution": {
                    "score": {"kind": "numeric", "edges": [560, 580], "shares": [0.3, 0.4, 0.3]},
                    "features": {
                        "revolving_utilization": {
                            "kind": "numeric",
                            "edges": [0.3, 0.7],
                            "shares": [0.5, 0.3, 0.15, 0.05],
                        }
                    },
                }
            },
        }
    )


def test_points_add_up_bin_by_bin_with_edges_closed_on_the_left() -> None:
    model = load_model(card())
    assert isinstance(model, ScoringModel) and model.kind == "scorecard"
    assert model.features == ("revolving_utilization", "housing")
    assert model.score({"revolving_utilization": 0.1, "housing": "own"}).score == 610
    assert model.score({"revolving_utilization": 0.3, "housing": "own"}).score == 590
    assert model.score({"revolving_utilization": 0.7, "housing": "free"}).score == 540
    # Missing (None, NaN, absent) and unseen categories score in the missing bin.
    assert model.score({"revolving_utilization": None}).score == 270 + 295
    assert model.score({"revolving_utilization": float("nan"), "housing": "boat"}).score == 565


def test_pd_is_the_calibration_in_decimal_quantized_to_six_places() -> None:
    model = load_model(card())
    scored = model.score({"revolving_utilization": 0.5, "housing": "rent"})
    assert scored.score == 570
    # logit = 17 - 0.035 * 570 = -2.95
    assert scored.pd == sigmoid_decimal(Decimal("-2.95")) == Decimal("0.049737")
    assert scored.pd.as_tuple().exponent == -6
    assert sigmoid_decimal(Decimal(100)) == Decimal("1.000000")


def test_reason_codes_are_the_points_lost_most_first() -> None:
    model = load_model(card())
    scored = model.score({"revolving_utilization": 0.9, "housing": "rent"})
    assert [(r.code, r.points_lost) for r in scored.reasons] == [
        ("RC_UTIL_HIGH", 50),
        ("RC_HOUSING", 20),
    ]
    assert scored.reasons[0].characteristic == "revolving_utilization"
    assert scored.reasons[0].text == "Revolving credit utilisation is high"
    best = model.score({"revolving_utilization": 0.0, "housing": "own"})
    assert best.reasons == ()


def test_same_input_gives_an_identical_scored() -> None:
    a = load_model(card()).score({"revolving_utilization": 0.42, "housing": "own"})
    b = load_model(card()).score({"revolving_utilization": 0.42, "housing": "own"})
    assert a == b


def test_a_text_number_is_read_and_other_text_refused() -> None:
    model = load_model(card())
    assert model.score({"revolving_utilization": "0.1", "housing": "own"}).score == 610  # type: ignore[dict-item]
    with pytest.raises(FeatureInvalid):
        model.score({"revolving_utilization": "high"})  # type: ignore[dict-item]


def test_the_version_is_the_content_hash_and_tampering_is_refused(tmp_path: Path) -> None:
    document = card()
    assert document["version"] == content_hash(document)
    assert load_model(document).version == document["version"]
    (tmp_path / "model.json").write_text(artifact_text(document))
    assert load_model(tmp_path).version == document["version"]
    tampered = json.loads(json.dumps(document))
    tampered["characteristics"][0]["points"][0] = 400
    with pytest.raises(ModelArtifactInvalid, match="content hash mismatch"):
        load_model(tampered)
    broken = {k: v for k, v in document.items() if k != "version"}
    broken["characteristics"][0]["edges"] = [0.7, 0.3]
    with pytest.raises(ModelArtifactInvalid):
        load_model(broken)
    with pytest.raises(ModelArtifactInvalid):
        load_model({"format": "other"})
    assert issubclass(ModelArtifactInvalid, InvalidInput)


def test_psi_and_the_monitoring_report() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.9, 0.1]) > PSI_WARNING
    model = load_model(card())
    assert isinstance(model, Scorecard)
    steady = [
        {"revolving_utilization": v} for v in [0.1] * 50 + [0.5] * 30 + [0.8] * 15 + [None] * 5
    ]
    report = population_stability(model.distribution, steady, score=lambda f: model.score(f).score)
    by = {r.quantity: r for r in report.rows}
    assert by["revolving_utilization"].psi == pytest.approx(0.0, abs=1e-9)
    assert "score" in by and report.n_recent == 100
    shifted = [{"revolving_utilization": 0.95}] * 100
    report = population_stability(model.distribution, shifted)
    assert [r.quantity for r in report.warnings] == ["revolving_utilization"]


def test_the_demo_scorecard_loads_and_scores_reproducibly() -> None:
    model = load_model(demo_model_path())
    assert model.kind == "scorecard"
    assert set(model.features) <= set(CANONICAL_FEATURES)
    application = {
        "age_years": 45.0,
        "monthly_income": 9120.0,
        "debt_ratio": 0.80,
        "revolving_utilization": 0.77,
        "open_credit_lines": 13.0,
        "real_estate_loans": 6.0,
        "times_30_59_days_late": 2.0,
        "times_60_89_days_late": 0.0,
        "times_90_days_late": 0.0,
        "dependents": 2.0,
    }
    first = model.score(application)
    assert first == load_model(demo_model_path()).score(application)
    assert 300 < first.score < 900 and Decimal(0) < first.pd < Decimal(1)
    assert 1 <= len(first.reasons) <= 4
    lost = [r.points_lost for r in first.reasons]
    assert lost == sorted(lost, reverse=True) and all(p > 0 for p in lost)
    # A clean record scores higher, with a lower PD.
    clean = dict(application, revolving_utilization=0.05, times_30_59_days_late=0.0)
    assert model.score(clean).score > first.score and model.score(clean).pd < first.pd


# --- bad data files -----------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_data_files_get_typed_errors_naming_file_and_column(tmp_path: Path) -> None:
    good = "id,bad,income,age\n1,0,100,30\n2,1,200,40\n3,0,300,50\n"
    table = read_table(write(tmp_path, good), target="bad", id_column="id")
    assert table.columns == ("income", "age") and table.target == [0, 1, 0]
    with pytest.raises(DataFileEmpty) as empty:
        read_table(write(tmp_path, "", "empty.csv"), target="bad")
    assert "empty.csv" in str(empty.value) and empty.value.code == "MODEL_DATA_EMPTY"
    with pytest.raises(DataFileEmpty):
        read_table(write(tmp_path, "id,bad,income\n", "header.csv"), target="bad")
    with pytest.raises(TargetMissing, match="'default'"):
        read_table(write(tmp_path, good), target="default")
    with pytest.raises(TargetMissing, match="line 3"):
        read_table(write(tmp_path, "bad,income\n0,1\n,2\n1,3\n"), target="bad")
    with pytest.raises(TargetInvalid):
        read_table(write(tmp_path, "bad,income\n0,1\n0,2\n"), target="bad")
    with pytest.raises(ConstantColumn, match="'country'") as constant:
        read_table(write(tmp_path, "bad,country,x\n0,7,1\n1,7,2\n"), target="bad")
    assert constant.value.details["column"] == "country"
    with pytest.raises(NonNumericValue, match=r"'income'.*'lots'.*line 3") as text:
        read_table(write(tmp_path, "bad,income\n0,100\n1,lots\n0,300\n"), target="bad")
    assert text.value.code == "MODEL_DATA_NOT_NUMERIC" and isinstance(text.value, InvalidInput)
    with pytest.raises(ColumnMissing):
        read_table(write(tmp_path, good), target=None, features=["age", "debt"])


def test_known_data_sets_map_to_canonical_features(tmp_path: Path) -> None:
    header = (
        "id,SeriousDlqin2yrs,RevolvingUtilizationOfUnsecuredLines,age,"
        "NumberOfTime30-59DaysPastDueNotWorse,DebtRatio,MonthlyIncome,"
        "NumberOfOpenCreditLinesAndLoans,NumberOfTimes90DaysLate,"
        "NumberRealEstateLoansOrLines,NumberOfTime60-89DaysPastDueNotWorse,NumberOfDependents"
    )
    rows = ["1,1,0.76,45,2,0.80,9120,13,0,6,0,2", "2,0,0.95,40,0,0.12,NA,4,0,0,0,1"]
    path = tmp_path / "gmsc.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([header, *rows]) + "\n")
    table = read_table(path, target="SeriousDlqin2yrs", id_column="id", check_constant=False)
    assert set(table.columns) == set(CANONICAL_FEATURES)
    first, second = table.rows()
    assert first["revolving_utilization"] == 0.76 and second["monthly_income"] is None
    assert table.ids == ["1", "2"]


def test_none_is_a_category_not_a_missing_value(tmp_path: Path) -> None:
    """German credit has "none" as a real category (telephone, other debtors)."""
    table = read_table(write(tmp_path, "bad,telephone\n0,none\n1,yes\n0,none\n1,\n"), target="bad")
    assert table.categorical == frozenset({"telephone"})
    assert table.values["telephone"] == ["none", "yes", "none", None]
