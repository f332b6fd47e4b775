"""A loan's history page by page: `lendcore loan show --history-limit/--history-cursor`
and GET /v1/loans/{id}?history_limit=&history_cursor=, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from lendcore.api.app import create_app
from lendcore.cli import app
from lendcore.services import identity, loans
from lendcore.store.database import Database
from tests.integration.loan_helpers import open_lender

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()
REPAYMENTS = 4  # events: the disbursement, then these


@pytest.fixture
def loan(db: Database) -> int:
    """A disbursed loan with REPAYMENTS small repayments."""
    lender = open_lender(db)
    loan_id = loans.disburse(lender.servicing, lender.book("2400.00", 6).id).id
    for n in range(REPAYMENTS):
        loans.repay(lender.servicing, loan_id, 500 + n, "USD")
    identity.create_user(db, "otto", ["loan_officer"])
    return loan_id


def _show(db_url: str, loan_id: int, *options: str) -> Any:
    result = runner.invoke(app, ["--db", db_url, "loan", "show", str(loan_id), *options, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_pages_through_the_history(db_url: str, loan: int) -> None:
    first = _show(db_url, loan, "--history-limit", "3")
    assert [h["seq"] for h in first["history"]] == [3, 4, 5]
    assert [a["amount"] for a in first["allocations"]] == ["5.01", "5.02", "5.03"]
    assert first["history_next_cursor"] == "3"
    older = _show(db_url, loan, "--history-limit", "3", "--history-cursor", "3")
    assert [h["seq"] for h in older["history"]] == [1, 2]
    assert older["history_next_cursor"] is None
    assert older["balances"] == first["balances"]
    table = runner.invoke(app, ["--db", db_url, "loan", "show", str(loan), "--history-limit", "2"])
    assert table.exit_code == 0 and "Older events: --history-cursor 4" in table.stdout
    bad = runner.invoke(app, ["--db", db_url, "loan", "show", str(loan), "--history-limit", "0"])
    assert bad.exit_code != 0 and bad.stderr.startswith("error[INVALID_INPUT]")


@pytest.fixture
def http(db: Database, loan: int) -> Iterator[tuple[TestClient, dict[str, str]]]:
    key = {"X-API-Key": identity.create_api_key(db, "otto", label="e2e").token}
    with TestClient(create_app(db)) as client:
        yield client, key


def test_api_pages_through_the_history(http: tuple[TestClient, dict[str, str]], loan: int) -> None:
    client, key = http
    url = f"/v1/loans/{loan}"
    latest = client.get(url, headers=key)
    assert latest.status_code == 200, latest.text
    assert [h["seq"] for h in latest.json()["history"]] == list(range(1, REPAYMENTS + 2))
    assert latest.json()["history_next_cursor"] is None
    page = client.get(url, params={"history_limit": 2}, headers=key).json()
    seen = [h["seq"] for h in page["history"]]
    while page["history_next_cursor"] is not None:
        cursor = page["history_next_cursor"]
        page = client.get(
            url, params={"history_limit": 2, "history_cursor": cursor}, headers=key
        ).json()
        seen = [h["seq"] for h in page["history"]] + seen
    assert seen == list(range(1, REPAYMENTS + 2))
    for params in ({"history_limit": 0}, {"history_cursor": "x"}, {"history_cursor": "0"}):
        refused = client.get(url, params=params, headers=key)
        assert refused.status_code == 422, (params, refused.text)
