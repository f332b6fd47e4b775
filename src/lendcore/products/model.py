"""A loan product: declarative settings, validated once, immutable.

A product is written as YAML (see `products/examples/`) and validated here by
pydantic. Amounts are decimal strings in major units of the product's currency
(never floats); rates are decimals (0.12 for 12 % a year). A product whose
settings contradict each other is refused with the setting named.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lendcore.dates import BusinessDayConvention, Calendar, DayCount, calendar, day_count
from lendcore.errors import InvalidInput, LendcoreError
from lendcore.money import RoundingMode, currency, parse_minor, round_decimal_to_minor
from lendcore.schedules.terms import (
    Amortization,
    InterestMethod,
    InterestPeriod,
    InvalidTerms,
    ScheduleTerms,
    frequency,
)

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
BUCKETS_MAX = 20


class InvalidProduct(InvalidInput):
    code = "PRODUCT_INVALID"


class SettingError(ValueError):
    """A contradiction found across settings, naming the one to change
    (`parse_product` reports `setting` rather than the enclosing section)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def _no_float(value: Any) -> Any:
    # A YAML or JSON number with a fraction arrives as a binary float, which
    # cannot hold most decimal amounts exactly: amounts and rates are text.
    if isinstance(value, float):
        raise ValueError(f'write {value!r} as a quoted decimal string ("{value}"), not a number')
    return value


# A decimal setting: a string or an integer, never a float.
Dec = Annotated[Decimal, BeforeValidator(_no_float)]


class Component(StrEnum):
    """What a repayment can pay, in waterfall terms."""

    PENALTY = "penalty"
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


# Named waterfalls. Overdue instalments are always paid before the current
# one; within that, "oldest first" pays each instalment whole before the next,
# "component first" pays a component across all overdue instalments first.
WATERFALLS: dict[str, tuple[tuple[Component, ...], bool]] = {
    # name: (component order, instalment by instalment)
    "penalties-fees-interest-principal": (
        (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL),
        True,
    ),
    "interest-principal-first": (
        (Component.INTEREST, Component.PRINCIPAL, Component.PENALTY, Component.FEE),
        True,
    ),
    "principal-interest-penalties-fees": (
        (Component.PRINCIPAL, Component.INTEREST, Component.PENALTY, Component.FEE),
        True,
    ),
    "penalties-fees-interest-principal-component-first": (
        (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL),
        False,
    ),
}


class PrepaymentPolicy(StrEnum):
    REDUCE_TERM = "reduce-term"
    REDUCE_INSTALMENT = "reduce-instalment"
    SUSPENSE = "suspense"  # hold the overpayment until a person decides


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Range(_Strict):
    min: Dec
    max: Dec

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise SettingError("min", f"min {self.min} is above max {self.max}")
        return self


class TermRange(_Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1, le=2600)
    default: int

    @model_validator(mode="after")
    def _ordered(self) -> TermRange:
        if self.min > self.max:
            raise SettingError("min", f"min {self.min} is above max {self.max}")
        if not self.min <= self.default <= self.max:
            raise SettingError(
                "default", f"default {self.default} is outside {self.min} to {self.max}"
            )
        return self


class RateSettings(_Strict):
    min: Dec = Field(ge=0, le=10)
    max: Dec = Field(ge=0, le=10)
    default: Dec = Field(ge=0, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> RateSettings:
        if self.min > self.max:
            raise SettingError("min", f"min {self.min} is above max {self.max}")
        if not self.min <= self.default <= self.max:
            raise SettingError(
                "default", f"default {self.default} is outside {self.min} to {self.max}"
            )
        return self


class InterestSettings(_Strict):
    method: InterestMethod = InterestMethod.DECLINING
    rate: RateSettings
    day_count: DayCount = DayCount.ACT_365F
    period: InterestPeriod = InterestPeriod.ACTUAL_DAYS
    # Penalty interest, a year, on overdue principal (0: none).
    penalty_rate: Dec = Field(default=Decimal(0), ge=0, le=10)

    @field_validator("day_count", mode="before")
    @classmethod
    def _day_count(cls, value: Any) -> DayCount:
        try:
            return day_count(str(value))
        except LendcoreError as exc:
            raise ValueError(exc.message) from exc


class Grace(_Strict):
    principal: int = Field(default=0, ge=0)
    interest: int = Field(default=0, ge=0)


class CalendarSettings(_Strict):
    calendar: str = "none"
    holidays: tuple[date, ...] = ()
    convention: BusinessDayConvention = BusinessDayConvention.FOLLOWING

    @model_validator(mode="after")
    def _known(self) -> CalendarSettings:
        try:
            calendar(self.calendar, self.holidays)
        except LendcoreError as exc:
            raise SettingError("calendar", exc.message) from exc
        return self

    def build(self) -> Calendar:
        return calendar(self.calendar, self.holidays)


class RoundingSettings(_Strict):
    mode: RoundingMode = RoundingMode.HALF_EVEN
    # Instalments rounded to this amount (major units: "1" for whole units);
    # "0" or absent: to the minor unit.
    instalment_multiple: Dec = Field(default=Decimal(0), ge=0)


class DisbursementFee(_Strict):
    kind: Literal["flat", "percent"]
    value: Dec = Field(ge=0)
    treatment: Literal["deducted", "financed"] = "deducted"


class LateFee(_Strict):
    kind: Literal["flat", "percent"]  # percent of the overdue instalment
    value: Dec = Field(ge=0)
    grace_days: int = Field(default=0, ge=0, le=365)


class Fees(_Strict):
    disbursement: DisbursementFee | None = None
    periodic: Dec = Field(default=Decimal(0), ge=0)
    late: LateFee | None = None


class Waterfall(_Strict):
    strategy: str | None = "penalties-fees-interest-principal"
    order: tuple[Component, ...] | None = None  # a custom order (overdue first still)

    @model_validator(mode="before")
    @classmethod
    def _custom_has_no_strategy(cls, data: Any) -> Any:
        # A custom order replaces the named strategy: the default strategy is
        # dropped so the stored form ({"strategy": null, "order": [...]}) reads
        # back the same; naming both is ambiguous and refused below.
        if isinstance(data, dict) and data.get("order") is not None:
            if data.get("strategy") is not None:
                raise SettingError("order", "give a named strategy or a custom order, not both")
            return {**data, "strategy": None}
        return data

    @model_validator(mode="after")
    def _one(self) -> Waterfall:
        if self.order is not None:
            if sorted(self.order) != sorted(Component):
                raise SettingError(
                    "order", "a custom order names each of penalty, fee, interest, principal once"
                )
        elif self.strategy not in WATERFALLS:
            raise SettingError(
                "strategy",
                f"unknown waterfall {self.strategy!r}: expected one of {', '.join(WATERFALLS)}",
            )
        return self

    @property
    def components(self) -> tuple[Component, ...]:
        if self.order is not None:
            return self.order
        assert self.strategy is not None
        return WATERFALLS[self.strategy][0]

    @property
    def instalment_by_instalment(self) -> bool:
        return True if self.order is not None else WATERFALLS[str(self.strategy)][1]


class Arrears(_Strict):
    tolerance: Dec = Field(default=Decimal(0), ge=0)
    # Delinquency buckets as [from, to] days past due; the last may be open (null).
    buckets: tuple[tuple[int, int | None], ...] = ((1, 30), (31, 60), (61, 90), (91, None))

    @model_validator(mode="after")
    def _contiguous(self) -> Arrears:
        # Every day past due from 1 on falls in exactly one bucket: contiguous,
        # no overlap, and the last one open-ended (null).
        if not self.buckets:
            raise SettingError("buckets", "at least one delinquency bucket is needed")
        if len(self.buckets) > BUCKETS_MAX:
            raise SettingError("buckets", f"at most {BUCKETS_MAX} delinquency buckets")
        expected = 1
        for index, (low, high) in enumerate(self.buckets):
            if low != expected:
                raise SettingError(
                    "buckets",
                    f"bucket {index + 1} starts at {low}, expected {expected}: buckets must "
                    "follow each other without gaps or overlaps",
                )
            if high is None:
                if index != len(self.buckets) - 1:
                    raise SettingError("buckets", "only the last bucket may be open-ended")
                break
            if high < low:
                raise SettingError("buckets", f"bucket {index + 1} ends before it starts")
            expected = high + 1
        if self.buckets[-1][1] is not None:
            raise SettingError(
                "buckets",
                f"the last bucket must be open-ended ([{self.buckets[-1][0]}, null]) so that "
                "every loan in arrears falls in a bucket",
            )
        return self


AccountCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")]


class Accounting(_Strict):
    """Which ledger accounts a loan of this product books to."""

    principal: AccountCode  # loans receivable (asset)
    interest_receivable: AccountCode  # asset
    interest_income: AccountCode
    fee_receivable: AccountCode
    fee_income: AccountCode
    penalty_income: AccountCode
    overpayment: AccountCode  # suspense / overpayments (liability)
    write_off_expense: AccountCode
    recovery_income: AccountCode
    fund_source: AccountCode  # where disbursements come from and repayments go (cash, bank)
    # IFRS 9: the expected credit loss is held against the loans in the loss
    # allowance (a contra-asset) and its change booked to impairment expense.
    loss_allowance: AccountCode | None = None
    impairment_expense: AccountCode | None = None

    @model_validator(mode="after")
    def _distinct(self) -> Accounting:
        # Balances that must never mix: what the borrower owes in principal and
        # in interest, the cash the lender pays out and takes in, and money
        # held for the borrower. Income accounts may be shared.
        kept_apart = ("principal", "interest_receivable", "overpayment", "fund_source")
        seen: dict[str, str] = {}
        for name in kept_apart:
            account = getattr(self, name)
            if account in seen:
                raise SettingError(
                    name, f"account {account} is already the {seen[account]} account"
                )
            seen[account] = name
        return self


class Product(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    currency: str
    principal: Range
    term: TermRange
    frequency: str = "monthly"
    interest: InterestSettings
    amortization: Amortization = Amortization.ANNUITY
    grace: Grace = Grace()
    payment_holiday: int = Field(default=0, ge=0)
    schedule: CalendarSettings = CalendarSettings()
    rounding: RoundingSettings = RoundingSettings()
    fees: Fees = Fees()
    waterfall: Waterfall = Waterfall()
    prepayment: PrepaymentPolicy = PrepaymentPolicy.REDUCE_TERM
    arrears: Arrears = Arrears()
    accounting: Accounting

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return currency(value).code
        except LendcoreError as exc:
            raise ValueError(exc.message) from exc

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str) -> str:
        try:
            return frequency(value).name
        except LendcoreError as exc:
            raise ValueError(exc.message) from exc

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        exponent = self.exponent
        for label, amount in (
            ("principal.min", self.principal.min),
            ("principal.max", self.principal.max),
            ("fees.periodic", self.fees.periodic),
            ("arrears.tolerance", self.arrears.tolerance),
            ("rounding.instalment_multiple", self.rounding.instalment_multiple),
        ):
            _minor(amount, exponent, label)
        if self.principal.min <= 0:
            raise SettingError("principal.min", "the smallest principal must be positive")
        if self.rounding.instalment_multiple > self.principal.min:
            raise SettingError(
                "rounding.instalment_multiple",
                f"instalments rounded to {self.rounding.instalment_multiple} exceed the "
                f"smallest principal {self.principal.min}",
            )
        # A bullet loan has one instalment: no period to defer principal from,
        # and an interest-free grace would waive all of its interest.
        if self.amortization is Amortization.BULLET:
            for setting, periods in (
                ("grace.principal", self.grace.principal),
                ("payment_holiday", self.payment_holiday),
                ("grace.interest", self.grace.interest),
            ):
                if periods:
                    raise SettingError(
                        setting,
                        f"a bullet loan repays everything at maturity in one instalment: "
                        f"{setting} must be 0, got {periods} periods",
                    )
        for setting, periods in (
            ("grace.principal", self.grace.principal),
            ("payment_holiday", self.payment_holiday),
        ):
            if periods >= self.term.min:
                raise SettingError(
                    setting,
                    f"{periods} periods is not shorter than the shortest term "
                    f"({self.term.min}): no instalment would be left to repay the principal",
                )
        if self.grace.interest > self.term.min:
            raise SettingError(
                "grace.interest",
                f"an interest-free grace of {self.grace.interest} periods is longer than the "
                f"shortest term ({self.term.min})",
            )
        if self.interest.method is InterestMethod.FLAT and self.payment_holiday:
            raise SettingError(
                "payment_holiday",
                "a flat-rate loan charges interest on the original principal: it cannot "
                "capitalise interest in a payment holiday",
            )
        for setting, fee in (
            ("fees.disbursement", self.fees.disbursement),
            ("fees.late", self.fees.late),
        ):
            if fee is None:
                continue
            if fee.kind == "flat":
                _minor(fee.value, exponent, f"{setting}.value")
            elif fee.value > 1:
                raise SettingError(
                    f"{setting}.value",
                    f"a percent fee is a decimal share (0.02 for 2 %), at most 1, got {fee.value}",
                )
        fee = self.fees.disbursement
        if fee is not None and fee.treatment == "deducted":
            smallest = self.minor(self.principal.min)
            if self.disbursement_fee_minor(smallest) >= smallest:
                raise SettingError(
                    "fees.disbursement.value",
                    "a deducted disbursement fee would take the whole of the smallest "
                    f"principal ({self.principal.min} {self.currency})",
                )
        return self

    # --- derived values -------------------------------------------------------

    @property
    def exponent(self) -> int:
        return currency(self.currency).exponent

    def minor(self, amount: Decimal) -> int:
        return _minor(amount, self.exponent, "amount")

    @property
    def digest(self) -> str:
        """A stable fingerprint of the settings: a new version only when it changes."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def terms(
        self,
        principal_minor: int,
        start: date,
        *,
        annual_rate: Decimal | None = None,
        term: int | None = None,
        first_repayment: date | None = None,
        enforce_limits: bool = True,
        **overrides: Any,
    ) -> ScheduleTerms:
        """Schedule terms for a loan of this product; `overrides` replace any
        ScheduleTerms field (a preview may step outside the product's limits
        when `enforce_limits` is False; booking never does)."""
        rate = self.interest.rate.default if annual_rate is None else annual_rate
        term = self.term.default if term is None else term
        if enforce_limits:
            self.check_limits(principal_minor, rate, term)
        multiple = self.minor(self.rounding.instalment_multiple) or 1
        values: dict[str, Any] = {
            "principal_minor": principal_minor,
            "currency": self.currency,
            "exponent": self.exponent,
            "annual_rate": rate,
            "term": term,
            "frequency": frequency(self.frequency),
            "start": start,
            "day_count": self.interest.day_count,
            "method": self.interest.method,
            "amortization": self.amortization,
            "interest_period": self.interest.period,
            "first_repayment": first_repayment,
            "grace_principal": self.grace.principal,
            "grace_interest": self.grace.interest,
            "payment_holiday": self.payment_holiday,
            "calendar": self.schedule.build(),
            "convention": self.schedule.convention,
            "rounding": self.rounding.mode,
            "instalment_multiple_minor": multiple,
            "periodic_fee_minor": self.minor(self.fees.periodic),
        }
        values.update(overrides)
        return ScheduleTerms(**values)

    def check_limits(self, principal_minor: int, annual_rate: Decimal, term: int) -> None:
        low, high = self.minor(self.principal.min), self.minor(self.principal.max)
        if not low <= principal_minor <= high:
            raise InvalidTerms(
                f"principal is outside the product's limits {self.principal.min} to "
                f"{self.principal.max} {self.currency}",
                product=self.code,
            )
        if not self.interest.rate.min <= annual_rate <= self.interest.rate.max:
            raise InvalidTerms(
                f"annual rate {annual_rate} is outside the product's limits "
                f"{self.interest.rate.min} to {self.interest.rate.max}",
                product=self.code,
            )
        if not self.term.min <= term <= self.term.max:
            raise InvalidTerms(
                f"term {term} is outside the product's limits {self.term.min} to {self.term.max}",
                product=self.code,
            )

    def disbursement_fee_minor(self, principal_minor: int) -> int:
        fee = self.fees.disbursement
        if fee is None:
            return 0
        if fee.kind == "flat":
            return self.minor(fee.value)
        return round_decimal_to_minor(
            fee.value * principal_minor / Decimal(10) ** self.exponent,
            self.exponent,
            self.rounding.mode,
        )


def _minor(amount: Decimal, exponent: int, label: str) -> int:
    try:
        return parse_minor(format(amount, "f"), exponent)
    except LendcoreError as exc:
        raise SettingError(label, exc.message) from exc


def parse_product(document: Any) -> Product:
    """Validate a parsed YAML/JSON document into a Product, or raise InvalidProduct
    naming the first bad setting."""
    try:
        return Product.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, SettingError):
            loc.append(cause.setting)
        where = ".".join(loc) or "product"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidProduct(
            f"product setting {where}: {message}", field=where, errors=len(exc.errors())
        ) from None


def load_product_text(text: str) -> Product:
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidProduct(f"the product file is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidProduct("a product file holds one mapping of settings")
    return parse_product(document)
