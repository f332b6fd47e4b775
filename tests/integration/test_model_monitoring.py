"""Monitoring on real databases: the applications the engine decided in a window of
business dates against the training population held in the model's artifact.

Applications are entered through the real service. The first population is drawn
from the sample the models' data set ships (Give Me Some Credit); 120 days later
a second one has utilisation and late payments pushed up, which must raise the
warning (PSI above 0.25) for the score and for the characteristics that moved.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from lendcore.errors import InvalidInput
from lendcore.risk.errors import ModelNotFound, NoActiveModel
from lendcore.risk.model import load_model
from lendcore.risk.monitoring import PSI_WARNING
from lendcore.services import identity, models
from lendcore.services.business_date import advance_business_date, business_date
from lendcore.services.lender import DEMO_MODEL
from lendcore.services.models import NoRecentApplications
from lendcore.store.database import Database
from tests.integration.audit_helpers import table_contents
from tests.integration.loan_helpers import Lender, open_lender
from tests.integration.model_helpers import (
    adopt_challenger,
    borrowers_by_age,
    sample_rows,
    shifted_rows,
    submit_rows,
)

PRODUCT = "consumer-annuity"
USUAL = 80
SHIFTED = 40


@pytest.fixture
def bank(db: Database) -> Lender:
    return open_lender(db)


def by_quantity(report: models.MonitoringReport) -> dict[str, float]:
    return {r.quantity: r.psi for r in report.rows}


def test_a_shifted_population_raises_the_warning_and_the_usual_one_does_not(
    bank: Lender,
) -> None:
    staff = bank.staff
    challenger = adopt_challenger(staff)
    borrowers = borrowers_by_age(staff)
    first_day = business_date(staff.risk)
    submit_rows(staff, borrowers, sample_rows(USUAL, seed=11), PRODUCT)
    advance_business_date(staff.servicing, 120)
    submit_rows(staff, borrowers, shifted_rows(SHIFTED, seed=12), PRODUCT)
    today = business_date(staff.risk)

    # The default window: the last 90 business dates, the shifted population only.
    recent = models.monitor_model(staff.risk)
    assert (recent.date_from, recent.date_to) == (today - timedelta(days=89), today)
    assert (recent.applications, recent.truncated, recent.roles) == (SHIFTED, False, ("champion",))
    assert recent.version == load_model(DEMO_MODEL).version
    psi = by_quantity(recent)
    assert psi["score"] > PSI_WARNING
    assert psi["revolving_utilization"] > PSI_WARNING
    assert {"score", "revolving_utilization"} <= {r.quantity for r in recent.warnings}
    # What did not move stays below the warning: these came from the sample as they were.
    # (Income did not move either, but an application always states one: the training
    # population's missing-income bin stays empty, which monitoring rightly reports.)
    assert psi["real_estate_loans"] < PSI_WARNING and psi["dependents"] < PSI_WARNING
    for row in recent.rows:
        assert abs(sum(row.actual) - 1) < 1e-9 and abs(sum(row.expected) - 1) < 1e-3
        assert row.status == ("warning" if row.psi > PSI_WARNING else row.status)

    # The first day alone: drawn from the training population, nothing shifted.
    usual = models.monitor_model(staff.risk, date_from=first_day, date_to=first_day)
    assert usual.applications == USUAL
    psi_usual = by_quantity(usual)
    assert psi_usual["score"] < PSI_WARNING
    # 80 applications over a characteristic's dozen bins: sampling alone gives a PSI
    # about bins / applications, so the usual population is compared with the shift.
    for moved in ("revolving_utilization", "times_30_59_days_late", "times_90_days_late"):
        assert psi[moved] > 5 * psi_usual[moved], moved
    assert "times_30_59_days_late" not in {r.quantity for r in usual.warnings}
    # Both populations together: a window of days, the shift diluted but seen.
    both = models.monitor_model(staff.risk, days=121)
    assert both.applications == USUAL + SHIFTED
    assert psi_usual["revolving_utilization"] < by_quantity(both)["revolving_utilization"]

    # The challenger is monitored on the same applications, against its own training.
    shadow = models.monitor_model(staff.risk, role="challenger")
    assert (shadow.version, shadow.kind, shadow.applications) == (challenger, "lightgbm", SHIFTED)
    assert "revolving_utilization" in {r.quantity for r in shadow.warnings}
    auditor = bank.operator.acting_as(
        identity.create_user(bank.operator, "ava", ["auditor"]).actor()
    )
    by_version = models.monitor_model(auditor, version=challenger, days=90)
    assert by_quantity(by_version) == by_quantity(shadow)


def test_an_empty_or_bad_window_is_a_clear_error_and_writes_nothing(
    bank: Lender, db: Database
) -> None:
    risk = bank.staff.risk
    before = table_contents(db)
    with pytest.raises(NoRecentApplications) as empty:
        models.monitor_model(risk)
    assert empty.value.code == "MODEL_MONITOR_NO_APPLICATIONS"
    today = business_date(risk)
    with pytest.raises(InvalidInput):
        models.monitor_model(risk, date_from=today + timedelta(days=1), date_to=today)
    with pytest.raises(InvalidInput):
        models.monitor_model(risk, date_from=today, days=30)
    with pytest.raises(InvalidInput):
        models.monitor_model(risk, days=0)
    with pytest.raises(NoActiveModel):
        models.monitor_model(risk, role="challenger")
    with pytest.raises(ModelNotFound):
        models.monitor_model(risk, version="0" * 64)
    assert table_contents(db) == before
