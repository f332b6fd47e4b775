"""Credentials: API keys, password hashes and short-lived signed bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "lck"
TOKEN_ALGORITHM = "HS256"
TOKEN_LIFETIME = timedelta(minutes=15)
PASSWORD_LENGTH_MIN = 12

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        """What the client sends: `lck_<key id>_<secret>`; shown once, never stored."""
        return f"{API_KEY_PREFIX}_{self.key_id}_{self.secret}"


def new_api_key() -> NewApiKey:
    return NewApiKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))


def split_api_key(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def hash_api_secret(secret: str) -> str:
    # The secret has 256 bits of entropy: a fast hash is safe and keeps each
    # request cheap (a slow password hash is for low-entropy secrets).
    return hashlib.sha256(secret.encode()).hexdigest()


def api_secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_secret(secret), stored_hash)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password: str, stored_hash: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    return secrets.token_urlsafe(18)


def new_signing_key() -> str:
    return secrets.token_urlsafe(48)


def issue_token(
    username: str, user_id: int, signing_key: str, now: datetime | None = None
) -> tuple[str, datetime]:
    issued = now or datetime.now(UTC)
    expires = issued + TOKEN_LIFETIME
    token = jwt.encode(
        {"sub": username, "uid": user_id, "iat": issued, "exp": expires, "iss": "lendcore"},
        signing_key,
        algorithm=TOKEN_ALGORITHM,
    )
    return token, expires


def read_token(token: str, signing_key: str) -> tuple[str, int] | None:
    """The (username, user id) a valid, unexpired token names; None otherwise."""
    try:
        claims = jwt.decode(token, signing_key, algorithms=[TOKEN_ALGORITHM], issuer="lendcore")
    except jwt.PyJWTError:
        return None
    return str(claims["sub"]), int(claims["uid"])
