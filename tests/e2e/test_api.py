"""End to end over HTTP: the API's conventions, each flow on SQLite and PostgreSQL.

Every test drives the FastAPI application in-process through httpx (Starlette's
TestClient) against a real, freshly migrated database. Users, their API keys
and the chart of accounts are made through the API itself; only the first
admin comes from the service layer, as `lendcore user create` makes one on the
server's machine (the bootstrap admin of `lendcore serve` has a test of its own).
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from lendcore.api.app import create_app
from lendcore.api.logs import JsonFormatter
from lendcore.services import identity
from lendcore.store import migrations
from lendcore.store.database import Database

with warnings.catch_warnings():
    # Starlette suggests another httpx package; the client API is the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://lendcore.dev/problems/"
HEX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")

# (code, name, type, balance constraint): cash, customer deposits that may not
# be overdrawn, and capital.
CHART = (
    ("1000", "Cash", "asset", "none"),
    ("2000", "Customer deposits", "liability", "non_negative"),
    ("3000", "Capital", "equity", "none"),
)
# The users every test starts with: (username, role).
STAFF = (
    ("maker", "accountant"),
    ("checker", "accountant"),
    ("auditor", "auditor"),
    ("ops", "servicing"),
)


def key_auth(token: str) -> dict[str, str]:
    return {"X-API-Key": token}


def expect(response: httpx.Response, status: int) -> Any:
    """The JSON body of a response that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()


def expect_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem document with its stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == PROBLEM_BASE + code.lower().replace("_", "-")
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["detail"]
    return body


@dataclass(frozen=True)
class Api:
    client: TestClient
    db: Database
    tokens: dict[str, str]
    today: date

    def as_(self, who: str) -> dict[str, str]:
        return key_auth(self.tokens[who])

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.as_(who), params=params)

    def post(
        self, who: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.client.post(path, headers={**self.as_(who), **(headers or {})}, json=body)

    def submit(
        self, key: str, lines: list[tuple[str, str, str]], description: str = ""
    ) -> dict[str, Any]:
        """The maker submits a manual entry; returns the pending approval."""
        postings = [{"account": a, "side": s, "amount": amt} for s, a, amt in lines]
        body = {"idempotency_key": key, "postings": postings, "description": description}
        approval: dict[str, Any] = expect(self.post("maker", "/v1/journal-entries", body), 202)
        return approval

    def book(self, key: str, lines: list[tuple[str, str, str]], description: str = "") -> int:
        """Maker submits, checker approves; returns the booked entry's id."""
        approval = self.submit(key, lines, description)
        decided = expect(self.post("checker", f"/v1/approvals/{approval['id']}/approve", {}), 200)
        entry_id: int = decided["result"]["entry_id"]
        return entry_id

    def balance(self, code: str, as_of: date | None = None) -> dict[str, Any]:
        params = {} if as_of is None else {"as_of": as_of.isoformat()}
        body: dict[str, Any] = expect(
            self.get("ops", f"/v1/accounts/{code}/balance", **params), 200
        )
        return body

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = expect(
            self.get("auditor", "/v1/audit", limit=500, **filters), 200
        )["items"]
        return items


@pytest.fixture
def api(db: Database) -> Api:
    # The first admin is made as the local operator (as `lendcore user create`
    # does): ensure_bootstrap_admin would spend a slow password hash on every test.
    identity.create_user(db, "admin", ["admin"])
    boot = identity.create_api_key(db, "admin", label="e2e")
    client = TestClient(create_app(db))
    tokens = {"admin": boot.token}
    for username, role in STAFF:
        expect(
            client.post(
                "/v1/users",
                headers=key_auth(boot.token),
                json={"username": username, "roles": [role]},
            ),
            201,
        )
        issued = expect(
            client.post(
                "/v1/api-keys",
                headers=key_auth(boot.token),
                json={"username": username, "label": "e2e"},
            ),
            201,
        )
        tokens[username] = issued["token"]
    for code, name, kind, constraint in CHART:
        expect(
            client.post(
                "/v1/accounts",
                headers=key_auth(tokens["maker"]),
                json={
                    "code": code,
                    "name": name,
                    "type": kind,
                    "currency": "USD",
                    "balance_constraint": constraint,
                },
            ),
            201,
        )
    today = date.fromisoformat(
        expect(client.get("/v1/business-date", headers=key_auth(boot.token)), 200)["business_date"]
    )
    return Api(client, db, tokens, today)


@pytest.fixture
def funded(api: Api) -> Api:
    """Capital of 1,000.00 in cash and a customer deposit of 500.00."""
    api.book("capital", [("debit", "1000", "1000.00"), ("credit", "3000", "1000.00")], "Capital")
    api.book("deposit", [("debit", "1000", "500.00"), ("credit", "2000", "500.00")], "Deposit")
    return api


# --- health, authentication, permissions ---------------------------------------------


def test_health_and_readiness(api: Api) -> None:
    assert expect(api.client.get("/healthz"), 200) == {"status": "ok"}
    assert expect(api.client.get("/readyz"), 200) == {
        "status": "ready",
        "database": api.db.dialect,
        "schema_revision": migrations.head_revision(),
        "business_date": api.today.isoformat(),
    }


def test_the_bootstrap_admin_gets_in_with_its_key_and_its_password(db: Database) -> None:
    boot = identity.ensure_bootstrap_admin(db)
    assert boot is not None
    assert identity.ensure_bootstrap_admin(db) is None
    client = TestClient(create_app(db))
    users = expect(client.get("/v1/users", headers=key_auth(boot.api_key)), 200)
    assert [(u["username"], u["roles"], u["has_password"]) for u in users] == [
        ("admin", ["admin"], True)
    ]
    login = {"username": boot.username, "password": boot.password}
    token = expect(client.post("/v1/auth/token", json=login), 200)["access_token"]
    keys = expect(client.get("/v1/api-keys", headers={"Authorization": f"Bearer {token}"}), 200)
    assert [(k["username"], k["label"], k["active"]) for k in keys] == [
        ("admin", "bootstrap", True)
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "lck_000000000000_not-a-secret"},
        {"X-API-Key": "not-even-a-key"},
        {"Authorization": "Bearer lck_000000000000_not-a-secret"},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad-signature"},
    ],
    ids=["none", "unknown-key", "malformed-key", "unknown-bearer-key", "forged-token"],
)
def test_requests_without_valid_credentials_get_401_problems(
    api: Api, headers: dict[str, str]
) -> None:
    response = api.client.get("/v1/accounts", headers=headers)
    body = expect_problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["title"] == "Not authenticated"


def test_api_key_in_either_header_and_password_login_give_a_bearer_token(api: Api) -> None:
    listed = [a["code"] for a in expect(api.get("ops", "/v1/accounts"), 200)]
    assert listed == ["1000", "2000", "3000"]
    as_bearer = {"Authorization": f"Bearer {api.tokens['ops']}"}
    assert [a["code"] for a in expect(api.client.get("/v1/accounts", headers=as_bearer), 200)] == (
        listed
    )

    password = "correct horse battery staple"
    expect(
        api.post(
            "admin",
            "/v1/users",
            {"username": "teller", "roles": ["servicing"], "password": password},
        ),
        201,
    )
    token = expect(
        api.client.post("/v1/auth/token", json={"username": "teller", "password": password}), 200
    )
    assert token["token_type"] == "bearer"
    assert token["access_token"].count(".") == 2
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert [a["code"] for a in expect(api.client.get("/v1/accounts", headers=bearer), 200)] == (
        listed
    )

    for username, attempt in (("teller", password + "!"), ("nobody", password)):
        response = api.client.post(
            "/v1/auth/token", json={"username": username, "password": attempt}
        )
        expect_problem(response, 401, "UNAUTHENTICATED")
    # A user without a password (API keys only) cannot log in with one.
    response = api.client.post("/v1/auth/token", json={"username": "ops", "password": password})
    expect_problem(response, 401, "UNAUTHENTICATED")


def test_permission_denied_is_a_problem_with_its_stable_code(api: Api) -> None:
    # The admin manages users but cannot read the ledger; the auditor changes nothing.
    body = expect_problem(api.get("admin", "/v1/accounts"), 403, "PERMISSION_DENIED")
    assert body["title"] == "Forbidden"
    assert "ledger.read" in body["detail"]
    expect_problem(
        api.post(
            "auditor",
            "/v1/accounts",
            {"code": "9000", "name": "Nope", "type": "asset", "currency": "USD"},
        ),
        403,
        "PERMISSION_DENIED",
    )
    expect_problem(api.get("maker", "/v1/audit"), 403, "PERMISSION_DENIED")
    expect_problem(
        api.post("ops", "/v1/users", {"username": "x", "roles": ["admin"]}),
        403,
        "PERMISSION_DENIED",
    )
    refused = api.audit(outcome="refused")
    assert [(r["actor"], r["command"], r["error_code"]) for r in refused] == [
        ("admin", "ledger.read", "PERMISSION_DENIED"),
        ("auditor", "ledger.account.open", "PERMISSION_DENIED"),
        ("maker", "audit.read", "PERMISSION_DENIED"),
        ("ops", "identity.user.create", "PERMISSION_DENIED"),
    ]
    expect_problem(api.get("maker", "/v1/accounts/9000"), 404, "ACCOUNT_NOT_FOUND")


# --- users and API keys ------------------------------------------------------------------


def test_users_and_api_keys_show_the_key_once_and_revoked_keys_stop_working(api: Api) -> None:
    created = expect(
        api.post(
            "admin",
            "/v1/users",
            {"username": "clerk", "roles": ["servicing", "auditor"], "display_name": "A Clerk"},
        ),
        201,
    )
    assert created == {
        "username": "clerk",
        "display_name": "A Clerk",
        "status": "active",
        "roles": ["auditor", "servicing"],
        "created_at": created["created_at"],
        "has_password": False,
    }
    assert expect(api.get("admin", "/v1/users/clerk"), 200) == created
    assert [u["username"] for u in expect(api.get("auditor", "/v1/users"), 200)] == [
        "admin",
        "auditor",
        "checker",
        "clerk",
        "maker",
        "ops",
    ]
    expect_problem(
        api.post("admin", "/v1/users", {"username": "clerk", "roles": ["servicing"]}),
        409,
        "USER_EXISTS",
    )
    expect_problem(api.get("admin", "/v1/users/ghost"), 404, "USER_NOT_FOUND")

    issued = expect(
        api.post("admin", "/v1/api-keys", {"username": "clerk", "label": "laptop", "days": 7}), 201
    )
    key = issued["api_key"]
    token = issued["token"]
    assert token.startswith(f"lck_{key['key_id']}_")
    secret = token.removeprefix(f"lck_{key['key_id']}_")
    assert len(secret) >= 32
    assert key == {
        "key_id": key["key_id"],
        "username": "clerk",
        "label": "laptop",
        "created_at": key["created_at"],
        "expires_at": key["expires_at"],
        "revoked_at": None,
        "active": True,
    }
    assert expect(api.client.get("/v1/holds", headers=key_auth(token)), 200)["items"] == []

    listing = api.get("admin", "/v1/api-keys", username="clerk")
    assert expect(listing, 200) == [key]
    everything = api.get("auditor", "/v1/api-keys")
    assert len(expect(everything, 200)) == len(STAFF) + 2
    for text in (listing.text, everything.text):
        assert secret not in text
        for known in api.tokens.values():
            assert known.split("_", 2)[2] not in text  # the secret may contain "_"
        assert "token" not in text
        assert "secret" not in text

    revoked = expect(api.post("admin", f"/v1/api-keys/{key['key_id']}/revoke"), 200)
    assert revoked["active"] is False
    assert revoked["revoked_at"] is not None
    expect_problem(api.client.get("/v1/holds", headers=key_auth(token)), 401, "UNAUTHENTICATED")
    expect_problem(api.post("admin", "/v1/api-keys/000000000000/revoke"), 404, "API_KEY_NOT_FOUND")

    # Disabling a user shuts every one of their keys.
    assert expect(api.post("admin", "/v1/users/ops/disable"), 200)["status"] == "disabled"
    expect_problem(api.get("ops", "/v1/holds"), 401, "UNAUTHENTICATED")
    expect_problem(api.post("admin", "/v1/users/admin/disable"), 409, "CONFLICT")


# --- accounts and the manual entry flow ---------------------------------------------------


def test_accounts_open_read_and_close(api: Api) -> None:
    opened = expect(
        api.post(
            "maker",
            "/v1/accounts",
            {
                "code": "1010",
                "name": "Petty cash",
                "type": "asset",
                "currency": "usd",
                "parent": "1000",
            },
        ),
        201,
    )
    assert opened == {
        "code": "1010",
        "name": "Petty cash",
        "type": "asset",
        "currency": "USD",
        "normal_side": "debit",
        "parent": "1000",
        "status": "open",
        "balance_constraint": "none",
        "opened_on": api.today.isoformat(),
        "closed_on": None,
    }
    assert expect(api.get("ops", "/v1/accounts/1010"), 200) == opened
    assert [a["code"] for a in expect(api.get("ops", "/v1/accounts"), 200)] == [
        "1000",
        "1010",
        "2000",
        "3000",
    ]
    expect_problem(
        api.post(
            "maker",
            "/v1/accounts",
            {"code": "1010", "name": "Again", "type": "asset", "currency": "USD"},
        ),
        409,
        "ACCOUNT_EXISTS",
    )
    expect_problem(
        api.post(
            "maker",
            "/v1/accounts",
            {
                "code": "1020",
                "name": "Euro cash",
                "type": "asset",
                "currency": "EUR",
                "parent": "1000",
            },
        ),
        422,
        "ACCOUNT_INVALID",
    )
    expect_problem(
        api.post(
            "maker",
            "/v1/accounts",
            {"code": "1030", "name": "Gold", "type": "asset", "currency": "XYZ"},
        ),
        422,
        "CURRENCY_UNKNOWN",
    )
    closed = expect(api.post("maker", "/v1/accounts/1010/close"), 200)
    assert (closed["status"], closed["closed_on"]) == ("closed", api.today.isoformat())
    expect_problem(api.post("maker", "/v1/accounts/1010/close"), 409, "ACCOUNT_CLOSED")
    expect_problem(api.post("maker", "/v1/accounts/4040/close"), 404, "ACCOUNT_NOT_FOUND")


def test_manual_entry_needs_a_second_accountant_then_books_exact_amounts(api: Api) -> None:
    approval = api.submit(
        "capital", [("debit", "1000", "1000.00"), ("credit", "3000", "1000.00")], "Capital"
    )
    assert approval == {
        "id": approval["id"],
        "command": "ledger.manual_entry",
        "summary": "Capital: D 1000 1000.00, C 3000 1000.00",
        "status": "pending",
        "maker": "maker",
        "business_date": api.today.isoformat(),
        "created_at": approval["created_at"],
        "checker": None,
        "decided_at": None,
        "note": None,
        "payload": {
            "idempotency_key": "capital",
            "description": "Capital",
            "metadata": {},
            "value_date": None,
            "postings": [
                {"account": "1000", "side": "D", "amount_minor": 100000, "currency": "USD"},
                {"account": "3000", "side": "C", "amount_minor": 100000, "currency": "USD"},
            ],
        },
        "result": None,
    }
    # Nothing is booked until a second accountant approves.
    assert expect(api.get("ops", "/v1/journal-entries"), 200) == {"items": [], "next_cursor": None}
    assert api.balance("1000")["balance"] == "0.00"

    url = f"/v1/approvals/{approval['id']}/approve"
    refused = expect_problem(api.post("maker", url, {}), 403, "MAKER_CANNOT_APPROVE")
    assert "maker" in refused["detail"]
    expect_problem(api.post("ops", url, {}), 403, "PERMISSION_DENIED")
    assert expect(api.get("ops", f"/v1/approvals/{approval['id']}"), 200)["status"] == "pending"

    decided = expect(api.post("checker", url, {"note": "matches the deed"}), 200)
    assert decided["status"] == "executed"
    assert (decided["maker"], decided["checker"], decided["note"]) == (
        "maker",
        "checker",
        "matches the deed",
    )
    entry_id = decided["result"]["entry_id"]
    expect_problem(api.post("checker", url, {}), 409, "APPROVAL_ALREADY_DECIDED")

    entry = expect(api.get("ops", f"/v1/journal-entries/{entry_id}"), 200)
    assert entry == {
        "id": entry_id,
        "idempotency_key": "capital",
        "business_date": api.today.isoformat(),
        "value_date": api.today.isoformat(),
        "recorded_at": entry["recorded_at"],
        "description": "Capital",
        "metadata": {},
        "reverses_entry_id": None,
        "hold_id": None,
        "replayed": False,
        "postings": [
            {"account": "1000", "side": "debit", "amount": "1000.00", "currency": "USD"},
            {"account": "3000", "side": "credit", "amount": "1000.00", "currency": "USD"},
        ],
    }
    assert expect(api.get("ops", "/v1/journal-entries"), 200) == {
        "items": [entry],
        "next_cursor": None,
    }
    expect_problem(api.get("ops", "/v1/journal-entries/999999"), 404, "ENTRY_NOT_FOUND")
    assert api.balance("1000") == {
        "account": "1000",
        "currency": "USD",
        "normal_side": "debit",
        "as_of": None,
        "balance": "1000.00",
        "available": "1000.00",
        "debits_posted": "1000.00",
        "credits_posted": "0.00",
        "debits_pending": "0.00",
        "credits_pending": "0.00",
    }
    assert api.balance("3000")["balance"] == "1000.00"

    # The business date moves (servicing), then a second entry on the new date.
    tomorrow = api.today + timedelta(days=1)
    expect_problem(
        api.post("maker", "/v1/business-date", {"business_date": tomorrow.isoformat()}),
        403,
        "PERMISSION_DENIED",
    )
    moved = api.post("ops", "/v1/business-date", {"business_date": tomorrow.isoformat()})
    assert expect(moved, 200) == {"business_date": tomorrow.isoformat()}
    expect_problem(
        api.post("ops", "/v1/business-date", {"business_date": api.today.isoformat()}),
        409,
        "BUSINESS_DATE_BACKWARDS",
    )
    second = api.book("top-up", [("debit", "1000", "250.50"), ("credit", "3000", "250.50")])
    assert expect(api.get("ops", f"/v1/journal-entries/{second}"), 200)["business_date"] == (
        tomorrow.isoformat()
    )
    assert api.balance("1000")["balance"] == "1250.50"
    as_of_today = api.balance("1000", api.today)
    assert (as_of_today["as_of"], as_of_today["balance"], as_of_today["debits_posted"]) == (
        api.today.isoformat(),
        "1000.00",
        "1000.00",
    )
    assert api.balance("1000", tomorrow)["balance"] == "1250.50"
    assert api.balance("1000", api.today - timedelta(days=1))["balance"] == "0.00"
    on_day = expect(api.get("ops", "/v1/journal-entries", business_date=tomorrow.isoformat()), 200)
    assert [e["id"] for e in on_day["items"]] == [second]

    # A reversal goes through the same maker-checker.
    reversal = expect(
        api.post("maker", f"/v1/journal-entries/{second}/reversal", {"idempotency_key": "undo"}),
        202,
    )
    assert reversal["command"] == "ledger.reversal"
    undone = expect(api.post("checker", f"/v1/approvals/{reversal['id']}/approve", {}), 200)
    reversal_entry = expect(
        api.get("ops", f"/v1/journal-entries/{undone['result']['entry_id']}"), 200
    )
    assert reversal_entry["reverses_entry_id"] == second
    assert [(p["account"], p["side"], p["amount"]) for p in reversal_entry["postings"]] == [
        ("1000", "credit", "250.50"),
        ("3000", "debit", "250.50"),
    ]
    assert api.balance("1000")["balance"] == "1000.00"


def test_approvals_are_listed_and_rejected_with_a_reason(api: Api) -> None:
    first = api.submit("e1", [("debit", "1000", "10.00"), ("credit", "3000", "10.00")])
    second = api.submit("e2", [("debit", "1000", "20.00"), ("credit", "3000", "20.00")])
    pending = expect(api.get("auditor", "/v1/approvals", status="pending"), 200)
    assert [a["id"] for a in pending["items"]] == [first["id"], second["id"]]

    url = f"/v1/approvals/{first['id']}/reject"
    expect_problem(api.post("checker", url, {"note": "  "}), 422, "INVALID_INPUT")
    expect_problem(api.post("maker", url, {"note": "mine"}), 403, "MAKER_CANNOT_APPROVE")
    rejected = expect(api.post("checker", url, {"note": "no voucher"}), 200)
    assert (rejected["status"], rejected["checker"], rejected["note"], rejected["result"]) == (
        "rejected",
        "checker",
        "no voucher",
        None,
    )
    expect_problem(
        api.post("checker", f"/v1/approvals/{first['id']}/approve", {}),
        409,
        "APPROVAL_ALREADY_DECIDED",
    )
    expect_problem(
        api.post("checker", "/v1/approvals/999999/approve", {}), 404, "APPROVAL_NOT_FOUND"
    )

    assert [
        a["id"] for a in expect(api.get("maker", "/v1/approvals", status="rejected"), 200)["items"]
    ] == [first["id"]]
    assert [
        a["id"] for a in expect(api.get("maker", "/v1/approvals", status="pending"), 200)["items"]
    ] == [second["id"]]
    assert [
        a["id"]
        for a in expect(api.get("maker", "/v1/approvals", command="ledger.reversal"), 200)["items"]
    ] == []
    # The rejected entry was never booked.
    assert expect(api.get("ops", "/v1/journal-entries"), 200)["items"] == []
    assert api.balance("1000")["balance"] == "0.00"


# --- holds ------------------------------------------------------------------------------


def test_holds_place_partial_post_void_and_expire(funded: Api) -> None:
    api = funded
    hold_body = {
        "idempotency_key": "withdrawal-1",
        "debit_account": "2000",
        "credit_account": "1000",
        "amount": "100.00",
        "currency": "USD",
        "expires_on": api.today.isoformat(),
        "description": "ATM",
    }
    hold = expect(api.post("ops", "/v1/holds", hold_body), 201)
    assert hold == {
        "id": hold["id"],
        "idempotency_key": "withdrawal-1",
        "debit_account": "2000",
        "credit_account": "1000",
        "amount": "100.00",
        "currency": "USD",
        "status": "pending",
        "expires_on": api.today.isoformat(),
        "business_date": api.today.isoformat(),
        "resolved_on": None,
        "description": "ATM",
    }
    deposits = api.balance("2000")
    assert (deposits["balance"], deposits["available"], deposits["debits_pending"]) == (
        "500.00",
        "400.00",
        "100.00",
    )
    # Holds count against the constraint: the deposit cannot be reserved twice over.
    overdraw = {**hold_body, "idempotency_key": "withdrawal-big", "amount": "400.01"}
    expect_problem(api.post("ops", "/v1/holds", overdraw), 409, "BALANCE_CONSTRAINT_VIOLATED")

    posted = expect(
        api.post("ops", f"/v1/holds/{hold['id']}/post", {"idempotency_key": "w1", "amount": "60"}),
        201,
    )
    assert posted["hold_id"] == hold["id"]
    assert posted["postings"] == [
        {"account": "2000", "side": "debit", "amount": "60.00", "currency": "USD"},
        {"account": "1000", "side": "credit", "amount": "60.00", "currency": "USD"},
    ]
    assert expect(api.get("ops", f"/v1/holds/{hold['id']}"), 200)["status"] == "posted"
    deposits = api.balance("2000")
    assert (deposits["balance"], deposits["available"], deposits["debits_pending"]) == (
        "440.00",
        "440.00",
        "0.00",
    )
    assert api.balance("1000")["credits_pending"] == "0.00"
    expect_problem(
        api.post("ops", f"/v1/holds/{hold['id']}/post", {"idempotency_key": "w1-again"}),
        409,
        "HOLD_ALREADY_RESOLVED",
    )

    voided_hold = expect(
        api.post("ops", "/v1/holds", {**hold_body, "idempotency_key": "w2", "amount": "50.00"}),
        201,
    )
    voided = expect(api.post("ops", f"/v1/holds/{voided_hold['id']}/void"), 200)
    assert (voided["status"], voided["resolved_on"]) == ("voided", api.today.isoformat())
    expect_problem(
        api.post("ops", f"/v1/holds/{voided_hold['id']}/void"), 409, "HOLD_ALREADY_RESOLVED"
    )
    assert api.balance("2000")["available"] == "440.00"

    late = expect(
        api.post("ops", "/v1/holds", {**hold_body, "idempotency_key": "w3", "amount": "30.00"}),
        201,
    )
    big = expect(
        api.post("ops", "/v1/holds", {**hold_body, "idempotency_key": "w4", "amount": "5.00"}),
        201,
    )
    expect_problem(
        api.post("ops", f"/v1/holds/{big['id']}/post", {"idempotency_key": "w4", "amount": "5.01"}),
        409,
        "HOLD_EXCEEDED",
    )
    assert api.balance("2000")["available"] == "405.00"
    tomorrow = api.today + timedelta(days=1)
    expect(api.post("ops", "/v1/business-date", {"business_date": tomorrow.isoformat()}), 200)
    expired = expect(api.get("ops", f"/v1/holds/{late['id']}"), 200)
    assert (expired["status"], expired["resolved_on"]) == ("expired", tomorrow.isoformat())
    expect_problem(
        api.post("ops", f"/v1/holds/{late['id']}/post", {"idempotency_key": "w3"}),
        409,
        "HOLD_EXPIRED",
    )
    assert api.balance("2000")["available"] == "440.00"
    by_status = expect(api.get("ops", "/v1/holds", status="expired"), 200)["items"]
    assert [h["id"] for h in by_status] == [late["id"], big["id"]]
    expect_problem(api.get("ops", "/v1/holds/999999"), 404, "HOLD_NOT_FOUND")


# --- reports ----------------------------------------------------------------------------


def test_trial_balance_and_ledger_verify(funded: Api) -> None:
    api = funded
    report = expect(api.get("maker", "/v1/trial-balance"), 200)
    assert report == {
        "as_of": api.today.isoformat(),
        "balanced": True,
        "accounts": [
            {
                "code": "1000",
                "name": "Cash",
                "type": "asset",
                "currency": "USD",
                "parent": None,
                "debit": "1500.00",
                "credit": "0.00",
            },
            {
                "code": "2000",
                "name": "Customer deposits",
                "type": "liability",
                "currency": "USD",
                "parent": None,
                "debit": "0.00",
                "credit": "500.00",
            },
            {
                "code": "3000",
                "name": "Capital",
                "type": "equity",
                "currency": "USD",
                "parent": None,
                "debit": "0.00",
                "credit": "1000.00",
            },
        ],
        "totals": [{"currency": "USD", "debit": "1500.00", "credit": "1500.00"}],
    }
    yesterday = api.today - timedelta(days=1)
    earlier = expect(api.get("maker", "/v1/trial-balance", as_of=yesterday.isoformat()), 200)
    assert earlier["as_of"] == yesterday.isoformat()
    assert earlier["totals"] == [{"currency": "USD", "debit": "0.00", "credit": "0.00"}]

    verified = expect(api.get("auditor", "/v1/ledger/verify"), 200)
    assert verified["ok"] is True
    assert verified["problems"] == []
    assert verified["first_bad_entry"] is None
    assert (verified["entries_checked"], verified["postings_checked"]) == (2, 4)
    assert verified["accounts_checked"] == len(CHART)
    expect_problem(api.get("ops", "/v1/ledger/verify"), 403, "PERMISSION_DENIED")


def test_audit_is_filtered_by_actor_command_and_outcome_and_verifies(funded: Api) -> None:
    api = funded
    opened = api.audit(actor="maker", command="ledger.account.open", outcome="ok")
    assert [r["inputs"]["spec"]["code"] for r in opened] == ["1000", "2000", "3000"]
    first = opened[0]
    assert (first["actor"], first["actor_kind"], first["roles"], first["error_code"]) == (
        "maker",
        "user",
        ["accountant"],
        None,
    )
    assert first["business_date"] == api.today.isoformat()
    assert [r["command"] for r in api.audit(actor="checker")] == ["approvals.approve"] * 2
    assert [r["result"]["approval_id"] for r in api.audit(command="ledger.manual_entry")] == [1, 2]
    assert api.audit(outcome="failed") == []

    expect_problem(api.get("maker", "/v1/audit"), 403, "PERMISSION_DENIED")
    expect_problem(api.get("admin", "/v1/audit/verify"), 403, "PERMISSION_DENIED")
    refused = api.audit(outcome="refused")
    assert [(r["actor"], r["command"]) for r in refused] == [
        ("maker", "audit.read"),
        ("admin", "audit.read"),
    ]

    every = api.audit()
    verified = expect(api.get("auditor", "/v1/audit/verify"), 200)
    assert verified == {
        "ok": True,
        "records_checked": len(every),
        "head_seq": every[-1]["seq"],
        "problems": [],
    }
    assert [r["seq"] for r in every] == list(range(1, len(every) + 1))


def test_events_are_listed_by_type_and_aggregate(funded: Api) -> None:
    api = funded
    opened = expect(api.get("auditor", "/v1/events", type="account.opened"), 200)
    assert opened["next_cursor"] is None
    assert [e["aggregate"] for e in opened["items"]] == [
        {"type": "account", "id": code} for code, _n, _t, _c in CHART
    ]
    event = opened["items"][0]
    assert event["data"] == {
        "code": "1000",
        "name": "Cash",
        "type": "asset",
        "currency": "USD",
        "status": "open",
        "parent": None,
    }
    assert event["business_date"] == api.today.isoformat()
    booked = expect(api.get("admin", "/v1/events", type="journal_entry.booked"), 200)["items"]
    assert [e["data"]["idempotency_key"] for e in booked] == ["capital", "deposit"]
    one = expect(
        api.get("auditor", "/v1/events", aggregate_type="account", aggregate_id="2000"), 200
    )
    assert [e["type"] for e in one["items"]] == ["account.opened"]
    sequences = [e["sequence"] for e in expect(api.get("auditor", "/v1/events"), 200)["items"]]
    assert sequences == sorted(set(sequences))
    expect_problem(api.get("maker", "/v1/events"), 403, "PERMISSION_DENIED")


# --- pagination -------------------------------------------------------------------------


def walk(api: Api, username: str, path: str, limit: int, **params: Any) -> list[list[Any]]:
    """Every page of a cursor-paginated list (bounded, so a loop cannot hang the test)."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, "limit": limit, **({} if cursor is None else {"cursor": cursor})}
        page = expect(api.get(username, path, **query), 200)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError(f"{path} gave out more than 100 pages")


def test_cursor_pagination_walks_every_item_once(funded: Api) -> None:
    api = funded
    hold_ids = []
    for n in range(7):
        body = {
            "idempotency_key": f"page-{n}",
            "debit_account": "1000",
            "credit_account": "3000",
            "amount": f"{n + 1}.00",
            "currency": "USD",
            "expires_on": api.today.isoformat(),
        }
        hold_ids.append(expect(api.post("ops", "/v1/holds", body), 201)["id"])
    pages = walk(api, "ops", "/v1/holds", 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [h["id"] for p in pages for h in p] == hold_ids

    # A page that ends exactly on the last item still offers a cursor; its next page is empty.
    six = walk(api, "ops", "/v1/holds", 2, status="pending")
    assert [len(p) for p in six] == [2, 2, 2, 1]
    entry_ids = [
        expect(api.post("ops", f"/v1/holds/{h}/post", {"idempotency_key": f"post-{h}"}), 201)["id"]
        for h in hold_ids[:4]
    ]
    entries = walk(api, "ops", "/v1/journal-entries", 3)
    assert [len(p) for p in entries] == [3, 3, 0]
    assert [e["id"] for p in entries for e in p][2:] == entry_ids

    events = walk(api, "auditor", "/v1/events", 4, type="hold.placed")
    assert [e["data"]["hold_id"] for p in events for e in p] == hold_ids
    audit = walk(api, "auditor", "/v1/audit", 5)
    seqs = [r["seq"] for p in audit for r in p]
    assert seqs == list(range(1, len(seqs) + 1))
    approvals = walk(api, "auditor", "/v1/approvals", 1)
    assert [len(p) for p in approvals] == [1, 1, 0]

    for bad in ("abc", "-1"):
        expect_problem(api.get("ops", "/v1/holds", cursor=bad), 422, "INVALID_INPUT")
    for limit in (0, 501):
        body = expect_problem(api.get("ops", "/v1/holds", limit=limit), 422, "INVALID_INPUT")
        assert [e["field"] for e in body["errors"]] == ["query.limit"]


# --- idempotency --------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_response_and_refuses_other_bodies(api: Api) -> None:
    body = {"code": "4000", "name": "Fees", "type": "income", "currency": "USD"}
    key = {"Idempotency-Key": "open-4000"}
    first = api.post("maker", "/v1/accounts", body, key)
    again = api.post("maker", "/v1/accounts", body, key)
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert [r["inputs"]["spec"]["code"] for r in api.audit(command="ledger.account.open")] == [
        "1000",
        "2000",
        "3000",
        "4000",
    ]
    opened = expect(api.get("auditor", "/v1/events", aggregate_id="4000"), 200)["items"]
    assert len(opened) == 1

    other = api.post("maker", "/v1/accounts", {**body, "code": "4001"}, key)
    expect_problem(other, 409, "IDEMPOTENCY_KEY_REUSED")
    expect_problem(api.get("ops", "/v1/accounts/4001"), 404, "ACCOUNT_NOT_FOUND")
    # Keys belong to the caller: another user's same key is another request.
    mine = api.post("admin", "/v1/accounts", {**body, "code": "4002"}, key)
    assert expect(mine, 201)["code"] == "4002"

    # A manual entry keyed only by the header: one approval, replayed.
    entry = {"postings": [{"account": "1000", "side": "debit", "amount": "5.00"}]}
    entry["postings"].append({"account": "3000", "side": "credit", "amount": "5.00"})
    header = {"Idempotency-Key": "entry-5"}
    submitted = api.post("maker", "/v1/journal-entries", entry, header)
    replayed = api.post("maker", "/v1/journal-entries", entry, header)
    assert expect(submitted, 202) == expect(replayed, 202)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert submitted.json()["payload"]["idempotency_key"] == "entry-5"
    assert len(expect(api.get("maker", "/v1/approvals"), 200)["items"]) == 1
    entry["postings"][0]["amount"] = "5.01"
    expect_problem(
        api.post("maker", "/v1/journal-entries", entry, header), 409, "IDEMPOTENCY_KEY_REUSED"
    )

    # A retried API key creation does not hand the secret out a second time.
    request = {"username": "ops", "label": "retry"}
    issued = api.post("admin", "/v1/api-keys", request, {"Idempotency-Key": "key-ops"})
    retried = api.post("admin", "/v1/api-keys", request, {"Idempotency-Key": "key-ops"})
    assert expect(issued, 201)["token"].startswith("lck_")
    assert expect(retried, 201) == {**issued.json(), "token": "***"}
    labels = [k["label"] for k in expect(api.get("admin", "/v1/api-keys", username="ops"), 200)]
    assert labels == ["e2e", "retry"]
    expect_problem(
        api.post("admin", "/v1/api-keys", request, {"Idempotency-Key": "bad\tkey"}),
        422,
        "INVALID_INPUT",
    )


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"postings": [{"account": "1000", "side": "debit", "amount": 1}] * 2},
            ["body.postings.0.amount", "body.postings.1.amount"],
        ),
        (
            {"postings": [{"account": "1000", "side": "debit", "amount": "1.00"}]},
            ["body.postings"],
        ),
        (
            {
                "postings": [
                    {"account": "1000", "side": "debit", "amount": "1.00"},
                    {"account": "3000", "side": "left", "amount": "1.00"},
                ]
            },
            ["body.postings.1.side"],
        ),
        (
            {
                "postings": [
                    {"account": "1000", "side": "debit", "amount": "1,00"},
                    {"account": "3000", "side": "credit", "amount": "-1.00"},
                ],
                "memo": "x",
            },
            ["body.postings.0.amount", "body.postings.1.amount", "body.memo"],
        ),
        ({"postings": [], "value_date": "yesterday"}, ["body.postings", "body.value_date"]),
        (None, ["body"]),
    ],
    ids=["amount-number", "one-posting", "bad-side", "bad-amounts-extra-field", "dates", "no-body"],
)
def test_validation_errors_name_every_field(api: Api, body: Any, fields: list[str]) -> None:
    response = api.post("maker", "/v1/journal-entries", body, {"Idempotency-Key": "v"})
    problem = expect_problem(response, 422, "INVALID_INPUT")
    assert [e["field"] for e in problem["errors"]] == fields
    assert all(e["message"] for e in problem["errors"])
    assert problem["detail"].startswith(fields[0] + ": ")


def test_bad_amounts_unbalanced_entries_and_unknown_accounts_write_nothing(api: Api) -> None:
    def entry(*lines: tuple[str, str, str], **extra: Any) -> dict[str, Any]:
        postings = [{"account": a, "side": s, "amount": amt, **extra} for s, a, amt in lines]
        return {"idempotency_key": "bad", "postings": postings}

    cases = [
        (entry(("debit", "1000", "1.005"), ("credit", "3000", "1.005")), 422, "AMOUNT_TOO_PRECISE"),
        (entry(("debit", "1000", "100.00"), ("credit", "3000", "99.99")), 422, "ENTRY_UNBALANCED"),
        (entry(("debit", "1000", "0.00"), ("credit", "3000", "0")), 422, "AMOUNT_NOT_POSITIVE"),
        (entry(("debit", "9999", "1.00"), ("credit", "3000", "1.00")), 404, "ACCOUNT_NOT_FOUND"),
        (
            entry(("debit", "1000", "1.00"), ("credit", "3000", "1.00"), currency="EUR"),
            422,
            "CURRENCY_MISMATCH",
        ),
        (
            entry(("debit", "1000", "1.00"), ("credit", "3000", "1.00"), currency="ZZZ"),
            422,
            "CURRENCY_UNKNOWN",
        ),
    ]
    for body, status, code in cases:
        expect_problem(api.post("maker", "/v1/journal-entries", body), status, code)
    hold = {
        "idempotency_key": "bad-hold",
        "debit_account": "1000",
        "credit_account": "3000",
        "amount": "2.001",
        "currency": "USD",
        "expires_on": api.today.isoformat(),
    }
    expect_problem(api.post("ops", "/v1/holds", hold), 422, "AMOUNT_TOO_PRECISE")
    expect_problem(
        api.post("ops", "/v1/holds", {**hold, "amount": "2.00", "debit_account": "9999"}),
        404,
        "ACCOUNT_NOT_FOUND",
    )
    expect_problem(
        api.post("ops", "/v1/holds", {**hold, "amount": "2.00", "credit_account": "1000"}),
        422,
        "ENTRY_INVALID",
    )

    assert expect(api.get("maker", "/v1/approvals"), 200)["items"] == []
    assert expect(api.get("ops", "/v1/journal-entries"), 200)["items"] == []
    assert expect(api.get("ops", "/v1/holds"), 200)["items"] == []
    assert api.balance("1000")["debits_pending"] == "0.00"
    events = expect(api.get("auditor", "/v1/events", limit=500), 200)["items"]
    assert {e["type"] for e in events} == {"user.created", "account.opened"}
    failed = api.audit(outcome="failed")
    assert [(r["command"], r["error_code"]) for r in failed] == [
        ("ledger.manual_entry", "ENTRY_UNBALANCED"),
        ("ledger.manual_entry", "AMOUNT_NOT_POSITIVE"),
        ("ledger.manual_entry", "CURRENCY_MISMATCH"),
        ("ledger.hold.place", "ACCOUNT_NOT_FOUND"),
        ("ledger.hold.place", "ENTRY_INVALID"),
    ]


# --- request ids and logs -----------------------------------------------------------------


def test_request_id_is_echoed_and_lands_in_the_audit_record(api: Api) -> None:
    headers = {"X-Request-ID": "e2e-req.42"}
    body = {"code": "5000", "name": "Wages", "type": "expense", "currency": "USD"}
    response = api.post("maker", "/v1/accounts", body, headers)
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "e2e-req.42"
    records = api.audit(request_id="e2e-req.42")
    assert [(r["command"], r["actor"], r["inputs"]["spec"]["code"]) for r in records] == [
        ("ledger.account.open", "maker", "5000")
    ]

    refused = api.post("ops", "/v1/accounts", body, {"X-Request-ID": "e2e-req.43"})
    assert expect_problem(refused, 403, "PERMISSION_DENIED")["request_id"] == "e2e-req.43"
    assert [r["outcome"] for r in api.audit(request_id="e2e-req.43")] == ["refused"]

    # An id that is not safe to log is replaced by a fresh one.
    for unsafe in ("has space", "x" * 65, "semi;colon"):
        replaced = api.client.get("/healthz", headers={"X-Request-ID": unsafe})
        assert HEX_REQUEST_ID.match(replaced.headers["x-request-id"])
    generated = api.client.get("/healthz")
    assert HEX_REQUEST_ID.match(generated.headers["x-request-id"])


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every line the "lendcore" logger writes during the test, formatted as in production."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("lendcore")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def test_log_lines_never_carry_keys_passwords_or_tokens(api: Api, log_lines: list[str]) -> None:
    password = "never-log-this-password"
    wrong = "a-wrong-password-also-secret"
    created = api.post(
        "admin", "/v1/users", {"username": "teller", "roles": ["servicing"], "password": password}
    )
    issued = expect(api.post("admin", "/v1/api-keys", {"username": "teller"}), 201)["token"]
    token = expect(
        api.client.post("/v1/auth/token", json={"username": "teller", "password": password}), 200
    )["access_token"]
    refused = api.client.post("/v1/auth/token", json={"username": "teller", "password": wrong})
    by_key = api.client.get("/v1/holds", headers={"X-API-Key": issued})
    by_bearer_key = api.client.get("/v1/holds", headers={"Authorization": f"Bearer {issued}"})
    by_token = api.client.get("/v1/holds", headers={"Authorization": f"Bearer {token}"})
    assert (created.status_code, refused.status_code) == (201, 401)
    assert by_key.status_code == by_bearer_key.status_code == by_token.status_code == 200

    documents = [json.loads(line) for line in log_lines]
    requests = [d for d in documents if d["message"] == "request"]
    assert [(d["method"], d["path"], d["status"]) for d in requests] == [
        ("POST", "/v1/users", 201),
        ("POST", "/v1/api-keys", 201),
        ("POST", "/v1/auth/token", 200),
        ("POST", "/v1/auth/token", 401),
        ("GET", "/v1/holds", 200),
        ("GET", "/v1/holds", 200),
        ("GET", "/v1/holds", 200),
    ]
    assert [d.get("actor") for d in requests] == ["admin", "admin", None, None] + ["teller"] * 3
    assert all(d["logger"] == "lendcore.api" and d["level"] == "info" for d in requests)
    answered = (created, refused, by_key, by_bearer_key, by_token)
    assert [requests[i]["request_id"] for i in (0, 3, 4, 5, 6)] == [
        r.headers["x-request-id"] for r in answered
    ]
    secrets = [password, wrong, issued, issued.split("_", 2)[2], token, *api.tokens.values()]
    for line in log_lines:
        for secret in secrets:
            assert secret not in line


# --- what fuzzing found (tests/e2e/test_api_schemathesis.py), kept fixed --------------------


def test_method_not_allowed_lists_every_method_of_the_resource(api: Api) -> None:
    response = api.client.request("OPTIONS", "/v1/accounts", headers=api.as_("maker"))
    expect_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, POST"
    assert api.client.delete("/v1/business-date").headers["allow"] == "GET, POST"
    assert api.client.post("/healthz").headers["allow"] == "GET"


def test_dates_are_iso_text_never_a_number(api: Api) -> None:
    for params, field in (({"as_of": "0"}, "query.as_of"), ({"as_of": "20260101"}, "query.as_of")):
        problem = expect_problem(
            api.get("maker", "/v1/trial-balance", **params), 422, "INVALID_INPUT"
        )
        assert [e["field"] for e in problem["errors"]] == [field]
    moved = api.post("ops", "/v1/business-date", {"business_date": 1_800_000_000})
    problem = expect_problem(moved, 422, "INVALID_INPUT")
    assert [e["field"] for e in problem["errors"]] == ["body.business_date"]
    today = expect(api.get("ops", "/v1/business-date"), 200)
    assert today == {"business_date": api.today.isoformat()}


def test_ids_beyond_64_bits_are_invalid_input_not_server_errors(api: Api) -> None:
    too_big = str(2**63)
    for path, field in (
        (f"/v1/journal-entries/{too_big}", "path.entry_id"),
        (f"/v1/holds/{too_big}", "path.hold_id"),
        (f"/v1/approvals/{too_big}", "path.approval_id"),
    ):
        problem = expect_problem(api.get("auditor", path), 422, "INVALID_INPUT")
        assert [e["field"] for e in problem["errors"]] == [field]
    disabled = api.post("admin", f"/v1/webhooks/{too_big}/disable")
    assert [e["field"] for e in expect_problem(disabled, 422, "INVALID_INPUT")["errors"]] == [
        "path.webhook_id"
    ]
    expect_problem(api.get("ops", "/v1/holds", cursor="9" * 20), 422, "INVALID_INPUT")
    largest = str(2**63 - 1)
    expect_problem(api.get("ops", f"/v1/holds/{largest}"), 404, "HOLD_NOT_FOUND")


def test_nul_characters_are_refused_before_they_reach_the_database(api: Api) -> None:
    account = {"code": "1500", "name": "Bad\u0000name", "type": "asset", "currency": "USD"}
    problem = expect_problem(api.post("maker", "/v1/accounts", account), 422, "INVALID_INPUT")
    assert "name contains a NUL character" in problem["detail"]
    entry = {
        "idempotency_key": "nul",
        "postings": [
            {"account": "1000", "side": "debit", "amount": "1.00"},
            {"account": "3000", "side": "credit", "amount": "1.00"},
        ],
        "metadata": {"ref": ["ok", "b\u0000d"]},
    }
    problem = expect_problem(api.post("maker", "/v1/journal-entries", entry), 422, "INVALID_INPUT")
    assert "metadata.ref.1 contains a NUL character" in problem["detail"]
    expect_problem(api.get("admin", "/v1/users/a%00b"), 422, "INVALID_INPUT")
    expect_problem(api.get("auditor", "/v1/audit", actor="a\u0000"), 422, "INVALID_INPUT")
    expect_problem(api.get("maker", "/v1/accounts/1500"), 404, "ACCOUNT_NOT_FOUND")
    assert expect(api.get("maker", "/v1/approvals"), 200)["items"] == []


def test_a_replayed_response_keeps_its_schema(api: Api) -> None:
    body = {"username": "teller", "roles": ["servicing"], "password": "long enough password"}
    first = api.post("admin", "/v1/users", body, {"Idempotency-Key": "teller"})
    again = api.post("admin", "/v1/users", body, {"Idempotency-Key": "teller"})
    assert expect(first, 201)["has_password"] is True
    assert again.headers["idempotent-replayed"] == "true"
    assert expect(again, 201) == first.json()


def test_the_openapi_document_describes_problem_responses(api: Api) -> None:
    spec = expect(api.client.get("/openapi.json"), 200)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "instance",
        "request_id",
    }
    responses = spec["paths"]["/v1/journal-entries"]["post"]["responses"]
    assert sorted(responses) == ["202", "400", "401", "403", "404", "409", "422"]
    assert responses["404"]["content"] == {
        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert set(responses["202"]["headers"]) == {"X-Request-ID", "Idempotent-Replayed"}
    assert sorted(spec["paths"]["/healthz"]["get"]["responses"]) == ["200"]
    assert sorted(spec["paths"]["/v1/auth/token"]["post"]["responses"]) == [
        "200",
        "400",
        "401",
        "422",
    ]


def test_two_credentials_are_refused(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from lendcore.api import create_app
    from lendcore.services.identity import ensure_bootstrap_admin
    from lendcore.store.database import open_database

    database = open_database(sqlite_url)
    created = ensure_bootstrap_admin(database)
    assert created is not None
    with TestClient(create_app(database)) as client:
        ok = client.get("/v1/users", headers={"X-API-Key": created.api_key})
        assert ok.status_code == 200
        both = client.get(
            "/v1/users",
            headers={"X-API-Key": created.api_key, "Authorization": "Bearer not-a-token"},
        )
        assert both.status_code == 401
        assert both.json()["code"] == "UNAUTHENTICATED"
    database.dispose()
