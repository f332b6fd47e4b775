"""Users, roles and credentials on real databases: several roles per user, API
keys stored only as hashes, revocation and expiry, password login and bearer
tokens, disabled users, the bootstrap admin, and no secret in the audit log."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from lendcore.auth.actors import Actor, ActorKind, Role
from lendcore.auth.credentials import TOKEN_LIFETIME, issue_token
from lendcore.auth.permissions import PermissionDenied
from lendcore.errors import Conflict, InvalidInput
from lendcore.ledger.model import AccountSpec, AccountType
from lendcore.services import audit, business_date, identity, ledger, verify
from lendcore.services.identity import (
    SIGNING_KEY_ENV,
    Unauthenticated,
    UserExists,
    UserNotFound,
    actor_for_api_key,
    actor_for_token,
    actor_for_username,
    login,
    signing_key,
)
from lendcore.store.database import Database, open_database
from tests.integration.audit_helpers import audit_after, audit_head, count, text_values

PASSWORD = "correct horse battery staple"
REFUSED = "invalid or expired credentials"


@pytest.fixture(autouse=True)
def _signing_key_from_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)


def refused(call: object) -> Unauthenticated:
    """The Unauthenticated error `call()` raises; every refusal reads the same."""
    with pytest.raises(Unauthenticated) as caught:
        call()  # type: ignore[operator]
    assert (caught.value.code, caught.value.message, caught.value.http_status) == (
        "UNAUTHENTICATED",
        REFUSED,
        401,
    )
    return caught.value


def holders_of(db: Database, secret: str) -> list[tuple[str, str]]:
    """(table, column) of every stored value that contains `secret`."""
    return [(table, column) for table, column, value in text_values(db) if secret in value]


# --- users and roles -----------------------------------------------------------------------


def test_a_user_with_several_roles_may_do_what_any_of_them_may(db: Database) -> None:
    user = identity.create_user(db, "ana", ["accountant", "auditor", "auditor"], display_name="Ana")
    assert (user.username, user.display_name, user.status, user.roles, user.has_password) == (
        "ana",
        "Ana",
        "active",
        frozenset({Role.ACCOUNTANT, Role.AUDITOR}),
        False,
    )
    assert user.actor() == Actor("ana", user.roles, ActorKind.USER, user.id)
    assert identity.get_user(db, "ana") == user
    ana = db.acting_as(user.actor())

    # accountant
    assert ledger.open_account(ana, AccountSpec("cash", "Cash", AccountType.ASSET, "USD")).code == (
        "cash"
    )
    # auditor
    assert [e.command for e in audit.list_audit(ana, actor="ana")] == ["ledger.account.open"]
    # both
    assert verify.verify_ledger(ana).ok is True
    # neither admin nor servicing
    with pytest.raises(PermissionDenied):
        identity.create_user(ana, "bob", ["servicing"])
    with pytest.raises(PermissionDenied):
        business_date.advance_business_date(ana)
    [record] = audit.list_audit(ana, outcome="refused", command_name="identity.user.create")
    assert (record.actor, record.roles, record.error_code) == (
        "ana",
        ["accountant", "auditor"],
        "PERMISSION_DENIED",
    )


def test_bad_user_input_is_refused_and_creates_nobody(db: Database) -> None:
    identity.create_user(db, "ana", ["auditor"])
    cases: list[tuple[str, list[str], str | None, type[Exception], str]] = [
        ("bob", ["superuser"], None, InvalidInput, "INVALID_INPUT"),
        ("bob", [], None, InvalidInput, "INVALID_INPUT"),
        ("bob smith", ["auditor"], None, InvalidInput, "INVALID_INPUT"),
        ("", ["auditor"], None, InvalidInput, "INVALID_INPUT"),
        ("b" * 65, ["auditor"], None, InvalidInput, "INVALID_INPUT"),
        ("bob", ["auditor"], "short", InvalidInput, "INVALID_INPUT"),
        ("ana", ["admin"], None, UserExists, "USER_EXISTS"),
    ]
    for username, roles, password, error, code in cases:
        with pytest.raises(error) as caught:
            identity.create_user(db, username, roles, password=password)
        assert caught.value.code == code, username  # type: ignore[attr-defined]
    assert [u.username for u in identity.list_users(db)] == ["ana"]
    assert identity.get_user(db, "ana").roles == frozenset({Role.AUDITOR})
    with pytest.raises(UserNotFound) as missing:
        identity.get_user(db, "nobody")
    assert missing.value.code == "USER_NOT_FOUND"


# --- API keys ------------------------------------------------------------------------------


def test_an_api_key_authenticates_and_only_its_hash_is_stored(db: Database) -> None:
    bob = identity.create_user(db, "bob", ["servicing", "accountant"])
    issued = identity.create_api_key(db, "bob", label="ci")
    prefix, key_id, secret = issued.token.split("_", 2)
    assert (prefix, key_id) == ("lck", issued.key.key_id)
    assert len(secret) >= 32
    assert (issued.key.username, issued.key.label, issued.key.revoked_at, issued.key.active) == (
        "bob",
        "ci",
        None,
        True,
    )
    assert actor_for_api_key(db, issued.token) == bob.actor()

    # Only the hash is kept: neither the token nor its secret is anywhere in the database.
    assert holders_of(db, issued.token) == []
    assert holders_of(db, secret) == []
    assert holders_of(db, hashlib.sha256(secret.encode()).hexdigest()) == [
        ("api_keys", "secret_hash")
    ]
    [record] = audit.list_audit(db, command_name="identity.apikey.create")
    assert (dict(record.inputs), dict(record.result)) == (
        {"username": "bob", "label": "ci"},
        {"key_id": key_id},
    )

    for bad in (
        f"lck_{key_id}_{secret[:-1]}",
        f"lck_{key_id}_{secret}x",
        f"lck_ffffffffffff_{secret}",
        f"xyz_{key_id}_{secret}",
        f"lck__{secret}",
        f"lck_{key_id}_",
        secret,
        "",
    ):
        refused(lambda bad=bad: actor_for_api_key(db, bad))


def test_revoked_and_expired_api_keys_are_refused(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = identity.create_user(db, "bob", ["servicing"])
    revoked = identity.create_api_key(db, "bob", label="old")
    kept = identity.create_api_key(db, "bob", label="new", days=1)
    done = identity.revoke_api_key(db, revoked.key.key_id)
    assert (done.active, done.revoked_at is not None) == (False, True)
    # Revoking twice keeps the first revocation time.
    assert identity.revoke_api_key(db, revoked.key.key_id) == done
    refused(lambda: actor_for_api_key(db, revoked.token))
    assert actor_for_api_key(db, kept.token) == bob.actor()

    expires = datetime.strptime(kept.key.expires_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(days=1)

    def clock_at(moment: datetime) -> None:
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        monkeypatch.setattr(identity, "utc_timestamp", lambda: stamp)

    clock_at(expires - timedelta(seconds=1))
    assert actor_for_api_key(db, kept.token) == bob.actor()
    assert [k.active for k in identity.list_api_keys(db, "bob")] == [False, True]
    clock_at(expires)
    refused(lambda: actor_for_api_key(db, kept.token))
    assert [k.active for k in identity.list_api_keys(db, "bob")] == [False, False]

    for days in (0, -1, 731):
        with pytest.raises(InvalidInput):
            identity.create_api_key(db, "bob", days=days)
    with pytest.raises(identity.ApiKeyNotFound) as missing:
        identity.revoke_api_key(db, "nope")
    assert missing.value.code == "API_KEY_NOT_FOUND"
    assert count(db, "api_keys") == 2


# --- passwords and bearer tokens -----------------------------------------------------------


def test_login_issues_a_token_that_authenticates(db: Database) -> None:
    carol = identity.create_user(db, "carol", ["auditor"], password=PASSWORD)
    assert carol.has_password is True
    token, expires = login(db, "carol", PASSWORD)
    assert TOKEN_LIFETIME - timedelta(minutes=1) < expires - datetime.now(UTC) <= TOKEN_LIFETIME
    assert actor_for_token(db, token) == carol.actor()
    # The token is a bearer credential: never stored.
    assert holders_of(db, token) == []

    identity.create_user(db, "dave", ["auditor"])
    refused(lambda: login(db, "carol", PASSWORD + "!"))
    refused(lambda: login(db, "carol", ""))
    refused(lambda: login(db, "nobody", PASSWORD))
    refused(lambda: login(db, "dave", PASSWORD))  # a user without a password

    identity.set_password(db, "carol", "a brand new passphrase")
    refused(lambda: login(db, "carol", PASSWORD))
    assert actor_for_token(db, login(db, "carol", "a brand new passphrase")[0]) == carol.actor()
    with pytest.raises(InvalidInput):
        identity.set_password(db, "carol", "too short")


def test_tokens_expire_and_must_be_signed_by_this_database(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    erin = identity.create_user(db, "erin", ["accountant"])
    key = signing_key(db)
    assert signing_key(db) == key
    now = datetime.now(UTC)

    fresh, expires = issue_token("erin", erin.id, key, now=now - timedelta(minutes=14))
    assert expires == now + timedelta(minutes=1)
    assert actor_for_token(db, fresh) == erin.actor()
    stale, _ = issue_token("erin", erin.id, key, now=now - TOKEN_LIFETIME - timedelta(seconds=5))
    refused(lambda: actor_for_token(db, stale))

    forged, _ = issue_token("erin", erin.id, "not this database's key at all, but long enough")
    refused(lambda: actor_for_token(db, forged))
    refused(lambda: actor_for_token(db, fresh[:-2] + ("AA" if fresh[-2:] != "AA" else "BB")))
    ghost, _ = issue_token("ghost", erin.id + 1000, key)
    refused(lambda: actor_for_token(db, ghost))
    refused(lambda: actor_for_token(db, "not a token"))

    # A signing key from the environment replaces the stored one.
    monkeypatch.setenv(SIGNING_KEY_ENV, "an operator supplied signing key of some length")
    refused(lambda: actor_for_token(db, fresh))
    from_env, _ = issue_token("erin", erin.id, "an operator supplied signing key of some length")
    assert actor_for_token(db, from_env) == erin.actor()


# --- disabled users --------------------------------------------------------------------------


def test_a_disabled_user_is_refused_every_way_in(db: Database) -> None:
    admin = identity.create_user(db, "root", ["admin"])
    frank = identity.create_user(db, "frank", ["servicing"], password=PASSWORD)
    issued = identity.create_api_key(db, "frank")
    token, _ = login(db, "frank", PASSWORD)
    assert actor_for_api_key(db, issued.token) == frank.actor()
    assert actor_for_token(db, token) == frank.actor()
    assert actor_for_username(db, "frank") == frank.actor()

    as_admin = db.acting_as(admin.actor())
    assert identity.disable_user(as_admin, "frank").status == "disabled"
    refused(lambda: actor_for_api_key(db, issued.token))
    refused(lambda: actor_for_token(db, token))  # issued before the user was disabled
    refused(lambda: login(db, "frank", PASSWORD))
    with pytest.raises(Unauthenticated) as local:
        actor_for_username(db, "frank")
    assert local.value.message == "user frank is disabled"

    # An admin cannot lock themselves out.
    with pytest.raises(Conflict) as itself:
        identity.disable_user(as_admin, "root")
    assert itself.value.code == "CONFLICT"
    assert identity.get_user(db, "root").status == "active"
    with pytest.raises(UserNotFound):
        identity.disable_user(as_admin, "nobody")


# --- verified credentials, cached per process ---------------------------------------------


def test_revoking_or_disabling_reaches_every_process_at_once(db: Database) -> None:
    """Each process keeps the credentials it verified in memory; a key revoked
    or a user disabled through another process (another engine, so another
    cache: a second API worker, or the CLI) is refused on the very next call."""
    admin = identity.create_user(db, "root", ["admin"])
    gina = identity.create_user(db, "gina", ["servicing"], password=PASSWORD)
    first = identity.create_api_key(db, "gina")
    second = identity.create_api_key(db, "gina")
    token, _ = login(db, "gina", PASSWORD)
    other = open_database(db.url)
    try:
        processes = (db, other)
        for process in processes:
            for _ in range(2):  # verified, then answered from the cache
                assert actor_for_api_key(process, first.token) == gina.actor()
                assert actor_for_api_key(process, second.token) == gina.actor()
                assert actor_for_token(process, token) == gina.actor()
        # A near miss is never served from the cache.
        refused(lambda: actor_for_api_key(db, first.token[:-1]))

        identity.revoke_api_key(other.acting_as(admin.actor()), first.key.key_id)
        for process in processes:
            refused(lambda process=process: actor_for_api_key(process, first.token))
            assert actor_for_api_key(process, second.token) == gina.actor()
            assert actor_for_token(process, token) == gina.actor()

        identity.disable_user(db.acting_as(admin.actor()), "gina")
        for process in processes:
            refused(lambda process=process: actor_for_api_key(process, second.token))
            refused(lambda process=process: actor_for_token(process, token))
    finally:
        other.dispose()


# --- the bootstrap admin -----------------------------------------------------------------------


def test_the_bootstrap_admin_is_created_once(db: Database) -> None:
    assert count(db, "users") == 0
    seq, _ = audit_head(db)
    created = identity.ensure_bootstrap_admin(db)
    assert created is not None
    assert created.username == "admin"
    admin = identity.get_user(db, "admin")
    assert (admin.roles, admin.status, admin.has_password, admin.display_name) == (
        frozenset({Role.ADMIN}),
        "active",
        True,
        "Bootstrap admin",
    )
    assert actor_for_token(db, login(db, "admin", created.password)[0]) == admin.actor()
    assert actor_for_api_key(db, created.api_key) == admin.actor()
    assert [(k.username, k.label) for k in identity.list_api_keys(db)] == [("admin", "bootstrap")]
    assert holders_of(db, created.password) == []
    assert holders_of(db, created.api_key) == []
    assert holders_of(db, created.api_key.split("_", 2)[2]) == []
    # Not a command anyone ran: nothing in the audit log.
    assert audit_after(db, seq) == []

    # Never again, whoever asks and however often.
    assert identity.ensure_bootstrap_admin(db) is None
    assert identity.ensure_bootstrap_admin(db.acting_as(admin.actor())) is None
    assert (count(db, "users"), count(db, "api_keys")) == (1, 1)
    # The admin it made runs the institution's user administration.
    made = identity.create_user(db.acting_as(admin.actor()), "gina", ["accountant"])
    assert made.roles == frozenset({Role.ACCOUNTANT})


def test_no_bootstrap_admin_on_a_database_that_has_users(db: Database) -> None:
    identity.create_user(db, "first", ["auditor"])
    assert identity.ensure_bootstrap_admin(db) is None
    assert [u.username for u in identity.list_users(db)] == ["first"]
    assert count(db, "api_keys") == 0


# --- secrets never reach the audit log ------------------------------------------------------------


def test_the_audit_log_never_holds_a_password_or_an_api_key(db: Database) -> None:
    other = "another long password"
    seq, _ = audit_head(db)
    hank_id = identity.create_user(db, "hank", ["admin"], password=PASSWORD).id
    identity.set_password(db, "hank", other)
    issued = identity.create_api_key(db, "hank", label="laptop")
    secret = issued.token.split("_", 2)[2]
    # A refused attempt records its inputs too: redacted as well.
    hank = db.acting_as(identity.get_user(db, "hank").actor())
    nobody = identity.create_user(hank, "ivy", ["auditor"])
    with pytest.raises(PermissionDenied):
        identity.set_password(db.acting_as(nobody.actor()), "hank", "a third long enough password")

    records = audit_after(db, seq)
    assert [(r.command, r.outcome) for r in records] == [
        ("identity.user.create", "ok"),
        ("identity.user.create", "ok"),
        ("identity.apikey.create", "ok"),
        ("identity.user.create", "ok"),
        ("identity.user.create", "refused"),
    ]
    assert [json.loads(r.inputs_json) for r in records] == [
        {"username": "hank", "roles": ["admin"], "password": "***"},
        {"username": "hank", "password": "***"},
        {"username": "hank", "label": "laptop"},
        {"username": "ivy", "roles": ["auditor"]},
        {"username": "hank", "password": "***"},
    ]
    assert [json.loads(r.result_json) for r in records] == [
        {"user_id": hank_id},
        {},
        {"key_id": issued.key.key_id},
        {"user_id": nobody.id},
        {},
    ]
    for value in (PASSWORD, other, "a third long enough password", issued.token, secret):
        for r in records:
            assert value not in r.inputs_json
            assert value not in r.result_json
        assert holders_of(db, value) == []
