"""Personal identifiers at rest: encrypted, and a keyed hash for finding duplicates.

One data key (32 random bytes) gives two keys through HKDF-SHA256: an AES-256-GCM
key that encrypts national ids and document numbers, and an HMAC-SHA256 key that
hashes a normalised national id so that two borrowers with the same id meet
without decrypting anything. Each ciphertext names the data key it was made with
(`key_id`), so a database opened with the wrong key says so instead of failing
on an authentication tag.

Where the key comes from (the environment, a key file) is the service layer's
business; `load_or_create_key_file` writes a new key file with 0600 permissions.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lendcore.errors import LendcoreError

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TOKEN_VERSION: Final = "v1"
KEY_FILE_MODE: Final = 0o600


class DataKeyError(LendcoreError):
    """The data key is missing, malformed, or not the one the data was encrypted with."""

    code = "DATA_KEY_INVALID"
    http_status = 500


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(master)


@dataclass(frozen=True, slots=True)
class DataKeys:
    """The encryption and matching keys derived from one data key."""

    key_id: str
    _encryption: bytes = field(repr=False)
    _matching: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> DataKeys:
        if len(master) != KEY_BYTES:
            raise DataKeyError(f"a data key is {KEY_BYTES} bytes, not {len(master)}")
        key_id = hashlib.sha256(_derive(master, b"lendcore key id v1")).hexdigest()[:12]
        return cls(
            key_id,
            _derive(master, b"lendcore personal data encryption v1"),
            _derive(master, b"lendcore personal data matching v1"),
        )

    def encrypt(self, plaintext: str, purpose: str) -> str:
        """`v1.<key id>.<base64url(nonce + ciphertext)>`; `purpose` is bound to the
        ciphertext (a national id cannot be passed off as a document number)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self._encryption).encrypt(nonce, plaintext.encode(), purpose.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{TOKEN_VERSION}.{self.key_id}.{body}"

    def decrypt(self, token: str, purpose: str) -> str:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION:
            raise DataKeyError("a stored ciphertext is not one lendcore wrote")
        if parts[1] != self.key_id:
            raise DataKeyError(
                f"the data was encrypted with data key {parts[1]}, and the key in use is "
                f"{self.key_id}: set LENDCORE_DATA_KEY to the key the data was written with"
            )
        try:
            raw = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
            clear = AESGCM(self._encryption).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()
            )
        except (InvalidTag, ValueError, binascii.Error):
            raise DataKeyError("a stored ciphertext was altered or is not for this use") from None
        return clear.decode()

    def keyed_hash(self, normalised: str) -> str:
        """HMAC-SHA256 of a normalised identifier, hex."""
        return hmac.new(self._matching, normalised.encode(), hashlib.sha256).hexdigest()


def generate_key() -> str:
    """A new data key as text (base64url of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(text: str, source: str) -> DataKeys:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise DataKeyError(f"the data key in {source} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(f"the data key in {source} is not {KEY_BYTES} bytes of base64")
    return DataKeys.from_master(raw)


def load_or_create_key_file(path: Path) -> DataKeys:
    """The key in `path`; a new one, written with 0600 permissions, when there is none.

    Two processes starting at once agree on one key: the new key is written to a
    temporary file and hard-linked into place, which fails if the other won.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(generate_key() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            # Another process may have won the race: its key stands.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise DataKeyError(
            f"the data key file {path} may be read by others (mode {mode:o}): chmod 600 it"
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataKeyError(f"cannot read the data key file {path}: {exc.strerror}") from None
    return parse_key(text, str(path))
