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
    content = [
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
        [list(p) for p in sorted(postings)],
    ]
    return sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


def seal_hash(seq: int, prev_hash: str, entry_ids: Sequence[int], digests: Iterable[str]) -> str:
    """The hash of one link: its number, the previous link and each entry's digest."""
    h = sha256()
    h.update(f"{seq}:{prev_hash}:{len(entry_ids)}".encode())
    for entry_id, digest in zip(entry_ids, digests, strict=True):
        h.update(f"\n{entry_id}:{digest}".encode())
    return h.hexdigest()


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
