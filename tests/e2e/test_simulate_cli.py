"""`lendcore simulate` end to end: a small book lived and reported in the
terminal and as an HTML page that works offline; bad input is one clear line,
a non-zero exit and no database created."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lendcore.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def database_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    ("option", "value", "code"),
    [
        ("--loans", "0", "SIMULATION_SIZE_INVALID"),
        ("--loans", "-5", "SIMULATION_SIZE_INVALID"),
        ("--days", "0", "SIMULATION_SIZE_INVALID"),
        ("--days", "-1", "SIMULATION_SIZE_INVALID"),
        ("--loans", "20001", "SIMULATION_SIZE_INVALID"),
        ("--stress", "lots", "SIMULATION_SETTING_INVALID"),
        ("--html", "no/such/directory/report.html", "SIMULATION_SETTING_INVALID"),
        ("--start", "2026-13-45", "DATE_INVALID"),
    ],
)
def test_bad_input_is_one_line_and_creates_no_database(
    tmp_path: Path, option: str, value: str, code: str
) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    exit_code, out, err = run("--db", url, "simulate", "--loans", "5", "--days", "5", option, value)
    assert exit_code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error[{code}]: ")
    assert database_files(tmp_path) == []


def test_a_small_book_is_lived_reported_and_not_simulated_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    page = tmp_path / "report.html"
    # A start date of its own, so two runs started either side of midnight agree.
    start = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    args = ("simulate", "--loans", "8", "--days", "12", "--seed", "5", "--start", start)
    exit_code, out, err = run("--db", url, *args, "--html", str(page))
    assert exit_code == 0, err
    for title in ("Simulation", "Portfolio as of the close of", "By product", "IFRS 9 stage mix"):
        assert title in out
    assert re.search(r"Loans booked and disbursed\s+│?\s*8\b", out), out
    assert "PAR30" in out and "PAR90" in out and "Interest income" in out
    assert f"HTML report: {page.resolve()}" in " ".join(out.split())
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for chart in ("chart-par", "chart-balance", "chart-stages", "chart-vintages"):
        assert f'id="{chart}"' in text
    # Offline: plotly.js is inlined, nothing is fetched.
    assert "Plotly.newPlot" in text and len(text) > 1_000_000
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    assert re.search(r"<link[^>]*\bhref=", text) is None
    # A second run on the same database books nothing and says why.
    exit_code, out, err = run("--db", url, *args, "--html", str(tmp_path / "again.html"))
    assert exit_code == 1
    assert err.startswith("error[SIMULATION_DATABASE_NOT_EMPTY]: ")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "again.html").exists()
    # The same seed and start on another database: the same page, byte for byte.
    other = tmp_path / "other.html"
    exit_code, _out, err = run(
        "--db", f"sqlite:///{tmp_path / 'other.db'}", *args, "--html", str(other)
    )
    assert exit_code == 0, err
    assert other.read_bytes() == page.read_bytes()
