"""Loans end to end: `lendcore loan ...` and /v1/loans, on SQLite and PostgreSQL.
Book, disburse, repay (late, backdated), reverse, write off with a second
person; bad input is one clear error and writes nothing."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lendcore.api.app import create_app
from lendcore.cli import app
from lendcore.services import identity
from lendcore.services import lender as lender_service
from lendcore.store.database import Database, open_database
from tests.integration.loan_helpers import open_lender

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()
PROBLEM_JSON = "application/problem+json"


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def run_json(db_url: str, *args: str) -> Any:
    code, out, err = run(db_url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


PROFILE = json.dumps(dict(lender_service.GOOD_PROFILE))


@pytest.fixture
def lender_url(db_url: str) -> tuple[str, int]:
    db = open_database(db_url)
    try:
        lender = open_lender(db)
        for name, role in (
            ("sam", "servicing"),
            ("cara", "credit_approver"),
            ("otto", "loan_officer"),
        ):
            identity.create_user(db, name, [role])
        borrower = lender_service.onboard(lender.staff, "Ada Lovelace", "USD")
    finally:
        db.engine.dispose()
    return db_url, borrower


def test_cli_loan_life(lender_url: tuple[str, int]) -> None:
    db, borrower = lender_url
    application = run_json(
        db,
        "--as",
        "otto",
        "application",
        "submit",
        "--borrower",
        str(borrower),
        "--product",
        "consumer-annuity",
        "--amount",
        "10000.00",
        "--term",
        "12",
        "--purpose",
        "Car",
        "--income",
        "6000.00",
        "--profile",
        PROFILE,
    )
    assert (application["status"], application["entered_by"]) == ("approved", "otto")
    # Servicing books it; nobody books without an approved application.
    code, out, err = run(db, "--as", "otto", "application", "book", str(application["id"]))
    assert code != 0 and err.startswith("error[PERMISSION_DENIED]")
    loan = run_json(db, "--as", "sam", "application", "book", str(application["id"]))
    assert (loan["status"], loan["approved"], loan["currency"]) == ("approved", "10000.00", "USD")
    replay = run_json(db, "--as", "cara", "decision", "replay", str(application["decision_id"]))
    assert replay["reproduced"] is True
    loan_id = str(loan["id"])
    loan = run_json(db, "--as", "sam", "loan", "disburse", loan_id)
    assert loan["status"] == "active"
    assert loan["ledger"]["positions"] == loan["ledger"]["posted"]
    first = loan["instalments"][0]
    code, _out, err = run(db, "date", "set", first["due_date"])
    assert code == 0, err
    paid = run_json(
        db,
        "--as",
        "sam",
        "loan",
        "repay",
        loan_id,
        "--amount",
        first["total"],
        "--currency",
        "USD",
        "--key",
        "pay-1",
    )
    assert paid["instalments"][0]["status"] == "paid"
    # A retry with the same key records nothing new.
    again = run_json(
        db,
        "--as",
        "sam",
        "loan",
        "repay",
        loan_id,
        "--amount",
        first["total"],
        "--currency",
        "USD",
        "--key",
        "pay-1",
    )
    assert len(again["history"]) == len(paid["history"]) == 2
    # The loan officer may read, not take money.
    code, out, err = run(
        db, "--as", "otto", "loan", "repay", loan_id, "--amount", "1.00", "--currency", "USD"
    )
    assert code != 0 and out == "" and err.startswith("error[PERMISSION_DENIED]")
    shown = run_json(db, "--as", "otto", "loan", "show", loan_id)
    assert shown["balances"]["principal_outstanding"] == paid["balances"]["principal_outstanding"]
    # Bad input: another currency; one line on stderr, nothing written.
    code, out, err = run(
        db, "--as", "sam", "loan", "repay", loan_id, "--amount", "5.00", "--currency", "EUR"
    )
    assert code != 0 and out == "" and err.startswith("error[CURRENCY_MISMATCH]")
    assert len(run_json(db, "loan", "show", loan_id)["history"]) == 2
    # Reverse the repayment: the instalment is due again.
    reversed_ = run_json(
        db, "--as", "sam", "loan", "reverse", loan_id, "--seq", "2", "--reason", "bounced"
    )
    assert reversed_["instalments"][0]["status"] == "due"
    # Write-off: the maker asks, a credit approver decides.
    pending = run_json(db, "--as", "sam", "loan", "write-off", loan_id, "--reason", "fraud")
    code, _out, err = run(db, "--as", "sam", "approval", "approve", str(pending["id"]))
    assert code != 0 and err.startswith("error[PERMISSION_DENIED]")
    run_json(db, "--as", "cara", "approval", "approve", str(pending["id"]))
    assert run_json(db, "loan", "show", loan_id)["status"] == "written-off"
    listed = run_json(db, "loan", "list", "--status", "written-off")["loans"]
    assert [item["id"] for item in listed] == [int(loan_id)]
    code, out, _err = run(db, "loan", "show", loan_id)
    assert code == 0 and "Schedule" in out and "History" in out


@pytest.fixture
def client(db: Database) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    lender = open_lender(db)
    keys = {"borrower": {"id": str(lender_service.onboard(lender.staff, "Ada Lovelace", "USD"))}}
    for name, role in (("sam", "servicing"), ("cara", "credit_approver"), ("otto", "loan_officer")):
        identity.create_user(db, name, [role])
        keys[name] = {"X-API-Key": identity.create_api_key(db, name, label="e2e").token}
    with TestClient(create_app(db)) as test_client:
        yield test_client, keys


def expect(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_api_loan_life(client: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    http, keys = client
    sam = keys["sam"]
    body = {
        "borrower_id": int(keys["borrower"]["id"]),
        "product": "consumer-annuity",
        "amount": "5000.00",
        "term": 6,
        "purpose": "Car",
        "monthly_income": "6000.00",
        "credit_profile": dict(lender_service.GOOD_PROFILE),
    }
    application = expect(http.post("/v1/applications", json=body, headers=keys["otto"]), 201)
    assert application["status"] == "approved"
    booking = f"/v1/applications/{application['id']}/booking"
    loan = expect(http.post(booking, headers={**sam, "Idempotency-Key": "book-1"}), 201)
    again = expect(http.post(booking, headers={**sam, "Idempotency-Key": "book-1"}), 201)
    assert again["id"] == loan["id"]
    twice = http.post(booking, headers=sam)
    assert twice.status_code == 409 and twice.json()["code"] == "BOOKING_REFUSED"
    loan_id = loan["id"]
    loan = expect(http.post(f"/v1/loans/{loan_id}/disbursements", json={}, headers=sam), 201)
    assert loan["balances"]["disbursed"] == "5000.00"
    paid = expect(
        http.post(
            f"/v1/loans/{loan_id}/repayments",
            json={"amount": "100.00", "currency": "USD"},
            headers=sam,
        ),
        201,
    )
    assert paid["allocations"][0]["principal"] == "100.00"
    assert paid["ledger"]["positions"] == paid["ledger"]["posted"]
    # Bad input is a problem document naming the code; nothing is written.
    bad = http.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "1.00", "currency": "KES"}, headers=sam
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM_JSON
    assert bad.json()["code"] == "CURRENCY_MISMATCH"
    zero = http.post(
        f"/v1/loans/{loan_id}/repayments", json={"amount": "0.00", "currency": "USD"}, headers=sam
    )
    assert zero.status_code == 422
    too_much = http.post(f"/v1/loans/{loan_id}/disbursements", json={"amount": "1.00"}, headers=sam)
    assert (
        too_much.status_code == 409 and too_much.json()["code"] == "DISBURSEMENT_EXCEEDS_APPROVED"
    )
    shown = expect(http.get(f"/v1/loans/{loan_id}", headers=keys["otto"]), 200)
    assert len(shown["history"]) == 2
    refused = http.post(
        f"/v1/loans/{loan_id}/repayments",
        json={"amount": "1.00", "currency": "USD"},
        headers=keys["otto"],
    )
    assert refused.status_code == 403
    pending = expect(
        http.post(
            f"/v1/loans/{loan_id}/waivers",
            json={"component": "interest", "amount": "1.00"},
            headers=sam,
        ),
        202,
    )
    assert pending["command"] == "loan.waive"
    page = expect(http.get("/v1/loans", headers=keys["otto"]), 200)
    assert [item["id"] for item in page["items"]] == [loan_id]
    assert http.get("/v1/loans/999", headers=sam).status_code == 404
