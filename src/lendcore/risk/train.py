"""Training: an optbinning scorecard and a LightGBM challenger, validated side by side.

The scorecard:

1. optbinning's `BinningProcess` finds each characteristic's optimal bins, with
   the default rate's expected trend imposed where it makes sense (`TRENDS` in
   `datasets.py`: more late payments or higher utilisation is riskier, more age
   or income safer; no monotonic constraint where the data is not monotonic).
2. Each bin's weight of evidence, WoE = ln(share of bads / share of goods), with
   its own bin for missing values (WoE 0, the average, when training had none).
3. A logistic regression on the WoE values; characteristics with an information
   value below 0.02 (no predictive power) or a non-positive coefficient (a sign
   flipped by collinearity, which would give points that contradict the bins)
   are dropped, one at a time, and the regression refitted.
4. Points scaled by points-to-double-odds: 600 points at 50:1 good:bad odds and
   20 points to double the odds (a common industry scale: the score reads the
   same as the scorecards credit officers know; `Scaling` to change it). Each
   bin's points are -(b_j * WoE + b_0 / n) * factor + offset / n, rounded.
5. The calibration to a PD: a logistic regression of the default on the integer
   score over the training rows (it absorbs the points' rounding).

The challenger: LightGBM with monotone constraints from the same trends, scored
with SHAP contributions for reason codes.

Validation on a held-out 30 % (stratified, seeded): AUC, Gini, KS, calibration by
score band, binning tables, and PSI between training and test populations.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from lendcore.risk.datasets import DERIVED, Table, reason_of, trend_of
from lendcore.risk.model import (
    ARTIFACT_FILE,
    DEFAULT_SCALING,
    LIGHTGBM_FORMAT,
    SCORECARD_FORMAT,
    Derived,
    LightGBMModel,
    Scaling,
    artifact_text,
    load_model,
    seal,
)

IV_MIN = 0.02
TEST_SHARE = 0.3
SEED = 42
SCORE_BANDS = 10
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class TrainConfig:
    name: str = "scorecard"
    scaling: Scaling = DEFAULT_SCALING
    test_share: float = TEST_SHARE
    seed: int = SEED
    challenger: bool = True
    lgbm_rounds: int = 300
    # One thread by default: on a machine shared with other work, OpenMP threads
    # spin-waiting for a core made training ten times slower than one thread.
    lgbm_threads: int = 1
    source: str = ""
    max_prebins: int = 20
    min_prebin_size: float = 0.02
    trends: Mapping[str, str] | None = None  # per characteristic; TRENDS otherwise
    # Inverse regularisation strengths of the logistic regression, chosen by a 3-fold
    # inner CV on data of up to `inner_cv_rows_max` rows; above that, the weakest
    # (with 100,000 rows a penalty changes nothing: GMSC's 5-fold AUC is the same
    # to 4 places, at five times the training time).
    c_grid: tuple[float, ...] = (1e6, 1.0, 0.3, 0.1, 0.03)
    inner_cv_rows_max: int = 50_000
    iv_min: float = IV_MIN
    derived: bool = True  # add the derived characteristics (`datasets.DERIVED`) the data allows


@dataclass(slots=True)
class TrainingResult:
    scorecard: dict[str, Any]
    challenger: dict[str, Any] | None
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)


# --- arrays ---------------------------------------------------------------------------


def _np() -> Any:
    import numpy

    return numpy


def columns_as_arrays(table: Table) -> dict[str, Any]:
    """Numeric columns as float arrays (NaN missing), categorical as object arrays."""
    np = _np()
    out: dict[str, Any] = {}
    for name in table.columns:
        col = table.values[name]
        if name in table.categorical:
            out[name] = np.array([np.nan if v is None else str(v) for v in col], dtype=object)
        else:
            out[name] = np.array([np.nan if v is None else float(v) for v in col], dtype=float)
    return out


def _r(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def _edge(value: float) -> float:
    return float(f"{float(value):.12g}")


# --- metrics --------------------------------------------------------------------------


def auc(y: Sequence[int] | Any, risk: Sequence[float] | Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, risk))


def ks(y: Any, risk: Any) -> float:
    """Kolmogorov-Smirnov: the largest gap between the bads' and goods' cumulative shares."""
    np = _np()
    y = np.asarray(y)
    order = np.argsort(-np.asarray(risk, dtype=float), kind="mergesort")
    ys = y[order]
    bads = np.cumsum(ys) / max(ys.sum(), 1)
    goods = np.cumsum(1 - ys) / max((1 - ys).sum(), 1)
    return float(np.max(np.abs(bads - goods)))


def metrics(y: Any, risk: Any) -> dict[str, float]:
    a = auc(y, risk)
    return {"auc": _r(a, 4), "gini": _r(2 * a - 1, 4), "ks": _r(ks(y, risk), 4)}


# --- the scorecard ----------------------------------------------------------------------


@dataclass(slots=True)
class _Binned:
    name: str
    kind: str
    edges: list[float]
    groups: list[list[str]]  # categorical bins
    labels: list[str]
    index: Any  # bin index per training row (missing = n_regular)
    woe: list[float]  # per bin incl. missing
    counts: list[int]
    bads: list[int]
    iv: float

    @property
    def n_regular(self) -> int:
        return len(self.labels) - 1


def _bin_index(kind: str, edges: Sequence[float], groups: Sequence[Sequence[str]], x: Any) -> Any:
    np = _np()
    if kind == "numeric":
        idx = np.digitize(np.nan_to_num(x, nan=0.0), edges, right=False)
        idx[np.isnan(x)] = len(edges) + 1
        return idx
    lookup = {c: i for i, g in enumerate(groups) for c in g}
    missing = len(groups)
    return np.array(
        [lookup.get(v, missing) if isinstance(v, str) else missing for v in x], dtype=int
    )


def _labels_numeric(edges: Sequence[float]) -> list[str]:
    bounds = ["-inf", *(f"{e:g}" for e in edges), "inf"]
    return [f"[{bounds[i]}, {bounds[i + 1]})" for i in range(len(edges) + 1)] + ["Missing"]


def _woe_table(idx: Any, y: Any, n_bins: int) -> tuple[list[float], list[int], list[int], float]:
    np = _np()
    counts = np.bincount(idx, minlength=n_bins)[:n_bins]
    bads = np.bincount(idx, weights=y, minlength=n_bins)[:n_bins]
    goods = counts - bads
    total_b, total_g = float(bads.sum()), float(goods.sum())
    woe: list[float] = []
    iv = 0.0
    for c, b, g in zip(counts.tolist(), bads.tolist(), goods.tolist(), strict=True):
        if c == 0:
            woe.append(0.0)
            continue
        pb = (b + 0.5) / (total_b + 0.5 * n_bins)
        pg = (g + 0.5) / (total_g + 0.5 * n_bins)
        w = math.log(pb / pg)
        woe.append(w)
        iv += (pb - pg) * w
    return woe, [int(c) for c in counts.tolist()], [int(b) for b in bads.tolist()], iv


def _bin_characteristics(
    x: Mapping[str, Any],
    y: Any,
    features: Sequence[str],
    categorical: frozenset[str],
    config: TrainConfig = TrainConfig(),
) -> list[_Binned]:
    import pandas as pd
    from optbinning import BinningProcess

    np = _np()
    frame = pd.DataFrame({name: x[name] for name in features})
    trends = config.trends or {}
    fit_params = {
        name: {"monotonic_trend": trends.get(name, trend_of(name))}
        for name in features
        if name not in categorical
    }
    process = BinningProcess(
        list(features),
        categorical_variables=[f for f in features if f in categorical] or None,
        binning_fit_params=fit_params,
        max_n_prebins=config.max_prebins,
        min_prebin_size=config.min_prebin_size,
    )
    process.fit(frame, np.asarray(y))
    result: list[_Binned] = []
    for name in features:
        optb = process.get_binned_variable(name)
        if name in categorical:
            groups = [sorted(str(c) for c in g) for g in optb.splits]
            edges: list[float] = []
            labels = [", ".join(g) for g in groups] + ["Missing"]
            kind = "categorical"
        else:
            edges = sorted({_edge(s) for s in np.asarray(optb.splits, dtype=float).tolist()})
            groups = []
            labels = _labels_numeric(edges)
            kind = "numeric"
        idx = _bin_index(kind, edges, groups, x[name])
        woe, counts, bads, iv = _woe_table(idx, np.asarray(y, dtype=float), len(labels))
        result.append(_Binned(name, kind, edges, groups, labels, idx, woe, counts, bads, iv))
    return result


def _fit_logistic(matrix: Any, y: Any, c: float = 1e6) -> tuple[float, list[float]]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(matrix, y)
    return float(model.intercept_[0]), [float(c) for c in model.coef_[0]]


def _choose_c(matrix: Any, y: Any, grid: Sequence[float], seed: int) -> float:
    """The regularisation strength with the best mean AUC over a 3-fold inner CV
    (ties to the weaker regularisation)."""
    if len(grid) == 1:
        return float(grid[0])
    from sklearn.model_selection import StratifiedKFold

    np = _np()
    best_c, best_auc = float(max(grid)), -1.0
    folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(matrix, y))
    for c in sorted(grid, reverse=True):
        aucs = []
        for fit_idx, check_idx in folds:
            intercept, coefs = _fit_logistic(matrix[fit_idx], y[fit_idx], c)
            aucs.append(auc(y[check_idx], matrix[check_idx] @ np.asarray(coefs) + intercept))
        mean = float(np.mean(aucs))
        if mean > best_auc + 1e-5:
            best_c, best_auc = float(c), mean
    return best_c


def fit_scorecard(
    x: Mapping[str, Any],
    y: Any,
    features: Sequence[str],
    categorical: frozenset[str],
    config: TrainConfig = TrainConfig(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit a scorecard on arrays; returns the sealed artifact and its binning details.

    `x` holds the application's features; derived characteristics are computed
    here (and by the scorer at decision time) from them."""
    np = _np()
    y = np.asarray(y, dtype=int)
    derived = derived_for(features, categorical) if config.derived else ()
    x = {**x, **{d.name: derive_column(x, d) for d in derived}}
    names = [*features, *(d.name for d in derived)]
    binned = _bin_characteristics(x, y, names, categorical, config)
    dropped: list[dict[str, Any]] = [
        {"characteristic": b.name, "why": f"information value {b.iv:.4f} below {config.iv_min}"}
        for b in binned
        if b.iv < config.iv_min
    ]
    kept = [b for b in binned if b.iv >= config.iv_min]
    if not kept:
        kept = sorted(binned, key=lambda b: -b.iv)[:1]
        dropped = [d for d in dropped if d["characteristic"] != kept[0].name]
    grid = config.c_grid if len(y) <= config.inner_cv_rows_max else (max(config.c_grid),)
    c = _choose_c(np.column_stack([np.asarray(b.woe)[b.index] for b in kept]), y, grid, config.seed)
    while True:
        matrix = np.column_stack([np.asarray(b.woe)[b.index] for b in kept])
        intercept, coefs = _fit_logistic(matrix, y, c)
        worst = min(range(len(kept)), key=lambda i: coefs[i])
        if coefs[worst] > 0 or len(kept) == 1:
            break
        dropped.append(
            {
                "characteristic": kept[worst].name,
                "why": f"coefficient {coefs[worst]:.4f} not positive",
            }
        )
        del kept[worst]
    scaling = config.scaling
    factor, offset, n = scaling.factor, scaling.offset, len(kept)
    characteristics: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    train_points = np.zeros(len(y), dtype=int)
    for b, coef in zip(kept, coefs, strict=True):
        points = [round(-(coef * w + intercept / n) * factor + offset / n) for w in b.woe]
        train_points += np.asarray(points)[b.index]
        code, text = reason_of(b.name)
        char: dict[str, Any] = {
            "name": b.name,
            "kind": b.kind,
            "labels": b.labels,
            "points": points[:-1],
            "missing_points": points[-1],
            "reason_code": code,
            "reason_text": text,
        }
        if b.kind == "numeric":
            char["edges"] = b.edges
        else:
            char["categories"] = b.groups
        characteristics.append(char)
        total = max(sum(b.counts), 1)
        details.append(
            {
                "characteristic": b.name,
                "trend": "categorical" if b.kind == "categorical" else trend_of(b.name),
                "iv": _r(b.iv, 4),
                "coefficient": _r(coef, 6),
                "bins": [
                    {
                        "bin": label,
                        "count": c,
                        "share": _r(c / total, 4),
                        "bads": bd,
                        "bad_rate": _r(bd / c, 4) if c else 0.0,
                        "woe": _r(w, 4),
                        "points": p,
                    }
                    for label, c, bd, w, p in zip(
                        b.labels, b.counts, b.bads, b.woe, points, strict=True
                    )
                ],
            }
        )
    cal_intercept, cal_slope = _calibrate(train_points, y)
    score_edges = _score_edges(train_points)
    total_rows = len(y)
    distribution = {
        "score": {
            "kind": "numeric",
            "edges": score_edges,
            "shares": _shares(
                np.digitize(train_points, score_edges, right=False), len(score_edges) + 1
            ),
        },
        "features": {
            b.name: {
                "kind": b.kind,
                **({"edges": b.edges} if b.kind == "numeric" else {"categories": b.groups}),
                "shares": [_r(c / total_rows) for c in b.counts],
            }
            for b in kept
        },
    }
    used = {b.name for b in kept}
    kept_derived = [d for d in derived if d.name in used]
    document = {
        "format": SCORECARD_FORMAT,
        "kind": "scorecard",
        "name": config.name,
        "features": _inputs([b.name for b in kept], kept_derived),
        "derived": [d.to_json() for d in kept_derived],
        "characteristics": characteristics,
        "scaling": scaling.to_json(),
        "calibration": {
            "method": "logistic on the integer score",
            "intercept": f"{cal_intercept:.12g}",
            "slope": f"{cal_slope:.12g}",
        },
        "training": {
            "source": config.source,
            "rows": total_rows,
            "bad_rate": _r(float(y.mean())),
            "seed": config.seed,
            "regularisation_c": c,
            "dropped": dropped,
            "libraries": _library_versions(),
            "distribution": distribution,
        },
    }
    return seal(document), {
        "binning": details,
        "dropped": dropped,
        "intercept": intercept,
        "regularisation_c": c,
    }


def derived_for(features: Sequence[str], categorical: frozenset[str]) -> tuple[Derived, ...]:
    """The derived characteristics whose inputs are all numeric features of the data."""
    present = set(features) - categorical
    return tuple(
        Derived(name, op, of)
        for name, op, of in DERIVED
        if set(of) <= present and name not in features
    )


def derive_column(x: Mapping[str, Any], spec: Derived) -> Any:
    """A derived characteristic over arrays: the scorer's operations in the same order
    (NaN, missing, wherever an input is missing)."""
    np = _np()
    column = np.asarray(x[spec.of[0]], dtype=float)
    for name in spec.of[1:]:
        other = np.asarray(x[name], dtype=float)
        column = column + other if spec.op == "sum" else column * other
    return column


def _inputs(characteristics: Sequence[str], derived: Sequence[Derived]) -> list[str]:
    """The features an application supplies for these characteristics, in order."""
    by_name = {d.name: d for d in derived}
    found: dict[str, None] = {}
    for name in characteristics:
        for feature in by_name[name].of if name in by_name else (name,):
            found.setdefault(feature)
    return list(found)


def _calibrate(scores: Any, y: Any) -> tuple[float, float]:
    np = _np()
    intercept, (slope,) = _fit_logistic(np.asarray(scores, dtype=float).reshape(-1, 1), y)
    return intercept, slope


def _score_edges(scores: Any) -> list[float]:
    np = _np()
    qs = np.quantile(
        np.asarray(scores, dtype=float), [i / SCORE_BANDS for i in range(1, SCORE_BANDS)]
    )
    return sorted({float(round(q)) for q in qs.tolist()})


def _shares(idx: Any, n_bins: int) -> list[float]:
    np = _np()
    counts = np.bincount(idx, minlength=n_bins)[:n_bins]
    total = max(int(counts.sum()), 1)
    return [_r(c / total) for c in counts.tolist()]


def _library_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for package in ("optbinning", "lightgbm", "scikit-learn", "numpy"):
        try:
            out[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            out[package] = "absent"
    return out


# --- the LightGBM challenger --------------------------------------------------------------


def _monotone(name: str, categorical: frozenset[str]) -> int:
    if name in categorical:
        return 0
    trend = trend_of(name)
    return 1 if trend == "ascending" else -1 if trend == "descending" else 0


def lgbm_matrix(
    x: Mapping[str, Any], features: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> Any:
    np = _np()
    cols = []
    for name in features:
        if name in categories:
            lookup = {c: float(i) for i, c in enumerate(categories[name])}
            cols.append(
                np.array([lookup.get(v, np.nan) if isinstance(v, str) else np.nan for v in x[name]])
            )
        else:
            cols.append(np.asarray(x[name], dtype=float))
    return np.column_stack(cols)


def fit_challenger(
    x: Mapping[str, Any],
    y: Any,
    features: Sequence[str],
    categorical: frozenset[str],
    config: TrainConfig = TrainConfig(),
) -> dict[str, Any]:
    """Fit the LightGBM challenger; returns its sealed artifact."""
    import lightgbm as lgb

    np = _np()
    y = np.asarray(y, dtype=int)
    categories = {
        name: sorted({v for v in x[name] if isinstance(v, str)})
        for name in features
        if name in categorical
    }
    matrix = lgbm_matrix(x, features, categories)
    small = len(y) < 5000
    params = {
        "objective": "binary",
        "learning_rate": 0.03 if small else 0.05,
        "num_leaves": 7 if small else 31,
        "min_data_in_leaf": 20 if small else max(50, len(y) // 1000),
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "monotone_constraints": [_monotone(f, categorical) for f in features],
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": config.lgbm_threads,
        "verbose": -1,
    }
    dataset = lgb.Dataset(
        matrix,
        label=y,
        feature_name=list(features),
        categorical_feature=[i for i, f in enumerate(features) if f in categorical] or "auto",
        free_raw_data=True,
    )
    booster = lgb.train(params, dataset, num_boost_round=config.lgbm_rounds)
    raw = booster.predict(matrix, raw_score=True)
    train_scores = np.array([config.scaling.score_of_logit(float(m)) for m in raw])
    score_edges = _score_edges(train_scores)
    distribution: dict[str, Any] = {
        "score": {
            "kind": "numeric",
            "edges": score_edges,
            "shares": _shares(
                np.digitize(train_scores, score_edges, right=False), len(score_edges) + 1
            ),
        },
        "features": {},
    }
    for name in features:
        if name in categorical:
            groups = [[c] for c in categories[name]]
            idx = _bin_index("categorical", [], groups, x[name])
            distribution["features"][name] = {
                "kind": "categorical",
                "categories": groups,
                "shares": _shares(idx, len(groups) + 1),
            }
        else:
            col = np.asarray(x[name], dtype=float)
            present = col[~np.isnan(col)]
            qs = np.quantile(present, [i / 10 for i in range(1, 10)]) if len(present) else []
            edges = sorted({_edge(q) for q in np.asarray(qs).tolist()})
            idx = _bin_index("numeric", edges, [], col)
            distribution["features"][name] = {
                "kind": "numeric",
                "edges": edges,
                "shares": _shares(idx, len(edges) + 2),
            }
    document = {
        "format": LIGHTGBM_FORMAT,
        "kind": "lightgbm",
        "name": f"{config.name}-lightgbm",
        "features": list(features),
        "categories": categories,
        "reason_codes": {
            f: dict(zip(("code", "text"), reason_of(f), strict=True)) for f in features
        },
        "scaling": config.scaling.to_json(),
        "params": {k: v for k, v in params.items() if k not in ("num_threads", "verbose")},
        "rounds": config.lgbm_rounds,
        "model_text": booster.model_to_string(),
        "training": {
            "source": config.source,
            "rows": len(y),
            "bad_rate": _r(float(y.mean())),
            "seed": config.seed,
            "libraries": _library_versions(),
            "distribution": distribution,
        },
    }
    return seal(document)


# --- the whole run ------------------------------------------------------------------------


def split(n_rows: int, y: Any, test_share: float, seed: int) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    np = _np()
    rows = np.arange(n_rows)
    train_idx, test_idx = train_test_split(
        rows, test_size=test_share, random_state=seed, stratify=y
    )
    return np.sort(train_idx), np.sort(test_idx)


def _take(x: Mapping[str, Any], idx: Any) -> dict[str, Any]:
    return {k: v[idx] for k, v in x.items()}


def _rows(x: Mapping[str, Any], features: Sequence[str], idx: Any) -> list[dict[str, Any]]:
    cols = [
        (f, [None if (isinstance(v, float) and v != v) else v for v in x[f][idx].tolist()])
        for f in features
    ]
    n = len(cols[0][1]) if cols else 0
    return [{f: col[i] for f, col in cols} for i in range(n)]


def score_rows(
    model_document: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[int], list[float]]:
    """Scores and PDs of rows through the pure scoring path (what decisions use)."""
    model = load_model(model_document)
    if isinstance(model, LightGBMModel):
        results = model.score_batch(rows, reasons=False)
    else:
        results = [model.score(r) for r in rows]
    return [r.score for r in results], [float(r.pd) for r in results]


def calibration_bands(
    scores: Sequence[int], pds: Sequence[float], y: Any, edges: Sequence[float]
) -> list[dict[str, Any]]:
    np = _np()
    idx = np.digitize(np.asarray(scores, dtype=float), edges, right=False)
    y = np.asarray(y, dtype=float)
    pds_a = np.asarray(pds, dtype=float)
    bounds = ["", *(f"{e:g}" for e in edges), ""]
    out = []
    for band in range(len(edges) + 1):
        mask = idx == band
        count = int(mask.sum())
        out.append(
            {
                "band": f"{bounds[band] or 'low'} - {bounds[band + 1] or 'high'}",
                "count": count,
                "observed_bad_rate": _r(float(y[mask].mean()), 4) if count else None,
                "predicted_pd": _r(float(pds_a[mask].mean()), 4) if count else None,
            }
        )
    return out


def train(
    table: Table, config: TrainConfig = TrainConfig(), progress: Progress = _quiet
) -> TrainingResult:
    """Train, validate and report (nothing written: see `write_outputs`)."""
    np = _np()
    if table.target is None:
        raise ValueError("training needs a target")
    config = dataclasses.replace(config, source=config.source or Path(table.path).name)
    y = np.asarray(table.target, dtype=int)
    x = columns_as_arrays(table)
    features = list(table.columns)
    progress("splitting training and test populations")
    train_idx, test_idx = split(len(y), y, config.test_share, config.seed)
    x_train = _take(x, train_idx)
    progress("optimal binning and logistic regression (scorecard)")
    scorecard, details = fit_scorecard(x_train, y[train_idx], features, table.categorical, config)
    progress("scoring training and test populations")
    train_rows = _rows(x, scorecard["features"], train_idx)
    test_rows = _rows(x, scorecard["features"], test_idx)
    _, tr_pds = score_rows(scorecard, train_rows)
    te_scores, te_pds = score_rows(scorecard, test_rows)
    report_metrics: dict[str, Any] = {
        "scorecard": {"train": metrics(y[train_idx], tr_pds), "test": metrics(y[test_idx], te_pds)}
    }
    challenger = None
    if config.challenger:
        progress("gradient boosting with monotone constraints (LightGBM challenger)")
        challenger = fit_challenger(x_train, y[train_idx], features, table.categorical, config)
        progress("scoring with the challenger")
        all_rows_tr = _rows(x, features, train_idx)
        all_rows_te = _rows(x, features, test_idx)
        _, ch_tr = score_rows(challenger, all_rows_tr)
        _, ch_te = score_rows(challenger, all_rows_te)
        report_metrics["lightgbm"] = {
            "train": metrics(y[train_idx], ch_tr),
            "test": metrics(y[test_idx], ch_te),
        }
    progress("validation report")
    score_edges = scorecard["training"]["distribution"]["score"]["edges"]
    from lendcore.risk.monitoring import model_stability

    stability = model_stability(load_model(scorecard), test_rows, scores=te_scores)
    report = {
        "model": {"name": config.name, "version": scorecard["version"], "kind": "scorecard"},
        "challenger": None
        if challenger is None
        else {"name": challenger["name"], "version": challenger["version"], "kind": "lightgbm"},
        "data": {
            "file": Path(table.path).name,
            "rows": table.n_rows,
            "train_rows": len(train_idx),
            "test_rows": len(test_idx),
            "bad_rate": _r(float(y.mean()), 4),
            "features": features,
            "derived": scorecard["derived"],
            "categorical": sorted(table.categorical),
        },
        "scaling": {
            **config.scaling.to_json(),
            "meaning": f"{config.scaling.base_score} points at {config.scaling.base_odds:g}:1 good:bad odds, "
            f"{config.scaling.pdo} points to double the odds",
        },
        "metrics": report_metrics,
        "calibration_test": calibration_bands(te_scores, te_pds, y[test_idx], score_edges),
        "psi_train_test": {r.quantity: _r(r.psi, 4) for r in stability.rows},
        "binning": details["binning"],
        "dropped": details["dropped"],
        "reason_codes": [
            {"code": c["reason_code"], "text": c["reason_text"], "characteristic": c["name"]}
            for c in scorecard["characteristics"]
        ],
        "libraries": _library_versions(),
    }
    return TrainingResult(scorecard, challenger, report)


# --- outputs ----------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(result: TrainingResult, out: str | Path) -> list[str]:
    """Write the artifacts, the report (JSON and HTML) and the reason-code table."""
    out = Path(out)
    texts: dict[Path, str] = {out / ARTIFACT_FILE: artifact_text(result.scorecard)}
    if result.challenger is not None:
        texts[out / "challenger" / ARTIFACT_FILE] = artifact_text(result.challenger)
    texts[out / "report.json"] = json.dumps(result.report, indent=1, sort_keys=True) + "\n"
    texts[out / "report.html"] = report_html(result.report)
    texts[out / "reason_codes.csv"] = reason_codes_csv(result.report["reason_codes"])
    for path, text in texts.items():
        _write(path, text)
    result.files = [str(p) for p in texts]
    return result.files


def reason_codes_csv(rows: Sequence[Mapping[str, str]]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["code", "text", "characteristic"])
    for r in rows:
        writer.writerow([r["code"], r["text"], r["characteristic"]])
    return buffer.getvalue()


def _table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(report: Mapping[str, Any]) -> str:
    """The validation report for people: one self-contained HTML page of tables."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Validation report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}</style>",
        "</head><body>",
        f"<h1>Validation report: {html.escape(report['model']['name'])}</h1>",
        f"<p>Scorecard version <code>{html.escape(report['model']['version'])}</code>",
    ]
    if report.get("challenger"):
        parts.append(f"; challenger <code>{html.escape(report['challenger']['version'])}</code>")
    data = report["data"]
    parts.append(
        f"</p><p>Data {html.escape(data['file'])}: {data['rows']} rows ({data['train_rows']} training, "
        f"{data['test_rows']} test), bad rate {data['bad_rate']}. Scale: {html.escape(report['scaling']['meaning'])}.</p>"
    )
    parts.append("<h2>Discrimination</h2>")
    rows = [
        [model, population, m["auc"], m["gini"], m["ks"]]
        for model, pops in report["metrics"].items()
        for population, m in pops.items()
    ]
    parts.append(_table_html(["model", "population", "AUC", "Gini", "KS"], rows))
    parts.append("<h2>Calibration by score band (test)</h2>")
    parts.append(
        _table_html(
            ["score band", "count", "observed bad rate", "predicted PD"],
            [
                [b["band"], b["count"], b["observed_bad_rate"], b["predicted_pd"]]
                for b in report["calibration_test"]
            ],
        )
    )
    parts.append("<h2>Population stability, training vs test</h2>")
    parts.append(_table_html(["quantity", "PSI"], list(report["psi_train_test"].items())))
    parts.append("<h2>Reason codes</h2>")
    parts.append(
        _table_html(
            ["code", "text", "characteristic"],
            [[r["code"], r["text"], r["characteristic"]] for r in report["reason_codes"]],
        )
    )
    if report["dropped"]:
        parts.append("<h2>Characteristics left out</h2>")
        parts.append(
            _table_html(
                ["characteristic", "why"],
                [[d["characteristic"], d["why"]] for d in report["dropped"]],
            )
        )
    parts.append("<h2>Binning tables</h2>")
    for b in report["binning"]:
        parts.append(
            f"<h3>{html.escape(b['characteristic'])}</h3><p>trend {html.escape(b['trend'])}, "
            f"IV {b['iv']}, coefficient {b['coefficient']}</p>"
        )
        parts.append(
            _table_html(
                ["bin", "count", "share", "bads", "bad rate", "WoE", "points"],
                [
                    [
                        r["bin"],
                        r["count"],
                        r["share"],
                        r["bads"],
                        r["bad_rate"],
                        r["woe"],
                        r["points"],
                    ]
                    for r in b["bins"]
                ],
            )
        )
    parts.append("</body></html>\n")
    return "".join(parts)
