"""End of day end to end: `lendcore eod ...`, `gl drill`, `report provision` and
their /v1 endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import warnings
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from lendcore.api.app import create_app
from lendcore.cli import app
from lendcore.services import identity
from lendcore.store.database import Database, open_database
from tests.integration.eod_helpers import open_book

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def run_json(db_url: str, *args: str) -> Any:
    code, out, err = run(db_url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_cli_closes_days_drills_and_reports(db_url: str, tmp_path: Path) -> None:
    db = open_database(db_url)
    try:
        open_book(db, 12, seed=1)
    finally:
        db.engine.dispose()
    start = date.fromisoformat(run_json(db_url, "eod", "status")["business_date"])
    target = start + timedelta(days=40)
    runs = run_json(db_url, "eod", "run", "--to", target.isoformat())["runs"]
    assert [r["business_date"] for r in runs][-1] == target.isoformat() and len(runs) == 41
    status = run_json(db_url, "eod", "status")
    assert status["business_date"] == (target + timedelta(days=1)).isoformat()
    assert status["last_run"]["business_date"] == target.isoformat()
    assert status["under_way"] is False
    # A summarised entry lists the loans behind it; their parts add up to the entry.
    entry = runs[-1]["entries"][0]
    drill = run_json(db_url, "gl", "drill", str(entry))
    assert drill["loans"] and drill["entry_id"] == entry
    # The provision report of the period, and its workbook.
    xlsx = tmp_path / "provision.xlsx"
    report = run_json(
        db_url,
        "report",
        "provision",
        "--date",
        target.isoformat(),
        "--from",
        start.isoformat(),
        "--xlsx",
        str(xlsx),
    )
    currencies = {c["currency"] for c in report["currencies"]}
    assert currencies == {"USD", "KES", "EUR"}
    usd = next(c for c in report["currencies"] if c["currency"] == "USD")
    lines = {m["line"]: m for m in usd["movements"]}
    assert lines["opening"]["total"] == "0.00"
    assert lines["new_loans"]["total"] != "0.00"
    assert (
        lines["closing"]["total"] == next(s for s in usd["stage_mix"] if s["stage"] is None)["ecl"]
    )
    assert len(report["xlsx"]) == 3
    with zipfile.ZipFile(report["xlsx"][0]) as workbook:
        assert any(name.startswith("xl/worksheets/") for name in workbook.namelist())
    # Bad input: one clear line, non-zero exit, nothing written.
    code, _out, err = run(db_url, "eod", "run", "--to", start.isoformat())
    assert code != 0 and err.startswith("error[EOD_DATE_IN_PAST]")
    code, _out, err = run(db_url, "report", "provision", "--date", "2001-01-01")
    assert code != 0 and err.startswith("error[REPORT_DATE_NOT_CLOSED]")
    assert run_json(db_url, "eod", "status")["business_date"] == status["business_date"]


def test_api_closes_a_day_and_reports(db: Database) -> None:
    book = open_book(db, 6, seed=2)
    identity.create_user(db, "acc", ["accountant"])
    identity.create_user(db, "aud", ["auditor"])
    acc = {"X-API-Key": identity.create_api_key(db, "acc", label="e2e").token}
    aud = {"X-API-Key": identity.create_api_key(db, "aud", label="e2e").token}
    with TestClient(create_app(book.operator)) as http:
        before = http.get("/v1/eod/status", headers=aud).json()
        first = http.post("/v1/eod/runs", json={}, headers={**acc, "Idempotency-Key": "eod-1"})
        assert first.status_code == 201, first.text
        again = http.post("/v1/eod/runs", json={}, headers={**acc, "Idempotency-Key": "eod-1"})
        assert again.json() == first.json()
        second = http.post("/v1/eod/runs", json={}, headers=acc).json()
        after = http.get("/v1/eod/status", headers=aud).json()
        assert (
            after["business_date"]
            == (date.fromisoformat(before["business_date"]) + timedelta(days=2)).isoformat()
        )
        # An auditor reads but never closes a day.
        refused = http.post("/v1/eod/runs", json={}, headers=aud)
        assert refused.status_code == 403
        entry = second["summary"]["entries"][0]
        drill = http.get(f"/v1/gl/entries/{entry}/drill", headers=aud).json()
        assert drill["loans"] and all(
            isinstance(v, str) for line in drill["loans"] for v in line["amounts"].values()
        )
        report = http.get(
            "/v1/reports/provision",
            params={"date": second["business_date"], "from": first.json()["business_date"]},
            headers=aud,
        )
        assert report.status_code == 200, report.text
        assert {c["currency"] for c in report.json()["currencies"]} == {"USD", "KES", "EUR"}
        bad = http.post("/v1/eod/runs", json={"engine": "cobol"}, headers=acc)
        assert bad.status_code == 422
