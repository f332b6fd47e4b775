"""Products end to end: `lendcore product ...` and /v1/products, on SQLite and
PostgreSQL. Load (maker), approve (checker), list, show, versions; unchanged
settings submit nothing; bad input is one clear error and writes nothing."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lendcore.api.app import create_app
from lendcore.products.model import load_product_text
from lendcore.services import identity
from lendcore.store.database import Database
from tests.e2e.test_api import expect, expect_problem

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from lendcore.cli import app

EXAMPLES = Path(__file__).parents[2] / "src" / "lendcore" / "products" / "examples"
ANNUITY = EXAMPLES / "consumer-annuity.yaml"
BULLET = EXAMPLES / "working-capital-bullet.yaml"
# Two risk managers (one loads, the other approves), an admin (may load, never
# approve) and a loan officer (reads).
STAFF = (
    ("rita", "risk_manager"),
    ("rob", "risk_manager"),
    ("adam", "admin"),
    ("lou", "loan_officer"),
)

runner = CliRunner()


# --- the command line --------------------------------------------------------------------


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


def changed_file(tmp_path: Path, rate: str) -> Path:
    document = yaml.safe_load(ANNUITY.read_text())
    document["interest"]["rate"]["default"] = rate
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_cli_load_approve_list_show_and_versions(staff: str, tmp_path: Path) -> None:
    db = staff
    submitted = run_json(db, "--as", "rita", "product", "load", str(ANNUITY))
    assert submitted["outcome"] == "submitted"
    approval = submitted["approval"]
    assert (approval["command"], approval["status"], approval["maker"]) == (
        "product.change",
        "pending",
        "rita",
    )
    # The maker cannot approve their own change: one line on stderr, non-zero exit.
    code, out, err = run(db, "--as", "rita", "approval", "approve", str(approval["id"]))
    assert code != 0 and out == ""
    assert err.startswith("error[MAKER_CANNOT_APPROVE]: ")
    assert run_json(db, "product", "list") == {"products": []}

    code, out, err = run(db, "--as", "adam", "approval", "approve", str(approval["id"]))
    assert code != 0 and err.startswith("error[PERMISSION_DENIED]: ")
    decided = run_json(db, "--as", "rob", "approval", "approve", str(approval["id"]))
    assert decided["result"] == {"code": "consumer-annuity", "version": 1, "created": True}

    listed = run_json(db, "--as", "lou", "product", "list")["products"]
    assert [(p["code"], p["version"], p["loaded_by"], p["approved_by"]) for p in listed] == [
        ("consumer-annuity", 1, "rita", "rob")
    ]
    shown = run_json(db, "--as", "lou", "product", "show", "consumer-annuity")
    assert shown["definition"] == load_product_text(ANNUITY.read_text()).model_dump(mode="json")
    assert shown["definition"]["principal"] == {"min": "500.00", "max": "50000.00"}

    # The same file again: nothing to approve.
    again = run_json(db, "--as", "rita", "product", "load", str(ANNUITY))
    assert (again["outcome"], again["approval"], again["current"]["version"]) == (
        "unchanged",
        None,
        1,
    )
    code, out, _err = run(db, "--as", "rita", "product", "load", str(ANNUITY))
    assert code == 0 and "unchanged" in out

    # A change: version 2 once approved; version 1 still reads the same.
    code, out, err = run(db, "--as", "adam", "product", "load", str(changed_file(tmp_path, "0.2")))
    assert code == 0, err
    assert "approval 2" in out and "interest.rate.default" in out
    run_json(db, "--as", "rita", "approval", "approve", "2")
    assert run_json(db, "product", "show", "consumer-annuity")["version"] == 2
    assert run_json(db, "product", "show", "consumer-annuity", "--version", "1") == shown
    versions = run_json(db, "product", "versions", "consumer-annuity")["versions"]
    assert [(v["version"], v["loaded_by"], v["approved_by"]) for v in versions] == [
        (1, "rita", "rob"),
        (2, "adam", "rita"),
    ]

    # Tables for people.
    code, out, _err = run(db, "product", "list")
    assert code == 0 and "consumer-annuity" in out
    code, out, _err = run(db, "product", "show", "consumer-annuity", "--version", "1")
    assert code == 0 and "interest.rate.default" in out and "0.1299" in out


def test_cli_bad_input_is_one_error_line_and_writes_nothing(staff: str, tmp_path: Path) -> None:
    db = staff
    bad = tmp_path / "bad.yaml"
    bad.write_text(ANNUITY.read_text().replace("calendar: US", "calendar: Atlantis"))
    for args, error_code in (
        (["--as", "rita", "product", "load", str(bad)], "PRODUCT_INVALID"),
        (["--as", "rita", "product", "load", str(tmp_path / "missing.yaml")], "PRODUCT_INVALID"),
        (["--as", "lou", "product", "load", str(ANNUITY)], "PERMISSION_DENIED"),
        (["product", "show", "no-such-product"], "PRODUCT_NOT_FOUND"),
        (["product", "versions", "no-such-product"], "PRODUCT_NOT_FOUND"),
    ):
        code, out, err = run(db, *args)
        assert code != 0, args
        assert out == "", args
        assert err.startswith(f"error[{error_code}]: "), (args, err)
        assert len(err.strip().splitlines()) == 1, err
    code, _out, err = run(db, "--as", "rita", "product", "load", str(bad))
    assert "schedule.calendar" in err
    assert run_json(db, "approval", "list") == {"approvals": []} or not [
        a for a in run_json(db, "approval", "list").get("approvals", [])
    ]


# --- the HTTP API ------------------------------------------------------------------------


@pytest.fixture
def client(db: Database) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    keys: dict[str, dict[str, str]] = {}
    for name, role in STAFF:
        identity.create_user(db, name, [role])
        keys[name] = {"X-API-Key": identity.create_api_key(db, name, label="e2e").token}
    with TestClient(create_app(db)) as test_client:
        yield test_client, keys


def annuity_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ANNUITY.read_text())
    return document


def test_api_submit_approve_and_read(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    http, keys = client
    body = annuity_document()
    submitted = expect(http.post("/v1/products", json=body, headers=keys["rita"]), 202)
    assert submitted["outcome"] == "submitted"
    approval_id = submitted["approval"]["id"]
    expect_problem(
        http.post(f"/v1/approvals/{approval_id}/approve", json={}, headers=keys["rita"]),
        403,
        "MAKER_CANNOT_APPROVE",
    )
    decided = expect(
        http.post(f"/v1/approvals/{approval_id}/approve", json={}, headers=keys["rob"]), 200
    )
    assert decided["result"]["version"] == 1

    # The YAML file as it is, with its comments.
    yaml_headers = {**keys["adam"], "Content-Type": "application/yaml"}
    bullet = expect(
        http.post("/v1/products", content=BULLET.read_bytes(), headers=yaml_headers), 202
    )
    assert bullet["code"] == "working-capital-bullet"
    expect(
        http.post(
            f"/v1/approvals/{bullet['approval']['id']}/approve", json={}, headers=keys["rita"]
        ),
        200,
    )

    listed = expect(http.get("/v1/products", headers=keys["lou"]), 200)
    assert [(p["code"], p["version"]) for p in listed] == [
        ("consumer-annuity", 1),
        ("working-capital-bullet", 1),
    ]
    shown = expect(http.get("/v1/products/consumer-annuity", headers=keys["lou"]), 200)
    assert shown["definition"] == load_product_text(ANNUITY.read_text()).model_dump(mode="json")
    assert (shown["loaded_by"], shown["approved_by"]) == ("rita", "rob")

    # Unchanged settings: 200, nothing submitted.
    unchanged = expect(http.post("/v1/products", json=body, headers=keys["adam"]), 200)
    assert (unchanged["outcome"], unchanged["approval"]) == ("unchanged", None)

    # A change makes version 2 once approved.
    body["interest"]["rate"]["default"] = "0.15"
    change = expect(http.post("/v1/products", json=body, headers=keys["rita"]), 202)
    assert change["changes"] == ["interest.rate.default"]
    expect(
        http.post(
            f"/v1/approvals/{change['approval']['id']}/approve", json={}, headers=keys["rob"]
        ),
        200,
    )
    latest = expect(http.get("/v1/products/consumer-annuity", headers=keys["lou"]), 200)
    assert (latest["version"], latest["definition"]["interest"]["rate"]["default"]) == (2, "0.15")
    first = expect(
        http.get("/v1/products/consumer-annuity", params={"version": 1}, headers=keys["lou"]), 200
    )
    assert first == shown
    versions = expect(http.get("/v1/products/consumer-annuity/versions", headers=keys["lou"]), 200)
    assert [v["version"] for v in versions] == [1, 2]


def test_api_idempotency_key_on_submission(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    http, keys = client
    headers = {**keys["rita"], "Idempotency-Key": "product-1"}
    first = http.post("/v1/products", json=annuity_document(), headers=headers)
    assert first.status_code == 202
    retry = http.post("/v1/products", json=annuity_document(), headers=headers)
    assert retry.status_code == 202
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    other = annuity_document()
    other["name"] = "Another name"
    expect_problem(
        http.post("/v1/products", json=other, headers=headers), 409, "IDEMPOTENCY_KEY_REUSED"
    )
    pending = expect(
        http.get("/v1/approvals", params={"status": "pending"}, headers=keys["rita"]), 200
    )
    assert len(pending["items"]) == 1


def test_api_bad_input_is_a_problem_and_writes_nothing(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    http, keys = client
    bad = annuity_document()
    bad["arrears"]["buckets"] = [[1, 30], [45, None]]
    problem = expect_problem(
        http.post("/v1/products", json=bad, headers=keys["rita"]), 422, "PRODUCT_INVALID"
    )
    assert "arrears.buckets" in problem["detail"]
    float_amount = annuity_document()
    float_amount["principal"]["min"] = 500.0
    expect_problem(
        http.post("/v1/products", json=float_amount, headers=keys["rita"]), 422, "PRODUCT_INVALID"
    )
    expect_problem(
        http.post(
            "/v1/products",
            content=b"{not json",
            headers={**keys["rita"], "Content-Type": "application/json"},
        ),
        422,
        "INVALID_INPUT",
    )
    expect_problem(
        http.post(
            "/v1/products",
            content=b"code: x",
            headers={**keys["rita"], "Content-Type": "text/plain"},
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    expect_problem(
        http.post("/v1/products", json=[1, 2], headers=keys["rita"]), 422, "PRODUCT_INVALID"
    )
    expect_problem(
        http.post("/v1/products", json=annuity_document(), headers=keys["lou"]),
        403,
        "PERMISSION_DENIED",
    )
    expect_problem(http.post("/v1/products", json=annuity_document()), 401, "UNAUTHENTICATED")
    expect_problem(http.get("/v1/products/nope", headers=keys["lou"]), 404, "PRODUCT_NOT_FOUND")
    expect_problem(
        http.get("/v1/products/nope/versions", headers=keys["lou"]), 404, "PRODUCT_NOT_FOUND"
    )
    expect_problem(
        http.get("/v1/products/nope", params={"version": 0}, headers=keys["lou"]),
        422,
        "INVALID_INPUT",
    )
    assert expect(http.get("/v1/products", headers=keys["lou"]), 200) == []
    pending = expect(http.get("/v1/approvals", headers=keys["rita"]), 200)
    assert pending["items"] == []


def test_openapi_documents_the_product_operations(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    http, _keys = client
    spec = expect(http.get("/openapi.json"), 200)
    post = spec["paths"]["/v1/products"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "application/yaml"}
    assert {"200", "202", "401", "403", "409", "415", "422"} <= set(post["responses"])
    assert "get" in spec["paths"]["/v1/products/{code}"]
    assert "get" in spec["paths"]["/v1/products/{code}/versions"]
