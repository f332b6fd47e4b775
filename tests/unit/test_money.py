"""Tests of lendcore.money: currencies, parsing, formatting, rounding, split, allocate."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendcore.errors import (
    CurrencyMismatch,
    InvalidAmount,
    InvalidInput,
    LendcoreError,
    TooManyDecimals,
    UnknownCurrency,
)
from lendcore.money import (
    CURRENCIES,
    DEFAULT_ROUNDING,
    Currency,
    Money,
    RoundingMode,
    allocate_minor,
    currency,
    format_minor,
    is_currency,
    parse_minor,
    round_decimal_to_minor,
    round_fraction_to_minor,
    rounding_mode,
    split_minor,
)

USD = currency("USD")
EUR = currency("EUR")
JPY = currency("JPY")
KWD = currency("KWD")

amounts = st.integers(min_value=-(10**20), max_value=10**20)
exponents = st.sampled_from([0, 2, 3, 4])


# --- currency table ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("VND", 0),
        ("XOF", 0),
        ("XAF", 0),
        ("ISK", 0),
        ("UGX", 0),
        ("USD", 2),
        ("EUR", 2),
        ("KES", 2),
        ("NGN", 2),
        ("INR", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("OMR", 3),
        ("JOD", 3),
        ("IQD", 3),
        ("LYD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("UYW", 4),
    ],
)
def test_table_exponents(code: str, exponent: int) -> None:
    assert currency(code).exponent == exponent
    assert CURRENCIES[code].code == code


def test_table_is_large_consistent_and_has_no_na_codes() -> None:
    assert len(CURRENCIES) >= 150
    for code, cur in CURRENCIES.items():
        assert code == cur.code
        assert len(code) == 3
        assert code.isupper()
        assert cur.exponent in (0, 2, 3, 4)
        assert cur.name
    for code in ("XAU", "XAG", "XPT", "XPD", "XDR", "XTS", "XXX", "XSU", "XUA", "HRK"):
        assert code not in CURRENCIES


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        CURRENCIES["ZZZ"] = Currency("ZZZ", 2, "fake")  # type: ignore[index]


def test_currency_lookup_is_case_insensitive() -> None:
    assert currency("usd") is USD
    assert currency("Jpy") is JPY
    assert is_currency("eur")
    assert not is_currency("ZZZ")
    assert not is_currency("")


@pytest.mark.parametrize("code", ["ZZZ", "", "US", "USDD", " USD", "XAU"])
def test_unknown_currency(code: str) -> None:
    with pytest.raises(UnknownCurrency) as info:
        currency(code)
    assert repr(code) in str(info.value)
    assert info.value.code == "CURRENCY_UNKNOWN"


def test_currency_validates_its_fields() -> None:
    with pytest.raises(UnknownCurrency):
        Currency("usd", 2, "lower case")
    with pytest.raises(ValueError):
        Currency("ABC", -1, "negative exponent")


# --- parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [
        ("1234.56", "USD", 123456),
        ("1234.5", "USD", 123450),
        ("-5", "USD", -500),
        ("+5", "USD", 500),
        ("0.5", "USD", 50),
        ("0", "USD", 0),
        ("-0", "USD", 0),
        ("-0.05", "USD", -5),
        ("007.10", "USD", 710),
        ("1.230", "USD", 123),  # trailing zeros past the exponent are exact
        ("100", "JPY", 100),
        ("100.000", "JPY", 100),
        ("1.234", "KWD", 1234),
        ("0.0001", "CLF", 1),
        ("12345678901234567890.12", "USD", 1234567890123456789012),
    ],
)
def test_parse_examples(text: str, cur: str, minor: int) -> None:
    money = Money.parse(text, cur)
    assert money.amount_minor == minor
    assert money.currency == currency(cur)
    assert parse_minor(text, currency(cur).exponent) == minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "1,000.00",
        "1 000",
        "1e3",
        "1E3",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        ".5",
        "5.",
        ".",
        "-",
        "1.2.3",
        "--1",
        " 1.00",
        "1.00 ",
        "$1",
        "1_000",
        "\u0661\u0662",  # Arabic-Indic digits
        "1" * 65,
    ],
)
def test_parse_refuses_malformed_text(text: str) -> None:
    with pytest.raises(InvalidAmount) as info:
        Money.parse(text, "USD")
    assert not isinstance(info.value, TooManyDecimals)
    assert info.value.code == "AMOUNT_INVALID"


def test_parse_refuses_non_text() -> None:
    with pytest.raises(InvalidAmount):
        parse_minor(1.5, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cur", "message"),
    [
        ("1.234", "USD", "1.234 has more decimals than USD allows (2)"),
        ("1.5", "JPY", "1.5 has more decimals than JPY allows (0)"),
        ("0.0005", "KWD", "0.0005 has more decimals than KWD allows (3)"),
        ("-0.00001", "CLF", "-0.00001 has more decimals than CLF allows (4)"),
    ],
)
def test_parse_too_many_decimals(text: str, cur: str, message: str) -> None:
    with pytest.raises(TooManyDecimals) as info:
        Money.parse(text, cur)
    assert str(info.value) == message
    assert info.value.code == "AMOUNT_TOO_PRECISE"
    assert info.value.details["currency"] == cur


def test_parse_unknown_currency() -> None:
    with pytest.raises(UnknownCurrency):
        Money.parse("1.00", "ZZZ")


# --- formatting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "cur", "text"),
    [
        (123450, "USD", "1234.50"),
        (-5, "USD", "-0.05"),
        (0, "USD", "0.00"),
        (100, "JPY", "100"),
        (-100, "JPY", "-100"),
        (1, "KWD", "0.001"),
        (12345, "CLF", "1.2345"),
        (123456789, "USD", "1234567.89"),  # no thousands separators
    ],
)
def test_format_examples(minor: int, cur: str, text: str) -> None:
    money = Money(minor, currency(cur))
    assert money.format() == text
    assert str(money) == f"{text} {cur}"
    assert format_minor(minor, currency(cur).exponent) == text


def test_repr_is_readable() -> None:
    assert repr(Money(123450, USD)) == "Money('1234.50', 'USD')"


@given(amounts, exponents)
def test_parse_format_round_trip(minor: int, exponent: int) -> None:
    assert parse_minor(format_minor(minor, exponent), exponent) == minor


@given(amounts, st.sampled_from(["USD", "JPY", "KWD", "CLF"]))
def test_money_parse_format_round_trip(minor: int, code: str) -> None:
    money = Money(minor, currency(code))
    assert Money.parse(money.format(), code) == money
    assert Money.from_decimal(money.to_decimal(), code) == money


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    exponents,
    st.integers(min_value=0, max_value=4),
)
def test_format_parse_round_trip_of_canonical_text(whole: int, exponent: int, places: int) -> None:
    # Build a canonical decimal string with exactly `exponent` decimals.
    text = str(abs(whole)) if exponent == 0 else f"{abs(whole)}.{places:0{exponent}d}"
    if whole < 0 and text.strip("0.") != "":
        text = "-" + text
    assert format_minor(parse_minor(text, exponent), exponent) == text


def test_to_decimal_is_exact_beyond_context_precision() -> None:
    money = Money(10**40 + 1, USD)
    with localcontext() as context:
        context.prec = 5
        assert money.to_decimal() == Decimal("100000000000000000000000000000000000000.01")
    assert Money(-5, USD).to_decimal() == Decimal("-0.05")
    assert Money(100, JPY).to_decimal() == Decimal(100)


# --- construction ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, 1.0, Decimal(1), "1", None, Fraction(1)])
def test_money_accepts_int_only(bad: object) -> None:
    with pytest.raises(InvalidAmount):
        Money(bad, USD)  # type: ignore[arg-type]


def test_money_needs_a_currency() -> None:
    with pytest.raises(UnknownCurrency):
        Money(1, "USD")  # type: ignore[arg-type]
    assert Money.of(1, "usd") == Money(1, USD)
    assert Money.zero("EUR") == Money(0, EUR)
    assert Money.zero(EUR).is_zero()


def test_money_is_immutable_and_hashable() -> None:
    money = Money(1, USD)
    with pytest.raises(AttributeError):
        money.amount_minor = 2  # type: ignore[misc]
    assert len({Money(1, USD), Money(1, USD), Money(1, EUR)}) == 2


# --- from_decimal and rounding -----------------------------------------------------


def test_from_decimal_exact_or_refused() -> None:
    assert Money.from_decimal(Decimal("12.30"), "USD") == Money(1230, USD)
    assert Money.from_decimal(Decimal("1E+2"), "JPY") == Money(100, JPY)
    with pytest.raises(TooManyDecimals, match=r"has more decimals than USD allows \(2\)"):
        Money.from_decimal(Decimal("0.025"), "USD")
    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")):
        with pytest.raises(InvalidAmount):
            Money.from_decimal(bad, "USD")
    with pytest.raises(InvalidAmount):
        Money.from_decimal(0.5, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "mode", "minor"),
    [
        ("0.025", RoundingMode.HALF_EVEN, 2),
        ("0.025", RoundingMode.HALF_UP, 3),
        ("0.025", RoundingMode.HALF_DOWN, 2),
        ("0.035", RoundingMode.HALF_EVEN, 4),
        ("0.035", RoundingMode.HALF_DOWN, 3),
        ("-0.025", RoundingMode.HALF_EVEN, -2),
        ("-0.025", RoundingMode.HALF_UP, -3),
        ("-0.025", RoundingMode.HALF_DOWN, -2),
        ("0.021", RoundingMode.UP, 3),
        ("-0.021", RoundingMode.UP, -3),
        ("0.029", RoundingMode.DOWN, 2),
        ("-0.029", RoundingMode.DOWN, -2),
        ("-0.021", RoundingMode.CEILING, -2),
        ("0.021", RoundingMode.CEILING, 3),
        ("-0.021", RoundingMode.FLOOR, -3),
        ("0.029", RoundingMode.FLOOR, 2),
        ("0.026", RoundingMode.HALF_DOWN, 3),
        ("0.024", RoundingMode.HALF_UP, 2),
        ("5", RoundingMode.UP, 500),
    ],
)
def test_rounding_modes_on_known_values(value: str, mode: RoundingMode, minor: int) -> None:
    assert round_decimal_to_minor(Decimal(value), 2, mode) == minor
    assert Money.from_decimal(Decimal(value), "USD", mode) == Money(minor, USD)
    assert round_fraction_to_minor(Fraction(value), 2, mode) == minor


def test_default_rounding_is_half_even() -> None:
    assert DEFAULT_ROUNDING is RoundingMode.HALF_EVEN


def test_rounding_mode_parsing() -> None:
    assert rounding_mode("HALF_EVEN") is RoundingMode.HALF_EVEN
    assert rounding_mode("half up") is RoundingMode.HALF_UP
    assert RoundingMode("ceiling") is RoundingMode.CEILING
    with pytest.raises(InvalidInput, match="half-even"):
        rounding_mode("bankers")


def test_rounding_is_exact_whatever_the_decimal_context() -> None:
    value = Decimal("123456789012345678901234567890.125")
    with localcontext() as context:
        context.prec = 3
        assert (
            round_decimal_to_minor(value, 2, RoundingMode.HALF_EVEN)
            == 12345678901234567890123456789012
        )


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12),
    st.sampled_from(list(RoundingMode)),
    exponents,
)
def test_rounding_agrees_with_decimal_module(value: Decimal, mode: RoundingMode, exp: int) -> None:
    # The decimal module is the oracle: scale exactly, then round to an integer.
    sign, digits, power = value.as_tuple()
    assert isinstance(power, int)
    scaled = Decimal((sign, digits, power + exp))
    expected = int(scaled.to_integral_value(rounding=mode.decimal_rounding))
    assert round_decimal_to_minor(value, exp, mode) == expected
    assert round_fraction_to_minor(Fraction(value), exp, mode) == expected


def test_round_fraction_example() -> None:
    # 1000.00 at 5% for 61/365 of a year = 8.3561643... -> 8.36
    interest = Fraction(1000) * Fraction(5, 100) * Fraction(61, 365)
    assert round_fraction_to_minor(interest, 2, RoundingMode.HALF_EVEN) == 836


# --- arithmetic -----------------------------------------------------------------


def test_arithmetic() -> None:
    a = Money.parse("10.50", "USD")
    b = Money.parse("0.75", "USD")
    assert a + b == Money(1125, USD)
    assert a - b == Money(975, USD)
    assert b - a == Money(-975, USD)
    assert -a == Money(-1050, USD)
    assert +a == a
    assert abs(Money(-3, USD)) == Money(3, USD)
    assert a * 3 == Money(3150, USD)
    assert 3 * a == Money(3150, USD)
    assert a * -1 == -a
    assert Money.total([a, b, b], "USD") == Money(1200, USD)
    assert Money.total([], "USD") == Money.zero("USD")


def test_predicates() -> None:
    assert Money(0, USD).is_zero()
    assert Money(1, USD).is_positive()
    assert not Money(1, USD).is_negative()
    assert Money(-1, USD).is_negative()
    assert not Money(0, USD).is_positive()


def test_comparisons() -> None:
    small, large = Money(1, USD), Money(2, USD)
    assert small < large
    assert small <= large
    assert large > small
    assert large >= small
    assert small <= Money(1, USD)
    assert max(small, large) == large
    assert sorted([large, small]) == [small, large]


def test_mixed_currencies_are_refused() -> None:
    usd, eur = Money(100, USD), Money(100, EUR)
    operations: list[Callable[[], object]] = [
        lambda: usd + eur,
        lambda: usd - eur,
        lambda: usd < eur,
        lambda: usd <= eur,
        lambda: usd > eur,
        lambda: usd >= eur,
        lambda: Money.total([usd, eur], "USD"),
    ]
    for operation in operations:
        with pytest.raises(CurrencyMismatch, match="USD and EUR"):
            operation()
    # Equality across currencies is a plain False, not an error.
    assert usd != eur


@pytest.mark.parametrize("factor", [1.5, Decimal("1.5"), True, Fraction(1, 2), "2"])
def test_multiplication_by_int_only(factor: object) -> None:
    with pytest.raises(TypeError):
        Money(100, USD) * factor  # type: ignore[operator]


def test_adding_non_money_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(100, USD) + 1  # type: ignore[operator]


def test_errors_are_lendcore_errors() -> None:
    with pytest.raises(LendcoreError) as info:
        Money.parse("abc", "USD")
    assert info.value.to_dict()["code"] == "AMOUNT_INVALID"


# --- split --------------------------------------------------------------------------


def test_split_examples() -> None:
    assert split_minor(100, 3) == [34, 33, 33]
    assert split_minor(-100, 3) == [-34, -33, -33]
    assert split_minor(2, 5) == [1, 1, 0, 0, 0]
    assert split_minor(0, 2) == [0, 0]
    assert split_minor(7, 1) == [7]
    assert Money(1000, USD).split(3) == [Money(334, USD), Money(333, USD), Money(333, USD)]


@pytest.mark.parametrize("n", [0, -1, True, 100_001])
def test_split_refuses_bad_part_counts(n: int) -> None:
    with pytest.raises(InvalidInput):
        split_minor(100, n)


@given(amounts, st.integers(min_value=1, max_value=500))
def test_split_properties(total: int, n: int) -> None:
    parts = split_minor(total, n)
    assert len(parts) == n
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1
    # Larger magnitudes first.
    assert [abs(p) for p in parts] == sorted((abs(p) for p in parts), reverse=True)
    if total >= 0:
        assert min(parts) >= 0
    # Sign symmetry: a refund splits as the mirror of its charge.
    assert split_minor(-total, n) == [-p for p in parts]


# --- allocate -----------------------------------------------------------------------


def test_allocate_examples() -> None:
    assert allocate_minor(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate_minor(100, [1, 2]) == [33, 67]
    assert allocate_minor(-100, [1, 2]) == [-33, -67]
    assert allocate_minor(5, [0, 1, 0, 1]) == [0, 3, 0, 2]
    assert allocate_minor(10, [Decimal("0.7"), Decimal("0.3")]) == [7, 3]
    assert allocate_minor(1, [Decimal("0.5"), 1, Decimal("0.5")]) == [0, 1, 0]
    assert allocate_minor(3, [1, 1]) == [2, 1]  # tie -> earlier index
    assert allocate_minor(0, [1, 2]) == [0, 0]
    money = Money.parse("100.00", "USD")
    assert money.allocate([50, 30, 20]) == [
        Money(5000, USD),
        Money(3000, USD),
        Money(2000, USD),
    ]


@pytest.mark.parametrize(
    "weights",
    [
        [],
        [0, 0],
        [1, -1],
        [Decimal("-0.5"), 2],
        [1.5, 1],
        [True, 1],
        [Decimal("NaN"), 1],
        [Decimal("Infinity")],
        "12",
    ],
)
def test_allocate_refuses_bad_weights(weights: list[int | Decimal]) -> None:
    with pytest.raises(InvalidInput):
        allocate_minor(100, weights)


weights_strategy = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=10**6),
        st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=30,
).filter(lambda ws: sum(ws) > 0)


@given(amounts, weights_strategy)
def test_allocate_properties(total: int, weights: list[int | Decimal]) -> None:
    parts = allocate_minor(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    weight_sum = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total) * Fraction(weight) / weight_sum
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0
        if total >= 0:
            assert part >= 0
    assert allocate_minor(-total, weights) == [-p for p in parts]


@given(amounts, st.integers(min_value=1, max_value=50))
def test_allocate_with_equal_weights_is_split(total: int, n: int) -> None:
    assert allocate_minor(total, [7] * n) == split_minor(total, n)
