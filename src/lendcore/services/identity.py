"""Users, roles, API keys, password login and bearer tokens."""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lendcore.auth.actors import SYSTEM, Actor, ActorKind, Role
from lendcore.auth.credentials import (
    PASSWORD_LENGTH_MIN,
    api_secret_matches,
    hash_api_secret,
    hash_password,
    issue_token,
    new_api_key,
    new_password,
    new_signing_key,
    password_matches,
    read_token,
    split_api_key,
)
from lendcore.errors import Conflict, InvalidInput, LendcoreError, NotFound
from lendcore.services.clock import utc_timestamp
from lendcore.services.commands import command, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database
from lendcore.store.schema import api_keys, settings, user_roles, users

SIGNING_KEY_SETTING = "token_signing_key"
# Changes whenever a credential may have stopped being valid (see the cache below).
CREDENTIALS_EPOCH_SETTING = "credentials_epoch"
SIGNING_KEY_ENV = "LENDCORE_TOKEN_SIGNING_KEY"
API_KEY_DAYS_DEFAULT = 90
API_KEY_DAYS_MAX = 730
BOOTSTRAP_ADMIN = "admin"
USERNAME_LENGTH_MAX = 64


class Unauthenticated(LendcoreError):
    code = "UNAUTHENTICATED"
    http_status = 401


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"


class UserExists(Conflict):
    code = "USER_EXISTS"


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    status: str
    roles: frozenset[Role]
    created_at: str
    has_password: bool

    def actor(self) -> Actor:
        return Actor(name=self.username, roles=self.roles, kind=ActorKind.USER, user_id=self.id)


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    username: str
    label: str
    created_at: str
    expires_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > utc_timestamp()


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    key: ApiKey
    # Shown once; lendcore keeps only its hash.
    token: str


@dataclass(frozen=True, slots=True)
class BootstrapCredentials:
    username: str
    password: str
    api_key: str


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    roles = []
    for name in names:
        try:
            roles.append(Role(name))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise InvalidInput(f"unknown role {name!r}: use one of {valid}") from None
    if not roles:
        raise InvalidInput("a user needs at least one role")
    return frozenset(roles)


def _validate_username(username: str) -> None:
    if (
        not username
        or len(username) > USERNAME_LENGTH_MAX
        or not all(c.isalnum() or c in "._-" for c in username)
    ):
        raise InvalidInput(
            f"username must be 1 to {USERNAME_LENGTH_MAX} letters, digits, '.', '_' or '-'"
        )


def _validate_password(password: str) -> None:
    if len(password) < PASSWORD_LENGTH_MIN:
        raise InvalidInput(f"a password needs at least {PASSWORD_LENGTH_MIN} characters")


def _load_user(conn: Connection, username: str) -> User:
    row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        raise UserNotFound(f"no user {username}", username=username)
    return _to_user(conn, row)


def _load_user_by_id(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None else _to_user(conn, row)


def _to_user(conn: Connection, row: Any) -> User:
    roles = frozenset(
        Role(r)
        for r in conn.execute(
            select(user_roles.c.role).where(user_roles.c.user_id == row.id)
        ).scalars()
    )
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        status=row.status,
        roles=roles,
        created_at=row.created_at,
        has_password=row.password_hash is not None,
    )


def _insert_user(
    conn: Connection,
    username: str,
    roles: frozenset[Role],
    display_name: str,
    password: str | None,
    created_by: str,
) -> User:
    _validate_username(username)
    if password is not None:
        _validate_password(password)
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise UserExists(f"user {username} exists already", username=username)
    user_id = conn.execute(
        insert(users)
        .values(
            username=username,
            display_name=display_name or username,
            status="active",
            password_hash=None if password is None else hash_password(password),
            created_at=utc_timestamp(),
            created_by=created_by,
        )
        .returning(users.c.id)
    ).scalar_one()
    conn.execute(insert(user_roles), [{"user_id": user_id, "role": r.value} for r in sorted(roles)])
    emit(conn, "user.created", "user", username, {"username": username, "roles": sorted(roles)})
    return _load_user(conn, username)


@command("identity.user.create")
def create_user(
    db: Database,
    username: str,
    roles: Iterable[str],
    *,
    display_name: str = "",
    password: str | None = None,
) -> User:
    role_set = parse_roles(roles)
    with db.transaction() as conn:
        user = _insert_user(conn, username, role_set, display_name, password, db.actor.label)
        # Inside the transaction: the audit record is written when it commits.
        note_result(user_id=user.id)
    return user


@command("identity.user.disable")
def disable_user(db: Database, username: str) -> User:
    with db.transaction() as conn:
        user = _load_user(conn, username)
        if user.id == db.actor.user_id:
            raise Conflict("a user cannot disable themselves")
        conn.execute(update(users).where(users.c.id == user.id).values(status="disabled"))
        _bump_credentials_epoch(conn)
        emit(conn, "user.disabled", "user", username, {"username": username})
        return _load_user(conn, username)


@command("identity.user.create")
def set_password(db: Database, username: str, password: str) -> User:
    _validate_password(password)
    with db.transaction() as conn:
        user = _load_user(conn, username)
        conn.execute(
            update(users).where(users.c.id == user.id).values(password_hash=hash_password(password))
        )
        return _load_user(conn, username)


@query("identity.user.read")
def list_users(db: Database) -> list[User]:
    with db.reading() as conn:
        rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [_to_user(conn, r) for r in rows]


@query("identity.user.read")
def get_user(db: Database, username: str) -> User:
    with db.reading() as conn:
        return _load_user(conn, username)


def _insert_api_key(conn: Connection, user: User, label: str, days: int) -> IssuedApiKey:
    if not 1 <= days <= API_KEY_DAYS_MAX:
        raise InvalidInput(f"an API key lives 1 to {API_KEY_DAYS_MAX} days, not {days}")
    fresh = new_api_key()
    created = datetime.now(UTC)
    expires = created + timedelta(days=days)
    conn.execute(
        insert(api_keys).values(
            key_id=fresh.key_id,
            user_id=user.id,
            secret_hash=hash_api_secret(fresh.secret),
            label=label,
            created_at=created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
    )
    return IssuedApiKey(key=_load_api_key(conn, fresh.key_id), token=fresh.token)


@command("identity.apikey.create")
def create_api_key(
    db: Database, username: str, *, label: str = "", days: int = API_KEY_DAYS_DEFAULT
) -> IssuedApiKey:
    with db.transaction() as conn:
        user = _load_user(conn, username)
        issued = _insert_api_key(conn, user, label, days)
        # Inside the transaction: the audit record is written when it commits.
        note_result(key_id=issued.key.key_id)
    return issued


@command("identity.apikey.revoke")
def revoke_api_key(db: Database, key_id: str) -> ApiKey:
    with db.transaction() as conn:
        key = _load_api_key(conn, key_id)
        if key.revoked_at is None:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id)
                .values(revoked_at=utc_timestamp())
            )
            _bump_credentials_epoch(conn)
        return _load_api_key(conn, key_id)


@query("identity.apikey.read")
def list_api_keys(db: Database, username: str | None = None) -> list[ApiKey]:
    with db.reading() as conn:
        q = _api_key_query()
        if username is not None:
            q = q.where(users.c.username == username)
        return [_to_api_key(r) for r in conn.execute(q.order_by(api_keys.c.id))]


def _api_key_query() -> Any:
    return select(api_keys, users.c.username).join(users, users.c.id == api_keys.c.user_id)


def _to_api_key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        username=row.username,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _load_api_key(conn: Connection, key_id: str) -> ApiKey:
    row = conn.execute(_api_key_query().where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise ApiKeyNotFound(f"no API key {key_id}", key_id=key_id)
    return _to_api_key(row)


# --- authentication ---------------------------------------------------------------------
#
# Every API request authenticates. Verifying an API key from scratch is a
# read transaction of three queries (the key, its user, the user's roles); a
# bearer token also needs the signing key and the user. Verified credentials are
# therefore kept in a small in-process cache, and each request only checks, in
# one statement, that the credentials epoch (a value in `settings`) is still the
# one the cache entry was verified under. Every change that can end a
# credential's validity (revoking a key, disabling a user; any future change of
# a user's roles) writes a new epoch in its own transaction, so once it has
# committed, every process's next request verifies from scratch and is refused:
# revocation takes effect at once, across worker processes and the CLI.
# A key's expiry is checked on every request against the cached expiry time.
# Entries are also re-verified after VERIFIED_CACHE_SECONDS, a bound on how
# long a change made behind lendcore's back (a hand-written UPDATE that does not
# write a new epoch) can go unseen.

VERIFIED_CACHE_SECONDS = 60.0
VERIFIED_CACHE_ENTRIES_MAX = 10_000

_REFUSED = "invalid or expired credentials"


@dataclass(frozen=True, slots=True)
class _Verified:
    actor: Actor
    # When the credential itself expires (utc_timestamp text); None: never by itself.
    expires_at: str | None
    epoch: str | None
    verified_at: float


class _VerifiedCredentials:
    """Verified credentials of one database, by a SHA-256 of the credential
    (never the credential itself), least recently used evicted first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, _Verified] = OrderedDict()
        self._lock = threading.Lock()
        self.signing_key: str | None = None

    def get(self, digest: str) -> _Verified | None:
        with self._lock:
            found = self._entries.get(digest)
            if found is None:
                return None
            if time.monotonic() - found.verified_at > VERIFIED_CACHE_SECONDS:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return found

    def put(self, digest: str, verified: _Verified) -> None:
        with self._lock:
            self._entries[digest] = verified
            self._entries.move_to_end(digest)
            while len(self._entries) > VERIFIED_CACHE_ENTRIES_MAX:
                self._entries.popitem(last=False)

    def drop(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)


_caches: weakref.WeakKeyDictionary[Engine, _VerifiedCredentials] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache(db: Database) -> _VerifiedCredentials:
    with _caches_lock:
        found = _caches.get(db.engine)
        if found is None:
            found = _caches[db.engine] = _VerifiedCredentials()
        return found


_EPOCH_QUERY = select(settings.c.value).where(settings.c.key == CREDENTIALS_EPOCH_SETTING)
_EPOCH_SQLITE = str(
    _EPOCH_QUERY.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
)


def _bump_credentials_epoch(conn: Connection) -> None:
    """Write a new credentials epoch in the caller's transaction: every cached
    verification, in every process, is void once it commits."""
    value = secrets.token_hex(8)
    upsert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(settings)
    conn.execute(
        upsert.values(key=CREDENTIALS_EPOCH_SETTING, value=value).on_conflict_do_update(
            index_elements=[settings.c.key], set_={"value": value}
        )
    )


def _current_epoch(db: Database) -> str | None:
    """The credentials epoch, in one statement."""
    if db.is_postgres:
        # One statement needs no transaction of its own: no BEGIN, no COMMIT.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            value = conn.execute(_EPOCH_QUERY).scalar()
    else:
        # The sqlite3 driver runs here in autocommit mode (the store begins
        # transactions itself): one statement is its own read snapshot.
        raw = db.engine.raw_connection()
        try:
            row = raw.cursor().execute(_EPOCH_SQLITE).fetchone()
        finally:
            raw.close()
        value = None if row is None else row[0]
    return None if value is None else str(value)


def _still_valid(db: Database, verified: _Verified | None) -> bool:
    if verified is None:
        return False
    if verified.expires_at is not None and verified.expires_at <= utc_timestamp():
        return False
    return verified.epoch == _current_epoch(db)


def _active_actor(user: User | None) -> Actor:
    if user is None or user.status != "active":
        raise Unauthenticated(_REFUSED)
    return user.actor()


def actor_for_api_key(db: Database, token: str) -> Actor:
    parts = split_api_key(token)
    if parts is None:
        raise Unauthenticated(_REFUSED)
    cache = _cache(db)
    digest = hash_api_secret(token)
    cached = cache.get(digest)
    if cached is not None and _still_valid(db, cached):
        return cached.actor
    key_id, secret = parts
    with db.reading() as conn:
        # The epoch first, in the same snapshot: a change committed after it
        # writes a new epoch, which the next request sees.
        epoch = conn.execute(_EPOCH_QUERY).scalar()
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if (
            row is None
            or row.revoked_at is not None
            or row.expires_at <= utc_timestamp()
            or not api_secret_matches(secret, row.secret_hash)
        ):
            cache.drop(digest)
            raise Unauthenticated(_REFUSED)
        try:
            actor = _active_actor(_load_user_by_id(conn, row.user_id))
        except Unauthenticated:
            cache.drop(digest)
            raise
    cache.put(
        digest,
        _Verified(actor, row.expires_at, None if epoch is None else str(epoch), time.monotonic()),
    )
    return actor


def actor_for_token(db: Database, token: str) -> Actor:
    cache = _cache(db)
    claims = read_token(token, _signing_key(db, cache))
    if claims is None:
        raise Unauthenticated(_REFUSED)
    _username, user_id = claims
    # The token's signature and expiry are checked above on every request; what
    # is cached is its user (status and roles), by user id.
    digest = f"user:{user_id}"
    cached = cache.get(digest)
    if cached is not None and _still_valid(db, cached):
        return cached.actor
    with db.reading() as conn:
        epoch = conn.execute(_EPOCH_QUERY).scalar()
        try:
            actor = _active_actor(_load_user_by_id(conn, user_id))
        except Unauthenticated:
            cache.drop(digest)
            raise
    cache.put(
        digest, _Verified(actor, None, None if epoch is None else str(epoch), time.monotonic())
    )
    return actor


def actor_for_username(db: Database, username: str) -> Actor:
    """The CLI's `--as USER`: local trust, as a database's own shell gives."""
    with db.reading() as conn:
        user = _load_user(conn, username)
    if user.status != "active":
        raise Unauthenticated(f"user {username} is disabled")
    return user.actor()


def login(db: Database, username: str, password: str) -> tuple[str, datetime]:
    """Check a password and issue a short-lived signed bearer token."""
    with db.reading() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    if (
        row is None
        or row.status != "active"
        or row.password_hash is None
        or not password_matches(password, row.password_hash)
    ):
        raise Unauthenticated(_REFUSED)
    return issue_token(row.username, row.id, signing_key(db))


def _signing_key(db: Database, cache: _VerifiedCredentials) -> str:
    """The signing key, read from the database once per process: a stored key
    never changes (the environment's, when set, always wins)."""
    from_env = os.environ.get(SIGNING_KEY_ENV)
    if from_env:
        return from_env
    if cache.signing_key is None:
        cache.signing_key = signing_key(db)
    return cache.signing_key


def signing_key(db: Database) -> str:
    from_env = os.environ.get(SIGNING_KEY_ENV)
    if from_env:
        return from_env
    with db.reading() as conn:
        value = conn.execute(
            select(settings.c.value).where(settings.c.key == SIGNING_KEY_SETTING)
        ).scalar()
    if value is not None:
        return str(value)
    with db.transaction() as conn:
        value = conn.execute(
            select(settings.c.value).where(settings.c.key == SIGNING_KEY_SETTING)
        ).scalar()
        if value is None:
            value = new_signing_key()
            conn.execute(insert(settings).values(key=SIGNING_KEY_SETTING, value=value))
        return str(value)


def ensure_bootstrap_admin(db: Database) -> BootstrapCredentials | None:
    """On a database without users, create the first admin; its credentials are
    returned once (the caller prints them) and never stored in clear."""
    with db.reading() as conn:
        if conn.execute(select(func.count()).select_from(users)).scalar_one():
            return None
    with db.transaction() as conn:
        if conn.execute(select(func.count()).select_from(users)).scalar_one():
            return None
        password = new_password()
        user = _insert_user(
            conn,
            BOOTSTRAP_ADMIN,
            frozenset({Role.ADMIN}),
            "Bootstrap admin",
            password,
            SYSTEM.label,
        )
        issued = _insert_api_key(conn, user, "bootstrap", API_KEY_DAYS_DEFAULT)
    return BootstrapCredentials(BOOTSTRAP_ADMIN, password, issued.token)
