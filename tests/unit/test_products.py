"""Product definitions: the shipped examples validate and schedule sensibly;
contradictory settings are refused with InvalidProduct naming the setting."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from lendcore.products.model import InvalidProduct, Product, load_product_text, parse_product
from lendcore.schedules.engine import build_schedule
from lendcore.schedules.terms import Amortization, InterestMethod

EXAMPLES = Path(__file__).parents[2] / "src" / "lendcore" / "products" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return document


def refused(document: dict[str, Any]) -> InvalidProduct:
    with pytest.raises(InvalidProduct) as caught:
        parse_product(document)
    assert caught.value.code == "PRODUCT_INVALID"
    return caught.value


def with_setting(name: str, path: str, value: Any) -> dict[str, Any]:
    """The example `name` with the setting at dotted `path` set to `value`."""
    document = copy.deepcopy(example(name))
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return document


def test_four_examples_are_shipped() -> None:
    assert [f.stem for f in EXAMPLE_FILES] == [
        "consumer-annuity",
        "interest-only-balloon",
        "microloan-weekly-flat",
        "working-capital-bullet",
    ]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_each_example_validates_and_round_trips(path: Path) -> None:
    product = load_product_text(path.read_text())
    assert product.code == path.stem
    # Stored as canonical JSON and read back: the same product, the same digest.
    stored = json.loads(json.dumps(product.model_dump(mode="json"), sort_keys=True))
    again = parse_product(stored)
    assert again == product
    assert again.digest == product.digest
    # Every example is commented for the person who copies it.
    assert path.read_text().startswith("# ")


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_each_example_gives_a_sensible_schedule(path: Path) -> None:
    product = load_product_text(path.read_text())
    principal = product.minor(product.principal.min) * 3
    schedule = build_schedule(product.terms(principal, date(2026, 3, 31)))
    expected_count = 1 if product.amortization is Amortization.BULLET else product.term.default
    assert len(schedule.instalments) == expected_count
    assert schedule.principal == principal
    assert schedule.instalments[-1].outstanding == 0
    assert schedule.interest > 0
    assert all(i.principal >= 0 and i.interest >= 0 for i in schedule.instalments)
    dues = [i.due_date for i in schedule.instalments]
    assert dues == sorted(set(dues))
    calendar = product.schedule.build()
    assert all(calendar.is_business_day(d) for d in dues)


def test_weekly_flat_microloan_charges_rate_times_principal_times_years() -> None:
    product = parse_product(example("microloan-weekly-flat"))
    assert (product.frequency, product.interest.method) == ("weekly", InterestMethod.FLAT)
    schedule = build_schedule(product.terms(1_000_000, date(2026, 1, 5)))  # KES 10,000
    # 24 % a year for 16 weeks of a 52-week year.
    assert Fraction(schedule.interest) == round(Fraction(1_000_000) * Fraction("0.24") * 16 / 52)
    # Whole shillings, the last instalment absorbing the rest.
    assert {i.total % 100 for i in schedule.instalments[:-1]} == {0}
    assert len({i.total for i in schedule.instalments[:-1]}) == 1


def test_bullet_repays_everything_at_maturity() -> None:
    product = parse_product(example("working-capital-bullet"))
    schedule = build_schedule(product.terms(5_000_000, date(2026, 1, 15)))
    (only,) = schedule.instalments
    assert only.principal == 5_000_000
    # ACT/360 on the actual days to a business-day adjusted maturity, 9.5 %.
    days = (only.due_date - date(2026, 1, 15)).days
    assert only.interest == round(Fraction(5_000_000) * Fraction("0.095") * days / 360)


def test_interest_only_pays_the_balloon_last() -> None:
    product = parse_product(example("interest-only-balloon"))
    principal = 10_000_000
    schedule = build_schedule(product.terms(principal, date(2026, 1, 15), term=24))
    *regular, last = schedule.instalments
    assert {i.principal for i in regular} == {0}
    assert last.principal == principal
    # 30E/360 by equal periods: the same interest every month, 6.5 % / 12.
    assert {i.interest for i in schedule.instalments} == {
        round(Fraction(principal) * Fraction("0.065") / 12)
    }
    assert {i.fees for i in schedule.instalments} == {1_000}


# --- contradictions, each refused with the setting named ------------------------------


def test_bullet_with_a_grace_longer_than_the_term() -> None:
    document = with_setting("working-capital-bullet", "grace", {"principal": 13})
    error = refused(document)
    assert error.details["field"] == "grace.principal"
    assert "bullet" in error.message


def test_a_grace_not_shorter_than_the_shortest_term() -> None:
    error = refused(with_setting("consumer-annuity", "grace", {"principal": 6}))
    assert error.details["field"] == "grace.principal"
    assert "shortest term (6)" in error.message


def test_a_bullet_cannot_have_an_interest_free_grace() -> None:
    error = refused(with_setting("working-capital-bullet", "grace", {"interest": 1}))
    assert error.details["field"] == "grace.interest"


def test_an_unknown_calendar() -> None:
    error = refused(with_setting("consumer-annuity", "schedule.calendar", "Atlantis"))
    assert error.details["field"] == "schedule.calendar"
    assert "Atlantis" in error.message


def test_an_unknown_day_count() -> None:
    error = refused(with_setting("consumer-annuity", "interest.day_count", "act/365"))
    assert error.details["field"] == "interest.day_count"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("principal", {"min": "5000.00", "max": "500.00"}, "principal.min"),
        ("term", {"min": 24, "max": 12, "default": 12}, "term.min"),
        ("interest.rate", {"min": "0.30", "max": "0.10", "default": "0.20"}, "interest.rate.min"),
    ],
)
def test_min_above_max(path: str, value: Any, field: str) -> None:
    error = refused(with_setting("consumer-annuity", path, value))
    assert error.details["field"] == field
    assert "outside" in error.message or "above" in error.message


def test_a_default_outside_the_limits() -> None:
    document = with_setting(
        "consumer-annuity", "interest.rate", {"min": "0.05", "max": "0.10", "default": "0.20"}
    )
    assert refused(document).details["field"] == "interest.rate.default"


@pytest.mark.parametrize("fee", ["disbursement", "late"])
def test_a_percent_fee_above_one(fee: str) -> None:
    document = with_setting("consumer-annuity", f"fees.{fee}", {"kind": "percent", "value": "1.5"})
    error = refused(document)
    assert error.details["field"] == f"fees.{fee}.value"
    assert "at most 1" in error.message


def test_a_deducted_fee_that_takes_the_whole_principal() -> None:
    document = with_setting(
        "consumer-annuity",
        "fees.disbursement",
        {"kind": "flat", "value": "500.00", "treatment": "deducted"},
    )
    assert refused(document).details["field"] == "fees.disbursement.value"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("principal", {"min": "500.001", "max": "50000.00"}, "principal.min"),
        ("arrears.tolerance", "0.005", "arrears.tolerance"),
        ("fees.late", {"kind": "flat", "value": "15.001"}, "fees.late.value"),
        ("fees.periodic", "1.999", "fees.periodic"),
    ],
)
def test_too_many_decimals_for_the_currency(path: str, value: Any, field: str) -> None:
    error = refused(with_setting("consumer-annuity", path, value))
    assert error.details["field"] == field
    assert "more decimals than" in error.message


def test_a_currency_without_decimals() -> None:
    # "5000.00" is exact in yen (trailing zeros); "5000.50" is not.
    assert parse_product(with_setting("microloan-weekly-flat", "currency", "JPY")).exponent == 0
    document = with_setting("microloan-weekly-flat", "currency", "JPY")
    document["principal"]["min"] = "5000.50"
    assert refused(document).details["field"] == "principal.min"


def test_amounts_are_never_floats() -> None:
    error = refused(with_setting("consumer-annuity", "arrears.tolerance", 1.5))
    assert error.details["field"] == "arrears.tolerance"
    assert "quoted decimal" in error.message
    # Integers are exact and welcome.
    assert (
        parse_product(with_setting("consumer-annuity", "arrears.tolerance", 2)).minor(Decimal(2))
        == 200
    )


def test_an_unknown_waterfall() -> None:
    error = refused(with_setting("consumer-annuity", "waterfall", {"strategy": "whatever"}))
    assert error.details["field"] == "waterfall.strategy"
    assert "penalties-fees-interest-principal" in error.message


def test_a_custom_waterfall_order() -> None:
    order = ["interest", "penalty", "fee", "principal"]
    product = parse_product(with_setting("consumer-annuity", "waterfall", {"order": order}))
    assert [c.value for c in product.waterfall.components] == order
    assert product.waterfall.strategy is None
    # Stored and read back the same.
    assert parse_product(product.model_dump(mode="json")).digest == product.digest
    both = {"strategy": "interest-principal-first", "order": order}
    assert refused(with_setting("consumer-annuity", "waterfall", both)).details["field"] == (
        "waterfall.order"
    )
    partial = {"order": ["interest", "principal"]}
    assert refused(with_setting("consumer-annuity", "waterfall", partial)).details["field"] == (
        "waterfall.order"
    )


@pytest.mark.parametrize(
    "buckets",
    [
        [[1, 30], [40, 60], [61, None]],  # a gap
        [[1, 30], [25, 60], [61, None]],  # an overlap
        [[0, 30], [31, None]],  # not from day 1
        [[1, 30], [31, 60]],  # loans past 60 days fall nowhere
        [[1, None], [31, None]],  # open in the middle
        [],
    ],
)
def test_buckets_with_gaps_or_holes(buckets: list[list[int | None]]) -> None:
    error = refused(with_setting("consumer-annuity", "arrears.buckets", buckets))
    assert error.details["field"] == "arrears.buckets"


def test_accounts_that_must_not_mix() -> None:
    error = refused(with_setting("consumer-annuity", "accounting.fund_source", "1200"))
    assert error.details["field"] == "accounting.fund_source"
    assert "principal" in error.message


def test_flat_rate_with_a_payment_holiday() -> None:
    error = refused(with_setting("microloan-weekly-flat", "payment_holiday", 2))
    assert error.details["field"] == "payment_holiday"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("frequency", "fortnightly-ish", "frequency"),
        ("currency", "XXX1", "currency"),
        ("code", "Has Spaces", "code"),
        ("rounding.instalment_multiple", "-1", "rounding.instalment_multiple"),
        ("unknown_setting", 1, "unknown_setting"),
    ],
)
def test_other_bad_settings_are_named(path: str, value: Any, field: str) -> None:
    assert refused(with_setting("consumer-annuity", path, value)).details["field"] == field


def test_a_file_that_is_not_a_mapping() -> None:
    with pytest.raises(InvalidProduct):
        load_product_text("- just\n- a list\n")
    with pytest.raises(InvalidProduct):
        load_product_text("code: [unclosed\n")


def test_the_digest_changes_with_any_setting() -> None:
    base = parse_product(example("consumer-annuity"))
    changed = parse_product(with_setting("consumer-annuity", "arrears.tolerance", "2.00"))
    assert isinstance(base, Product)
    assert base.digest != changed.digest
    assert parse_product(example("consumer-annuity")).digest == base.digest
