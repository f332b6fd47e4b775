"""Population stability: recent applications against the training population (pure).

The artifact stores the training population's distribution: for the score, the
share of training rows in each score band (training deciles), and for each
characteristic the share in each of its bins plus the missing bin. Recent
applications (feature dicts) are binned the same way and compared with the
population stability index

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

with empty bins floored so that PSI stays finite: a training share at 0.0001, a
recent share at half an application (0.5 / n, or 0.0001 if that is smaller; at
most the training share), so that a bin left empty by a few dozen applications,
as happens by chance, does not read as a shift by itself. Rule of thumb (and
the thresholds used here): below 0.10 stable, 0.10 to 0.25 watch, above 0.25 a
shift that needs a look (the model may no longer fit the people applying).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lendcore.risk.errors import ModelArtifactInvalid
from lendcore.risk.model import FeatureValue, ScoringModel, category_key, is_missing, score_all

PSI_WATCH = 0.10
PSI_WARNING = 0.25
SHARE_FLOOR = 0.0001


def psi(
    expected: Sequence[float], actual: Sequence[float], actual_floor: float = SHARE_FLOOR
) -> float:
    """The population stability index of two distributions over the same bins."""
    if len(expected) != len(actual):
        raise ValueError("PSI needs the same bins on both sides")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e = max(e, SHARE_FLOOR)
        # An empty recent bin counts as `actual_floor`, or as the training share when
        # that is smaller: no application where training had fewer than the floor
        # says nothing.
        a = max(a, min(actual_floor, e))
        total += (a - e) * math.log(a / e)
    return total


def status_of(value: float) -> str:
    if value > PSI_WARNING:
        return "warning"
    if value > PSI_WATCH:
        return "watch"
    return "stable"


@dataclass(frozen=True, slots=True)
class Binning:
    """How one quantity was binned in training, and the training shares per bin.

    Numeric: bin i is [edges[i-1], edges[i]); categorical: one bin per category
    group. With `has_missing` the last share is the missing bin's.
    """

    kind: str
    edges: tuple[float, ...]
    categories: Mapping[str, int]
    shares: tuple[float, ...]
    has_missing: bool

    @property
    def n_regular(self) -> int:
        return len(self.shares) - (1 if self.has_missing else 0)

    def bin_of(self, value: FeatureValue) -> int:
        if is_missing(value):
            return self.n_regular if self.has_missing else 0
        if self.kind == "categorical":
            found = self.categories.get(category_key(value))
            return found if found is not None else (self.n_regular if self.has_missing else 0)
        try:
            return bisect_right(self.edges, float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return self.n_regular if self.has_missing else 0

    def shares_of(self, values: Sequence[FeatureValue]) -> list[float]:
        counts = [0] * len(self.shares)
        for v in values:
            counts[self.bin_of(v)] += 1
        n = max(len(values), 1)
        return [c / n for c in counts]

    @staticmethod
    def from_json(raw: Mapping[str, Any], *, has_missing: bool = True) -> Binning:
        try:
            kind = str(raw.get("kind", "numeric"))
            edges = tuple(float(e) for e in raw.get("edges", ()))
            cats = {str(c): i for i, g in enumerate(raw.get("categories", ())) for c in g}
            shares = tuple(float(s) for s in raw["shares"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelArtifactInvalid(f"training distribution is malformed: {exc}") from exc
        regular = len(edges) + 1 if kind == "numeric" else len(raw.get("categories", ()))
        if len(shares) != regular + (1 if has_missing else 0):
            raise ModelArtifactInvalid("training distribution: shares and bins disagree")
        return Binning(kind, edges, cats, shares, has_missing)


@dataclass(frozen=True, slots=True)
class StabilityRow:
    quantity: str  # "score" or a characteristic's name
    psi: float
    status: str  # stable | watch | warning
    expected: tuple[float, ...]
    actual: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class StabilityReport:
    n_recent: int
    rows: tuple[StabilityRow, ...]

    @property
    def warnings(self) -> tuple[StabilityRow, ...]:
        return tuple(r for r in self.rows if r.status == "warning")


def population_stability(
    distribution: Mapping[str, Any],
    recent: Sequence[Mapping[str, FeatureValue]],
    score: Callable[[Mapping[str, FeatureValue]], int] | None = None,
    scores: Sequence[int] | None = None,
) -> StabilityReport:
    """PSI of the score and of each characteristic, `recent` against training.

    `distribution` is the artifact's training distribution (`model.distribution`);
    the score's PSI needs the recent scores, given as `scores` or computed with
    `score` (e.g. `lambda f: model.score(f).score`).
    """
    if not recent:
        raise ValueError("population stability needs at least one recent application")
    floor = max(SHARE_FLOOR, 0.5 / len(recent))
    rows: list[StabilityRow] = []
    raw_score = distribution.get("score")
    if raw_score is not None and (scores is not None or score is not None):
        binning = Binning.from_json(raw_score, has_missing=False)
        if scores is not None:
            recent_scores: list[FeatureValue] = list(scores)
        else:
            assert score is not None
            recent_scores = [score(r) for r in recent]
        actual = binning.shares_of(recent_scores)
        value = psi(binning.shares, actual, floor)
        rows.append(StabilityRow("score", value, status_of(value), binning.shares, tuple(actual)))
    features = distribution.get("features", {})
    if not isinstance(features, Mapping):
        raise ModelArtifactInvalid("training distribution: features is not an object")
    for name, raw in features.items():
        binning = Binning.from_json(raw)
        actual = binning.shares_of([r.get(name) for r in recent])
        value = psi(binning.shares, actual, floor)
        rows.append(StabilityRow(name, value, status_of(value), binning.shares, tuple(actual)))
    return StabilityReport(len(recent), tuple(rows))


def model_stability(
    model: ScoringModel,
    recent: Sequence[Mapping[str, FeatureValue]],
    scores: Sequence[int] | None = None,
) -> StabilityReport:
    """`population_stability` of a model: `recent` applications' features scored with
    the model (unless their `scores` are given) and their derived characteristics
    computed, against the training population in the model's artifact."""
    if scores is None:
        scores = [s.score for s in score_all(model, recent, reasons=False)]
    values = [model.characteristic_values(r) for r in recent]
    distribution = getattr(model, "distribution", None)
    if not isinstance(distribution, Mapping) or not distribution:
        raise ModelArtifactInvalid(
            f"model {model.version[:12]} holds no training distribution to compare with"
        )
    return population_stability(distribution, values, scores=scores)
