"""Borrowers, KYC evidence, watch lists and screening: one transaction each.

A loan officer onboards a borrower (`create_borrower`); the national id is
stored encrypted, with a keyed hash that refuses a second borrower with the same
id, and only its masked form is ever shown. The borrower is screened against the
latest version of every watch list in the same transaction, and again whenever
the name or date of birth changes or a new list is loaded. A candidate match is
a hit, referred to a person: clearing or confirming it is the maker-checker
command "screening.resolve".

For the decision engine, inside its own transaction: `borrower_on(conn, id)`
(KYC and screening status as of the business date) and `group_members_on`.

The data key (origination.protect) comes from $LENDCORE_DATA_KEY (base64url of 32
bytes), else the file named by $LENDCORE_DATA_KEY_FILE, else a key file beside a
SQLite database (`<database>.key`), else ~/.config/lendcore/data.key; a missing
key file is created with 0600 permissions on first use.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from threading import Lock
from typing import Any, Final, Literal

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from lendcore.errors import Conflict, InvalidInput, NotFound
from lendcore.origination.borrowers import (
    Borrower,
    BorrowerDetails,
    BorrowerInvalid,
    BorrowerKind,
    BorrowerUpdate,
    GroupKind,
    KycCheck,
    KycEvidence,
    KycOutcome,
    KycStatus,
    ScreeningStatus,
    apply_update,
    check_national_id,
    clean_text,
    kyc_status,
    mask,
    validate_details,
    validate_evidence,
)
from lendcore.origination.protect import DataKeys, load_or_create_key_file, parse_key
from lendcore.origination.screening import (
    THRESHOLD_DEFAULT,
    ListEntry,
    PreparedList,
    Subject,
    WatchListFile,
    normalise_name,
    prepare,
    screen,
)
from lendcore.services import approvals
from lendcore.services.approvals import PendingApproval
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, current_actor, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database, normalise_url
from lendcore.store.schema import (
    borrower_groups,
    borrowers,
    kyc_checks,
    pending_approvals,
    screening_hits,
    screening_results,
    watch_list_entries,
    watch_lists,
)

BORROWER_CHANGE: Final = "borrower.change"
BORROWER_READ: Final = "borrower.read"
KYC_RECORD: Final = "borrower.kyc.record"
SCREENING_RUN: Final = "screening.run"
SCREENING_RESOLVE: Final = "screening.resolve"
SCREENING_READ: Final = "screening.read"
WATCHLIST_LOAD: Final = "watchlist.load"
WATCHLIST_READ: Final = "watchlist.read"

DATA_KEY_ENV: Final = "LENDCORE_DATA_KEY"
DATA_KEY_FILE_ENV: Final = "LENDCORE_DATA_KEY_FILE"
NATIONAL_ID: Final = "national_id"
DOCUMENT_NUMBER: Final = "document_number"

PAGE_SIZE_MAX: Final = 500
# Rows read per batch when the whole book is screened.
SCREEN_BATCH: Final = 500
# Lists kept prepared in memory (versions never change, so a cache is safe).
PREPARED_CACHE_MAX: Final = 16
NOTE_LENGTH_MAX: Final = 500
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")


class BorrowerNotFound(NotFound):
    code = "BORROWER_NOT_FOUND"


class BorrowerDuplicate(Conflict):
    """Another borrower has this national id (found by its keyed hash)."""

    code = "BORROWER_DUPLICATE"


class ScreeningHitNotFound(NotFound):
    code = "SCREENING_HIT_NOT_FOUND"


class ScreeningHitResolved(Conflict):
    code = "SCREENING_HIT_ALREADY_RESOLVED"


class ScreeningHitUnderReview(Conflict):
    code = "SCREENING_HIT_UNDER_REVIEW"


# --- read models ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScreeningHit:
    id: int
    borrower_id: int
    borrower_name: str
    list_name: str
    entry_name: str
    entry_reference: str | None
    entry_date_of_birth: date | None
    entry_birth_year: int | None
    entry_country: str | None
    score: Decimal
    name_score: Decimal
    dob_match: str
    status: str
    approval_id: int | None
    resolved_by: str | None
    approved_by: str | None
    resolved_at: str | None
    resolution_note: str | None
    business_date: date
    created_at: str


@dataclass(frozen=True, slots=True)
class ScreeningOutcome:
    """One borrower screened: against which list versions, what it found."""

    borrower_id: int
    status: str
    lists: tuple[str, ...]
    entries_checked: int
    candidates: int
    new_hits: tuple[ScreeningHit, ...]
    threshold: Decimal


@dataclass(frozen=True, slots=True)
class ScreeningSummary:
    borrowers_screened: int
    new_hits: int
    by_status: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class WatchList:
    id: int
    name: str
    version: int
    source: str
    digest: str
    entry_count: int
    loaded_by: str
    business_date: date
    loaded_at: str


@dataclass(frozen=True, slots=True)
class WatchListLoad:
    """What loading a list did: a new version ("loaded") or none ("unchanged")."""

    outcome: Literal["loaded", "unchanged"]
    watch_list: WatchList
    screened: ScreeningSummary | None


@dataclass(frozen=True, slots=True)
class BorrowerView:
    """A borrower whole: details, KYC evidence (newest first), screening hits, group."""

    borrower: Borrower
    kyc_checks: tuple[KycCheck, ...]
    hits: tuple[ScreeningHit, ...]
    group_members: tuple[int, ...]


# --- the data key --------------------------------------------------------------------

_keys: dict[str, DataKeys] = {}
_keys_lock = Lock()


def key_file_for(db_url: str) -> Path:
    """Where the data key file of a database is: $LENDCORE_DATA_KEY_FILE, beside a
    SQLite file, or the user's configuration folder (PostgreSQL, in-memory SQLite)."""
    named = os.environ.get(DATA_KEY_FILE_ENV)
    if named:
        return Path(named).expanduser()
    url = make_url(normalise_url(db_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database).expanduser().resolve()
        return database.with_name(database.name + ".key")
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "lendcore" / "data.key"


def data_keys(db: Database) -> DataKeys:
    """The keys that encrypt and hash this database's personal identifiers."""
    from_env = os.environ.get(DATA_KEY_ENV)
    source = f"env:{hashlib.sha256(from_env.encode()).hexdigest()}" if from_env else ""
    path = None if from_env else key_file_for(db.url)
    cache_key = source or f"file:{path}"
    with _keys_lock:
        found = _keys.get(cache_key)
        if found is not None:
            return found
        if from_env:
            keys = parse_key(from_env, f"${DATA_KEY_ENV}")
        else:
            assert path is not None
            keys = load_or_create_key_file(path)
        _keys[cache_key] = keys
        return keys


def national_id_on(conn: Connection, borrower_id: int, keys: DataKeys) -> str | None:
    """The national id in clear, for lendcore's own processes (a bureau report); it is
    never rendered: screens and the API show `national_id_masked`."""
    token = conn.execute(
        select(borrowers.c.national_id_encrypted).where(borrowers.c.id == borrower_id)
    ).scalar_one_or_none()
    return None if token is None else keys.decrypt(token, NATIONAL_ID)


# --- reading borrowers (for other services too) --------------------------------------


def _borrower_query() -> Any:
    return select(borrowers, borrower_groups.c.name.label("group_name")).outerjoin(
        borrower_groups, borrower_groups.c.id == borrowers.c.group_id
    )


def _to_borrower(row: Any, today: date) -> Borrower:
    return Borrower(
        id=int(row.id),
        kind=row.kind,
        name=row.name,
        date_of_birth=row.date_of_birth,
        registered_on=row.registered_on,
        monthly_income_minor=int(row.monthly_income_minor),
        monthly_obligations_minor=int(row.monthly_obligations_minor),
        currency=row.currency,
        employment_status=row.employment_status,
        group_id=None if row.group_id is None else int(row.group_id),
        kyc_status=kyc_status(row.kyc_outcome, row.kyc_valid_until, today).value,
        screening_status=row.screening_status,
        email=row.email,
        phone=row.phone,
        address=row.address,
        country=row.country,
        national_id_masked=row.national_id_masked,
        employer=row.employer,
        employed_since=row.employed_since,
        group_name=row.group_name,
        kyc_valid_until=row.kyc_valid_until,
        created_by=row.created_by,
        created_on=row.business_date,
        updated_at=row.updated_at,
    )


def _borrower_row(conn: Connection, borrower_id: int, *, lock: bool = False) -> Any:
    q = select(borrowers).where(borrowers.c.id == borrower_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise BorrowerNotFound(f"no borrower {borrower_id}", borrower_id=borrower_id)
    return row


def borrower_on(conn: Connection, borrower_id: int) -> Borrower:
    """A borrower as of the business date, in the caller's transaction (no permission
    check of its own: for the decision engine and other services)."""
    row = conn.execute(_borrower_query().where(borrowers.c.id == borrower_id)).first()
    if row is None:
        raise BorrowerNotFound(f"no borrower {borrower_id}", borrower_id=borrower_id)
    return _to_borrower(row, current_business_date(conn))


def group_members_on(conn: Connection, group_id: int) -> list[int]:
    """The ids of the borrowers in a connected-party group, ascending."""
    return [
        int(i)
        for i in conn.execute(
            select(borrowers.c.id).where(borrowers.c.group_id == group_id).order_by(borrowers.c.id)
        ).scalars()
    ]


# --- screening -----------------------------------------------------------------------

_prepared: dict[tuple[str, tuple[int, ...]], PreparedList] = {}
_prepared_lock = Lock()


def _current_lists(conn: Connection) -> list[Any]:
    """The latest version of every watch list, by name."""
    latest = (
        select(watch_lists.c.name, func.max(watch_lists.c.version).label("version"))
        .group_by(watch_lists.c.name)
        .subquery()
    )
    return list(
        conn.execute(
            select(watch_lists)
            .join(
                latest,
                and_(
                    watch_lists.c.name == latest.c.name,
                    watch_lists.c.version == latest.c.version,
                ),
            )
            .order_by(watch_lists.c.name)
        )
    )


def _prepared_lists(conn: Connection, lists: Sequence[Any]) -> PreparedList:
    """The entries of these list versions, names normalised once per process."""
    ids = tuple(int(r.id) for r in lists)
    cache_key = (f"{conn.engine.url}|{'|'.join(r.digest for r in lists)}", ids)
    with _prepared_lock:
        found = _prepared.get(cache_key)
    if found is not None:
        return found
    rows = conn.execute(
        select(watch_list_entries)
        .where(watch_list_entries.c.watch_list_id.in_(ids))
        .order_by(watch_list_entries.c.id)
    )
    prepared = prepare(
        ListEntry(
            name=r.name,
            date_of_birth=r.date_of_birth,
            birth_year=r.birth_year,
            country=r.country,
            list_name=r.list_name,
            reference=r.reference,
            id=int(r.id),
        )
        for r in rows
    )
    with _prepared_lock:
        _prepared[cache_key] = prepared
        while len(_prepared) > PREPARED_CACHE_MAX:
            _prepared.pop(next(iter(_prepared)))
    return prepared


def _match_key(entry: ListEntry, name: str, date_of_birth: date | None) -> str:
    """The borrower's screened name and birth and the list entry: one referral per pair
    (the name's words sorted: "Petrov Ivan" is not referred again as "Ivan Petrov")."""
    words = " ".join(sorted(normalise_name(name).split()))
    text = f"{entry.list_name}|{entry.key}|{words}|{date_of_birth or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def _status_from_hits(conn: Connection, borrower_id: int, screened: bool) -> ScreeningStatus:
    statuses = set(
        conn.execute(
            select(screening_hits.c.status)
            .where(screening_hits.c.borrower_id == borrower_id)
            .distinct()
        ).scalars()
    )
    if "confirmed" in statuses:
        return ScreeningStatus.HIT
    if "pending" in statuses:
        return ScreeningStatus.PENDING
    return ScreeningStatus.CLEAR if screened else ScreeningStatus.NOT_SCREENED


def _x100(value: float | Decimal) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def _screen_on(
    conn: Connection, actor_label: str, row: Any, lists: Sequence[Any] | None = None
) -> ScreeningOutcome:
    """Screen one borrower row against the latest lists; record the result and new hits."""
    if lists is None:
        lists = _current_lists(conn)
    today = current_business_date(conn)
    now = utc_timestamp()
    prepared = _prepared_lists(conn, lists)
    subject = Subject(row.name, row.date_of_birth)
    candidates = screen(subject, prepared, THRESHOLD_DEFAULT)
    known = set(
        conn.execute(
            select(screening_hits.c.match_key).where(screening_hits.c.borrower_id == row.id)
        ).scalars()
    )
    fresh = []
    for candidate in candidates:
        key = _match_key(candidate.entry, row.name, row.date_of_birth)
        if key not in known:
            known.add(key)
            fresh.append((key, candidate))
    screened = bool(lists)
    labels = tuple(f"{r.name}:v{r.version}" for r in lists)
    result_id = conn.execute(
        insert(screening_results)
        .values(
            borrower_id=row.id,
            subject_name=row.name,
            subject_date_of_birth=row.date_of_birth,
            lists=",".join(labels)[:500],
            entries_checked=len(prepared.entries),
            candidates=len(candidates),
            new_hits=len(fresh),
            status="screened" if screened else "no-lists",
            threshold_x100=_x100(THRESHOLD_DEFAULT),
            screened_by=actor_label,
            business_date=today,
            screened_at=now,
        )
        .returning(screening_results.c.id)
    ).scalar_one()
    new_ids = []
    for key, candidate in fresh:
        new_ids.append(
            conn.execute(
                insert(screening_hits)
                .values(
                    borrower_id=row.id,
                    result_id=result_id,
                    entry_id=candidate.entry.id,
                    match_key=key,
                    list_name=candidate.entry.list_name,
                    entry_name=candidate.entry.name,
                    entry_reference=candidate.entry.reference,
                    score_x100=_x100(candidate.score),
                    name_score_x100=_x100(candidate.name_score),
                    dob_match=candidate.dob_match.value,
                    status="pending",
                    business_date=today,
                    created_at=now,
                )
                .returning(screening_hits.c.id)
            ).scalar_one()
        )
    status = _status_from_hits(conn, row.id, screened)
    conn.execute(
        update(borrowers)
        .where(borrowers.c.id == row.id)
        .values(screening_status=status.value, screened_at=now if screened else row.screened_at)
    )
    if new_ids:
        emit(
            conn,
            "screening.hits_referred",
            "borrower",
            row.id,
            {"borrower_id": row.id, "hit_ids": new_ids},
        )
    return ScreeningOutcome(
        borrower_id=int(row.id),
        status=status.value,
        lists=labels,
        entries_checked=len(prepared.entries),
        candidates=len(candidates),
        new_hits=tuple(_hits_on(conn, hit_ids=new_ids)) if new_ids else (),
        threshold=Decimal(str(THRESHOLD_DEFAULT)),
    )


def _screen_all_on(conn: Connection, actor_label: str) -> ScreeningSummary:
    lists = _current_lists(conn)
    after = 0
    screened = new_hits = 0
    by_status: dict[str, int] = {}
    while True:
        rows = conn.execute(
            select(borrowers)
            .where(borrowers.c.id > after)
            .order_by(borrowers.c.id)
            .limit(SCREEN_BATCH)
            .with_for_update()
        ).all()
        if not rows:
            break
        for row in rows:
            outcome = _screen_on(conn, actor_label, row, lists)
            screened += 1
            new_hits += len(outcome.new_hits)
            by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
        after = int(rows[-1].id)
    return ScreeningSummary(screened, new_hits, dict(sorted(by_status.items())))


# --- borrowers -----------------------------------------------------------------------


def _identity_columns(db: Database, national_id: str | None) -> dict[str, Any]:
    if national_id is None:
        return {"national_id_encrypted": None, "national_id_hash": None, "national_id_masked": None}
    keys = data_keys(db)
    normalised = check_national_id(national_id)
    return {
        "national_id_encrypted": keys.encrypt(national_id, NATIONAL_ID),
        "national_id_hash": keys.keyed_hash(normalised),
        "national_id_masked": mask(normalised),
    }


def _refuse_duplicate(conn: Connection, hashed: str | None, borrower_id: int | None) -> None:
    if hashed is None:
        return
    q = select(borrowers.c.id).where(borrowers.c.national_id_hash == hashed)
    if borrower_id is not None:
        q = q.where(borrowers.c.id != borrower_id)
    other = conn.execute(q).scalar_one_or_none()
    if other is not None:
        raise BorrowerDuplicate(
            f"borrower {other} has this national id already", existing_borrower_id=int(other)
        )


def _detail_columns(details: BorrowerDetails) -> dict[str, Any]:
    return {
        "name": details.name,
        "date_of_birth": details.date_of_birth,
        "registered_on": details.registered_on,
        "email": details.email,
        "phone": details.phone,
        "address": details.address,
        "country": details.country,
        "monthly_income_minor": details.monthly_income_minor,
        "monthly_obligations_minor": details.monthly_obligations_minor,
        "currency": details.currency,
        "employment_status": (
            None if details.employment_status is None else details.employment_status.value
        ),
        "employer": details.employer,
        "employed_since": details.employed_since,
    }


def _duplicate_from(error: IntegrityError) -> BorrowerDuplicate | None:
    if "national_id_hash" in str(error.orig):
        return BorrowerDuplicate("another borrower has this national id already")
    return None


@command(BORROWER_CHANGE)
def create_borrower(db: Database, details: BorrowerDetails) -> Borrower:
    """Onboard a borrower and screen them against the watch lists, in one transaction."""
    with db.transaction() as conn:
        today = current_business_date(conn)
        valid = validate_details(details, today)
        identity = _identity_columns(db, valid.national_id)
        _refuse_duplicate(conn, identity["national_id_hash"], None)
        now = utc_timestamp()
        try:
            borrower_id = conn.execute(
                insert(borrowers)
                .values(
                    kind=valid.kind.value,
                    **_detail_columns(valid),
                    **identity,
                    screening_status=ScreeningStatus.NOT_SCREENED.value,
                    created_by=db.actor.label,
                    business_date=today,
                    created_at=now,
                    updated_at=now,
                )
                .returning(borrowers.c.id)
            ).scalar_one()
        except IntegrityError as exc:
            duplicate = _duplicate_from(exc)
            if duplicate is None:
                raise
            raise duplicate from None
        outcome = _screen_on(conn, db.actor.label, _borrower_row(conn, borrower_id))
        emit(
            conn,
            "borrower.created",
            "borrower",
            borrower_id,
            {"borrower_id": borrower_id, "kind": valid.kind.value, "screening": outcome.status},
        )
        note_result(borrower_id=borrower_id, screening=outcome.status)
        return borrower_on(conn, borrower_id)


def _details_of(row: Any) -> BorrowerDetails:
    return BorrowerDetails(
        kind=BorrowerKind(row.kind),
        name=row.name,
        currency=row.currency,
        date_of_birth=row.date_of_birth,
        registered_on=row.registered_on,
        email=row.email,
        phone=row.phone,
        address=row.address,
        country=row.country,
        national_id=None,
        monthly_income_minor=int(row.monthly_income_minor),
        monthly_obligations_minor=int(row.monthly_obligations_minor),
        employment_status=row.employment_status,
        employer=row.employer,
        employed_since=row.employed_since,
    )


@command(BORROWER_CHANGE)
def update_borrower(db: Database, borrower_id: int, change: BorrowerUpdate) -> Borrower:
    """Change some of a borrower's details; a new name or date of birth is screened again."""
    fields = change.changed_fields()
    if not fields:
        raise BorrowerInvalid("nothing to change: name at least one field", field="")
    with db.transaction() as conn:
        today = current_business_date(conn)
        row = _borrower_row(conn, borrower_id, lock=True)
        current = _details_of(row)
        valid = validate_details(
            apply_update(current, BorrowerUpdate(**{f: getattr(change, f) for f in fields})),
            today,
        )
        values = _detail_columns(valid)
        if change.national_id is not None:
            identity = _identity_columns(db, valid.national_id)
            _refuse_duplicate(conn, identity["national_id_hash"], borrower_id)
            values.update(identity)
        try:
            conn.execute(
                update(borrowers)
                .where(borrowers.c.id == borrower_id)
                .values(**values, updated_at=utc_timestamp())
            )
        except IntegrityError as exc:
            duplicate = _duplicate_from(exc)
            if duplicate is None:
                raise
            raise duplicate from None
        rescreen = (valid.name, valid.date_of_birth) != (row.name, row.date_of_birth)
        if rescreen:
            _screen_on(conn, db.actor.label, _borrower_row(conn, borrower_id))
        emit(
            conn,
            "borrower.updated",
            "borrower",
            borrower_id,
            {"borrower_id": borrower_id, "fields": list(fields), "screened": rescreen},
        )
        note_result(borrower_id=borrower_id, fields=list(fields), screened=rescreen)
        return borrower_on(conn, borrower_id)


@command(BORROWER_CHANGE)
def set_group(
    db: Database, borrower_id: int, group: str | None, kind: GroupKind = GroupKind.HOUSEHOLD
) -> Borrower:
    """Put a borrower in a connected-party group (made on first use), or none."""
    with db.transaction() as conn:
        _borrower_row(conn, borrower_id, lock=True)
        group_id = None
        if group is not None:
            name = clean_text(group, "group")
            if name is None:
                raise BorrowerInvalid("borrower group: a name is required", field="group")
            try:
                wanted = GroupKind(kind)
            except ValueError:
                raise BorrowerInvalid(
                    "borrower group_kind: is household or companies", field="group_kind"
                ) from None
            found = conn.execute(
                select(borrower_groups.c.id, borrower_groups.c.kind).where(
                    borrower_groups.c.name == name
                )
            ).first()
            if found is None:
                group_id = conn.execute(
                    insert(borrower_groups)
                    .values(
                        name=name,
                        kind=wanted.value,
                        created_by=db.actor.label,
                        created_at=utc_timestamp(),
                    )
                    .returning(borrower_groups.c.id)
                ).scalar_one()
            elif found.kind != wanted.value:
                raise BorrowerInvalid(
                    f"borrower group_kind: group {name!r} is a {found.kind} group, not {wanted}",
                    field="group_kind",
                )
            else:
                group_id = found.id
        conn.execute(
            update(borrowers)
            .where(borrowers.c.id == borrower_id)
            .values(group_id=group_id, updated_at=utc_timestamp())
        )
        note_result(borrower_id=borrower_id, group_id=group_id)
        return borrower_on(conn, borrower_id)


def _to_check(row: Any) -> KycCheck:
    return KycCheck(
        id=int(row.id),
        borrower_id=int(row.borrower_id),
        outcome=KycOutcome(row.outcome),
        document_type=row.document_type,
        document_number_masked=row.document_number_masked,
        checked_by=row.checked_by,
        checked_on=row.checked_on,
        valid_until=row.valid_until,
        note=row.note,
        recorded_at=row.recorded_at,
    )


@command(KYC_RECORD)
def record_kyc_check(db: Database, borrower_id: int, evidence: KycEvidence) -> KycCheck:
    """Record one KYC check with its evidence (append-only); the latest check decides
    the borrower's KYC status."""
    with db.transaction() as conn:
        today = current_business_date(conn)
        _borrower_row(conn, borrower_id, lock=True)
        valid = validate_evidence(evidence, today)
        keys = data_keys(db)
        check_id = conn.execute(
            insert(kyc_checks)
            .values(
                borrower_id=borrower_id,
                outcome=valid.outcome.value,
                document_type=valid.document_type,
                document_number_encrypted=keys.encrypt(valid.document_number, DOCUMENT_NUMBER),
                document_number_masked=mask(valid.document_number.replace(" ", "")),
                checked_by=db.actor.label,
                checked_on=valid.checked_on,
                valid_until=valid.valid_until,
                note=valid.note,
                business_date=today,
                recorded_at=utc_timestamp(),
            )
            .returning(kyc_checks.c.id)
        ).scalar_one()
        conn.execute(
            update(borrowers)
            .where(borrowers.c.id == borrower_id)
            .values(
                kyc_outcome=valid.outcome.value,
                kyc_valid_until=valid.valid_until,
                updated_at=utc_timestamp(),
            )
        )
        status = kyc_status(valid.outcome, valid.valid_until, today)
        emit(
            conn,
            "borrower.kyc_recorded",
            "borrower",
            borrower_id,
            {"borrower_id": borrower_id, "check_id": check_id, "kyc_status": status.value},
        )
        note_result(borrower_id=borrower_id, check_id=check_id, kyc_status=status.value)
        row = conn.execute(select(kyc_checks).where(kyc_checks.c.id == check_id)).one()
        return _to_check(row)


@query(BORROWER_READ)
def get_borrower(db: Database, borrower_id: int) -> BorrowerView:
    """A borrower with the KYC evidence, the screening hits and the group's members."""
    with db.reading() as conn:
        borrower = borrower_on(conn, borrower_id)
        checks = conn.execute(
            select(kyc_checks)
            .where(kyc_checks.c.borrower_id == borrower_id)
            .order_by(kyc_checks.c.id.desc())
        )
        return BorrowerView(
            borrower=borrower,
            kyc_checks=tuple(_to_check(r) for r in checks),
            hits=tuple(_hits_on(conn, borrower_id=borrower_id)),
            group_members=tuple(
                [] if borrower.group_id is None else group_members_on(conn, borrower.group_id)
            ),
        )


def _kyc_filter(status: KycStatus, today: date) -> Any:
    outcome, valid_until = borrowers.c.kyc_outcome, borrowers.c.kyc_valid_until
    return {
        KycStatus.PENDING: or_(outcome.is_(None), outcome == "pending"),
        KycStatus.REJECTED: outcome == "rejected",
        KycStatus.VERIFIED: and_(outcome == "verified", valid_until >= today),
        KycStatus.EXPIRED: and_(
            outcome == "verified", or_(valid_until.is_(None), valid_until < today)
        ),
    }[status]


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@query(BORROWER_READ)
def list_borrowers(
    db: Database,
    *,
    kind: str | None = None,
    kyc: str | None = None,
    screening: str | None = None,
    group_id: int | None = None,
    name: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Borrower]:
    """Borrowers by id, filtered by kind, KYC status (as of the business date),
    screening status, group, or a part of the name (any case)."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    q = _borrower_query().where(borrowers.c.id > after_id)
    try:
        if kind is not None:
            q = q.where(borrowers.c.kind == BorrowerKind(kind).value)
        if screening is not None:
            q = q.where(borrowers.c.screening_status == ScreeningStatus(screening).value)
        kyc_wanted = None if kyc is None else KycStatus(kyc)
    except ValueError as exc:
        raise InvalidInput(f"unknown filter value: {exc}") from None
    if group_id is not None:
        q = q.where(borrowers.c.group_id == group_id)
    if name:
        q = q.where(func.lower(borrowers.c.name).like(_like_pattern(name), escape="\\"))
    with db.reading() as conn:
        today = current_business_date(conn)
        if kyc_wanted is not None:
            q = q.where(_kyc_filter(kyc_wanted, today))
        rows = conn.execute(q.order_by(borrowers.c.id).limit(limit))
        return [_to_borrower(r, today) for r in rows]


# --- screening commands --------------------------------------------------------------


@command(SCREENING_RUN)
def screen_borrower(db: Database, borrower_id: int) -> ScreeningOutcome:
    """Screen one borrower against the latest version of every watch list now."""
    with db.transaction() as conn:
        outcome = _screen_on(conn, db.actor.label, _borrower_row(conn, borrower_id, lock=True))
        note_result(borrower_id=borrower_id, status=outcome.status, new_hits=len(outcome.new_hits))
        return outcome


@command(SCREENING_RUN)
def screen_all(db: Database) -> ScreeningSummary:
    """Screen every borrower again (after a list changed), in one transaction."""
    with db.transaction() as conn:
        summary = _screen_all_on(conn, db.actor.label)
        note_result(borrowers=summary.borrowers_screened, new_hits=summary.new_hits)
        return summary


def _to_watch_list(row: Any) -> WatchList:
    return WatchList(
        id=int(row.id),
        name=row.name,
        version=int(row.version),
        source=row.source,
        digest=row.digest,
        entry_count=int(row.entry_count),
        loaded_by=row.loaded_by,
        business_date=row.business_date,
        loaded_at=row.loaded_at,
    )


@command(WATCHLIST_LOAD)
def load_watch_list(
    db: Database, watch_list: WatchListFile, rescreen: bool = True
) -> WatchListLoad:
    """Store a watch list as the next version of its name and (by default) screen
    every borrower against the lists as they now are. The same entries again store
    nothing and screen nobody."""
    if not _LIST_NAME.match(watch_list.name):
        raise InvalidInput(
            f"watch list name {watch_list.name!r}: letters, digits, spaces, '_', '.', '-' "
            "(at most 100)"
        )
    with db.transaction() as conn:
        latest = conn.execute(
            select(watch_lists)
            .where(watch_lists.c.name == watch_list.name)
            .order_by(watch_lists.c.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.digest == watch_list.digest:
            note_result(name=watch_list.name, version=int(latest.version), outcome="unchanged")
            return WatchListLoad("unchanged", _to_watch_list(latest), None)
        version = 1 if latest is None else int(latest.version) + 1
        list_id = conn.execute(
            insert(watch_lists)
            .values(
                name=watch_list.name,
                version=version,
                source=watch_list.source[-300:],
                digest=watch_list.digest,
                entry_count=len(watch_list.entries),
                loaded_by=db.actor.label,
                business_date=current_business_date(conn),
                loaded_at=utc_timestamp(),
            )
            .returning(watch_lists.c.id)
        ).scalar_one()
        conn.execute(
            insert(watch_list_entries),
            [
                {
                    "watch_list_id": list_id,
                    "name": e.name,
                    "date_of_birth": e.date_of_birth,
                    "birth_year": e.birth_year,
                    "country": e.country,
                    "list_name": e.list_name,
                    "reference": e.reference,
                }
                for e in watch_list.entries
            ],
        )
        emit(
            conn,
            "watchlist.loaded",
            "watch_list",
            watch_list.name,
            {"name": watch_list.name, "version": version, "entries": len(watch_list.entries)},
        )
        summary = _screen_all_on(conn, db.actor.label) if rescreen else None
        note_result(
            name=watch_list.name,
            version=version,
            outcome="loaded",
            new_hits=None if summary is None else summary.new_hits,
        )
        stored = conn.execute(select(watch_lists).where(watch_lists.c.id == list_id)).one()
        return WatchListLoad("loaded", _to_watch_list(stored), summary)


@query(WATCHLIST_READ)
def list_watch_lists(db: Database) -> list[WatchList]:
    """The latest version of every watch list, by name."""
    with db.reading() as conn:
        return [_to_watch_list(r) for r in _current_lists(conn)]


def _hits_on(
    conn: Connection,
    *,
    hit_ids: Sequence[int] | None = None,
    borrower_id: int | None = None,
    status: str | None = None,
    after_id: int = 0,
    limit: int = PAGE_SIZE_MAX,
) -> list[ScreeningHit]:
    q = (
        select(
            screening_hits,
            borrowers.c.name.label("borrower_name"),
            watch_list_entries.c.date_of_birth.label("entry_date_of_birth"),
            watch_list_entries.c.birth_year.label("entry_birth_year"),
            watch_list_entries.c.country.label("entry_country"),
        )
        .join(borrowers, borrowers.c.id == screening_hits.c.borrower_id)
        .join(watch_list_entries, watch_list_entries.c.id == screening_hits.c.entry_id)
        .where(screening_hits.c.id > after_id)
    )
    if hit_ids is not None:
        q = q.where(screening_hits.c.id.in_(list(hit_ids)))
    if borrower_id is not None:
        q = q.where(screening_hits.c.borrower_id == borrower_id)
    if status is not None:
        q = q.where(screening_hits.c.status == status)
    return [
        ScreeningHit(
            id=int(r.id),
            borrower_id=int(r.borrower_id),
            borrower_name=r.borrower_name,
            list_name=r.list_name,
            entry_name=r.entry_name,
            entry_reference=r.entry_reference,
            entry_date_of_birth=r.entry_date_of_birth,
            entry_birth_year=r.entry_birth_year,
            entry_country=r.entry_country,
            score=Decimal(r.score_x100) / 100,
            name_score=Decimal(r.name_score_x100) / 100,
            dob_match=r.dob_match,
            status=r.status,
            approval_id=r.approval_id,
            resolved_by=r.resolved_by,
            approved_by=r.approved_by,
            resolved_at=r.resolved_at,
            resolution_note=r.resolution_note,
            business_date=r.business_date,
            created_at=r.created_at,
        )
        for r in conn.execute(q.order_by(screening_hits.c.id).limit(limit))
    ]


@query(SCREENING_READ)
def list_hits(
    db: Database,
    *,
    status: str | None = None,
    borrower_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[ScreeningHit]:
    """Screening hits by id: pending ones await a person's decision."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_SIZE_MAX}")
    if status is not None and status not in ("pending", "cleared", "confirmed"):
        raise InvalidInput("a hit's status is pending, cleared or confirmed")
    with db.reading() as conn:
        return _hits_on(
            conn, borrower_id=borrower_id, status=status, after_id=after_id, limit=limit
        )


# --- resolving a hit: maker-checker --------------------------------------------------

Decision = Literal["clear", "confirm"]
_RESOLVED: Final[dict[str, str]] = {"clear": "cleared", "confirm": "confirmed"}


def _lock_pending_hit(conn: Connection, hit_id: int) -> Any:
    row = conn.execute(
        select(screening_hits).where(screening_hits.c.id == hit_id).with_for_update()
    ).first()
    if row is None:
        raise ScreeningHitNotFound(f"no screening hit {hit_id}", hit_id=hit_id)
    if row.status != "pending":
        raise ScreeningHitResolved(f"screening hit {hit_id} is {row.status} already", hit_id=hit_id)
    return row


@command(SCREENING_RESOLVE)
def submit_resolution(db: Database, hit_id: int, decision: Decision, note: str) -> PendingApproval:
    """The maker's step: propose to clear (not the listed person) or confirm (the
    listed person) a hit, with the reason; a credit approver or risk manager who is
    not the maker approves it."""
    if decision not in _RESOLVED:
        raise InvalidInput("a hit is cleared or confirmed: decision is clear or confirm")
    reason = " ".join(note.split())
    if not reason:
        raise InvalidInput("clearing or confirming a hit needs a reason (note)")
    if len(reason) > NOTE_LENGTH_MAX:
        raise InvalidInput(f"a note has at most {NOTE_LENGTH_MAX} characters")
    with db.transaction() as conn:
        row = _lock_pending_hit(conn, hit_id)
        if row.approval_id is not None:
            waiting = conn.execute(
                select(pending_approvals.c.status).where(pending_approvals.c.id == row.approval_id)
            ).scalar_one_or_none()
            if waiting == "pending":
                raise ScreeningHitUnderReview(
                    f"screening hit {hit_id} awaits approval {row.approval_id} already",
                    hit_id=hit_id,
                    approval_id=int(row.approval_id),
                )
        payload = {
            "hit_id": hit_id,
            "decision": decision,
            "note": reason,
            "maker": db.actor.label,
        }
        summary = (
            f"{decision.capitalize()} screening hit {hit_id}: borrower {row.borrower_id} "
            f"against {row.entry_name} ({row.list_name}, score {Decimal(row.score_x100) / 100})"
        )
        pending = approvals.submit(conn, db, SCREENING_RESOLVE, payload, summary)
        conn.execute(
            update(screening_hits)
            .where(screening_hits.c.id == hit_id)
            .values(approval_id=pending.id)
        )
        note_result(hit_id=hit_id, decision=decision)
        return pending


@approvals.executes(SCREENING_RESOLVE)
def _apply_resolution(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The checker approved: the hit is cleared or confirmed and the borrower's
    screening status follows, in the approval's transaction."""
    hit_id = int(payload["hit_id"])
    status = _RESOLVED[str(payload["decision"])]
    row = _lock_pending_hit(conn, hit_id)
    actor = current_actor()
    conn.execute(
        update(screening_hits)
        .where(screening_hits.c.id == hit_id)
        .values(
            status=status,
            resolved_by=str(payload["maker"]),
            approved_by="system" if actor is None else actor.label,
            resolved_at=utc_timestamp(),
            resolution_note=str(payload["note"]),
        )
    )
    borrower = _borrower_row(conn, row.borrower_id, lock=True)
    screening = _status_from_hits(conn, row.borrower_id, borrower.screened_at is not None)
    conn.execute(
        update(borrowers)
        .where(borrowers.c.id == row.borrower_id)
        .values(screening_status=screening.value)
    )
    emit(
        conn,
        "screening.hit_resolved",
        "borrower",
        row.borrower_id,
        {"hit_id": hit_id, "status": status, "screening_status": screening.value},
    )
    return {
        "hit_id": hit_id,
        "status": status,
        "borrower_id": int(row.borrower_id),
        "screening_status": screening.value,
    }
