"""Models for tests: a small LightGBM challenger trained on the bundled sample, and
populations of applications entered through the real service (drawn from the
sample, or shifted away from it)."""

from __future__ import annotations

import random
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from lendcore.risk.datasets import GMSC_ID, GMSC_TARGET, Table, read_table
from lendcore.risk.model import CANONICAL_FEATURES
from lendcore.risk.train import TrainConfig, columns_as_arrays, fit_challenger
from lendcore.services import applications, approvals, lender, models
from lendcore.services.business_date import business_date
from lendcore.services.lender import Staff

SAMPLE = Path(__file__).parents[1] / "data" / "gmsc_sample.csv.gz"
CHALLENGER_ROWS = 6_000
# One borrower per age: an application's age comes from its borrower's date of birth.
AGES = (24, 29, 34, 39, 44, 49, 54, 59, 64, 69)
# The credit profile: the characteristics an application does not state itself.
PROFILE_FIELDS = tuple(
    f for f in CANONICAL_FEATURES if f not in ("age_years", "monthly_income", "debt_ratio")
)


@cache
def sample_table() -> Table:
    return read_table(SAMPLE, target=GMSC_TARGET, id_column=GMSC_ID)


@cache
def small_challenger() -> dict[str, Any]:
    """A LightGBM challenger on the sample's first rows (40 rounds: about a second)."""
    table = sample_table()
    x = {k: v[:CHALLENGER_ROWS] for k, v in columns_as_arrays(table).items()}
    y = np.asarray(table.target, dtype=int)[:CHALLENGER_ROWS]
    return fit_challenger(
        x, y, list(table.columns), table.categorical, TrainConfig(name="test", lgbm_rounds=40)
    )


def adopt_challenger(staff: Staff) -> str:
    """Register the small challenger and make it the challenger (maker and checker)."""
    registered = models.register_model(staff.risk, models.ArtifactDocument(small_challenger()))
    pending = models.activate_model(staff.risk, registered.version, "challenger")
    approvals.approve(staff.risk_checker, pending.id)
    return registered.version


def borrowers_by_age(staff: Staff, currency: str = "USD") -> dict[int, int]:
    """One verified borrower per age in AGES (as of the business date)."""
    today = business_date(staff.loan_officer)
    return {
        age: lender.onboard(
            staff,
            f"Applicant aged {age}",
            currency,
            date_of_birth=date(today.year - age - 1, 1, 1),
        )
        for age in AGES
    }


def sample_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` rows of the sample, drawn without replacement (seeded), as features."""
    rows = list(sample_table().rows())
    return random.Random(seed).sample(rows, n)


def shifted_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` rows of the sample whose utilisation and late payments are pushed up:
    a population that has moved away from the one the models were trained on."""
    rng = random.Random(seed)
    return [
        {
            **row,
            "revolving_utilization": round(rng.uniform(0.9, 1.4), 3),
            "times_30_59_days_late": float(rng.randint(1, 4)),
            "times_90_days_late": float(rng.randint(0, 2)),
        }
        for row in sample_rows(n, seed)
    ]


def submit_rows(
    staff: Staff, borrowers: dict[int, int], rows: list[dict[str, Any]], product: str
) -> list[applications.Application]:
    """Each row entered as an application by the loan officer and decided by the engine:
    age from the nearest borrower's, income and debt ratio as the application's."""
    entered = []
    for row in rows:
        age = row.get("age_years") or 40
        borrower = borrowers[min(AGES, key=lambda a: abs(a - age))]
        income = row.get("monthly_income") or 0.0
        ratio = row.get("debt_ratio") or 0.0
        obligations = round(min(ratio, 5.0) * income, 2)
        entered.append(
            applications.submit_application(
                staff.loan_officer,
                borrower,
                product,
                "4000.00",
                12,
                purpose="Household purchase",
                monthly_income=f"{income:.2f}",
                monthly_obligations=f"{obligations:.2f}",
                credit_profile={f: row.get(f) for f in PROFILE_FIELDS},
            )
        )
    return entered
