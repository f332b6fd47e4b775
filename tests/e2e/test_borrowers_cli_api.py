"""Borrowers end to end: `lendcore borrower|watchlist|screening ...` and /v1/borrowers,
/v1/watch-lists, /v1/screening-hits on SQLite and PostgreSQL. Onboard, screen,
refer, clear with a second person; the national id only ever masked; bad input is
one clear error and writes nothing."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lendcore.api.app import create_app
from lendcore.services import identity
from lendcore.store.database import Database
from tests.e2e.test_api import expect, expect_problem
from tests.integration.audit_helpers import table_contents, text_values
from tests.integration.borrower_helpers import DEMO_LIST

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from lendcore.cli import app

STAFF = (
    ("olive", "loan_officer"),
    ("carl", "credit_approver"),
    ("rita", "risk_manager"),
)
NATIONAL_ID = "KE-3141 5926"

runner = CliRunner()


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def run_json(db_url: str, *args: str) -> Any:
    code, out, err = run(db_url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def staff(db_url: str) -> str:
    for name, role in STAFF:
        code, _out, err = run(db_url, "user", "create", name, "--role", role)
        assert code == 0, err
    return db_url


def test_cli_onboard_screen_refer_and_clear(staff: str) -> None:
    db = staff
    loaded = run_json(db, "--as", "rita", "watchlist", "load", str(DEMO_LIST), "--name", "demo")
    assert (loaded["outcome"], loaded["watch_list"]["entry_count"]) == ("loaded", 10)
    assert run_json(db, "watchlist", "list")["watch_lists"][0]["name"] == "demo"

    created = run_json(
        db, "--as", "olive", "borrower", "create", "--name", "Nadia Notreal",
        "--dob", "1993-12-12", "--currency", "KES", "--income", "85000.00",
        "--obligations", "12000.50", "--national-id", NATIONAL_ID,
        "--employment", "employed", "--employer", "Acme",
    )  # fmt: skip
    assert created["national_id_masked"] == "*****926"
    assert NATIONAL_ID not in json.dumps(created)
    assert (created["monthly_income"], created["monthly_obligations"], created["currency"]) == (
        "85000.00",
        "12000.50",
        "KES",
    )
    assert (created["kyc_status"], created["screening_status"]) == ("pending", "pending")
    borrower_id = str(created["id"])

    kyc = run_json(
        db, "--as", "olive", "borrower", "kyc", borrower_id, "--outcome", "verified",
        "--document-type", "passport", "--document-number", "A12345678",
        "--valid-until", "2030-01-01",
    )  # fmt: skip
    assert (kyc["outcome"], kyc["document_number_masked"], kyc["checked_by"]) == (
        "verified",
        "*****678",
        "olive",
    )

    [hit] = run_json(db, "--as", "olive", "screening", "hits")["hits"]
    assert (hit["entry"]["reference"], hit["score"], hit["dob_match"]) == (
        "SYN-0009",
        "100.00",
        "exact",
    )
    pending = run_json(
        db, "--as", "olive", "screening", "clear", str(hit["id"]), "--note", "another person"
    )
    assert (pending["command"], pending["status"]) == ("screening.resolve", "pending")
    code, out, err = run(db, "--as", "olive", "approval", "approve", str(pending["id"]))
    assert code != 0 and out == "" and err.startswith("error[PERMISSION_DENIED]: ")
    run_json(db, "--as", "carl", "approval", "approve", str(pending["id"]))

    shown = run_json(db, "--as", "carl", "borrower", "show", borrower_id)
    assert (shown["kyc_status"], shown["screening_status"]) == ("verified", "clear")
    assert [h["status"] for h in shown["screening_hits"]] == ["cleared"]
    listed = run_json(db, "borrower", "list", "--screening", "clear")["borrowers"]
    assert [b["id"] for b in listed] == [created["id"]]

    updated = run_json(db, "--as", "olive", "borrower", "update", borrower_id, "--income", "90000")
    assert updated["monthly_income"] == "90000.00"
    grouped = run_json(db, "--as", "olive", "borrower", "group", borrower_id, "Notreal family")
    assert grouped["group"]["name"] == "Notreal family"
    assert run_json(db, "--as", "rita", "borrower", "screen", "--all")["borrowers_screened"] == 1

    # Tables for people, the national id masked there too.
    code, out, _err = run(db, "borrower", "show", borrower_id)
    assert code == 0 and "*****926" in out and "3141" not in out
    code, out, _err = run(db, "borrower", "list")
    assert code == 0 and "Nadia" in out


def test_cli_bad_input_is_one_error_line_and_writes_nothing(staff: str, tmp_path: Path) -> None:
    db = staff
    no_name = tmp_path / "no-name.csv"
    no_name.write_text("full_name,country\nX,XX\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for args, error_code, mentions in (
        (["borrower", "show", "99"], "BORROWER_NOT_FOUND", "99"),
        (
            ["borrower", "create", "--name", "X", "--dob", "2999-01-01", "--currency", "USD"],
            "BORROWER_INVALID",
            "date_of_birth",
        ),
        (
            [
                "borrower",
                "create",
                "--name",
                "X",
                "--dob",
                "1990-01-01",
                "--currency",
                "USD",
                "--income",
                "1.005",
            ],
            "BORROWER_INVALID",
            "monthly_income",
        ),
        (["watchlist", "load", str(no_name), "--name", "x"], "WATCH_LIST_INVALID", "'name'"),
        (["watchlist", "load", str(empty), "--name", "x"], "WATCH_LIST_INVALID", "empty.csv"),
        (
            ["watchlist", "load", str(tmp_path / "missing.csv"), "--name", "x"],
            "WATCH_LIST_INVALID",
            "missing.csv",
        ),
        (
            [
                "--as",
                "carl",
                "borrower",
                "create",
                "--name",
                "X",
                "--dob",
                "1990-01-01",
                "--currency",
                "USD",
            ],
            "PERMISSION_DENIED",
            "borrower.change",
        ),
    ):
        code, out, err = run(db, *args)
        assert code != 0, args
        assert out == "", args
        assert err.startswith(f"error[{error_code}]: "), (args, err)
        assert mentions in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert run_json(db, "borrower", "list") == {"borrowers": []}
    assert run_json(db, "watchlist", "list") == {"watch_lists": []}


# --- the HTTP API ------------------------------------------------------------------------


@pytest.fixture
def client(db: Database) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Database]]:
    keys: dict[str, dict[str, str]] = {}
    for name, role in STAFF:
        identity.create_user(db, name, [role])
        keys[name] = {"X-API-Key": identity.create_api_key(db, name, label="e2e").token}
    with TestClient(create_app(db)) as test_client:
        yield test_client, keys, db


BODY: dict[str, Any] = {
    "name": "Nadia Notreal",
    "date_of_birth": "1993-12-12",
    "currency": "USD",
    "monthly_income": "4200.00",
    "monthly_obligations": "350.00",
    "national_id": NATIONAL_ID,
    "employment": {"status": "employed", "employer": "Acme", "since": "2019-03-01"},
}


def test_api_onboard_refer_resolve_and_read(
    client: tuple[TestClient, dict[str, dict[str, str]], Database],
) -> None:
    http, keys, db = client
    loaded = expect(
        http.post(
            "/v1/watch-lists",
            json={"name": "demo", "csv": DEMO_LIST.read_text(), "source": "demo.csv"},
            headers=keys["rita"],
        ),
        201,
    )
    assert (loaded["outcome"], loaded["watch_list"]["version"]) == ("loaded", 1)

    headers = {**keys["olive"], "Idempotency-Key": "onboard-1"}
    created = expect(http.post("/v1/borrowers", json=BODY, headers=headers), 201)
    assert created["national_id_masked"] == "*****926"
    assert (created["monthly_income"], created["screening_status"]) == ("4200.00", "pending")
    retry = http.post("/v1/borrowers", json=BODY, headers=headers)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == created["id"]
    expect_problem(
        http.post("/v1/borrowers", json={**BODY, "name": "Other"}, headers=headers),
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    expect_problem(
        http.post("/v1/borrowers", json={**BODY, "name": "Other"}, headers=keys["olive"]),
        409,
        "BORROWER_DUPLICATE",
    )
    # The national id is nowhere in clear: not in the database, not in any response.
    assert [v for v in text_values(db) if "3141" in v[2]] == []

    check = expect(
        http.post(
            f"/v1/borrowers/{created['id']}/kyc-checks",
            json={
                "outcome": "verified",
                "document_type": "national_id_card",
                "document_number": "KE31415926",
                "valid_until": "2031-01-01",
            },
            headers=keys["olive"],
        ),
        201,
    )
    assert check["document_number_masked"] == "*****926"

    hits = expect(
        http.get("/v1/screening-hits", params={"status": "pending"}, headers=keys["carl"]), 200
    )
    [hit] = hits["items"]
    approval = expect(
        http.post(
            f"/v1/screening-hits/{hit['id']}/resolution",
            json={"decision": "confirm", "note": "same person and date of birth"},
            headers=keys["carl"],
        ),
        202,
    )
    expect_problem(
        http.post(f"/v1/approvals/{approval['id']}/approve", json={}, headers=keys["carl"]),
        403,
        "MAKER_CANNOT_APPROVE",
    )
    expect(http.post(f"/v1/approvals/{approval['id']}/approve", json={}, headers=keys["rita"]), 200)

    shown = expect(http.get(f"/v1/borrowers/{created['id']}", headers=keys["carl"]), 200)
    assert (shown["kyc_status"], shown["screening_status"]) == ("verified", "hit")
    assert shown["employment"] == {"status": "employed", "employer": "Acme", "since": "2019-03-01"}
    assert [(h["status"], h["resolved_by"], h["approved_by"]) for h in shown["screening_hits"]] == [
        ("confirmed", "carl", "rita")
    ]
    page = expect(
        http.get("/v1/borrowers", params={"screening_status": "hit"}, headers=keys["carl"]), 200
    )
    assert [b["id"] for b in page["items"]] == [created["id"]]
    assert NATIONAL_ID not in json.dumps([created, shown, page])


def test_api_bad_input_is_a_problem_and_writes_nothing(
    client: tuple[TestClient, dict[str, dict[str, str]], Database],
) -> None:
    http, keys, db = client
    before = table_contents(db, skip=("audit_log", "audit_chain_head", "idempotency_records"))
    expect_problem(http.get("/v1/borrowers/42", headers=keys["olive"]), 404, "BORROWER_NOT_FOUND")
    future = expect_problem(
        http.post(
            "/v1/borrowers", json={**BODY, "date_of_birth": "2999-01-01"}, headers=keys["olive"]
        ),
        422,
        "BORROWER_INVALID",
    )
    assert "date_of_birth" in future["detail"]
    bad_csv = expect_problem(
        http.post(
            "/v1/watch-lists",
            json={"name": "x", "csv": "who,country\nA,XX\n", "source": "bad.csv"},
            headers=keys["rita"],
        ),
        422,
        "WATCH_LIST_INVALID",
    )
    assert "bad.csv" in bad_csv["detail"] and "'name'" in bad_csv["detail"]
    expect_problem(
        http.post("/v1/watch-lists", json={"name": "x", "csv": ""}, headers=keys["rita"]),
        422,
        "WATCH_LIST_INVALID",
    )
    expect_problem(
        http.post("/v1/borrowers", json=BODY, headers=keys["carl"]), 403, "PERMISSION_DENIED"
    )
    expect_problem(
        http.post(
            "/v1/screening-hits/9/resolution",
            json={"decision": "clear", "note": "x"},
            headers=keys["olive"],
        ),
        404,
        "SCREENING_HIT_NOT_FOUND",
    )
    assert (
        table_contents(db, skip=("audit_log", "audit_chain_head", "idempotency_records")) == before
    )
