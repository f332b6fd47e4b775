"""`lendcore schedule preview` and POST /v1/schedules/preview, end to end.

Both go through the same service (permission gate, audit of refusals) and
print the same document, built in one place (presentation.schedule_doc).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lendcore.cli import app
from lendcore.services import audit, identity
from lendcore.store.database import Database, open_database

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from lendcore.api.app import create_app

runner = CliRunner()
EXAMPLE = Path(__file__).parents[2] / "src/lendcore/products/examples/consumer-annuity.yaml"
# The issue's example: 10,000.00 at 12 % over 12 months on 30/360 is 1 % a
# month and an annuity of 888.49. The example product's US calendar would
# move 2026-02-15 (a Sunday, then Presidents' Day) to the 17th, so the
# calendar is switched off to get the textbook dates.
ISSUE_ARGS = [
    "--principal",
    "10000",
    "--annual-rate",
    "0.12",
    "--term",
    "12",
    "--frequency",
    "monthly",
    "--start",
    "2026-01-15",
    "--day-count",
    "30/360",
]
FIRST = {
    "number": 1,
    "due_date": "2026-02-15",
    "principal": "788.49",
    "interest": "100.00",
    "fees": "0.00",
    "total": "888.49",
    "outstanding": "9211.51",
}


@pytest.fixture
def url(sqlite_url: str) -> str:
    """A database with a loan officer and an admin (and so no bootstrap admin,
    whose password hash would slow every test)."""
    database = open_database(sqlite_url)
    try:
        identity.create_user(database, "lo", ["loan_officer"])
        identity.create_user(database, "root", ["admin"])
    finally:
        database.dispose()
    return sqlite_url


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def preview_json(db_url: str, *args: str) -> dict[str, Any]:
    code, out, err = run(db_url, "schedule", "preview", *args, "--json")
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


# --- the command line ---------------------------------------------------------------


def test_issue_example_as_json(url: str) -> None:
    document = preview_json(url, *ISSUE_ARGS, "--calendar", "none")
    assert list(document) == ["currency", "instalments", "totals"]
    assert document["currency"] == "USD"
    assert document["instalments"][0] == FIRST
    assert len(document["instalments"]) == 12
    assert [i["number"] for i in document["instalments"]] == list(range(1, 13))
    assert [i["due_date"] for i in document["instalments"]][-1] == "2027-01-15"
    assert {i["total"] for i in document["instalments"][:-1]} == {"888.49"}
    last = document["instalments"][-1]
    assert last["outstanding"] == "0.00"
    assert list(document["totals"]) == ["principal", "interest", "fees", "total"]
    assert document["totals"]["principal"] == "10000.00"
    cents = sum(int(i["interest"].replace(".", "")) for i in document["instalments"])
    assert document["totals"]["interest"] == f"{cents // 100}.{cents % 100:02d}"
    assert document["totals"]["fees"] == "0.00"
    assert int(document["totals"]["total"].replace(".", "")) == 1_000_000 + cents
    # Eleven instalments of 888.49 and a last one a cent or two under it.
    assert 88_840 < int(last["total"].replace(".", "")) <= 88_849


def test_the_products_calendar_moves_a_due_date_off_a_holiday(url: str) -> None:
    # Same terms on the example product's own US calendar (following).
    first = preview_json(url, *ISSUE_ARGS)["instalments"][0]
    assert first["due_date"] == "2026-02-17"  # Sunday the 15th, Presidents' Day the 16th
    assert first["interest"] == "106.67"  # 32 days of 30/360 to the adjusted date
    assert first["total"] == "888.49"


def test_defaults_come_from_the_product_and_the_business_date(url: str) -> None:
    code, out, err = run(url, "date", "show", "--json")
    assert code == 0, err
    today = json.loads(out)["business_date"]
    document = preview_json(url, "--principal", "5000")
    # consumer-annuity: 36 monthly instalments at 12.99 % on ACT/365F.
    assert len(document["instalments"]) == 36
    assert document["totals"]["principal"] == "5000.00"
    assert document["instalments"][0]["due_date"] > today


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (
            ["--amortization", "equal-principal"],
            lambda d: d["instalments"][0]["principal"] == "833.33",
        ),
        (
            ["--amortization", "interest-only"],
            lambda d: d["instalments"][-1]["principal"] == "10000.00",
        ),
        (["--amortization", "bullet"], lambda d: len(d["instalments"]) == 1),
        (["--method", "flat"], lambda d: d["totals"]["interest"] == "1200.00"),
        (["--grace-principal", "3"], lambda d: d["instalments"][2]["principal"] == "0.00"),
        (["--grace-interest", "2"], lambda d: d["instalments"][1]["interest"] == "0.00"),
        (["--instalment-multiple", "1"], lambda d: d["instalments"][0]["total"] == "888.00"),
        (
            ["--rounding", "up", "--instalment-multiple", "1"],
            lambda d: d["instalments"][0]["total"] == "889.00",
        ),
        (
            ["--frequency", "quarterly", "--term", "4"],
            lambda d: d["instalments"][1]["due_date"] == "2026-07-15",
        ),
        (
            ["--first-repayment", "2026-03-01"],
            lambda d: d["instalments"][0]["due_date"] == "2026-03-01",
        ),
        (
            ["--currency", "JPY", "--principal", "1000000"],
            lambda d: d["currency"] == "JPY" and d["instalments"][0]["interest"] == "10000",
        ),
        (["--day-count", "act/360"], lambda d: d["instalments"][0]["interest"] == "103.33"),
    ],
)
def test_each_option_overrides_the_product(url: str, args: list[str], check: Any) -> None:
    document = preview_json(url, *ISSUE_ARGS, "--calendar", "none", *args)
    assert check(document), document["instalments"][:2]


def test_a_product_file(url: str, tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("calendar: US", "calendar: none")
    path = tmp_path / "product.yaml"
    path.write_text(text)
    document = preview_json(url, *ISSUE_ARGS, "--product", str(path))
    assert document["instalments"][0] == FIRST


def test_table_output_notes_limits_left(url: str) -> None:
    code, out, err = run(
        url, "schedule", "preview", *ISSUE_ARGS, "--calendar", "none", "--term", "120"
    )
    assert code == 0, err
    assert "888.49" not in out or "Repayment schedule" in out
    assert "Repayment schedule, USD" in out
    assert "Outside the product's limits" in out
    assert "term outside the product's 6 to 84" in out
    code, out, err = run(url, "schedule", "preview", *ISSUE_ARGS, "--calendar", "none")
    assert code == 0, err
    assert "888.49" in out and "9211.51" in out
    assert "Outside" not in out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--day-count", "act/365"], "DAY_COUNT_UNKNOWN"),
        (["--grace-principal", "12"], "TERMS_INVALID"),
        (["--grace-interest", "13"], "TERMS_INVALID"),
        (["--calendar", "Atlantis"], "CALENDAR_UNKNOWN"),
        (["--principal", "10000.001"], "AMOUNT_TOO_PRECISE"),
        (["--principal", "ten"], "AMOUNT_INVALID"),
        (["--principal", "-5"], "TERMS_INVALID"),
        (["--annual-rate", "12%"], "TERMS_INVALID"),
        (["--annual-rate", "12"], "TERMS_INVALID"),
        (["--frequency", "daily"], "TERMS_INVALID"),
        (["--method", "simple"], "TERMS_INVALID"),
        (["--amortization", "balloon"], "TERMS_INVALID"),
        (["--rounding", "bankers"], "INVALID_INPUT"),
        (["--currency", "XYZ"], "CURRENCY_UNKNOWN"),
        (["--start", "2026-02-30"], "DATE_INVALID"),
        (["--first-repayment", "2026-01-10"], "TERMS_INVALID"),
        (["--amortization", "bullet", "--grace-principal", "2"], "TERMS_INVALID"),
        (["--product", "/nonexistent/product.yaml"], "INVALID_INPUT"),
    ],
)
def test_bad_input_is_one_error_line(url: str, args: list[str], code: str) -> None:
    exit_code, out, err = run(url, "schedule", "preview", *ISSUE_ARGS, *args, "--json")
    assert exit_code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error[{code}]: "), err


def test_principal_is_required(url: str) -> None:
    exit_code, out, err = run(url, "schedule", "preview", "--json")
    assert exit_code != 0 and out == ""
    assert err.strip().startswith("error[INVALID_INPUT]: give the amount financed")


def test_a_role_without_the_permission_is_refused_and_audited(url: str) -> None:
    code, out, err = run(url, "--as", "root", "schedule", "preview", *ISSUE_ARGS, "--json")
    assert code != 0 and out == ""
    assert err.startswith("error[PERMISSION_DENIED]")
    code, out, err = run(url, "--as", "lo", "schedule", "preview", *ISSUE_ARGS, "--json")
    assert code == 0, err
    database = open_database(url)
    try:
        refused = audit.list_audit(database, command_name="schedule.preview")
    finally:
        database.dispose()
    # Reads are checked but only refusals are logged.
    assert [(r.actor, r.outcome, r.error_code) for r in refused] == [
        ("root", "refused", "PERMISSION_DENIED")
    ]


# --- the HTTP API ---------------------------------------------------------------------


@pytest.fixture
def client(db: Database) -> tuple[TestClient, dict[str, str]]:
    identity.create_user(db, "officer", ["loan_officer"])
    identity.create_user(db, "root", ["admin"])
    keys = {
        name: identity.create_api_key(db, name, label="e2e").token for name in ("officer", "root")
    }
    return TestClient(create_app(db)), keys


API_BODY = {
    "principal": "10000",
    "annual_rate": "0.12",
    "term": 12,
    "frequency": "monthly",
    "start": "2026-01-15",
    "day_count": "30/360",
    "calendar": "none",
}


def test_api_preview_matches_the_cli(client: tuple[TestClient, dict[str, str]], url: str) -> None:
    http, keys = client
    response = http.post(
        "/v1/schedules/preview", json=API_BODY, headers={"X-API-Key": keys["officer"]}
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["instalments"][0] == FIRST
    assert document == preview_json(url, *ISSUE_ARGS, "--calendar", "none")


def test_api_preview_with_an_inline_product(client: tuple[TestClient, dict[str, str]]) -> None:
    import yaml

    http, keys = client
    product = yaml.safe_load(EXAMPLE.read_text())
    product["interest"]["method"] = "flat"
    body = {**API_BODY, "product": product}
    response = http.post("/v1/schedules/preview", json=body, headers={"X-API-Key": keys["officer"]})
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["interest"] == "1200.00"
    product["interest"]["day_count"] = "act/365"
    response = http.post(
        "/v1/schedules/preview",
        json={**API_BODY, "product": product},
        headers={"X-API-Key": keys["officer"]},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "PRODUCT_INVALID"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"day_count": "act/365"}, 422, "DAY_COUNT_UNKNOWN"),
        ({"grace_principal": 12}, 422, "TERMS_INVALID"),
        ({"calendar": "Atlantis"}, 422, "CALENDAR_UNKNOWN"),
        ({"principal": "10000.001"}, 422, "AMOUNT_TOO_PRECISE"),
        ({"principal": 10000}, 422, "INVALID_INPUT"),  # amounts are strings, never numbers
        ({"annual_rate": 0.12}, 422, "INVALID_INPUT"),
        ({"start": "15/01/2026"}, 422, "INVALID_INPUT"),
        ({"surprise": True}, 422, "INVALID_INPUT"),
    ],
)
def test_api_bad_input(
    client: tuple[TestClient, dict[str, str]], changes: dict[str, Any], status: int, code: str
) -> None:
    http, keys = client
    response = http.post(
        "/v1/schedules/preview",
        json={**API_BODY, **changes},
        headers={"X-API-Key": keys["officer"]},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_api_permission_and_authentication(client: tuple[TestClient, dict[str, str]]) -> None:
    http, keys = client
    response = http.post(
        "/v1/schedules/preview", json=API_BODY, headers={"X-API-Key": keys["root"]}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "PERMISSION_DENIED"
    assert http.post("/v1/schedules/preview", json=API_BODY).status_code == 401
