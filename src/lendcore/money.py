"""Exact money: ISO 4217 currencies, integer minor units, explicit rounding.

Amounts are integers in the currency's minor unit (cents for USD, yen for JPY,
fils for KWD). Nothing here ever touches a float: text is parsed digit by
digit, decimals are converted exactly, and every rounding names its mode.

Two layers, one rule each:

* pure helpers on plain ints (`parse_minor`, `format_minor`, `split_minor`,
  `allocate_minor`, `round_decimal_to_minor`, `round_fraction_to_minor`) that
  the ledger and the end-of-day kernels call on their hot paths without
  building objects;
* `Money`, an immutable value (amount + currency) whose methods are thin
  wrappers over those helpers, so both paths agree to the minor unit.

Splitting and allocation are sign-symmetric: splitting -7 is the negation of
splitting 7, so a refund mirrors the charge it undoes, and "larger parts
first" means larger in magnitude.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from lendcore.errors import (
    CurrencyMismatch,
    InvalidAmount,
    InvalidInput,
    TooManyDecimals,
    UnknownCurrency,
)

__all__ = [
    "CURRENCIES",
    "DEFAULT_ROUNDING",
    "MAX_AMOUNT_TEXT_LENGTH",
    "MAX_EXPONENT",
    "MAX_PARTS",
    "Currency",
    "Money",
    "RoundingMode",
    "allocate_minor",
    "currency",
    "format_minor",
    "is_currency",
    "parse_minor",
    "round_decimal_to_minor",
    "round_fraction_to_minor",
    "rounding_mode",
    "split_minor",
]

# Limits (say why): an amount longer than this is not money, it is an attack or
# a bug; no real currency has more than 4 minor digits, 18 leaves room for
# internal units; a split or allocation into more parts than this is a bug in
# the caller (a loan has hundreds of instalments, not hundreds of thousands).
MAX_AMOUNT_TEXT_LENGTH: Final = 64
MAX_EXPONENT: Final = 18
MAX_PARTS: Final = 100_000
# A Decimal with more digits or a larger power of ten than this is refused: no
# amount, rate or weight needs it, and the exact integer arithmetic on it would
# grow without bound.
_MAX_DECIMAL_DIGITS: Final = 200


# --- currencies ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: alphabetic code, minor-unit exponent and name."""

    code: str
    exponent: int
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE_RE.fullmatch(self.code):
            raise UnknownCurrency(
                f"currency code must be three capital letters, got {self.code!r}",
                code=repr(self.code),
            )
        _check_exponent(self.exponent)

    def __str__(self) -> str:
        return self.code


_CODE_RE: Final = re.compile(r"[A-Z]{3}", re.ASCII)


def _check_exponent(exponent: int) -> None:
    # An exponent comes from the currency table or a Currency, never from an end
    # user; a wrong one is a programming error, hence ValueError.
    if isinstance(exponent, bool) or not isinstance(exponent, int):
        raise ValueError(f"exponent must be an int, got {exponent!r}")
    if not 0 <= exponent <= MAX_EXPONENT:
        raise ValueError(f"exponent must be between 0 and {MAX_EXPONENT}, got {exponent}")


# ISO 4217 List One: every active code whose minor unit is defined. Codes whose
# minor unit is "N.A." (gold, silver, platinum, palladium, SDR, the bond-market
# units XBA-XBD, XSU, XUA, the testing code XTS and XXX) are left out on
# purpose: they cannot be expressed in integer minor units.
# Snapshot: includes XCG (Caribbean guilder, 2025) and ZWG (Zimbabwe Gold,
# 2024); excludes withdrawn HRK (2023), ZWL (2024) and ANG (2025, replaced by
# XCG). BGN is kept while it is still being withdrawn after Bulgaria's move to
# the euro, so books held in it stay readable.
_ISO_4217: Final[tuple[tuple[str, int, str], ...]] = (
    ("AED", 2, "UAE Dirham"),
    ("AFN", 2, "Afghani"),
    ("ALL", 2, "Lek"),
    ("AMD", 2, "Armenian Dram"),
    ("AOA", 2, "Kwanza"),
    ("ARS", 2, "Argentine Peso"),
    ("AUD", 2, "Australian Dollar"),
    ("AWG", 2, "Aruban Florin"),
    ("AZN", 2, "Azerbaijan Manat"),
    ("BAM", 2, "Convertible Mark"),
    ("BBD", 2, "Barbados Dollar"),
    ("BDT", 2, "Taka"),
    ("BGN", 2, "Bulgarian Lev"),
    ("BHD", 3, "Bahraini Dinar"),
    ("BIF", 0, "Burundi Franc"),
    ("BMD", 2, "Bermudian Dollar"),
    ("BND", 2, "Brunei Dollar"),
    ("BOB", 2, "Boliviano"),
    ("BOV", 2, "Mvdol"),
    ("BRL", 2, "Brazilian Real"),
    ("BSD", 2, "Bahamian Dollar"),
    ("BTN", 2, "Ngultrum"),
    ("BWP", 2, "Pula"),
    ("BYN", 2, "Belarusian Ruble"),
    ("BZD", 2, "Belize Dollar"),
    ("CAD", 2, "Canadian Dollar"),
    ("CDF", 2, "Congolese Franc"),
    ("CHE", 2, "WIR Euro"),
    ("CHF", 2, "Swiss Franc"),
    ("CHW", 2, "WIR Franc"),
    ("CLF", 4, "Unidad de Fomento"),
    ("CLP", 0, "Chilean Peso"),
    ("CNY", 2, "Yuan Renminbi"),
    ("COP", 2, "Colombian Peso"),
    ("COU", 2, "Unidad de Valor Real"),
    ("CRC", 2, "Costa Rican Colon"),
    ("CUC", 2, "Peso Convertible"),
    ("CUP", 2, "Cuban Peso"),
    ("CVE", 2, "Cabo Verde Escudo"),
    ("CZK", 2, "Czech Koruna"),
    ("DJF", 0, "Djibouti Franc"),
    ("DKK", 2, "Danish Krone"),
    ("DOP", 2, "Dominican Peso"),
    ("DZD", 2, "Algerian Dinar"),
    ("EGP", 2, "Egyptian Pound"),
    ("ERN", 2, "Nakfa"),
    ("ETB", 2, "Ethiopian Birr"),
    ("EUR", 2, "Euro"),
    ("FJD", 2, "Fiji Dollar"),
    ("FKP", 2, "Falkland Islands Pound"),
    ("GBP", 2, "Pound Sterling"),
    ("GEL", 2, "Lari"),
    ("GHS", 2, "Ghana Cedi"),
    ("GIP", 2, "Gibraltar Pound"),
    ("GMD", 2, "Dalasi"),
    ("GNF", 0, "Guinean Franc"),
    ("GTQ", 2, "Quetzal"),
    ("GYD", 2, "Guyana Dollar"),
    ("HKD", 2, "Hong Kong Dollar"),
    ("HNL", 2, "Lempira"),
    ("HTG", 2, "Gourde"),
    ("HUF", 2, "Forint"),
    ("IDR", 2, "Rupiah"),
    ("ILS", 2, "New Israeli Sheqel"),
    ("INR", 2, "Indian Rupee"),
    ("IQD", 3, "Iraqi Dinar"),
    ("IRR", 2, "Iranian Rial"),
    ("ISK", 0, "Iceland Krona"),
    ("JMD", 2, "Jamaican Dollar"),
    ("JOD", 3, "Jordanian Dinar"),
    ("JPY", 0, "Yen"),
    ("KES", 2, "Kenyan Shilling"),
    ("KGS", 2, "Som"),
    ("KHR", 2, "Riel"),
    ("KMF", 0, "Comorian Franc"),
    ("KPW", 2, "North Korean Won"),
    ("KRW", 0, "Won"),
    ("KWD", 3, "Kuwaiti Dinar"),
    ("KYD", 2, "Cayman Islands Dollar"),
    ("KZT", 2, "Tenge"),
    ("LAK", 2, "Lao Kip"),
    ("LBP", 2, "Lebanese Pound"),
    ("LKR", 2, "Sri Lanka Rupee"),
    ("LRD", 2, "Liberian Dollar"),
    ("LSL", 2, "Loti"),
    ("LYD", 3, "Libyan Dinar"),
    ("MAD", 2, "Moroccan Dirham"),
    ("MDL", 2, "Moldovan Leu"),
    ("MGA", 2, "Malagasy Ariary"),
    ("MKD", 2, "Denar"),
    ("MMK", 2, "Kyat"),
    ("MNT", 2, "Tugrik"),
    ("MOP", 2, "Pataca"),
    ("MRU", 2, "Ouguiya"),
    ("MUR", 2, "Mauritius Rupee"),
    ("MVR", 2, "Rufiyaa"),
    ("MWK", 2, "Malawi Kwacha"),
    ("MXN", 2, "Mexican Peso"),
    ("MXV", 2, "Mexican Unidad de Inversion (UDI)"),
    ("MYR", 2, "Malaysian Ringgit"),
    ("MZN", 2, "Mozambique Metical"),
    ("NAD", 2, "Namibia Dollar"),
    ("NGN", 2, "Naira"),
    ("NIO", 2, "Cordoba Oro"),
    ("NOK", 2, "Norwegian Krone"),
    ("NPR", 2, "Nepalese Rupee"),
    ("NZD", 2, "New Zealand Dollar"),
    ("OMR", 3, "Rial Omani"),
    ("PAB", 2, "Balboa"),
    ("PEN", 2, "Sol"),
    ("PGK", 2, "Kina"),
    ("PHP", 2, "Philippine Peso"),
    ("PKR", 2, "Pakistan Rupee"),
    ("PLN", 2, "Zloty"),
    ("PYG", 0, "Guarani"),
    ("QAR", 2, "Qatari Rial"),
    ("RON", 2, "Romanian Leu"),
    ("RSD", 2, "Serbian Dinar"),
    ("RUB", 2, "Russian Ruble"),
    ("RWF", 0, "Rwanda Franc"),
    ("SAR", 2, "Saudi Riyal"),
    ("SBD", 2, "Solomon Islands Dollar"),
    ("SCR", 2, "Seychelles Rupee"),
    ("SDG", 2, "Sudanese Pound"),
    ("SEK", 2, "Swedish Krona"),
    ("SGD", 2, "Singapore Dollar"),
    ("SHP", 2, "Saint Helena Pound"),
    ("SLE", 2, "Leone"),
    ("SLL", 2, "Leone (old)"),
    ("SOS", 2, "Somali Shilling"),
    ("SRD", 2, "Surinam Dollar"),
    ("SSP", 2, "South Sudanese Pound"),
    ("STN", 2, "Dobra"),
    ("SVC", 2, "El Salvador Colon"),
    ("SYP", 2, "Syrian Pound"),
    ("SZL", 2, "Lilangeni"),
    ("THB", 2, "Baht"),
    ("TJS", 2, "Somoni"),
    ("TMT", 2, "Turkmenistan New Manat"),
    ("TND", 3, "Tunisian Dinar"),
    ("TOP", 2, "Pa'anga"),
    ("TRY", 2, "Turkish Lira"),
    ("TTD", 2, "Trinidad and Tobago Dollar"),
    ("TWD", 2, "New Taiwan Dollar"),
    ("TZS", 2, "Tanzanian Shilling"),
    ("UAH", 2, "Hryvnia"),
    ("UGX", 0, "Uganda Shilling"),
    ("USD", 2, "US Dollar"),
    ("USN", 2, "US Dollar (Next day)"),
    ("UYI", 0, "Uruguay Peso en Unidades Indexadas (UI)"),
    ("UYU", 2, "Peso Uruguayo"),
    ("UYW", 4, "Unidad Previsional"),
    ("UZS", 2, "Uzbekistan Sum"),
    ("VED", 2, "Bolivar Soberano (digital)"),
    ("VES", 2, "Bolivar Soberano"),
    ("VND", 0, "Dong"),
    ("VUV", 0, "Vatu"),
    ("WST", 2, "Tala"),
    ("XAF", 0, "CFA Franc BEAC"),
    ("XCD", 2, "East Caribbean Dollar"),
    ("XCG", 2, "Caribbean Guilder"),
    ("XOF", 0, "CFA Franc BCEAO"),
    ("XPF", 0, "CFP Franc"),
    ("YER", 2, "Yemeni Rial"),
    ("ZAR", 2, "Rand"),
    ("ZMW", 2, "Zambian Kwacha"),
    ("ZWG", 2, "Zimbabwe Gold"),
)

CURRENCIES: Final[Mapping[str, Currency]] = MappingProxyType(
    {code: Currency(code, exponent, name) for code, exponent, name in _ISO_4217}
)
"""Every supported currency by upper-case code (read-only)."""


def currency(code: str) -> Currency:
    """The currency for an ISO 4217 code, looked up case-insensitively.

    Raises UnknownCurrency when the code is not an active ISO 4217 code with a
    defined minor unit.
    """
    if isinstance(code, str) and len(code) == 3:
        found = CURRENCIES.get(code.upper())
        if found is not None:
            return found
    raise UnknownCurrency(
        f"unknown currency {code!r}: expected an active ISO 4217 code such as USD, EUR or KES",
        currency=repr(code),
    )


def is_currency(code: str) -> bool:
    """Whether `code` names a supported currency (case-insensitive)."""
    return isinstance(code, str) and len(code) == 3 and code.upper() in CURRENCIES


def _as_currency(value: str | Currency) -> Currency:
    if isinstance(value, Currency):
        return value
    return currency(value)


# --- rounding ------------------------------------------------------------------


class RoundingMode(StrEnum):
    """How a value between two minor units becomes one of them.

    `down` and `up` are towards and away from zero; `floor` and `ceiling` are
    towards minus and plus infinity (the `decimal` module's meanings).
    """

    HALF_EVEN = "half-even"
    HALF_UP = "half-up"
    HALF_DOWN = "half-down"
    DOWN = "down"
    UP = "up"
    CEILING = "ceiling"
    FLOOR = "floor"

    @property
    def decimal_rounding(self) -> str:
        """The matching `decimal` module rounding constant."""
        return _DECIMAL_ROUNDING[self]


_DECIMAL_ROUNDING: Final[Mapping[RoundingMode, str]] = MappingProxyType(
    {
        RoundingMode.HALF_EVEN: ROUND_HALF_EVEN,
        RoundingMode.HALF_UP: ROUND_HALF_UP,
        RoundingMode.HALF_DOWN: ROUND_HALF_DOWN,
        RoundingMode.DOWN: ROUND_DOWN,
        RoundingMode.UP: ROUND_UP,
        RoundingMode.CEILING: ROUND_CEILING,
        RoundingMode.FLOOR: ROUND_FLOOR,
    }
)

DEFAULT_ROUNDING: Final = RoundingMode.HALF_EVEN


def rounding_mode(name: str) -> RoundingMode:
    """Parse a rounding mode name case-insensitively ("half_even" is accepted too)."""
    if isinstance(name, str):
        key = name.strip().lower().replace("_", "-").replace(" ", "-")
        for mode in RoundingMode:
            if mode.value == key:
                return mode
    valid = ", ".join(mode.value for mode in RoundingMode)
    raise InvalidInput(f"unknown rounding mode {name!r}: expected one of {valid}", name=repr(name))


def _round_ratio(numerator: int, denominator: int, mode: RoundingMode) -> int:
    """Round numerator/denominator (denominator > 0) to an integer, exactly."""
    quotient, remainder = divmod(numerator, denominator)  # floor division
    if remainder == 0:
        return quotient
    # Here quotient < exact value < quotient + 1.
    if mode is RoundingMode.FLOOR:
        return quotient
    if mode is RoundingMode.CEILING:
        return quotient + 1
    if mode is RoundingMode.DOWN:
        return quotient if numerator >= 0 else quotient + 1
    if mode is RoundingMode.UP:
        return quotient + 1 if numerator >= 0 else quotient
    twice = 2 * remainder
    if twice < denominator:
        return quotient
    if twice > denominator:
        return quotient + 1
    # Exactly half-way between quotient and quotient + 1.
    if mode is RoundingMode.HALF_UP:
        return quotient + 1 if numerator > 0 else quotient
    if mode is RoundingMode.HALF_DOWN:
        return quotient if numerator > 0 else quotient + 1
    if mode is RoundingMode.HALF_EVEN:
        return quotient if quotient % 2 == 0 else quotient + 1
    raise ValueError(f"unsupported rounding mode {mode!r}")


def _decimal_ratio(value: Decimal) -> tuple[int, int]:
    """An exact (numerator, denominator) for a finite Decimal."""
    if not isinstance(value, Decimal):
        raise InvalidAmount(f"expected a Decimal, got {type(value).__name__}", value=repr(value))
    if not value.is_finite():
        raise InvalidAmount(f"{value} is not a finite amount", value=str(value))
    sign, digits, power = value.as_tuple()
    if not isinstance(power, int) or abs(power) > _MAX_DECIMAL_DIGITS:
        raise InvalidAmount(f"{value} is out of range", value=str(value))
    if len(digits) > _MAX_DECIMAL_DIGITS:
        raise InvalidAmount(
            f"a decimal of {len(digits)} digits is out of range", value=str(value)[:20] + "..."
        )
    magnitude = int("".join(map(str, digits))) if digits else 0
    signed = -magnitude if sign else magnitude
    if power >= 0:
        return signed * _pow10(power), 1
    return signed, _pow10(-power)


def _pow10(power: int) -> int:
    # `10**power` is typed Any (a negative power would give a float); callers
    # only pass non-negative powers.
    result: int = 10**power
    return result


def round_fraction_to_minor(value: Fraction, exponent: int, mode: RoundingMode) -> int:
    """Round an exact rational amount in major units to integer minor units.

    Use this for interest computed with `dates.year_fraction` (a Fraction), so
    the whole computation stays exact until this single rounding.
    """
    _check_exponent(exponent)
    if not isinstance(value, Fraction | int) or isinstance(value, bool):
        raise InvalidAmount(f"expected a Fraction, got {type(value).__name__}", value=repr(value))
    ratio = Fraction(value)
    return _round_ratio(ratio.numerator * _pow10(exponent), ratio.denominator, RoundingMode(mode))


def round_decimal_to_minor(value: Decimal, exponent: int, mode: RoundingMode) -> int:
    """Round a Decimal amount in major units to integer minor units with `mode`.

    Exact whatever the Decimal context's precision: the rounding is done on
    integers, never by the context.
    """
    _check_exponent(exponent)
    numerator, denominator = _decimal_ratio(value)
    return _round_ratio(numerator * _pow10(exponent), denominator, RoundingMode(mode))


def _decimal_to_minor_exact(value: Decimal, exponent: int, code: str) -> int:
    numerator, denominator = _decimal_ratio(value)
    scaled, remainder = divmod(numerator * _pow10(exponent), denominator)
    if remainder != 0:
        raise TooManyDecimals(
            f"{value} has more decimals than {code} allows ({exponent})",
            value=str(value),
            currency=code,
            exponent=exponent,
        )
    return scaled


# --- text ------------------------------------------------------------------------

# Digits, an optional sign and an optional '.' followed by at least one digit.
# ASCII only: `\d` would accept other scripts' digits.
_AMOUNT_RE: Final = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def parse_minor(text: str, exponent: int, *, currency_code: str | None = None) -> int:
    """Parse a decimal string in major units ("1234.56", "-5") into minor units.

    Refused with InvalidAmount: empty text, whitespace, thousands separators,
    exponents ("1e3"), NaN, Infinity, a bare "." or anything but ASCII digits
    with an optional leading sign and one decimal point. Refused with
    TooManyDecimals: a value that needs more decimals than `exponent`. Trailing
    zeros past the exponent are accepted because the value is exact
    ("1.230" is 123 cents).
    """
    _check_exponent(exponent)
    if not isinstance(text, str):
        raise InvalidAmount(f"an amount must be text, got {type(text).__name__}", value=repr(text))
    if len(text) > MAX_AMOUNT_TEXT_LENGTH:
        raise InvalidAmount(
            f"amount is longer than {MAX_AMOUNT_TEXT_LENGTH} characters",
            value=text[:MAX_AMOUNT_TEXT_LENGTH] + "...",
        )
    match = _AMOUNT_RE.fullmatch(text)
    if match is None:
        raise InvalidAmount(
            f"{text!r} is not a decimal amount: use digits with an optional sign and one "
            "'.' as decimal point, without thousands separators, spaces or exponents",
            value=text,
        )
    sign, whole, fraction = match.groups()
    fraction = (fraction or "").rstrip("0")
    if len(fraction) > exponent:
        label = currency_code if currency_code is not None else "the currency"
        raise TooManyDecimals(
            f"{text} has more decimals than {label} allows ({exponent})",
            value=text,
            currency=currency_code,
            exponent=exponent,
        )
    magnitude = int(whole + fraction.ljust(exponent, "0"))
    return -magnitude if sign == "-" else magnitude


def format_minor(amount_minor: int, exponent: int) -> str:
    """Minor units as a decimal string in major units with exactly `exponent` decimals.

    `format_minor(123450, 2) == "1234.50"`, `format_minor(-5, 2) == "-0.05"`,
    `format_minor(100, 0) == "100"`. No thousands separators: this is the
    canonical, machine-readable form that `parse_minor` reads back.
    """
    _check_exponent(exponent)
    _check_int_amount(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    if exponent == 0:
        return f"{sign}{abs(amount_minor)}"
    major, minor = divmod(abs(amount_minor), _pow10(exponent))
    return f"{sign}{major}.{minor:0{exponent}d}"


def _check_int_amount(amount_minor: int) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidAmount(
            f"an amount in minor units must be an int, got {type(amount_minor).__name__}",
            value=repr(amount_minor),
        )


# --- split and allocate ----------------------------------------------------------


def _check_parts(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidInput(f"number of parts must be an int, got {n!r}", parts=repr(n))
    if not 1 <= n <= MAX_PARTS:
        raise InvalidInput(f"number of parts must be between 1 and {MAX_PARTS}, got {n}", parts=n)


def split_minor(total: int, n: int) -> list[int]:
    """Split `total` into `n` parts that sum exactly to it.

    Parts differ by at most one minor unit and the larger (in magnitude) come
    first: `split_minor(100, 3) == [34, 33, 33]`,
    `split_minor(-100, 3) == [-34, -33, -33]`.
    """
    _check_int_amount(total)
    _check_parts(n)
    quotient, remainder = divmod(abs(total), n)
    parts = [quotient + 1] * remainder + [quotient] * (n - remainder)
    return [-part for part in parts] if total < 0 else parts


def _weight_ratio(weight: int | Decimal, index: int) -> Fraction:
    if isinstance(weight, bool) or not isinstance(weight, int | Decimal):
        raise InvalidAmount(
            f"weight {index} must be an int or a Decimal, got {type(weight).__name__}",
            index=index,
            weight=repr(weight),
        )
    if isinstance(weight, Decimal):
        if not weight.is_finite():
            raise InvalidAmount(f"weight {index} is not finite: {weight}", index=index)
        ratio = Fraction(*_decimal_ratio(weight))
    else:
        ratio = Fraction(weight)
    if ratio < 0:
        raise InvalidAmount(
            f"weight {index} is negative ({weight}): weights must be zero or positive",
            index=index,
            weight=str(weight),
        )
    return ratio


def allocate_minor(total: int, weights: Sequence[int | Decimal]) -> list[int]:
    """Allocate `total` in proportion to `weights` by the largest-remainder method.

    Each part is its exact share rounded down (in magnitude); the units left
    over go one each to the parts with the largest remainders, ties to the
    earlier index. The parts sum exactly to `total`, each is within one minor
    unit of its exact share, and a zero weight always gets 0. Weights are ints
    or Decimals (never floats), zero or positive, not all zero.
    """
    _check_int_amount(total)
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
        raise InvalidAmount("weights must be a sequence of ints or Decimals")
    _check_parts(len(weights))
    ratios = [_weight_ratio(weight, index) for index, weight in enumerate(weights)]
    # Scale every weight to an integer over a common denominator so the whole
    # method runs on exact integers.
    common = math.lcm(*(ratio.denominator for ratio in ratios))
    scaled = [ratio.numerator * (common // ratio.denominator) for ratio in ratios]
    weight_sum = sum(scaled)
    if weight_sum == 0:
        raise InvalidAmount("weights are all zero: at least one must be positive")
    magnitude = abs(total)
    floors: list[int] = []
    remainders: list[int] = []
    for weight in scaled:
        share, remainder = divmod(magnitude * weight, weight_sum)
        floors.append(share)
        remainders.append(remainder)
    left_over = magnitude - sum(floors)
    # Fewer units are left over than there are positive remainders (each
    # remainder is below one unit and they add up to `left_over`), so a zero
    # weight, whose remainder is 0, never receives one.
    order = sorted(range(len(scaled)), key=lambda index: (-remainders[index], index))
    for index in order[:left_over]:
        floors[index] += 1
    return [-part for part in floors] if total < 0 else floors


# --- Money ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class Money:
    """An exact amount of one currency, held as integer minor units.

    Equality is by value and currency (`Money(1, USD) != Money(1, EUR)` is
    simply False); ordering, addition and subtraction across currencies raise
    CurrencyMismatch.
    """

    amount_minor: int
    currency: Currency

    def __post_init__(self) -> None:
        _check_int_amount(self.amount_minor)
        if not isinstance(self.currency, Currency):
            raise UnknownCurrency(
                f"Money needs a Currency, got {self.currency!r}: use Money.of(amount, code)",
                currency=repr(self.currency),
            )

    # construction -----------------------------------------------------------

    @classmethod
    def of(cls, amount_minor: int, cur: str | Currency) -> Money:
        """Money from minor units and a currency code or Currency."""
        return cls(amount_minor, _as_currency(cur))

    @classmethod
    def zero(cls, cur: str | Currency) -> Money:
        return cls(0, _as_currency(cur))

    @classmethod
    def parse(cls, text: str, currency: str | Currency) -> Money:
        """Parse a decimal string in major units, e.g. `Money.parse("1234.56", "USD")`."""
        resolved = _as_currency(currency)
        return cls(parse_minor(text, resolved.exponent, currency_code=resolved.code), resolved)

    @classmethod
    def from_decimal(
        cls, d: Decimal, cur: str | Currency, rounding: RoundingMode | None = None
    ) -> Money:
        """Money from a Decimal in major units.

        With `rounding=None` the value must be exact in the currency's minor
        unit (else TooManyDecimals); otherwise it is rounded with that mode.
        """
        resolved = _as_currency(cur)
        if rounding is None:
            minor = _decimal_to_minor_exact(d, resolved.exponent, resolved.code)
        else:
            minor = round_decimal_to_minor(d, resolved.exponent, rounding)
        return cls(minor, resolved)

    @classmethod
    def total(cls, values: Iterable[Money], cur: str | Currency) -> Money:
        """The sum of `values`, all in `cur` (zero when empty)."""
        result = cls.zero(cur)
        for value in values:
            result = result + value
        return result

    # conversion ---------------------------------------------------------------

    def to_decimal(self) -> Decimal:
        """The amount in major units, with exactly `exponent` decimal places."""
        # Built from the canonical string: exact, whatever the Decimal context.
        return Decimal(self.format())

    def format(self) -> str:
        """The amount in major units, e.g. "1234.50", "-0.05", "100" for JPY."""
        return format_minor(self.amount_minor, self.currency.exponent)

    def __str__(self) -> str:
        return f"{self.format()} {self.currency.code}"

    def __repr__(self) -> str:
        return f"Money({self.format()!r}, {self.currency.code!r})"

    # predicates ---------------------------------------------------------------

    def is_zero(self) -> bool:
        return self.amount_minor == 0

    def is_positive(self) -> bool:
        return self.amount_minor > 0

    def is_negative(self) -> bool:
        return self.amount_minor < 0

    # arithmetic ---------------------------------------------------------------

    def _same_currency(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(
                f"cannot {operation} {self.currency.code} and {other.currency.code}",
                left=self.currency.code,
                right=other.currency.code,
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __mul__(self, factor: int) -> Money:
        # Integers only: a rate times money needs a rounding decision, which
        # belongs to the caller (`from_decimal` or `round_*_to_minor`).
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        return Money(self.amount_minor * factor, self.currency)

    def __rmul__(self, factor: int) -> Money:
        return self.__mul__(factor)

    # ordering (same currency only) ----------------------------------------------

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount_minor >= other.amount_minor

    # distribution --------------------------------------------------------------

    def split(self, n: int) -> list[Money]:
        """`n` parts summing exactly to self, differing by at most one minor unit."""
        return [Money(part, self.currency) for part in split_minor(self.amount_minor, n)]

    def allocate(self, weights: Sequence[int | Decimal]) -> list[Money]:
        """Parts in proportion to `weights` (largest remainder), summing exactly."""
        return [Money(part, self.currency) for part in allocate_minor(self.amount_minor, weights)]
