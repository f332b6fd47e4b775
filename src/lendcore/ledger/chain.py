"""The audit chain (pure): canonical entry content, digests and seal hashes.

Every entry has a digest: SHA-256 of its canonical content (header and all its
postings). A seal covers one entry or a batch of entries and the previous
seal's hash, so altering, inserting or removing any journal row changes a digest
or breaks a link. The rules live here once; booking and `ledger verify` both use
them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from hashlib import sha256
from json.encoder import encode_basestring_ascii as _ascii_string
from typing import Any

GENESIS_HASH = "0" * 64

# (line_no, account_id, side, amount_minor, currency)
PostingRow = tuple[int, int, str, int, str]


@dataclass(frozen=True, slots=True)
class EntryHeader:
    """The stored header of a journal entry, as it enters the chain."""

    id: int
    idempotency_key: str
    request_hash: str
    business_date: date
    value_date: date
    recorded_at: str
    description: str
    metadata_json: str
    reverses_entry_id: int | None
    hold_id: int | None


def entry_digest(header: EntryHeader, postings: Sequence[PostingRow]) -> str:
    """SHA-256 over the canonical content of an entry and its postings (in line order)."""
    return sha256(entry_content(header, postings).encode()).hexdigest()


def entry_content(header: EntryHeader, postings: Sequence[PostingRow]) -> str:
    """The canonical text an entry's digest covers: a JSON array, ASCII-escaped."""
    return entry_content_of(
        header.id,
        header.idempotency_key,
        header.request_hash,
        header.business_date.isoformat(),
        header.value_date.isoformat(),
        header.recorded_at,
        header.description,
        header.metadata_json,
        header.reverses_entry_id,
        header.hold_id,
        postings,
    )


def entry_content_of(
    entry_id: int,
    idempotency_key: str,
    request_hash: str,
    business_date_iso: str,
    value_date_iso: str,
    recorded_at: str,
    description: str,
    metadata_json: str,
    reverses_entry_id: int | None,
    hold_id: int | None,
    postings: Sequence[PostingRow],
) -> str:
    """`entry_content` from the header's values (booking has them without a header).

    Written out by hand because booking computes it for every entry (json.dumps
    is several times slower); it is byte for byte the text of
    `reference_entry_content`, which a property test checks. Values of another
    type than the stored columns have (only a row altered behind lendcore's
    back can carry them) take the reference path.
    """
    reverses, hold = reverses_entry_id, hold_id
    lines = _posting_texts(postings)
    if lines is None or (
        type(entry_id) is not int
        or type(idempotency_key) is not str
        or type(request_hash) is not str
        or type(recorded_at) is not str
        or type(description) is not str
        or type(metadata_json) is not str
        or (reverses is not None and type(reverses) is not int)
        or (hold is not None and type(hold) is not int)
    ):
        return _reference_from_values(
            entry_id,
            idempotency_key,
            request_hash,
            business_date_iso,
            value_date_iso,
            recorded_at,
            description,
            metadata_json,
            reverses,
            hold,
            postings,
        )
    return (
        f"[{entry_id},{_ascii_string(idempotency_key)},{_ascii_string(request_hash)},"
        f"{_ascii_string(business_date_iso)},{_ascii_string(value_date_iso)},"
        f"{_ascii_string(recorded_at)},{_ascii_string(description)},"
        f"{_ascii_string(metadata_json)},"
        f"{'null' if reverses is None else reverses},{'null' if hold is None else hold},"
        f"[{','.join(lines)}]]"
    )


def _posting_texts(postings: Sequence[PostingRow]) -> list[str] | None:
    """Each posting as its JSON array text, in line order; None when a value is not
    of its column's type (the caller then takes the reference path)."""
    lines: list[str] = []
    for line_no, account_id, side, amount, currency in sorted(postings):
        if (
            type(line_no) is not int
            or type(account_id) is not int
            or type(side) is not str
            or type(amount) is not int
            or type(currency) is not str
        ):
            return None
        lines.append(
            f"[{line_no},{account_id},{_ascii_string(side)},{amount},{_ascii_string(currency)}]"
        )
    return lines


def _reference_from_values(
    entry_id: Any,
    idempotency_key: Any,
    request_hash: Any,
    business_date_iso: Any,
    value_date_iso: Any,
    recorded_at: Any,
    description: Any,
    metadata_json: Any,
    reverses_entry_id: Any,
    hold_id: Any,
    postings: Sequence[PostingRow],
) -> str:
    content = [
        entry_id,
        idempotency_key,
        request_hash,
        business_date_iso,
        value_date_iso,
        recorded_at,
        description,
        metadata_json,
        reverses_entry_id,
        hold_id,
        [list(p) for p in sorted(postings)],
    ]
    return json.dumps(content, separators=(",", ":"))


def reference_entry_content(header: EntryHeader, postings: Sequence[PostingRow]) -> str:
    """The definition of the canonical entry text, through json.dumps."""
    return _reference_from_values(
        header.id,
        header.idempotency_key,
        header.request_hash,
        header.business_date.isoformat(),
        header.value_date.isoformat(),
        header.recorded_at,
        header.description,
        header.metadata_json,
        header.reverses_entry_id,
        header.hold_id,
        postings,
    )


def seal_suffix(entry_ids: Sequence[int], digests: Iterable[str]) -> str:
    """What a seal's hashed text holds after "{seq}:{prev_hash}": the count and each
    entry's id and digest. PostgreSQL hashes the whole text itself (sha256()),
    reading seq and prev_hash from the chain head it locks."""
    parts = [f":{len(entry_ids)}"]
    parts.extend(
        f"\n{entry_id}:{digest}" for entry_id, digest in zip(entry_ids, digests, strict=True)
    )
    return "".join(parts)


def seal_hash(seq: int, prev_hash: str, entry_ids: Sequence[int], digests: Iterable[str]) -> str:
    """The hash of one link: its number, the previous link and each entry's digest."""
    return sha256(f"{seq}:{prev_hash}{seal_suffix(entry_ids, digests)}".encode()).hexdigest()


def encode_id_ranges(ids: Sequence[int]) -> str:
    """Compact, ordered text form of ascending ids: [1,2,3,7,9,10] -> "1-3,7,9-10"."""
    if not ids:
        return ""
    parts: list[str] = []
    start = prev = ids[0]
    for current in ids[1:]:
        if current <= prev:
            raise ValueError("entry ids of a seal must be strictly ascending")
        if current == prev + 1:
            prev = current
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = current
    parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def decode_id_ranges(text: str) -> list[int]:
    if not text:
        return []
    ids: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            ids.extend(range(int(low), int(high) + 1))
        else:
            ids.append(int(part))
    return ids
