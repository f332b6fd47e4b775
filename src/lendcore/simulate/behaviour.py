"""Applicants and what they do once they have a loan: pure draws, exact money.

Everything here is a function of its arguments and of a `random.Random` that
the caller seeds with `stream(seed, *parts)`: a stream per applicant, per loan,
per referral, so what one borrower does never depends on the order the others
were drawn in, and the same seed lives the same life.

The repayment model. Each booked loan draws one `Behaviour` from the 12-month
PD its credit decision gave it (the same PD IFRS 9 staging starts from):

- default: with the chance its 12-month PD (times `stress`) gives, the
  borrower stops paying in the loan's first year, mostly in its first months;
  each later year of a long loan holds the same chance again
  (`default_chances`, `onset_day`). All uniforms are drawn up front in a fixed
  order, so for the same stream a higher PD never stops paying later;
- cure: some defaulters come back after weeks, pay all their arrears at once
  and pay on time again;
- late: pays every instalment a fixed number of days after it falls due (a
  few on weekly loans; on monthly loans one in three over 30, into PAR30);
- partial: pays a share of what has fallen due, catching up in full every few
  instalments;
- early: pays on time, then settles the whole loan on a day before maturity;
- on time: pays what has fallen due on each due date.

After a write-off some defaulters repay a share of the balance: a recovery.
Amounts are integer minor units; a payment is never more than the payoff.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Final

from lendcore.products.model import Product
from lendcore.schedules.terms import frequency

PER_MILLE: Final = 1000
# A PD of 1 would be a default on the day of booking: no credit decision approves that.
PD_MAX: Final = Decimal("0.9999")
# A default within 12 months (90 days past due) stops paying within the first nine.
FIRST_YEAR_ONSET_DAYS: Final = 270


def stream(seed: int, *parts: object) -> random.Random:
    """A random stream for one purpose: the same seed and parts give the same
    draws in every process (a string seed is hashed with SHA-512, not `hash`)."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))


# --- applicants --------------------------------------------------------------------------

FIRST_NAMES: Final = (
    "Amara", "Brian", "Chloe", "Daniel", "Esther", "Felix", "Gloria", "Henry", "Imani",
    "James", "Kamau", "Linda", "Moses", "Naomi", "Oliver", "Priya", "Quentin", "Rose",
    "Samuel", "Tanya", "Umar", "Violet", "Wanjiru", "Xavier", "Yusuf", "Zawadi", "Akinyi",
    "Benjamin", "Caroline", "Dennis", "Evelyn", "Francis", "Hannah", "Isaac", "Joyce",
    "Kevin", "Lucy", "Martin", "Nicole", "Otieno", "Peter", "Ruth", "Stephen", "Teresa",
)  # fmt: skip
LAST_NAMES: Final = (
    "Anderson", "Baraka", "Carter", "Dlamini", "Ekwueme", "Fischer", "Gitau", "Hughes",
    "Iverson", "Jensen", "Kariuki", "Lopez", "Mwangi", "Nakamura", "Ochieng", "Patel",
    "Quinn", "Rossi", "Suleiman", "Thompson", "Urasa", "Varga", "Wambui", "Young", "Zhang",
    "Achieng", "Brooks", "Chebet", "Duarte", "Kimani", "Larsen", "Morales", "Njoroge",
    "Odhiambo", "Reyes", "Sato", "Torres", "Wekesa", "Whitfield", "Kowalski",
)  # fmt: skip
PURPOSES: Final = (
    "Household purchase", "Home repair", "School fees", "Vehicle", "Stock",
    "Working capital", "Medical bills", "Wedding", "Equipment", "Debt consolidation",
)  # fmt: skip
# Employment as the officer records it; unemployed and retired borrowers are referred.
EMPLOYMENT: Final = (
    ("employed", 70),
    ("self_employed", 22),
    ("retired", 3),
    ("unemployed", 3),
    ("other", 2),
)


@dataclass(frozen=True, slots=True)
class Applicant:
    """A person applying for a loan of one product, as the officer enters them."""

    name: str
    date_of_birth: date
    employment_status: str
    monthly_income_minor: int
    monthly_obligations_minor: int
    # The scorecard's characteristics the officer enters (age, income and the
    # debt ratio come from the application itself).
    credit_profile: Mapping[str, float]
    amount_minor: int
    term: int
    purpose: str
    # The applicant's latent riskiness (a standard normal; higher is riskier):
    # it shapes the profile the scorecard sees, never the repayments directly.
    risk: float


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: small means only (ours stay below 5)."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _round_down(amount_minor: int, unit_minor: int) -> int:
    return amount_minor // unit_minor * unit_minor


def _terms_offered(product: Product) -> tuple[tuple[int, int], ...]:
    """(term, weight): the default term most often, the shortest and two between."""
    low, default, high = product.term.min, product.term.default, product.term.max
    weights: dict[int, int] = {}
    for term, weight in (
        (low, 1),
        ((low + default) // 2, 2),
        (default, 4),
        ((default + high) // 2, 1),
    ):
        weights[term] = weights.get(term, 0) + weight
    return tuple(sorted(weights.items()))


def monthly_cost_minor(product: Product, amount_minor: int, term: int) -> int:
    """A rough monthly cost of the loan at the product's highest rate: the
    principal spread over the months of the term plus a month's interest on all
    of it. It errs high, as a cautious applicant's own sum would."""
    months = max(Fraction(term * 12) / frequency(product.frequency).periods_per_year, Fraction(1))
    rate = Fraction(product.interest.rate.max)
    return int(amount_minor / months + amount_minor * rate / 12)


def draw_applicant(
    rng: random.Random,
    product: Product,
    today: date,
    *,
    amount_max_minor: int | None = None,
) -> Applicant:
    """A plausible applicant for `product` on `today`: a latent risk drives the
    credit profile, income is set by how much of it the instalment would take,
    the amount is log-uniform between the product's minimum and
    `amount_max_minor` (within the product's limits)."""
    risk = rng.gauss(0.0, 1.0)
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    # Ages 21 to 70 mostly; a few over 75, whom the policy refers to a person.
    age = rng.randint(76, 82) if rng.random() < 0.03 else rng.randint(21, 70)
    born = date(today.year - age - 1, rng.randint(1, 12), rng.randint(1, 28))
    employment = rng.choices(
        [status for status, _ in EMPLOYMENT], weights=[w for _, w in EMPLOYMENT]
    )[0]
    low = product.minor(product.principal.min)
    high = product.minor(product.principal.max)
    if amount_max_minor is not None:
        high = max(low, min(high, amount_max_minor))
    unit = 10 ** (product.exponent + 1)  # whole tens of the currency
    amount = math.exp(rng.uniform(math.log(low), math.log(high)))
    amount_minor = min(high, max(low, _round_down(int(amount), unit)))
    offered = _terms_offered(product)
    term = rng.choices([t for t, _ in offered], weights=[w for _, w in offered])[0]
    # Payment to income: mostly 5 % to 30 %; some stretch past the policy's 35 %.
    pti_per_mille = round(rng.triangular(50, 450, 150))
    income_minor = max(
        monthly_cost_minor(product, amount_minor, term) * PER_MILLE // pti_per_mille, 1
    )
    obligations_share = min(0.45, max(0.0, rng.uniform(0.0, 0.25) + 0.05 * risk))
    late_30 = _poisson(rng, math.exp(0.9 * risk - 1.9))
    late_60 = _poisson(rng, math.exp(1.0 * risk - 3.2))
    late_90 = _poisson(rng, math.exp(1.1 * risk - 3.8))
    profile = {
        "revolving_utilization": round(
            min(1.1, max(0.0, _logistic(1.3 * risk - 0.9) + rng.gauss(0.0, 0.08))), 3
        ),
        "open_credit_lines": max(1, min(25, round(rng.gauss(8.0, 3.5)))),
        "real_estate_loans": rng.choices([0, 1, 2], weights=[45, 40, 15])[0],
        "times_30_59_days_late": late_30,
        "times_60_89_days_late": late_60,
        "times_90_days_late": late_90,
        "dependents": rng.choices([0, 1, 2, 3, 4], weights=[35, 25, 22, 12, 6])[0],
    }
    return Applicant(
        name=name,
        date_of_birth=born,
        employment_status=employment,
        monthly_income_minor=income_minor,
        monthly_obligations_minor=int(income_minor * obligations_share),
        credit_profile=profile,
        amount_minor=amount_minor,
        term=term,
        purpose=rng.choice(PURPOSES),
        risk=risk,
    )


# --- repayment behaviour ---------------------------------------------------------------


class Persona(StrEnum):
    ON_TIME = "on-time"
    LATE = "late"
    PARTIAL = "partial"
    EARLY = "early"
    DEFAULT = "default"
    CURE = "cure"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How one borrower repays one loan, drawn once at booking."""

    persona: Persona
    # Days after each due date the borrower pays (0: on the due date).
    lag_days: int = 0
    # Partial payers: the share of what has fallen due paid on a pay day, and
    # every how many instalments they pay everything instead.
    share_per_mille: int = PER_MILLE
    catch_up_every: int = 0
    # Default and cure: the first day with no payment; cure: the day the
    # borrower pays all arrears and goes back to paying on time.
    stops_on: date | None = None
    resumes_on: date | None = None
    # Early: the day the borrower settles the whole loan.
    prepays_on: date | None = None
    # After a write-off: the share of the written-off balance paid back, and
    # how many days after the write-off.
    recovery_per_mille: int = 0
    recovery_after_days: int = 0


@dataclass(frozen=True, slots=True)
class Loan:
    """What the borrower knows of their loan when it is booked."""

    pd: Decimal  # 12-month PD from the credit decision
    booked_on: date
    due_dates: tuple[date, ...]
    period_days: int  # 7 for weekly loans, about 30 for monthly ones

    @property
    def maturity(self) -> date:
        return self.due_dates[-1] if self.due_dates else self.booked_on


def default_chances(
    pd: Decimal, life_days: int, stress: Decimal = Decimal(1)
) -> tuple[float, float]:
    """(the chance the borrower stops paying in the loan's first year, the chance
    they do at all over its life). A 12-month PD (times `stress`, at most
    `PD_MAX`) is the chance of 90+ days past due within a year: of stopping in
    the first `FIRST_YEAR_ONSET_DAYS` (less for a loan shorter than a year);
    each later year holds the same yearly chance. Both are monotone in PD,
    stress and life, and 0 for a PD of 0."""
    yearly = min(max(pd, Decimal(0)) * max(stress, Decimal(0)), PD_MAX)
    hazard = math.log1p(-float(yearly))  # per year, as a log survival
    first = -math.expm1(min(max(life_days, 0), 365) / 365.0 * hazard)
    later = -math.expm1(max(life_days - 365, 0) / 365.0 * hazard)
    return first, first + (1.0 - first) * later


def _triangular(uniform: float, low: float, high: float, mode: float) -> float:
    """The inverse distribution function of a triangular law: non-decreasing."""
    u = min(max(uniform, 0.0), 1.0)
    if high <= low:
        return low
    split = (mode - low) / (high - low)
    if u <= split:
        return low + math.sqrt(u * (high - low) * (mode - low))
    return high - math.sqrt((1.0 - u) * (high - low) * (high - mode))


def onset_day(
    default_draw: float,
    onset_draw: float,
    pd: Decimal,
    life_days: int,
    stress: Decimal = Decimal(1),
) -> int | None:
    """The day after booking a defaulter stops paying, or None. A first-year
    default stops early (a triangular law from day 1 to the first
    `FIRST_YEAR_ONSET_DAYS` of the loan, peaking at two months, as real books
    see their early defaults); a later one on any day after the first year.
    For the same draws a higher PD or stress never stops later."""
    if life_days < 2:
        return None
    first, total = default_chances(pd, life_days, stress)
    if default_draw <= first:
        window = float(min(life_days - 1, FIRST_YEAR_ONSET_DAYS))
        mode = min(60.0, 1.0 + (window - 1.0) / 3)
        return max(1, math.floor(_triangular(onset_draw, 1.0, window, mode)))
    if default_draw <= total:
        return 365 + min(life_days - 366, math.floor(onset_draw * (life_days - 365)))
    return None


@dataclass(frozen=True, slots=True)
class _Draws:
    """Every uniform a behaviour needs, drawn in one fixed order."""

    default: float
    onset: float
    cure: float
    cure_after: float
    persona: float
    lag: float
    long_lag: float
    share: float
    catch_up: float
    prepay: float
    recovery: float
    recovery_share: float
    recovery_after: float

    @classmethod
    def of(cls, rng: random.Random) -> _Draws:
        return cls(*(1.0 - rng.random() for _ in range(13)))  # in (0, 1]


def persona_shares(pd: Decimal) -> dict[Persona, float]:
    """Among borrowers who do not default: the share of each other persona.
    Riskier borrowers are late and partial more often and settle early less."""
    p = float(min(max(pd, Decimal(0)), PD_MAX))
    late = min(0.40, 0.08 + 3.0 * p)
    partial = min(0.20, 0.02 + 1.5 * p)
    early = max(0.02, 0.10 - p)
    return {
        Persona.LATE: late,
        Persona.PARTIAL: partial,
        Persona.EARLY: early,
        Persona.ON_TIME: 1.0 - late - partial - early,
    }


def draw_behaviour(rng: random.Random, loan: Loan, *, stress: Decimal = Decimal(1)) -> Behaviour:
    """The borrower's behaviour over this loan's life (see the module docstring)."""
    u = _Draws.of(rng)
    period = max(1, loan.period_days)
    onset = onset_day(u.default, u.onset, loan.pd, (loan.maturity - loan.booked_on).days, stress)
    if onset is not None:
        stops_on = loan.booked_on + timedelta(days=onset)
        recovery = (
            (round(100 + 400 * u.recovery_share), 10 + int(80 * u.recovery_after))
            if u.recovery <= 0.4
            else (0, 0)
        )
        # About a third come back, between three weeks and three months later.
        if u.cure <= 0.35:
            return Behaviour(
                Persona.CURE,
                stops_on=stops_on,
                resumes_on=stops_on + timedelta(days=21 + int(70 * u.cure_after)),
            )
        return Behaviour(
            Persona.DEFAULT,
            stops_on=stops_on,
            recovery_per_mille=recovery[0],
            recovery_after_days=recovery[1],
        )
    shares = persona_shares(loan.pd)
    persona, cumulative = Persona.ON_TIME, 0.0
    for candidate in (Persona.LATE, Persona.PARTIAL, Persona.EARLY):
        cumulative += shares[candidate]
        if u.persona <= cumulative:
            persona = candidate
            break
    if persona is Persona.LATE:
        # Weekly borrowers are late by days; monthly ones by one to four weeks,
        # and one in three by more than a month.
        if period < 28:
            lag = 1 + int(u.lag * (period - 1))
        elif u.long_lag <= 1 / 3:
            lag = 31 + int(u.lag * 20)
        else:
            lag = 3 + int(u.lag * 25)
        return Behaviour(persona, lag_days=lag)
    if persona is Persona.PARTIAL:
        return Behaviour(
            persona,
            share_per_mille=400 + int(u.share * 500),
            catch_up_every=2 + int(u.catch_up * 4),
        )
    if persona is Persona.EARLY:
        span = (loan.maturity - loan.booked_on).days - 2 * period
        if span > 0:
            return Behaviour(
                persona,
                prepays_on=loan.booked_on + timedelta(days=period + int(u.prepay * span)),
            )
        return Behaviour(Persona.ON_TIME)
    return Behaviour(Persona.ON_TIME)


@dataclass(frozen=True, slots=True)
class Situation:
    """The loan as the borrower sees it on a day they might pay."""

    today: date
    due_dates: tuple[date, ...]
    fallen_due_minor: int  # unpaid of every instalment fallen due, today's included
    payoff_minor: int  # what settles the loan today


class PaymentKind(StrEnum):
    INSTALMENT = "instalment"  # everything that has fallen due
    PARTIAL = "partial"
    CURE = "cure"  # all arrears at once after a default
    PREPAYMENT = "prepayment"  # the whole loan settled early
    RECOVERY = "recovery"  # after a write-off


@dataclass(frozen=True, slots=True)
class Payment:
    kind: PaymentKind
    amount_minor: int


def suspended(behaviour: Behaviour, today: date) -> bool:
    """True on the days a defaulted borrower pays nothing."""
    if behaviour.stops_on is None or today < behaviour.stops_on:
        return False
    return behaviour.resumes_on is None or today < behaviour.resumes_on


def _pay_day_index(behaviour: Behaviour, today: date, due_dates: tuple[date, ...]) -> int | None:
    """The instalment whose pay day is today (due date + lag), if any."""
    target = today - timedelta(days=behaviour.lag_days)
    for index, due in enumerate(due_dates):
        if due == target:
            return index
        if due > target:
            return None
    return None


def acts_on(behaviour: Behaviour, today: date, due_dates: tuple[date, ...]) -> bool:
    """Whether the borrower may pay today: the cheap test before reading the
    loan. `payment` is never due on a day this is false."""
    if suspended(behaviour, today):
        return False
    return (
        today == behaviour.resumes_on
        or today == behaviour.prepays_on
        or _pay_day_index(behaviour, today, due_dates) is not None
    )


def payment(behaviour: Behaviour, situation: Situation) -> Payment | None:
    """What the borrower pays today, if anything: between 1 and the payoff."""
    today = situation.today
    if not acts_on(behaviour, today, situation.due_dates):
        return None
    kind: PaymentKind
    if today == behaviour.prepays_on:
        kind, amount = PaymentKind.PREPAYMENT, situation.payoff_minor
    elif today == behaviour.resumes_on:
        kind, amount = PaymentKind.CURE, situation.fallen_due_minor
    else:
        index = _pay_day_index(behaviour, today, situation.due_dates)
        catch_up = behaviour.catch_up_every > 0 and (
            index is not None and (index + 1) % behaviour.catch_up_every == 0
        )
        if behaviour.share_per_mille < PER_MILLE and not catch_up:
            kind = PaymentKind.PARTIAL
            amount = situation.fallen_due_minor * behaviour.share_per_mille // PER_MILLE
        else:
            kind, amount = PaymentKind.INSTALMENT, situation.fallen_due_minor
    amount = min(amount, situation.payoff_minor)
    if amount <= 0:
        return None
    return Payment(kind, amount)


def recovery(
    behaviour: Behaviour, written_off_on: date, today: date, written_off_minor: int
) -> Payment | None:
    """A recovery on a written-off loan: once, `recovery_after_days` after the
    write-off, a share of the balance written off."""
    if behaviour.recovery_per_mille <= 0 or written_off_minor <= 0:
        return None
    if today != written_off_on + timedelta(days=behaviour.recovery_after_days):
        return None
    amount = written_off_minor * behaviour.recovery_per_mille // PER_MILLE
    return Payment(PaymentKind.RECOVERY, amount) if amount > 0 else None
