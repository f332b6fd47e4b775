"""`lendcore model train|score|monitor|register|activate|list`: scorecards and models."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendcore.cli.common import (
    JsonOption,
    console,
    db,
    handles_errors,
    parse_iso_date,
    print_json,
)
from lendcore.errors import InvalidInput
from lendcore.risk.datasets import read_table
from lendcore.risk.model import REASONS_MAX, load_model, score_all
from lendcore.risk.monitoring import PSI_WARNING, model_stability
from lendcore.services import models as model_service
from lendcore.services.models import RegisteredModel

model_app = typer.Typer(
    help="Scoring models: train, score, monitor, register, activate (maker-checker), list.",
    no_args_is_help=True,
)


def _fmt(value: Any) -> str:
    return "" if value is None else str(value)


@model_app.command("train")
@handles_errors
def model_train(
    data: Path = typer.Option(..., "--data", help="Training data: CSV (or .csv.gz) with a header."),
    target: str = typer.Option(..., "--target", help="The 0/1 (or good/bad) default column."),
    id_column: str | None = typer.Option(None, "--id", help="A row id column (never a feature)."),
    out: Path = typer.Option(..., "--out", help="Directory for the artifacts and reports."),
    name: str = typer.Option("scorecard", "--name", help="The model's name."),
    challenger: bool = typer.Option(
        True, "--challenger/--no-challenger", help="Also train LightGBM."
    ),
    derived: bool = typer.Option(
        True,
        "--derived/--no-derived",
        help="Add derived characteristics (all late payments, monthly debt payments).",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Train a scorecard (optbinning) and a LightGBM challenger; write artifacts and reports."""
    from lendcore.risk.train import TrainConfig, train, write_outputs

    table = read_table(data, target=target, id_column=id_column)
    config = TrainConfig(name=name, challenger=challenger, derived=derived)
    if json_out:
        result = train(table, config)
    else:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("reading", total=None)
            result = train(table, config, lambda step: progress.update(task, description=step))
    files = write_outputs(result, out)
    report = result.report
    if json_out:
        print_json({"report": report, "files": files})
        return
    table_out = Table(
        title=f"Validation of {name} ({report['data']['file']}, {report['data']['rows']} rows)"
    )
    for column in ("Model", "Population", "AUC", "Gini", "KS"):
        table_out.add_column(column)
    for model, pops in report["metrics"].items():
        for population, m in pops.items():
            table_out.add_row(model, population, str(m["auc"]), str(m["gini"]), str(m["ks"]))
    console.print(table_out)
    reasons = Table(title="Reason codes")
    for column in ("Code", "Text", "Characteristic"):
        reasons.add_column(column)
    for r in report["reason_codes"]:
        reasons.add_row(r["code"], r["text"], r["characteristic"])
    console.print(reasons)
    console.print(f"scorecard {report['model']['version']}", highlight=False)
    if report["challenger"]:
        console.print(f"challenger {report['challenger']['version']}", highlight=False)
    console.print(f"wrote {', '.join(files)}", highlight=False)


@model_app.command("score")
@handles_errors
def model_score(
    model_dir: Path = typer.Option(..., "--model", help="An artifact directory or model.json."),
    data: Path = typer.Option(..., "--data", help="Applications to score: CSV with a header."),
    out: Path = typer.Option(..., "--out", help="The scored CSV to write."),
    id_column: str | None = typer.Option(None, "--id", help="A row id column (never a feature)."),
    target: str | None = typer.Option(None, "--target", help="A target column to ignore."),
) -> None:
    """Score a file: one row per input row with id, pd, score and the top reason codes."""
    model = load_model(model_dir)
    table = read_table(
        data, target=None, id_column=id_column, features=model.features, check_constant=False
    )
    if target is not None and target in model.features:
        raise typer.BadParameter("the target column cannot be one of the model's features")
    results = score_all(model, list(table.rows()))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [id_column or "row", "pd", "score", *(f"reason_{i}" for i in range(1, REASONS_MAX + 1))]
    )
    for row_id, scored in zip(table.ids, results, strict=True):
        codes = [r.code for r in scored.reasons] + [""] * (REASONS_MAX - len(scored.reasons))
        writer.writerow([row_id, str(scored.pd), scored.score, *codes])
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    console.print(
        f"scored {len(results)} rows with {model.kind} {model.version[:12]} into {out}",
        highlight=False,
    )


@model_app.command("monitor")
@handles_errors
def model_monitor(
    ctx: typer.Context,
    version: str | None = typer.Option(
        None, "--version", help="A registered model's version (default: the --role's model)."
    ),
    role: str = typer.Option("champion", "--role", help="champion or challenger."),
    date_from: str | None = typer.Option(
        None, "--from", help="First business date of the window (YYYY-MM-DD)."
    ),
    date_to: str | None = typer.Option(
        None, "--to", help="Last business date of the window (default: the business date)."
    ),
    days: int | None = typer.Option(
        None, "--days", help="The window's length in business dates, ending --to (default 90)."
    ),
    model_dir: Path | None = typer.Option(
        None, "--model", help="File mode: an artifact directory or model.json (with --data)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="File mode: recent applications, CSV with a header (with --model)."
    ),
    id_column: str | None = typer.Option(
        None, "--id", help="File mode: a row id column (never a feature)."
    ),
    fail_on_warning: bool = typer.Option(
        False, "--fail-on-warning", help="Exit 2 when a PSI is above 0.25 (for scheduled runs)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """PSI of the score and each characteristic: recent applications against training.

    By default the applications the engine decided in the last 90 business dates,
    against the champion's training population; `--model DIR --data FILE` compares
    a file with an artifact instead, without a database.
    """
    if (model_dir is None) != (data is None):
        raise InvalidInput("file mode needs both --model and --data", field="data")
    if model_dir is not None and data is not None:
        report = _monitor_file(model_dir, data, id_column)
    else:
        report = model_service.monitor_model(
            db(ctx),
            version=version,
            role=role,
            date_from=parse_iso_date(date_from),
            date_to=parse_iso_date(date_to),
            days=days,
        )
    if json_out:
        print_json(report.to_doc())
    else:
        _print_monitoring(report)
    if fail_on_warning and report.warnings:
        raise typer.Exit(2)


def _monitor_file(
    model_dir: Path, data: Path, id_column: str | None
) -> model_service.MonitoringReport:
    model = load_model(model_dir)
    table = read_table(
        data, target=None, id_column=id_column, features=model.features, check_constant=False
    )
    stability = model_stability(model, list(table.rows()))
    return model_service.MonitoringReport(
        version=model.version,
        kind=model.kind,
        name=str(getattr(model, "name", model.kind)),
        roles=(),
        date_from=None,
        date_to=None,
        applications=stability.n_recent,
        truncated=False,
        rows=stability.rows,
        source=str(data),
    )


def _print_monitoring(report: model_service.MonitoringReport) -> None:
    if report.source is not None:
        population = f"{report.applications} rows of {report.source}"
    else:
        population = (
            f"{report.applications} applications decided {report.date_from} to {report.date_to}"
        )
    roles = f" ({', '.join(report.roles)})" if report.roles else ""
    out = Table(
        title=f"Population stability of {report.kind} {report.name} {report.version[:12]}{roles}: "
        f"{population} vs training"
    )
    for column in ("Quantity", "PSI", "Status"):
        out.add_column(column)
    for r in report.rows:
        style = "red" if r.status == "warning" else "yellow" if r.status == "watch" else ""
        out.add_row(r.quantity, f"{r.psi:.4f}", r.status, style=style)
    console.print(out)
    if report.truncated:
        console.print(
            f"only the most recent {report.applications} applications of the window were compared",
            highlight=False,
        )
    for r in report.warnings:
        console.print(
            f"warning: {r.quantity} PSI {r.psi:.3f} above {PSI_WARNING}: the population has "
            "shifted since training",
            style="red",
            highlight=False,
        )


def _model_doc(m: RegisteredModel) -> dict[str, Any]:
    return {
        "version": m.version,
        "kind": m.kind,
        "name": m.name,
        "features": list(m.features),
        "roles": list(m.roles),
        "training": dict(m.training),
        "registered_by": m.registered_by,
        "business_date": m.business_date.isoformat(),
        "created_at": m.created_at,
    }


@model_app.command("register")
@handles_errors
def model_register(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="An artifact directory (its model.json) or file."),
    name: str | None = typer.Option(None, "--name", help="A name for the registry."),
    json_out: bool = JsonOption,
) -> None:
    """Store a model artifact in the registry (its version is its content hash)."""
    registered = model_service.register_model(db(ctx), str(path), name)
    if json_out:
        print_json(_model_doc(registered))
        return
    console.print(
        f"registered {registered.kind} {registered.name} {registered.version}", highlight=False
    )


@model_app.command("activate")
@handles_errors
def model_activate(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The model's version (content hash)."),
    role: str = typer.Option("champion", "--role", help="champion or challenger."),
    json_out: bool = JsonOption,
) -> None:
    """Ask for a model to become champion or challenger; another risk manager approves."""
    pending = model_service.activate_model(db(ctx), version, role)
    if json_out:
        print_json(
            {"approval_id": pending.id, "status": pending.status, "summary": pending.summary}
        )
        return
    console.print(
        f"submitted as approval {pending.id}: {pending.summary}; another risk manager "
        f"approves it with `lendcore approval approve {pending.id}`",
        highlight=False,
    )


@model_app.command("list")
@handles_errors
def model_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """The registered models and the roles they hold."""
    found = model_service.list_models(db(ctx))
    if json_out:
        print_json({"models": [_model_doc(m) for m in found]})
        return
    out = Table(title="Registered models")
    for column in ("Version", "Kind", "Name", "Roles", "Rows", "Registered"):
        out.add_column(column)
    for m in found:
        out.add_row(
            m.version[:16],
            m.kind,
            m.name,
            ", ".join(m.roles),
            _fmt(m.training.get("rows")),
            f"{m.registered_by} {m.business_date.isoformat()}",
        )
    console.print(out)
