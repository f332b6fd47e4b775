"""Scoring models at decision time: pure Python, no pandas or optbinning.

A model is a JSON *artifact*: a document whose version is the SHA-256 of its
canonical form (sorted keys, no spaces, the "version" key left out), so the same
content always has the same version and any change to it is a new version.

Two kinds:

- ``scorecard``: each characteristic's bins (numeric edges or category sets, and
  a bin of its own for missing values) and the integer points of each bin. The
  score is the sum of the points; the probability of default is the calibration
  ``logit(PD) = intercept + slope * score`` computed in ``decimal`` (whose exp is
  correctly rounded, so the PD is the same on every machine) and quantized to 6
  places. Scoring is a ``bisect`` per characteristic: a few microseconds.
- ``lightgbm``: LightGBM's model text plus metadata; scored by LightGBM itself
  (imported when such an artifact is loaded), with reason codes from its SHAP
  contributions (``pred_contrib``). It is the challenger, scored in shadow.

A scorecard may hold *derived* characteristics: a value computed from the
application's features by a fixed operation (``sum`` or ``product`` of named
features, missing when any of them is missing), e.g. the total of the three
late-payment counts. The scorer computes them itself, so the application
supplies only its features, and each derived characteristic is binned and
pointed like any other (its own reason code).

Reason codes: a characteristic's points lost are its maximum points minus the
points received; the (up to) four characteristics that lost most, most first,
ties in the artifact's characteristic order.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lendcore.risk.errors import FeatureInvalid, ModelArtifactInvalid

SCORECARD_FORMAT = "lendcore.scorecard/1"
LIGHTGBM_FORMAT = "lendcore.lightgbm/1"
ARTIFACT_FILE = "model.json"
REASONS_MAX = 4
PD_QUANTUM = Decimal("0.000001")
# LightGBM predicts on one thread: a decision scores one application, and OpenMP's
# threads spin-waiting for a core on a busy machine cost ten times the work.
PREDICT_THREADS = 1
_DECIMAL = Context(prec=34)

CANONICAL_FEATURES: tuple[str, ...] = (
    "age_years",
    "monthly_income",
    "debt_ratio",
    "revolving_utilization",
    "open_credit_lines",
    "real_estate_loans",
    "times_30_59_days_late",
    "times_60_89_days_late",
    "times_90_days_late",
    "dependents",
)

FeatureValue = float | int | str | None


@dataclass(frozen=True, slots=True)
class ReasonCode:
    code: str
    text: str
    characteristic: str
    points_lost: int


@dataclass(frozen=True, slots=True)
class Scored:
    score: int
    pd: Decimal  # quantized to 6 places, exact and reproducible
    reasons: tuple[ReasonCode, ...]  # the characteristics that lowered the score most, most first


@runtime_checkable
class ScoringModel(Protocol):
    version: str  # content hash
    kind: str  # "scorecard" | "lightgbm"
    features: tuple[str, ...]  # what the application supplies

    def score(self, features: Mapping[str, FeatureValue]) -> Scored: ...

    def characteristic_values(
        self, features: Mapping[str, FeatureValue]
    ) -> Mapping[str, FeatureValue]: ...


# --- canonical form and content hash ------------------------------------------------


def canonical_json(document: Mapping[str, Any]) -> str:
    """The hashed form: sorted keys, no spaces, no NaN, without the "version" key."""
    content = {k: v for k, v in document.items() if k != "version"}
    try:
        return json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ModelArtifactInvalid(f"model artifact is not plain JSON: {exc}") from exc


def content_hash(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def seal(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with its version (its content hash) set."""
    sealed = {k: v for k, v in document.items() if k != "version"}
    sealed["version"] = content_hash(sealed)
    return sealed


def artifact_text(document: Mapping[str, Any]) -> str:
    """The file form of an artifact: the sealed document, indented for people."""
    return json.dumps(seal(document), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def read_document(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """An artifact's document from a directory (its model.json), a file, JSON text or a dict."""
    if isinstance(source, Mapping):
        return dict(source)
    text: str
    if isinstance(source, str) and source.lstrip().startswith("{"):
        text = source
    else:
        path = Path(source)
        if path.is_dir():
            path = path / ARTIFACT_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelArtifactInvalid(f"cannot read model artifact {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ModelArtifactInvalid(f"model artifact is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ModelArtifactInvalid("model artifact is not a JSON object")
    return document


def _check_version(document: Mapping[str, Any]) -> str:
    computed = content_hash(document)
    stated = document.get("version")
    if stated is not None and stated != computed:
        raise ModelArtifactInvalid(
            f"model artifact content hash mismatch: states {stated}, content is {computed}"
        )
    return computed


def load_model(path_or_document: str | Path | Mapping[str, Any]) -> ScoringModel:
    """A model from an artifact directory, an artifact file, or the artifact's JSON document."""
    document = read_document(path_or_document)
    version = _check_version(document)
    fmt = document.get("format")
    if fmt == SCORECARD_FORMAT:
        return Scorecard(document, version)
    if fmt == LIGHTGBM_FORMAT:
        return LightGBMModel(document, version)
    raise ModelArtifactInvalid(f"unknown model artifact format {fmt!r}")


# --- probability of default ---------------------------------------------------------


def sigmoid_decimal(logit: Decimal) -> Decimal:
    """1 / (1 + exp(-logit)) in decimal arithmetic, quantized to 6 places (half-even)."""
    ctx = _DECIMAL
    if logit < -60:
        return Decimal("0.000000")
    if logit > 60:
        return Decimal("1.000000")
    value = ctx.divide(Decimal(1), ctx.add(Decimal(1), ctx.exp(ctx.minus(logit))))
    return value.quantize(PD_QUANTUM, rounding=ROUND_HALF_EVEN, context=ctx)


def _decimal(value: Any, what: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except ArithmeticError as exc:
        raise ModelArtifactInvalid(f"model artifact {what} is not a number: {value!r}") from exc
    if not result.is_finite():
        raise ModelArtifactInvalid(f"model artifact {what} is not finite: {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class Scaling:
    """Points to double the odds: `base_score` points at `base_odds`:1 good:bad odds."""

    base_score: int
    base_odds: float
    pdo: int

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def score_of_logit(self, logit_pd: float) -> int:
        """The score of a PD's log-odds of default on this scale (higher score, lower PD)."""
        return round(self.offset - self.factor * logit_pd)

    def to_json(self) -> dict[str, Any]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo}

    @staticmethod
    def from_json(value: Any) -> Scaling:
        try:
            return Scaling(int(value["base_score"]), float(value["base_odds"]), int(value["pdo"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelArtifactInvalid(f"model artifact scaling is malformed: {exc}") from exc


DEFAULT_SCALING = Scaling(base_score=600, base_odds=50.0, pdo=20)


def category_key(value: FeatureValue) -> str:
    """The key a categorical value is looked up by: text as is, integral numbers without .0."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_missing(value: FeatureValue) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""


# --- derived characteristics -----------------------------------------------------------

DERIVED_OPS: tuple[str, ...] = ("sum", "product")


def _number_of(name: str, value: FeatureValue) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError as exc:
            raise FeatureInvalid(
                f"feature {name} must be a number, got {value!r}", feature=name
            ) from exc
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Derived:
    """A characteristic computed from features: `op` over `of`, left to right.

    Missing when any input is missing. Training computes the same value with
    numpy in the same order of operations, so both agree to the last bit.
    """

    name: str
    op: str  # "sum" | "product"
    of: tuple[str, ...]

    def value(self, features: Mapping[str, FeatureValue]) -> float | None:
        result: float | None = None
        for name in self.of:
            raw = features.get(name)
            if is_missing(raw):
                return None
            number = _number_of(name, raw)
            if result is None:
                result = number
            elif self.op == "sum":
                result = result + number
            else:
                result = result * number
        return result

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "of": list(self.of)}


def derived_of(raw: Any) -> tuple[Derived, ...]:
    """The derived characteristics of an artifact's "derived" list (checked)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ModelArtifactInvalid("model artifact: derived is not a list")
    found: list[Derived] = []
    for item in raw:
        try:
            spec = Derived(str(item["name"]), str(item["op"]), tuple(str(f) for f in item["of"]))
        except (KeyError, TypeError) as exc:
            raise ModelArtifactInvalid(f"model artifact: derived is malformed: {exc}") from exc
        if spec.op not in DERIVED_OPS:
            raise ModelArtifactInvalid(
                f"derived characteristic {spec.name}: unknown operation {spec.op!r}"
            )
        if len(spec.of) < 2:
            raise ModelArtifactInvalid(
                f"derived characteristic {spec.name}: needs two features or more"
            )
        found.append(spec)
    names = [d.name for d in found]
    if len(set(names)) != len(names) or set(names) & {f for d in found for f in d.of}:
        raise ModelArtifactInvalid(
            "model artifact: a derived characteristic is named twice or derived from another"
        )
    return tuple(found)


# --- the scorecard --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Characteristic:
    """One characteristic: its bins, their points, and its reason code."""

    name: str
    kind: str  # "numeric" | "categorical"
    edges: tuple[float, ...]  # numeric: bin i is [edges[i-1], edges[i]); below edges[0] is bin 0
    categories: Mapping[str, int]  # categorical: category -> bin
    labels: tuple[str, ...]
    points: tuple[int, ...]  # one per regular bin
    missing_points: int  # missing values (and unseen categories) score here
    reason_code: str
    reason_text: str

    @property
    def max_points(self) -> int:
        return max((*self.points, self.missing_points))

    def bin_of(self, value: FeatureValue) -> int:
        """The bin index of a value; len(points) is the missing bin."""
        if is_missing(value):
            return len(self.points)
        if self.kind == "categorical":
            return self.categories.get(category_key(value), len(self.points))
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError as exc:
                raise FeatureInvalid(
                    f"feature {self.name} must be a number, got {value!r}", feature=self.name
                ) from exc
        assert value is not None
        return bisect_right(self.edges, value)


def _characteristic(raw: Any) -> Characteristic:
    try:
        name = str(raw["name"])
        kind = str(raw["kind"])
        points = tuple(int(p) for p in raw["points"])
        edges = tuple(float(e) for e in raw.get("edges", ()))
        cats = {str(c): i for i, group in enumerate(raw.get("categories", ())) for c in group}
        labels = tuple(str(s) for s in raw["labels"])
        result = Characteristic(
            name=name,
            kind=kind,
            edges=edges,
            categories=cats,
            labels=labels,
            points=points,
            missing_points=int(raw["missing_points"]),
            reason_code=str(raw["reason_code"]),
            reason_text=str(raw["reason_text"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelArtifactInvalid(f"model artifact characteristic is malformed: {exc}") from exc
    if kind == "numeric":
        if len(points) != len(edges) + 1:
            raise ModelArtifactInvalid(
                f"characteristic {name}: {len(edges)} edges need {len(edges) + 1} points"
            )
        if any(not math.isfinite(e) for e in edges) or list(edges) != sorted(set(edges)):
            raise ModelArtifactInvalid(
                f"characteristic {name}: edges must be finite and increasing"
            )
    elif kind == "categorical":
        if len(points) != len(raw.get("categories", ())):
            raise ModelArtifactInvalid(
                f"characteristic {name}: one points value per category group"
            )
    else:
        raise ModelArtifactInvalid(f"characteristic {name}: unknown kind {kind!r}")
    if len(labels) != len(points) + 1:
        raise ModelArtifactInvalid(f"characteristic {name}: one label per bin and one for missing")
    return result


class Scorecard:
    """A points scorecard; `score()` is pure Python and allocation-light."""

    __slots__ = (
        "_intercept",
        "_pd_cache",
        "_plan",
        "_slope",
        "characteristics",
        "derived",
        "document",
        "features",
        "kind",
        "name",
        "scaling",
        "version",
    )

    def __init__(self, document: Mapping[str, Any], version: str | None = None) -> None:
        self.document = dict(document)
        self.version = version or _check_version(document)
        self.kind = "scorecard"
        self.name = str(document.get("name", "scorecard"))
        raw_chars = document.get("characteristics")
        if not isinstance(raw_chars, list) or not raw_chars:
            raise ModelArtifactInvalid("scorecard artifact has no characteristics")
        self.characteristics = tuple(_characteristic(c) for c in raw_chars)
        names = [c.name for c in self.characteristics]
        if len(set(names)) != len(names):
            raise ModelArtifactInvalid("scorecard artifact names a characteristic twice")
        derived = {d.name: d for d in derived_of(document.get("derived"))}
        self.derived = tuple(d for d in derived.values() if d.name in names)
        # What the application supplies: each characteristic, or a derived one's inputs.
        inputs: dict[str, None] = {}
        for name in names:
            for feature in derived[name].of if name in derived else (name,):
                inputs.setdefault(feature)
        self.features = tuple(inputs)
        self.scaling = Scaling.from_json(document.get("scaling"))
        calibration = document.get("calibration")
        if not isinstance(calibration, Mapping):
            raise ModelArtifactInvalid("scorecard artifact has no calibration")
        self._intercept = _decimal(calibration.get("intercept"), "calibration intercept")
        self._slope = _decimal(calibration.get("slope"), "calibration slope")
        self._pd_cache: dict[int, Decimal] = {}
        # The hot loop's plan: plain tuples and lists, looked up once.
        self._plan = tuple(
            (
                i,
                c.name,
                c.kind == "categorical",
                list(c.edges),
                list(c.points),
                c.categories,
                c.missing_points,
                c.max_points,
            )
            for i, c in enumerate(self.characteristics)
        )

    def pd_of_score(self, score: int) -> Decimal:
        pd = self._pd_cache.get(score)
        if pd is None:
            logit = _DECIMAL.add(self._intercept, _DECIMAL.multiply(self._slope, Decimal(score)))
            pd = sigmoid_decimal(logit)
            if len(self._pd_cache) < 100_000:
                self._pd_cache[score] = pd
        return pd

    def characteristic_values(
        self, features: Mapping[str, FeatureValue]
    ) -> Mapping[str, FeatureValue]:
        """The features with the derived characteristics' values added."""
        if not self.derived:
            return features
        values = dict(features)
        for d in self.derived:
            values[d.name] = d.value(features)
        return values

    def points_of(self, features: Mapping[str, FeatureValue]) -> list[int]:
        """Each characteristic's points, in characteristic order."""
        features = self.characteristic_values(features)
        return [
            c.points[b]
            if (b := c.bin_of(features.get(c.name))) < len(c.points)
            else c.missing_points
            for c in self.characteristics
        ]

    def score(self, features: Mapping[str, FeatureValue]) -> Scored:
        total = 0
        lost: list[tuple[int, int]] = []
        if self.derived:
            features = self.characteristic_values(features)
        get = features.get
        for index, name, categorical, edges, points, categories, missing, top in self._plan:
            value = get(name)
            if value is None or value != value or value == "":
                got = missing
            elif categorical:
                b = categories.get(category_key(value))
                got = missing if b is None else points[b]
            else:
                try:
                    got = points[bisect_right(edges, value)]
                except TypeError:
                    got = points[self.characteristics[index].bin_of(value)]
            total += got
            if got < top:
                lost.append((got - top, index))
        if lost:
            lost.sort()
            chars = self.characteristics
            reasons = tuple(
                ReasonCode(
                    chars[i].reason_code, chars[i].reason_text, chars[i].name, -negative_lost
                )
                for negative_lost, i in lost[:REASONS_MAX]
            )
        else:
            reasons = ()
        return Scored(total, self.pd_of_score(total), reasons)

    def score_batch(self, rows: Sequence[Mapping[str, FeatureValue]]) -> list[Scored]:
        return [self.score(row) for row in rows]

    def reason_table(self) -> list[tuple[str, str, str]]:
        return [(c.reason_code, c.reason_text, c.name) for c in self.characteristics]

    @property
    def distribution(self) -> Mapping[str, Any]:
        value = self.document.get("training", {}).get("distribution", {})
        return value if isinstance(value, Mapping) else {}


# --- the LightGBM challenger --------------------------------------------------------


class LightGBMModel:
    """LightGBM's model text plus metadata; scored by LightGBM, reasons from SHAP values.

    Reason codes: LightGBM's `pred_contrib` gives each feature's SHAP contribution
    to the log-odds of default; a positive contribution lowered the score, and its
    points lost are the contribution times the scale's factor (points per unit of
    log-odds), rounded. The four largest, most first.
    """

    def __init__(self, document: Mapping[str, Any], version: str | None = None) -> None:
        try:
            import lightgbm
            import numpy
        except ImportError as exc:  # pragma: no cover - lightgbm is a dependency
            raise ModelArtifactInvalid("a lightgbm artifact needs the lightgbm package") from exc
        self.document = dict(document)
        self.version = version or _check_version(document)
        self.kind = "lightgbm"
        self.name = str(document.get("name", "lightgbm"))
        try:
            self.features = tuple(str(f) for f in document["features"])
            self.categories: dict[str, dict[str, int]] = {
                str(k): {str(c): i for i, c in enumerate(v)}
                for k, v in dict(document.get("categories", {})).items()
            }
            reasons = dict(document["reason_codes"])
            self._reasons = [
                (str(reasons[f]["code"]), str(reasons[f]["text"])) for f in self.features
            ]
            self.scaling = Scaling.from_json(document["scaling"])
            self._booster = lightgbm.Booster(model_str=str(document["model_text"]))
        except (KeyError, TypeError, ValueError, lightgbm.basic.LightGBMError) as exc:
            raise ModelArtifactInvalid(f"lightgbm artifact is malformed: {exc}") from exc
        if self._booster.num_feature() != len(self.features):
            raise ModelArtifactInvalid("lightgbm artifact: model and feature list disagree")
        self._np = numpy

    def _row(self, features: Mapping[str, FeatureValue]) -> list[float]:
        row: list[float] = []
        for name in self.features:
            value = features.get(name)
            if is_missing(value):
                row.append(math.nan)
            elif name in self.categories:
                code = self.categories[name].get(category_key(value))
                row.append(math.nan if code is None else float(code))
            else:
                try:
                    row.append(float(value))  # type: ignore[arg-type]
                except (TypeError, ValueError) as exc:
                    raise FeatureInvalid(
                        f"feature {name} must be a number, got {value!r}", feature=name
                    ) from exc
        return row

    def score(self, features: Mapping[str, FeatureValue]) -> Scored:
        return self.score_batch([features])[0]

    def characteristic_values(
        self, features: Mapping[str, FeatureValue]
    ) -> Mapping[str, FeatureValue]:
        """The features as they are (the challenger derives nothing)."""
        return features

    def score_batch(
        self, rows: Sequence[Mapping[str, FeatureValue]], *, reasons: bool = True
    ) -> list[Scored]:
        """Score many rows in one LightGBM call; `reasons=False` skips the SHAP values."""
        if not rows:
            return []
        matrix = self._np.array([self._row(r) for r in rows], dtype=float)
        if not reasons:
            raw = self._np.asarray(
                self._booster.predict(matrix, raw_score=True, num_threads=PREDICT_THREADS)
            ).tolist()
            out = []
            for margin in raw:
                logit = Decimal(repr(round(margin, 12)))
                out.append(
                    Scored(self.scaling.score_of_logit(float(logit)), sigmoid_decimal(logit), ())
                )
            return out
        contrib = self._np.asarray(
            self._booster.predict(matrix, pred_contrib=True, num_threads=PREDICT_THREADS)
        )
        n = len(self.features)
        factor = self.scaling.factor
        results: list[Scored] = []
        for line in contrib.tolist():
            # The last column is the expected value; the sum is the raw log-odds.
            margin = math.fsum(line)
            logit = Decimal(repr(round(margin, 12)))
            lost = sorted(
                (-round(line[i] * factor), i) for i in range(n) if round(line[i] * factor) > 0
            )
            found = tuple(
                ReasonCode(self._reasons[i][0], self._reasons[i][1], self.features[i], -neg)
                for neg, i in lost[:REASONS_MAX]
            )
            results.append(
                Scored(self.scaling.score_of_logit(float(logit)), sigmoid_decimal(logit), found)
            )
        return results

    def reason_table(self) -> list[tuple[str, str, str]]:
        return [
            (code, text, f) for (code, text), f in zip(self._reasons, self.features, strict=True)
        ]

    @property
    def distribution(self) -> Mapping[str, Any]:
        value = self.document.get("training", {}).get("distribution", {})
        return value if isinstance(value, Mapping) else {}


def score_all(
    model: ScoringModel, rows: Sequence[Mapping[str, FeatureValue]], *, reasons: bool = True
) -> list[Scored]:
    """Score many rows: the challenger in one LightGBM call (`reasons=False` skips SHAP)."""
    if isinstance(model, LightGBMModel):
        return model.score_batch(rows, reasons=reasons)
    return [model.score(r) for r in rows]


def demo_model_path() -> Path:
    """The demo scorecard shipped in the package (trained on Give Me Some Credit)."""
    return Path(__file__).parent / "demo_model"
