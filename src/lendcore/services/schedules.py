"""Schedule previews: what a loan of a product would repay, before any loan exists.

A loan officer previews a schedule for a borrower; an integrator does the same
over HTTP. `preview_schedule` is the one read both go through (the permission
gate, and the audit log of refusals); `preview_terms` turns a product and the
settings a person overrides into `ScheduleTerms`, every bad value refused with
its own error code.

A preview may step outside the product's limits (principal, rate, term) when a
person asks for it explicitly, to see what a product change would do: the
result names each limit it leaves, so a screen can say so. Booking a loan never
leaves them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any, Final

from lendcore.dates import business_day_convention, calendar, day_count
from lendcore.money import currency, parse_minor, rounding_mode
from lendcore.products.model import Product, load_product_text, parse_product
from lendcore.schedules.engine import Schedule, build_schedule
from lendcore.schedules.terms import (
    InvalidTerms,
    ScheduleTerms,
    amortization,
    frequency,
    interest_method,
)
from lendcore.services.clock import current_business_date
from lendcore.services.commands import query
from lendcore.store.database import Database

SCHEDULE_PREVIEW: Final = "schedule.preview"
# The product a preview uses when none is given: the monthly consumer annuity
# shipped in the package.
DEFAULT_PRODUCT: Final = "consumer-annuity"
# A rate is a plain decimal (0.12 for 12 %); more digits than this is a typo.
_RATE_TEXT: Final = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,12})?$")


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    """The settings a person asks to preview; None keeps the product's own.

    Amounts are decimal text in major units of the preview's currency (the
    product's unless `currency` overrides it); `annual_rate` is decimal text
    (0.12 for 12 %); `start` defaults to the business date.
    """

    principal: str
    # A product, its settings as a mapping (validated here, after the
    # permission check), or None for the consumer-annuity example.
    product: Product | Mapping[str, Any] | None = None
    currency: str | None = None
    annual_rate: str | None = None
    term: int | None = None
    frequency: str | None = None
    start: date | None = None
    first_repayment: date | None = None
    day_count: str | None = None
    method: str | None = None
    amortization: str | None = None
    grace_principal: int | None = None
    grace_interest: int | None = None
    calendar: str | None = None
    convention: str | None = None
    rounding: str | None = None
    instalment_multiple: str | None = None


@dataclass(frozen=True, slots=True)
class SchedulePreview:
    product_code: str
    terms: ScheduleTerms
    schedule: Schedule
    # One sentence per product limit the preview leaves (empty: within them all).
    outside_limits: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def example_product(name: str = DEFAULT_PRODUCT) -> Product:
    """An example product shipped in the package (products/examples/NAME.yaml)."""
    text = resources.files("lendcore.products").joinpath("examples", f"{name}.yaml").read_text()
    return load_product_text(text)


def _rate(text: str) -> Decimal:
    cleaned = str(text).strip()
    if not _RATE_TEXT.match(cleaned):
        raise InvalidTerms(
            f"annual rate {text!r} is not a decimal rate such as 0.12 (for 12 %)",
            annual_rate=str(text)[:40],
        )
    return Decimal(cleaned)


def _limits_left(
    product: Product, principal_minor: int, rate: Decimal, term: int, same_currency: bool
) -> tuple[str, ...]:
    notes: list[str] = []
    if same_currency:
        low, high = product.minor(product.principal.min), product.minor(product.principal.max)
        if not low <= principal_minor <= high:
            notes.append(
                f"principal outside the product's {product.principal.min} to "
                f"{product.principal.max} {product.currency}"
            )
    else:
        notes.append(f"currency differs from the product's {product.currency}: limits unchecked")
    if not product.interest.rate.min <= rate <= product.interest.rate.max:
        notes.append(
            f"annual rate outside the product's {product.interest.rate.min} to "
            f"{product.interest.rate.max}"
        )
    if not product.term.min <= term <= product.term.max:
        notes.append(f"term outside the product's {product.term.min} to {product.term.max}")
    return tuple(notes)


def preview_product(request: PreviewRequest) -> Product:
    if request.product is None:
        return example_product()
    if isinstance(request.product, Product):
        return request.product
    return parse_product(dict(request.product))


def preview_terms(request: PreviewRequest, start: date) -> tuple[ScheduleTerms, tuple[str, ...]]:
    """The terms of a preview, and the product limits they leave (pure)."""
    product = preview_product(request)
    money = currency(request.currency) if request.currency is not None else None
    code = money.code if money is not None else product.currency
    exponent = money.exponent if money is not None else product.exponent
    principal_minor = parse_minor(str(request.principal).strip(), exponent, currency_code=code)
    rate = (
        product.interest.rate.default if request.annual_rate is None else _rate(request.annual_rate)
    )
    term = product.term.default if request.term is None else request.term

    overrides: dict[str, Any] = {}
    if code != product.currency:
        # Amounts the product states in its own currency, restated in this one.
        multiple = product.rounding.instalment_multiple
        overrides.update(
            currency=code,
            exponent=exponent,
            instalment_multiple_minor=parse_minor(str(multiple), exponent, currency_code=code) or 1,
            periodic_fee_minor=parse_minor(
                str(product.fees.periodic), exponent, currency_code=code
            ),
        )
    if request.instalment_multiple is not None:
        multiple_minor = parse_minor(
            request.instalment_multiple.strip(), exponent, currency_code=code
        )
        if multiple_minor < 0:
            raise InvalidTerms("the instalment rounding multiple cannot be negative")
        overrides["instalment_multiple_minor"] = multiple_minor or 1
    if request.frequency is not None:
        overrides["frequency"] = frequency(request.frequency)
    if request.day_count is not None:
        overrides["day_count"] = day_count(request.day_count)
    if request.method is not None:
        overrides["method"] = interest_method(request.method)
    if request.amortization is not None:
        overrides["amortization"] = amortization(request.amortization)
    if request.grace_principal is not None:
        overrides["grace_principal"] = request.grace_principal
    if request.grace_interest is not None:
        overrides["grace_interest"] = request.grace_interest
    if request.calendar is not None:
        # The lender's own closures stay whatever public calendar is chosen.
        overrides["calendar"] = calendar(request.calendar, product.schedule.holidays)
    if request.convention is not None:
        overrides["convention"] = business_day_convention(request.convention)
    if request.rounding is not None:
        overrides["rounding"] = rounding_mode(request.rounding)
    terms = product.terms(
        principal_minor,
        start,
        annual_rate=rate,
        term=term,
        first_repayment=request.first_repayment,
        enforce_limits=False,
        **overrides,
    )
    notes = _limits_left(product, principal_minor, rate, term, code == product.currency)
    return terms, notes


@query(SCHEDULE_PREVIEW)
def preview_schedule(db: Database, request: PreviewRequest) -> SchedulePreview:
    """The schedule a loan would have on `request`'s terms (nothing is written)."""
    start = request.start
    if start is None:
        with db.reading() as conn:
            start = current_business_date(conn)
    terms, notes = preview_terms(request, start)
    return SchedulePreview(preview_product(request).code, terms, build_schedule(terms), notes)
