"""Webhook signatures (pure): how lendcore signs a delivery and how a receiver checks it.

The scheme
----------
Every webhook delivery is an HTTP POST whose body is the event envelope as
UTF-8 JSON. lendcore sends, with it::

    X-Lendcore-Event-Id:   <event_id>           the de-duplication key
    X-Lendcore-Event-Type: <event type>         e.g. journal_entry.booked
    X-Lendcore-Timestamp:  <unix seconds>       when this attempt was signed
    X-Lendcore-Signature:  sha256=<hex digest>

where the digest is HMAC-SHA256, keyed with the webhook's secret (its UTF-8
bytes), of the message ``<timestamp>.<body>``: the timestamp header's exact
text, one ASCII dot, then the raw body bytes exactly as received.

A receiver checks, in this order:

1. the timestamp is a whole number of seconds within `TOLERANCE_S_DEFAULT` of its
   own clock (so a captured request cannot be replayed later);
2. the signature it computes equals the one sent, compared in constant time;
3. it has not processed this event id before (delivery is at least once: a
   retry after a lost response carries the same event id, a new timestamp and
   a new signature).

Why the timestamp is signed: signing the body alone would let whoever captured
one delivery replay it for ever. Why the raw bytes: re-serialising the JSON
can reorder keys or change spacing and break the signature. The header may
carry several comma-separated ``sha256=`` values (a receiver accepts any that
matches); lendcore sends one today, but a receiver written this way keeps
working when secrets are rotated with an overlap.

Nothing here touches the network, the clock or the database: the caller passes
"now", so receivers and tests can use the functions as they are.
"""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "sha256"
SIGNATURE_PREFIX = f"{SCHEME}="

# Receivers accept a timestamp this far from their own clock, either way.
TOLERANCE_S_DEFAULT = 300

# A header longer than this is refused before any parsing (a signature is 71
# characters; room for a few during a secret rotation).
SIGNATURE_HEADER_LENGTH_MAX = 1_000
# Unix seconds fit in 11 digits until the year 5138.
TIMESTAMP_DIGITS_MAX = 11

HEADER_EVENT_ID = "X-Lendcore-Event-Id"
HEADER_EVENT_TYPE = "X-Lendcore-Event-Type"
HEADER_TIMESTAMP = "X-Lendcore-Timestamp"
HEADER_SIGNATURE = "X-Lendcore-Signature"


def signed_message(timestamp: str, body: bytes) -> bytes:
    """The bytes that are signed: ``<timestamp>.<body>``."""
    return timestamp.encode("ascii") + b"." + body


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under `secret`."""
    if not secret:
        raise ValueError("a webhook secret cannot be empty")
    return hmac.new(
        secret.encode("utf-8"), signed_message(timestamp, body), hashlib.sha256
    ).hexdigest()


def signature_header(secret: str, timestamp: str, body: bytes) -> str:
    """The value of X-Lendcore-Signature: ``sha256=<hex>``."""
    return SIGNATURE_PREFIX + signature(secret, timestamp, body)


def sign(secret: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The two signing headers for one delivery attempt made at `timestamp_s`."""
    if timestamp_s < 0:
        raise ValueError(f"a timestamp cannot be negative, got {timestamp_s}")
    timestamp = str(timestamp_s)
    return {
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: signature_header(secret, timestamp, body),
    }


def verify(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature_header_value: str,
    now_s: float,
    tolerance_s: float = TOLERANCE_S_DEFAULT,
) -> bool:
    """True when the headers prove the body came from a holder of `secret` recently.

    `timestamp` and `signature_header_value` are the received header values,
    `body` the raw received bytes, `now_s` the receiver's clock in unix seconds.
    Never raises on malformed input: anything that does not verify is False.
    """
    if not secret or not 0 < len(signature_header_value) <= SIGNATURE_HEADER_LENGTH_MAX:
        return False
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > TIMESTAMP_DIGITS_MAX:
        return False
    if abs(now_s - int(timestamp)) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    matched = False
    for candidate in signature_header_value.split(","):
        candidate = candidate.strip()
        if not candidate.startswith(SIGNATURE_PREFIX):
            continue
        # Compare every candidate (no early exit) so timing says nothing about
        # which one matched.
        if hmac.compare_digest(
            candidate[len(SIGNATURE_PREFIX) :].encode("ascii", "replace"), expected.encode("ascii")
        ):
            matched = True
    return matched
