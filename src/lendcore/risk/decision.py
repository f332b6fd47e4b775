"""The credit decision: facts in, outcome with reasons out. Pure.

1. Eligibility and policy rules (the policy's eligibility table) on facts
   computed here from the application: age, KYC, screening, product limits,
   debt-to-income and payment-to-income with the instalment of the real
   schedule, exposure per borrower and per connected group, concentration per
   product.
2. The credit score from the champion scorecard (a challenger, if any, scores
   the same features in shadow; its result is kept beside, never used).
3. Risk-based pricing: the policy's pricing table gives the band and the rate
   for the score; the rate is clamped to the product's limits.
4. The outcome: decline if any rule or the band declines, else refer if any
   refers, else approve; with reason codes: each rule that failed, the band's
   own code, and (unless approved) the characteristics that lowered the score
   most, as stable codes with texts fit for an adverse-action notice.

Affordability is tested at the product's highest rate (a stress rate): the
priced rate depends on the score, and a borrower who can afford the highest
rate can afford any lower one. The payment tested is the schedule's total
spread over the months of the term, so weekly, monthly and bullet loans are
compared alike against a monthly income. The two schedules are not built:
`schedules.quote` gives their figures (the total at the stress rate, the
regular instalment at the priced rate in closed form), equal to the minor unit
to a full build's (a property test proves it; terms it does not cover are
built). Everything the decision used is in `inputs`,
so `decide(inputs, ...)` with the same policy and model versions gives the same
decision, to the last digit (`lendcore decision replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from lendcore.products.model import Product
from lendcore.risk.model import Scored, ScoringModel
from lendcore.risk.policy import Policy
from lendcore.schedules.quote import quote, quote_instalment
from lendcore.schedules.terms import ScheduleTerms

RATIO_QUANTUM = Decimal("0.000001")
NO_INCOME_RATIO = Decimal(99)  # debt-to-income when there is no income: fails any sane limit


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """What was known when the decision was made: stored with it, replayed from it."""

    application_id: int
    business_date: date
    product_code: str
    product_version: int
    currency: str
    amount_minor: int
    term: int
    age_years: int | None
    kyc_status: str
    screening_status: str
    employment_status: str
    monthly_income_minor: int
    monthly_obligations_minor: int
    borrower_exposure_minor: int  # outstanding principal before this loan
    group_exposure_minor: int
    product_book_minor: int  # the product's outstanding principal, same currency
    total_book_minor: int  # the whole book's outstanding principal, same currency
    features: dict[str, Any]  # the scorecard's characteristics

    def to_doc(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id,
            "business_date": self.business_date.isoformat(),
            "product_code": self.product_code,
            "product_version": self.product_version,
            "currency": self.currency,
            "amount_minor": self.amount_minor,
            "term": self.term,
            "age_years": self.age_years,
            "kyc_status": self.kyc_status,
            "screening_status": self.screening_status,
            "employment_status": self.employment_status,
            "monthly_income_minor": self.monthly_income_minor,
            "monthly_obligations_minor": self.monthly_obligations_minor,
            "borrower_exposure_minor": self.borrower_exposure_minor,
            "group_exposure_minor": self.group_exposure_minor,
            "product_book_minor": self.product_book_minor,
            "total_book_minor": self.total_book_minor,
            "features": dict(self.features),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DecisionInputs:
        values = dict(doc)
        values["business_date"] = date.fromisoformat(values["business_date"])
        values["features"] = dict(values["features"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str
    source: str  # "policy" | "score"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # approve | refer | decline
    reasons: tuple[Reason, ...]
    score: int
    pd: Decimal
    band: str
    annual_rate: Decimal
    instalment_minor: int  # the first full instalment at the priced rate
    stress_payment_monthly_minor: int  # a month's payment at the product's highest rate
    dti: Decimal
    pti: Decimal
    policy_version: str
    model_version: str
    challenger: dict[str, Any] | None  # {"version", "score", "pd"} scored in shadow

    def to_doc(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": [{"code": r.code, "text": r.text, "source": r.source} for r in self.reasons],
            "score": self.score,
            "pd": str(self.pd),
            "band": self.band,
            "annual_rate": str(self.annual_rate),
            "instalment_minor": self.instalment_minor,
            "stress_payment_monthly_minor": self.stress_payment_monthly_minor,
            "dti": str(self.dti),
            "pti": str(self.pti),
            "policy_version": self.policy_version,
            "model_version": self.model_version,
            "challenger": self.challenger,
        }


def _ratio(numerator: int, denominator: int) -> Decimal:
    if denominator <= 0:
        return NO_INCOME_RATIO
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_QUANTUM, ROUND_HALF_EVEN)


def schedule_terms(product: Product, inputs: DecisionInputs, annual_rate: Decimal) -> ScheduleTerms:
    """The terms of the loan applied for, at `annual_rate` (limits are a rule, not an error)."""
    return product.terms(
        inputs.amount_minor,
        inputs.business_date,
        annual_rate=annual_rate,
        term=inputs.term,
        enforce_limits=False,
    )


def monthly_payment_minor(total_minor: int, maturity: date, start: date) -> int:
    """What the loan costs a month on average over its term: all its schedule
    asks for, spread over the months to maturity. Weekly, monthly and bullet
    loans compare alike against a monthly income (a weekly instalment does not)."""
    days = max((maturity - start).days, 1)
    return int(
        (Decimal(total_minor) * 365 / (Decimal(days) * 12)).to_integral_value(ROUND_HALF_EVEN)
    )


def within_limits(product: Product, inputs: DecisionInputs) -> bool:
    low, high = _principal_limits_minor(product)
    return (
        inputs.currency == product.currency
        and low <= inputs.amount_minor <= high
        and product.term.min <= inputs.term <= product.term.max
    )


# A product's principal limits in minor units, by the product object (kept
# here, so its id cannot be another's while the entry lives; products are
# frozen). Bounded: past this many products the cache starts afresh.
_LIMITS_MAX = 64
_limits: dict[int, tuple[Product, int, int]] = {}


def _principal_limits_minor(product: Product) -> tuple[int, int]:
    entry = _limits.get(id(product))
    if entry is None or entry[0] is not product:
        low, high = product.minor(product.principal.min), product.minor(product.principal.max)
        if len(_limits) >= _LIMITS_MAX:
            _limits.clear()
        entry = _limits[id(product)] = (product, low, high)
    return entry[1], entry[2]


def policy_facts(
    product: Product, inputs: DecisionInputs, stress_minor: int, within: bool | None = None
) -> dict[str, Any]:
    """The facts the eligibility table tests (names in risk.policy.FACTS);
    `within` is `within_limits(product, inputs)` when the caller has it."""
    income = inputs.monthly_income_minor
    after_product = inputs.product_book_minor + inputs.amount_minor
    after_total = inputs.total_book_minor + inputs.amount_minor
    return {
        "age_years": inputs.age_years if inputs.age_years is not None else -1,
        "kyc_status": inputs.kyc_status,
        "screening_status": inputs.screening_status,
        "employment_status": inputs.employment_status,
        "currency": inputs.currency,
        "product": inputs.product_code,
        "within_product_limits": within_limits(product, inputs) if within is None else within,
        "dti": float(_ratio(inputs.monthly_obligations_minor + stress_minor, income)),
        "pti": float(_ratio(stress_minor, income)),
        "borrower_exposure_after_minor": inputs.borrower_exposure_minor + inputs.amount_minor,
        "group_exposure_after_minor": inputs.group_exposure_minor + inputs.amount_minor,
        "product_share_after": float(_ratio(after_product, after_total)),
        "book_after_minor": after_total,
    }


def decide(
    inputs: DecisionInputs,
    product: Product,
    policy: Policy,
    champion: ScoringModel,
    challenger: ScoringModel | None = None,
) -> Decision:
    eligible = within_limits(product, inputs)
    stress = 0
    stress_terms = None
    if eligible:
        # The schedule's figures without its rows (`schedules.quote`): its
        # total at the stress rate, and below its regular instalment at the
        # priced rate; to the minor unit what the built schedule gives.
        stress_terms = schedule_terms(product, inputs, product.interest.rate.max)
        stressed = quote(stress_terms)
        stress = monthly_payment_minor(
            stressed.total_minor, stressed.maturity, inputs.business_date
        )
    facts = policy_facts(product, inputs, stress, eligible)
    hits = policy.eligibility(facts)
    scored: Scored = champion.score(inputs.features)
    pricing = policy.pricing(scored.score)
    rate = min(max(pricing.annual_rate, product.interest.rate.min), product.interest.rate.max)
    actions = {h.action for h in hits} | {pricing.action}
    outcome = "decline" if "decline" in actions else "refer" if "refer" in actions else "approve"
    reasons = [Reason(h.code, h.text, "policy") for h in hits]
    if pricing.code:
        reasons.append(Reason(pricing.code, pricing.text, "policy"))
    if outcome != "approve":
        reasons += [Reason(r.code, r.text, "score") for r in scored.reasons]
    shadow = None
    if challenger is not None:
        other = challenger.score(inputs.features)
        shadow = {"version": challenger.version, "score": other.score, "pd": str(other.pd)}
    instalment = 0
    if stress_terms is not None:
        # The same terms at the priced rate.
        instalment = quote_instalment(stress_terms, annual_rate=rate).instalment_minor
    income = inputs.monthly_income_minor
    return Decision(
        outcome=outcome,
        reasons=tuple(reasons),
        score=scored.score,
        pd=scored.pd,
        band=pricing.band,
        annual_rate=rate,
        instalment_minor=instalment,
        stress_payment_monthly_minor=stress,
        dti=_ratio(inputs.monthly_obligations_minor + stress, income),
        pti=_ratio(stress, income),
        policy_version=policy.version,
        model_version=champion.version,
        challenger=shadow,
    )
