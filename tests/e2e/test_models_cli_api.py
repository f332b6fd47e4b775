"""Models end to end: `lendcore model monitor` and GET /v1/models/monitoring over the
applications a lender decided, and the application read with champion and
challenger side by side (`lendcore application show`, GET /v1/applications/{id}),
on SQLite and PostgreSQL. The applications are entered through the real service
beforehand; a shifted population must raise the warning."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from typer.testing import CliRunner

from lendcore.api.app import create_app
from lendcore.cli import app
from lendcore.services import identity
from lendcore.services.business_date import advance_business_date
from lendcore.store.database import open_database
from tests.e2e.test_api import expect, expect_problem
from tests.integration.audit_helpers import table_contents
from tests.integration.loan_helpers import open_lender
from tests.integration.model_helpers import (
    adopt_challenger,
    borrowers_by_age,
    shifted_rows,
    submit_rows,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()
SHIFTED = 30
PEOPLE = (("rita", "risk_manager"), ("avery", "auditor"), ("otto", "loan_officer"))


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def run_json(db_url: str, *args: str) -> Any:
    code, out, err = run(db_url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def contents(db_url: str) -> Any:
    db = open_database(db_url)
    try:
        return table_contents(db)
    finally:
        db.dispose()


@pytest.fixture
def lender_url(db_url: str) -> dict[str, Any]:
    """A lender with a champion and a challenger, and a shifted population decided
    120 days after the lender opened; people to read it; their API keys."""
    db = open_database(db_url)
    try:
        lender = open_lender(db)
        challenger = adopt_challenger(lender.staff)
        borrowers = borrowers_by_age(lender.staff)
        opened = advance_business_date(lender.staff.servicing, 120)
        entered = submit_rows(
            lender.staff, borrowers, shifted_rows(SHIFTED, seed=5), "consumer-annuity"
        )
        keys = {}
        for name, role in PEOPLE:
            identity.create_user(db, name, [role])
            keys[name] = identity.create_api_key(db, name, label="e2e").token
    finally:
        db.dispose()
    return {
        "url": db_url,
        "challenger": challenger,
        "today": opened.isoformat(),
        "application": entered[0].id,
        "keys": keys,
    }


def test_cli_monitor_warns_on_the_shifted_population(lender_url: dict[str, Any]) -> None:
    db = lender_url["url"]
    report = run_json(db, "--as", "rita", "model", "monitor")
    assert report["applications"] == SHIFTED and report["truncated"] is False
    assert report["window"]["to"] == lender_url["today"]
    assert report["model"]["roles"] == ["champion"] and report["model"]["kind"] == "scorecard"
    assert report["thresholds"] == {"watch": 0.1, "warning": 0.25}
    rows = {r["quantity"]: r for r in report["rows"]}
    assert rows["score"]["status"] == "warning" and rows["score"]["psi"] > 0.25
    assert {"score", "revolving_utilization"} <= set(report["warnings"])
    assert set(report["warnings"]) == {q for q, r in rows.items() if r["status"] == "warning"}

    shadow = run_json(
        db, "--as", "avery", "model", "monitor", "--role", "challenger", "--days", "30"
    )
    assert (shadow["model"]["version"], shadow["applications"]) == (
        lender_url["challenger"],
        SHIFTED,
    )
    assert "revolving_utilization" in shadow["warnings"]

    # The table for people, and a non-zero exit for a scheduled run that must notice.
    code, out, err = run(db, "--as", "rita", "model", "monitor", "--fail-on-warning")
    assert code == 2, err
    assert "Population stability" in out and "revolving_utilization" in out
    assert "warning: score PSI" in out

    # Bad input: one line naming the problem, a non-zero exit, nothing written.
    before = contents(db)
    for args, error in (
        (("--from", "2001-01-01", "--to", "2001-03-31"), "MODEL_MONITOR_NO_APPLICATIONS"),
        (("--days", "0"), "INVALID_INPUT"),
        (("--from", "not-a-date"), "DATE_INVALID"),
        (("--data", "recent.csv"), "INVALID_INPUT"),
    ):
        code, out, err = run(db, "--as", "rita", "model", "monitor", *args)
        assert code == 1 and out == "" and err.startswith(f"error[{error}]"), (args, err)
    code, _out, err = run(db, "--as", "otto", "model", "monitor")
    assert code == 1 and err.startswith("error[PERMISSION_DENIED]"), err
    assert contents(db) == before


def test_cli_application_show_has_champion_and_challenger(lender_url: dict[str, Any]) -> None:
    db, application = lender_url["url"], str(lender_url["application"])
    shown = run_json(db, "--as", "otto", "application", "show", application)
    decision = run_json(db, "--as", "rita", "decision", "show", str(shown["decision_id"]))
    champion, challenger = shown["champion"], shown["challenger"]
    assert (champion["score"], champion["pd"], champion["version"]) == (
        decision["score"],
        decision["pd"],
        decision["model_version"],
    )
    assert (challenger["score"], challenger["pd"], challenger["version"]) == (
        decision["challenger"]["score"],
        decision["challenger"]["pd"],
        lender_url["challenger"],
    )
    assert challenger["reasons"] and set(challenger["reasons"][0]) == {
        "code",
        "text",
        "characteristic",
        "points_lost",
    }
    code, out, err = run(db, "--as", "otto", "application", "show", application)
    assert code == 0, err
    assert "Champion and challenger" in out and challenger["reasons"][0]["code"] in out


def test_api_monitoring_and_application_read(lender_url: dict[str, Any]) -> None:
    db = open_database(lender_url["url"])
    try:
        http = TestClient(create_app(db))
        keys = {n: {"X-API-Key": k} for n, k in lender_url["keys"].items()}
        report = expect(http.get("/v1/models/monitoring", headers=keys["avery"]), 200)
        assert report["applications"] == SHIFTED and "score" in report["warnings"]
        assert report["window"] == {
            "from": report["window"]["from"],
            "to": lender_url["today"],
        }
        shadow = expect(
            http.get(
                "/v1/models/monitoring",
                params={"version": lender_url["challenger"], "days": 10},
                headers=keys["rita"],
            ),
            200,
        )
        assert shadow["model"]["kind"] == "lightgbm" and shadow["applications"] == SHIFTED
        expect_problem(
            http.get(
                "/v1/models/monitoring",
                params={"from": "2001-01-01", "to": "2001-01-31"},
                headers=keys["rita"],
            ),
            404,
            "MODEL_MONITOR_NO_APPLICATIONS",
        )
        expect_problem(
            http.get("/v1/models/monitoring", headers=keys["otto"]), 403, "PERMISSION_DENIED"
        )
        got = expect(
            http.get(f"/v1/applications/{lender_url['application']}", headers=keys["otto"]), 200
        )
        assert got["champion"]["role"] == "champion" and got["challenger"]["role"] == "challenger"
        assert got["challenger"]["version"] == lender_url["challenger"]
        assert got["challenger"]["reasons"][0]["points_lost"] > 0
    finally:
        db.dispose()
