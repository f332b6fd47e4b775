"""End to end through the `lendcore` command: the conventions every command keeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lendcore.cli import app

runner = CliRunner()


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.stdout, result.stderr


def book(db_url: str, *args: str) -> tuple[int, str, str]:
    """Submit a manual entry as the local operator and approve it as a second accountant."""
    code, out, err = run(db_url, "entry", "book", *args, "--json")
    if code != 0:
        return code, out, err
    approval = json.loads(out)
    return run(db_url, "--as", "checker", "approval", "approve", str(approval["id"]), "--json")


def lendcore_bin() -> str:
    return str(Path(sys.executable).with_name("lendcore"))


@pytest.fixture
def chart(db_url: str) -> str:
    for args in (
        ["1000", "Cash", "--type", "asset", "--currency", "USD", "--constraint", "non_negative"],
        ["3000", "Capital", "--type", "equity", "--currency", "USD"],
        ["1100", "Loans", "--type", "asset", "--currency", "USD"],
        ["1110", "Principal", "--type", "asset", "--currency", "USD", "--parent", "1100"],
    ):
        code, _out, err = run(db_url, "account", "open", *args)
        assert code == 0, err
    code, _out, err = run(db_url, "user", "create", "checker", "--role", "accountant")
    assert code == 0, err
    return db_url


def test_book_show_and_trial_balance_as_json(chart: str) -> None:
    code, out, err = book(chart, "--key", "cap", "-p", "D:1000:1000.00", "-p", "C:3000:1000.00")
    assert code == 0, err
    entry = json.loads(
        run(chart, "entry", "show", str(json.loads(out)["result"]["entry_id"]), "--json")[1]
    )
    assert entry["postings"][0] == {
        "account": "1000",
        "side": "debit",
        "amount": "1000.00",
        "currency": "USD",
    }
    code, out, _ = book(chart, "--key", "loan", "-p", "D:1110:250.50", "-p", "C:1000:250.50")
    assert code == 0
    code, out, _ = run(chart, "ledger", "trial-balance", "--roll-up", "--json")
    assert code == 0
    tb = json.loads(out)
    assert tb["balanced"] is True
    by_code = {a["code"]: a for a in tb["accounts"]}
    assert by_code["1100"]["debit"] == "250.50"  # rolled up from 1110
    assert by_code["1000"]["debit"] == "749.50"
    assert tb["totals"] == [{"currency": "USD", "debit": "1000.00", "credit": "1000.00"}]


def test_bad_input_is_one_line_on_stderr_and_writes_nothing(chart: str) -> None:
    cases = [
        (["-p", "D:1000:1.001", "-p", "C:3000:1.001"], "AMOUNT_TOO_PRECISE"),
        (["-p", "D:1000:5.00", "-p", "C:3000:4.00"], "ENTRY_UNBALANCED"),
        (["-p", "D:9999:5.00", "-p", "C:3000:5.00"], "ACCOUNT_NOT_FOUND"),
        (["-p", "D:1000:0", "-p", "C:3000:0"], "AMOUNT_NOT_POSITIVE"),
        (["-p", "D-1000-5", "-p", "C:3000:5"], "ENTRY_INVALID"),
    ]
    for postings, expected in cases:
        code, out, err = run(chart, "entry", "book", "--key", "bad", *postings)
        assert code == 1
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"error[{expected}]: ")
    # A constraint is checked when the entry books, at approval: the approval fails
    # and stays pending; nothing is booked.
    code, out, err = book(chart, "--key", "over", "-p", "D:3000:5.00", "-p", "C:1000:5.00")
    assert code == 1
    assert err.startswith("error[BALANCE_CONSTRAINT_VIOLATED]: ")
    code, out, _ = run(chart, "entry", "list", "--json")
    assert code == 0
    assert json.loads(out)["entries"] == []
    pending = json.loads(run(chart, "approval", "list", "--json")[1])["approvals"]
    assert [a["status"] for a in pending] == ["pending"]


def test_idempotent_retry_and_conflict(chart: str) -> None:
    args = ["entry", "book", "--key", "k", "-p", "D:1000:10.00", "-p", "C:3000:10.00", "--json"]
    first = json.loads(run(chart, *args)[1])
    again = json.loads(run(chart, *args)[1])
    assert again["id"] == first["id"]
    assert again["status"] == "pending"
    assert len(json.loads(run(chart, "approval", "list", "--json")[1])["approvals"]) == 1
    code, _out, err = run(
        chart, "entry", "book", "--key", "k", "-p", "D:1000:11.00", "-p", "C:3000:11.00"
    )
    assert code == 1
    assert err.startswith("error[IDEMPOTENCY_KEY_REUSED]")


def test_holds_and_reversal(chart: str) -> None:
    assert book(chart, "--key", "cap", "-p", "D:1000:100.00", "-p", "C:3000:100.00")[0] == 0
    code, out, err = run(chart, "date", "show", "--json")
    today = json.loads(out)["business_date"]
    code, out, err = run(
        chart,
        "hold",
        "place",
        "--key",
        "h",
        "--debit",
        "1110",
        "--credit",
        "1000",
        "--amount",
        "80.00",
        "--expires",
        today,
        "--json",
    )
    assert code == 0, err
    hold = json.loads(out)
    code, _out, err = book(chart, "--key", "x", "-p", "D:1110:30.00", "-p", "C:1000:30.00")
    assert err.startswith("error[BALANCE_CONSTRAINT_VIOLATED]")
    code, out, err = run(
        chart, "hold", "post", str(hold["id"]), "--key", "hp", "--amount", "50.00", "--json"
    )
    assert code == 0, err
    posted = json.loads(out)
    code, out, _ = run(chart, "ledger", "balance", "1000", "--json")
    assert json.loads(out)["available"] == "50.00"
    code, out, err = run(chart, "entry", "reverse", str(posted["id"]), "--key", "r", "--json")
    assert code == 0, err
    code, out, err = run(
        chart, "--as", "checker", "approval", "approve", str(json.loads(out)["id"]), "--json"
    )
    assert code == 0, err
    reversal = json.loads(
        run(chart, "entry", "show", str(json.loads(out)["result"]["entry_id"]), "--json")[1]
    )
    assert reversal["reverses_entry_id"] == posted["id"]
    code, out, _err = run(chart, "entry", "reverse", str(posted["id"]), "--key", "r2", "--json")
    code, _out, err = run(
        chart, "--as", "checker", "approval", "approve", str(json.loads(out)["id"])
    )
    assert err.startswith("error[ENTRY_ALREADY_REVERSED]")
    code, out, _ = run(chart, "ledger", "verify", "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True


def test_business_date_never_moves_back(chart: str) -> None:
    today = json.loads(run(chart, "date", "show", "--json")[1])["business_date"]
    assert run(chart, "date", "advance", "--days", "2")[0] == 0
    code, _out, err = run(chart, "date", "set", today)
    assert code == 1
    assert err.startswith("error[BUSINESS_DATE_BACKWARDS]")


def test_installed_command_demo_and_env_var(tmp_path: Path) -> None:
    """The real console script, the database chosen by LENDCORE_DB_URL, a new file migrated."""
    db_file = tmp_path / "demo.db"
    env = {**os.environ, "LENDCORE_DB_URL": f"sqlite:///{db_file}"}
    done = subprocess.run(
        [lendcore_bin(), "demo", "--loans", "6", "--days", "40"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Trial balance" in done.stdout and "Portfolio" in done.stdout
    assert "Applications: 6" in done.stdout
    assert db_file.exists()
    verify = subprocess.run(
        [lendcore_bin(), "ledger", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    booked = report["entries_checked"]
    assert booked > 6
    again = subprocess.run(
        [lendcore_bin(), "demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0
    assert "nothing booked again" in again.stdout
    verify_again = subprocess.run(
        [lendcore_bin(), "ledger", "verify", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(verify_again.stdout)["entries_checked"] == booked


def test_unsupported_url_is_a_clear_error() -> None:
    done = subprocess.run(
        [lendcore_bin(), "--db", "mysql://x/y", "date", "show"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error[INVALID_INPUT]: unsupported database URL scheme")
