"""The model registry: scoring model artifacts, and which is champion and challenger.

`register_model` stores an artifact whole (the `models` table is append-only;
the version is the artifact's content hash, so registering the same artifact
twice returns the first registration). `activate_model` is maker-checker
("model.activate"): a risk manager asks for a version to become the champion
(it scores live applications) or the challenger (scored in shadow beside it),
and a second risk manager's approval appends the activation. The decision
engine reads both with `active_models(conn)` inside its own transaction; a
stored decision is replayed with `model_by_version(conn, version)`. Loaded
models are cached by version: a version's content never changes.

`monitor_model` ("model.monitor") compares the applications the engine decided
in a window of business dates with the training population held in the
model's artifact: the PSI of the score and of each characteristic
(`risk.monitoring.population_stability`), watch above 0.10, warning above 0.25.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from threading import Lock
from typing import Any, Final

from sqlalchemy import Connection, insert, select

from lendcore.errors import InvalidInput, NotFound
from lendcore.risk.errors import (
    ModelAlreadyActive,
    ModelArtifactInvalid,
    ModelNotFound,
    ModelRoleInvalid,
    NoActiveModel,
)
from lendcore.risk.model import ScoringModel, load_model, read_document, seal
from lendcore.risk.monitoring import (
    PSI_WARNING,
    PSI_WATCH,
    StabilityRow,
    model_stability,
)
from lendcore.services import approvals
from lendcore.services.approvals import PendingApproval
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, current_actor, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database
from lendcore.store.schema import decisions, model_activations, models

MODEL_REGISTER: Final = "model.register"
MODEL_ACTIVATE: Final = "model.activate"
MODEL_READ: Final = "model.read"
MODEL_MONITOR: Final = "model.monitor"
MONITOR_DAYS_DEFAULT: Final = 90
MONITOR_DAYS_MAX: Final = 3_660  # ten years of business dates
MONITOR_ROWS_MAX: Final = 200_000  # the most recent decisions in the window, at most
MONITOR_PAGE: Final = 5_000  # decisions read per query
ROLES: Final = ("champion", "challenger")
CACHE_MAX: Final = 64
LIST_MAX: Final = 1_000
ARTIFACT_BYTES_MAX: Final = 32 * 1024 * 1024

_cache: OrderedDict[str, ScoringModel] = OrderedDict()
_cache_lock = Lock()


class NoRecentApplications(NotFound):
    """No application was decided in the monitoring window: there is nothing to compare."""

    code = "MODEL_MONITOR_NO_APPLICATIONS"


class ArtifactDocument:
    """An artifact given as a document (the API's JSON body).

    Wrapped so that the audit log records its version, not the whole artifact.
    """

    __slots__ = ("document",)

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = dict(document)

    def __str__(self) -> str:
        return f"model artifact {self.document.get('version', '(no version)')}"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    version: str
    kind: str
    name: str
    features: tuple[str, ...]
    training: Mapping[str, Any]
    registered_by: str
    business_date: date
    created_at: str
    roles: tuple[str, ...]  # the roles it holds now


def _loaded(version: str, artifact_json: str) -> ScoringModel:
    with _cache_lock:
        found = _cache.get(version)
        if found is not None:
            _cache.move_to_end(version)
            return found
    model = load_model(json.loads(artifact_json))
    with _cache_lock:
        _cache[version] = model
        while len(_cache) > CACHE_MAX:
            _cache.popitem(last=False)
    return model


def _training_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    training = document.get("training", {})
    if not isinstance(training, Mapping):
        return {}
    return {k: v for k, v in training.items() if k != "distribution"}


def _current_roles(conn: Connection) -> dict[str, str]:
    """role -> version, from the latest activation of each role."""
    rows = conn.execute(
        select(model_activations.c.role, model_activations.c.version).order_by(
            model_activations.c.id
        )
    ).all()
    return {row.role: row.version for row in rows}


def _to_registered(row: Any, roles: Mapping[str, str]) -> RegisteredModel:
    document = json.loads(row.artifact_json)
    return RegisteredModel(
        version=row.version,
        kind=row.kind,
        name=row.name,
        features=tuple(document.get("features", ())),
        training=json.loads(row.training_json),
        registered_by=row.registered_by,
        business_date=row.business_date,
        created_at=row.created_at,
        roles=tuple(r for r in ROLES if roles.get(r) == row.version),
    )


@command(MODEL_REGISTER)
def register_model(
    db: Database, source: str | Path | ArtifactDocument, name: str | None = None
) -> RegisteredModel:
    """Store a model artifact (a directory, a model.json file, or a document)."""
    if isinstance(source, ArtifactDocument):
        document = source.document
    else:
        path = Path(source)
        file = path / "model.json" if path.is_dir() else path
        if file.exists() and file.stat().st_size > ARTIFACT_BYTES_MAX:
            raise ModelArtifactInvalid(f"{file} is larger than a model artifact may be")
        document = read_document(path)
    model = load_model(document)  # checks the artifact and its content hash
    sealed = seal(document)
    artifact_json = json.dumps(sealed, sort_keys=True, separators=(",", ":"))
    label = (name or str(sealed.get("name") or model.kind))[:200]
    with db.transaction() as conn:
        existing = conn.execute(select(models).where(models.c.version == model.version)).first()
        if existing is None:
            conn.execute(
                insert(models).values(
                    version=model.version,
                    kind=model.kind,
                    name=label,
                    artifact_json=artifact_json,
                    training_json=json.dumps(_training_summary(sealed), sort_keys=True),
                    registered_by=db.actor.label,
                    business_date=current_business_date(conn),
                    created_at=utc_timestamp(),
                )
            )
            emit(
                conn,
                "model.registered",
                "model",
                model.version,
                {"version": model.version, "kind": model.kind, "name": label},
            )
        note_result(version=model.version, kind=model.kind, new=existing is None)
        row = conn.execute(select(models).where(models.c.version == model.version)).one()
        return _to_registered(row, _current_roles(conn))


def _registered_row(conn: Connection, version: str) -> Any:
    """A registered model's version, kind and name, or ModelNotFound."""
    row = conn.execute(
        select(models.c.version, models.c.kind, models.c.name).where(models.c.version == version)
    ).first()
    if row is None:
        raise ModelNotFound(f"no registered model {version}", version=version)
    return row


@command(MODEL_ACTIVATE)
def activate_model(db: Database, version: str, role: str) -> PendingApproval:
    """The maker's step: a second risk manager's approval makes `version` the `role`."""
    if role not in ROLES:
        raise ModelRoleInvalid(f"a model role is one of {', '.join(ROLES)}, not {role!r}")
    with db.transaction() as conn:
        row = _registered_row(conn, version)
        current = _current_roles(conn)
        if current.get(role) == version:
            raise ModelAlreadyActive(f"model {version[:12]} is the {role} already", version=version)
        return approvals.submit(
            conn,
            db,
            MODEL_ACTIVATE,
            {"version": version, "role": role, "maker": db.actor.label},
            f"Make {row.kind} {row.name} ({version[:12]}) the {role}",
        )


@approvals.executes(MODEL_ACTIVATE)
def _activate_approved(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    version, role = str(payload["version"]), str(payload["role"])
    if conn.execute(select(models.c.id).where(models.c.version == version)).first() is None:
        raise ModelNotFound(f"no registered model {version}", version=version)
    actor = current_actor()
    conn.execute(
        insert(model_activations).values(
            role=role,
            version=version,
            made_by=str(payload.get("maker", "")),
            approved_by=actor.label if actor is not None else "system",
            business_date=current_business_date(conn),
            created_at=utc_timestamp(),
        )
    )
    emit(conn, "model.activated", "model", version, {"version": version, "role": role})
    return {"version": version, "role": role}


def active_models(conn: Connection) -> tuple[ScoringModel, ScoringModel | None]:
    """(champion, challenger or None) in the caller's transaction, cached by version."""
    roles = _current_roles(conn)
    if "champion" not in roles:
        raise NoActiveModel("no champion model is active: register one and activate it")
    champion = model_by_version(conn, roles["champion"])
    challenger = model_by_version(conn, roles["challenger"]) if "challenger" in roles else None
    return champion, challenger


def model_by_version(conn: Connection, version: str) -> ScoringModel:
    """A registered model by its version (for decisions and their replay), cached."""
    with _cache_lock:
        found = _cache.get(version)
    if found is not None:
        return found
    artifact_json = conn.execute(
        select(models.c.artifact_json).where(models.c.version == version)
    ).scalar_one_or_none()
    if artifact_json is None:
        raise ModelNotFound(f"no registered model {version}", version=version)
    return _loaded(version, artifact_json)


@query(MODEL_READ)
def list_models(db: Database) -> list[RegisteredModel]:
    with db.reading() as conn:
        roles = _current_roles(conn)
        rows = conn.execute(select(models).order_by(models.c.id).limit(LIST_MAX)).all()
        return [_to_registered(r, roles) for r in rows]


@query(MODEL_READ)
def get_model(db: Database, version: str) -> RegisteredModel:
    with db.reading() as conn:
        row = conn.execute(select(models).where(models.c.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no registered model {version}", version=version)
        return _to_registered(row, _current_roles(conn))


# --- monitoring ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitoringReport:
    """The PSI of a model's score and characteristics, a window's applications against
    the model's training population."""

    version: str
    kind: str
    name: str
    roles: tuple[str, ...]  # the roles the model holds now
    date_from: date | None  # the window of business dates (None: a file's rows)
    date_to: date | None
    applications: int  # decided by the engine in the window (the most recent, at most the cap)
    truncated: bool  # more were decided in the window than MONITOR_ROWS_MAX
    rows: tuple[StabilityRow, ...]
    source: str | None = None  # a data file compared instead of stored applications

    @property
    def warnings(self) -> tuple[StabilityRow, ...]:
        return tuple(r for r in self.rows if r.status == "warning")

    @property
    def watch(self) -> tuple[StabilityRow, ...]:
        return tuple(r for r in self.rows if r.status == "watch")

    def to_doc(self) -> dict[str, Any]:
        """The JSON form the CLI's --json and the API share."""
        return {
            "model": {
                "version": self.version,
                "kind": self.kind,
                "name": self.name,
                "roles": list(self.roles),
            },
            "window": None
            if self.date_from is None or self.date_to is None
            else {"from": self.date_from.isoformat(), "to": self.date_to.isoformat()},
            "source": self.source,
            "applications": self.applications,
            "truncated": self.truncated,
            "thresholds": {"watch": PSI_WATCH, "warning": PSI_WARNING},
            "rows": [
                {
                    "quantity": r.quantity,
                    "psi": round(r.psi, 4),
                    "status": r.status,
                    "expected": [round(v, 4) for v in r.expected],
                    "actual": [round(v, 4) for v in r.actual],
                }
                for r in self.rows
            ],
            "warnings": [r.quantity for r in self.warnings],
            "watch": [r.quantity for r in self.watch],
        }


def monitoring_window(
    today: date, date_from: date | None, date_to: date | None, days: int | None
) -> tuple[date, date]:
    """The window of business dates, both ends included: `date_to` (the business date
    by default) and `date_from`, or the `days` business dates ending at `date_to`."""
    end = date_to or today
    if date_from is not None and days is not None:
        raise InvalidInput("give the window's start or its number of days, not both", field="days")
    if date_from is None:
        span = MONITOR_DAYS_DEFAULT if days is None else days
        if isinstance(span, bool) or not isinstance(span, int) or not 1 <= span <= MONITOR_DAYS_MAX:
            raise InvalidInput(
                f"days: a whole number from 1 to {MONITOR_DAYS_MAX}, not {span!r}", field="days"
            )
        return end - timedelta(days=span - 1), end
    if date_from > end:
        raise InvalidInput(
            f"the window starts on {date_from} after it ends on {end}", field="date_from"
        )
    if (end - date_from).days >= MONITOR_DAYS_MAX:
        raise InvalidInput(f"a window spans at most {MONITOR_DAYS_MAX} days", field="date_from")
    return date_from, end


def _decided_features(
    conn: Connection, start: date, end: date
) -> tuple[list[dict[str, Any]], bool]:
    """The characteristics of the applications the engine decided from `start` to `end`,
    the most recent first, at most MONITOR_ROWS_MAX (and whether there were more)."""
    found: list[dict[str, Any]] = []
    before: int | None = None
    while len(found) <= MONITOR_ROWS_MAX:
        page = select(decisions.c.id, decisions.c.inputs_json).where(
            decisions.c.kind == "engine",
            decisions.c.business_date >= start,
            decisions.c.business_date <= end,
        )
        if before is not None:
            page = page.where(decisions.c.id < before)
        rows = conn.execute(page.order_by(decisions.c.id.desc()).limit(MONITOR_PAGE)).all()
        for row in rows:
            features = json.loads(row.inputs_json).get("features")
            found.append(dict(features) if isinstance(features, Mapping) else {})
        if len(rows) < MONITOR_PAGE:
            break
        before = rows[-1].id
    truncated = len(found) > MONITOR_ROWS_MAX
    return found[:MONITOR_ROWS_MAX], truncated


@query(MODEL_MONITOR)
def monitor_model(
    db: Database,
    *,
    version: str | None = None,
    role: str = "champion",
    date_from: date | None = None,
    date_to: date | None = None,
    days: int | None = None,
) -> MonitoringReport:
    """PSI of a model's score and of each characteristic: the applications decided in
    the window against the model's training population.

    The model is `version`, or the one holding `role` now (the champion by default).
    The window is `date_from`..`date_to` (business dates, both included), or the last
    `days` business dates (90 by default) up to `date_to` (the business date).
    Each application is scored again with the model (a challenger is monitored on
    the same applications as the champion).
    """
    if version is None and role not in ROLES:
        raise ModelRoleInvalid(f"a model role is one of {', '.join(ROLES)}, not {role!r}")
    with db.reading() as conn:
        roles = _current_roles(conn)
        if version is None:
            if role not in roles:
                raise NoActiveModel(f"no {role} model is active")
            version = roles[role]
        row = _registered_row(conn, version)
        model = model_by_version(conn, version)
        start, end = monitoring_window(current_business_date(conn), date_from, date_to, days)
        recent, truncated = _decided_features(conn, start, end)
    if not recent:
        raise NoRecentApplications(
            f"no application was decided from {start} to {end}: nothing to compare with "
            "the training population",
            date_from=start.isoformat(),
            date_to=end.isoformat(),
        )
    report = model_stability(model, recent)
    return MonitoringReport(
        version=row.version,
        kind=row.kind,
        name=row.name,
        roles=tuple(r for r in ROLES if roles.get(r) == row.version),
        date_from=start,
        date_to=end,
        applications=report.n_recent,
        truncated=truncated,
        rows=report.rows,
    )
