"""IFRS 9 settings: one validated, immutable model read from YAML.

`load_config()` reads the packaged `default.yaml`; `load_config(path)` a file of
the same shape; `parse_config(document)` an already parsed mapping (a setting
stored elsewhere). Every problem raises `Ifrs9ConfigInvalid` naming the setting.

Probabilities, LGDs and multipliers are floats (ECL is an estimate; only the
per-loan ECL is rounded to minor units). Scenario weights are decimals written
as quoted strings, so that "they add up to exactly 1" is a check that means
something.

The module also holds the typed errors of the package and the input checks the
other modules share.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lendcore.errors import Conflict, InvalidInput

# --- errors ------------------------------------------------------------------


class Ifrs9ConfigInvalid(InvalidInput):
    """An IFRS 9 settings file that is not valid YAML or breaks a rule."""

    code = "IFRS9_CONFIG_INVALID"


class Ifrs9InputInvalid(InvalidInput):
    """A frame given to an IFRS 9 function that does not meet its contract
    (a missing column, a null where a value is needed, a value out of range)."""

    code = "IFRS9_INPUT_INVALID"


class Ifrs9ReportUnreconciled(Conflict):
    """Opening allowance plus movements does not give the closing allowance."""

    code = "IFRS9_REPORT_UNRECONCILED"


# --- settings ------------------------------------------------------------------

# Delinquency buckets of the scorecard PD source, in order; more than 90 days
# past due is default.
DPD_BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90")


class PdSource(StrEnum):
    SCORECARD = "scorecard"
    TRANSITION = "transition"


def _decimal_text(value: Any) -> Any:
    # A YAML number with a fraction is a binary float: 0.1 + 0.2 + 0.7 is not 1.
    if isinstance(value, bool):
        raise ValueError("a weight is a decimal, not a boolean")
    if isinstance(value, float):
        raise ValueError(f'write {value!r} as a quoted decimal string ("{value}"), not a number')
    if isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not result.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        return result
    return value


Weight = Annotated[Decimal, BeforeValidator(_decimal_text)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class SicrConfig(_Strict):
    relative: float = Field(ge=1.0)
    absolute: Probability
    dpd_stage2: int = Field(default=30, ge=0)
    dpd_stage3: int = Field(default=90, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> SicrConfig:
        if self.dpd_stage3 <= self.dpd_stage2:
            raise ValueError(
                f"dpd_stage3 ({self.dpd_stage3}) must be above dpd_stage2 ({self.dpd_stage2})"
            )
        return self


class ProbationConfig(_Strict):
    stage2_to_1: int = Field(ge=0)
    stage3_to_2: int = Field(ge=0)


class LgdConfig(_Strict):
    default: Probability
    by_product: dict[str, Probability] = Field(default_factory=dict)

    def for_product(self, product_code: str) -> float:
        return self.by_product.get(product_code, self.default)


class PdConfig(_Strict):
    source: PdSource = PdSource.SCORECARD
    delinquency_multipliers: dict[str, float]
    band_pd_12m: dict[str, Probability] = Field(default_factory=dict)
    default_pd_12m: Probability

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        # Strict mode takes only an enum member; the file holds its text.
        if isinstance(value, str):
            try:
                return PdSource(value)
            except ValueError:
                allowed = ", ".join(s.value for s in PdSource)
                raise ValueError(f"{value!r} is not one of {allowed}") from None
        return value

    @field_validator("delinquency_multipliers")
    @classmethod
    def _buckets(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(DPD_BUCKETS):
            raise ValueError(f"give exactly the buckets {', '.join(DPD_BUCKETS)}")
        for bucket, multiplier in value.items():
            if multiplier < 0:
                raise ValueError(f"the multiplier of {bucket} is negative ({multiplier})")
        return value


class Scenario(_Strict):
    name: str = Field(min_length=1)
    weight: Weight = Field(ge=Decimal(0), le=Decimal(1))
    pd_multiplier: float = Field(ge=0.0)


class Ifrs9Config(_Strict):
    sicr: SicrConfig
    probation_days: ProbationConfig
    lgd: LgdConfig
    pd: PdConfig
    scenarios: tuple[Scenario, ...] = Field(min_length=1, max_length=3)

    @field_validator("scenarios", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("scenarios")
    @classmethod
    def _weights(cls, value: tuple[Scenario, ...]) -> tuple[Scenario, ...]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario names must differ: {', '.join(names)}")
        total = sum((s.weight for s in value), Decimal(0))
        if total != 1:
            raise ValueError(f"scenario weights add up to {total}, not exactly 1")
        return value


def parse_config(document: Any) -> Ifrs9Config:
    """Validate a parsed YAML/JSON mapping, or raise Ifrs9ConfigInvalid naming
    the first bad setting."""
    if not isinstance(document, Mapping):
        raise Ifrs9ConfigInvalid("IFRS 9 settings are one mapping of sections")
    try:
        return Ifrs9Config.model_validate(dict(document))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise Ifrs9ConfigInvalid(
            f"IFRS 9 setting {where}: {message}", field=where, errors=len(exc.errors())
        ) from None


def load_config(path: Path | None = None) -> Ifrs9Config:
    """The settings in `path`, or the packaged defaults when `path` is None."""
    if path is None:
        text = resources.files("lendcore.ifrs9").joinpath("default.yaml").read_text("utf-8")
        where = "the packaged default.yaml"
    else:
        where = str(path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise Ifrs9ConfigInvalid(
                f"cannot read IFRS 9 settings {where}: {exc.strerror}", path=where
            ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Ifrs9ConfigInvalid(f"{where} is not valid YAML: {exc}", path=where) from None
    return parse_config(document)


# --- shared input checks ---------------------------------------------------------


def conform(
    frame: pl.DataFrame,
    what: str,
    columns: Mapping[str, pl.DataType | type[pl.DataType]],
    *,
    not_null: tuple[str, ...] = (),
    unique: str | None = None,
) -> pl.DataFrame:
    """`frame` with `columns` cast (losslessly) to their types, or Ifrs9InputInvalid.

    Other columns pass through untouched. `not_null` columns may hold no null,
    `unique` names a key column that may not repeat.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise Ifrs9InputInvalid(
            f"{what} frame lacks column(s) {', '.join(missing)}", frame=what, missing=missing
        )
    for name, dtype in columns.items():
        if not _castable(frame.schema[name], dtype):
            raise Ifrs9InputInvalid(
                f"{what} frame column {name} is {frame.schema[name]}, not {dtype}",
                frame=what,
                column=name,
            )
    try:
        frame = frame.with_columns(
            pl.col(name).cast(dtype, strict=True) for name, dtype in columns.items()
        )
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise Ifrs9InputInvalid(f"{what} frame has a column of the wrong type: {exc}") from None
    for name in not_null:
        nulls = frame.get_column(name).null_count()
        if nulls:
            raise Ifrs9InputInvalid(
                f"{what} frame has {nulls} null value(s) in {name}", frame=what, column=name
            )
    if unique is not None and frame.get_column(unique).is_duplicated().any():
        raise Ifrs9InputInvalid(f"{what} frame repeats a {unique}", frame=what, column=unique)
    return frame


def _castable(source: pl.DataType, target: pl.DataType | type[pl.DataType]) -> bool:
    # Only casts that cannot change a value: an integer to a wider or narrower
    # integer (a value out of range fails the strict cast) or to a float, a
    # float to a float, a categorical to text, and a column of nulls to anything.
    if source == target or source == pl.Null:
        return True
    if source.is_integer():
        return target.is_integer() or target.is_float()
    if source.is_float():
        return target.is_float()
    return isinstance(source, pl.Categorical | pl.Enum) and target == pl.String


def refuse_rows(frame: pl.DataFrame, bad: pl.Expr, message: str, what: str) -> None:
    """Raise Ifrs9InputInvalid when any row of `frame` meets `bad` (nulls do not)."""
    count = frame.select(bad.fill_null(False).sum()).item()
    if count:
        raise Ifrs9InputInvalid(f"{what} frame: {count} row(s) {message}", frame=what)
