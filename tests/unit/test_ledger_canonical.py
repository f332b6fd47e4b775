"""The hand-built canonical texts of fingerprints and digests are byte for byte
the json.dumps texts they replace (else `ledger verify` would fail on entries
booked before, or booked by the other path)."""

from __future__ import annotations

import json
from datetime import date
from hashlib import sha256
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.ledger.chain import (
    EntryHeader,
    entry_content,
    entry_digest,
    reference_entry_content,
    seal_hash,
)
from lendcore.ledger.model import (
    EntrySpec,
    PostingSpec,
    Side,
    canonical_json,
    fingerprint_content,
    metadata_text,
    reference_fingerprint_content,
    request_fingerprint,
)

# Any text at all: quotes, backslashes, control characters, non-ASCII, lone surrogates.
texts = st.text(max_size=40)
ids = st.integers(min_value=-(2**70), max_value=2**70)
dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
metadata = st.dictionaries(texts, json_values, max_size=4)
postings = st.lists(
    st.builds(
        PostingSpec,
        account=texts,
        side=st.sampled_from(Side),
        amount_minor=st.integers(min_value=-(2**70), max_value=2**70),
        currency=texts,
    ),
    min_size=0,
    max_size=4,
)


def original_fingerprint_text(spec: EntrySpec, reverses: int | None, hold: int | None) -> str:
    """The definition as it was first written (before the hand-built form)."""
    body = [
        [[p.account, p.side.value, p.amount_minor, p.currency] for p in spec.postings],
        spec.description,
        canonical_json(dict(spec.metadata)),
        spec.value_date.isoformat() if spec.value_date else None,
        reverses,
        hold,
    ]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=400)
@given(
    key=texts,
    lines=postings,
    description=texts,
    meta=metadata,
    value_date=st.none() | dates,
    reverses=st.none() | ids,
    hold=st.none() | ids,
)
def test_fingerprint_text_is_the_json_text(
    key: str,
    lines: list[PostingSpec],
    description: str,
    meta: dict[str, Any],
    value_date: date | None,
    reverses: int | None,
    hold: int | None,
) -> None:
    spec = EntrySpec(key, tuple(lines), description, meta, value_date)
    meta_json = metadata_text(meta)
    assert meta_json == canonical_json(dict(meta))
    fast = fingerprint_content(spec, meta_json, reverses=reverses, hold=hold)
    assert fast == reference_fingerprint_content(spec, meta_json, reverses=reverses, hold=hold)
    assert fast == original_fingerprint_text(spec, reverses, hold)


def test_fingerprint_of_a_value_json_spells_otherwise_takes_the_reference_path() -> None:
    # A bool is an int to Python but `true` to JSON.
    spec = EntrySpec("k", (PostingSpec("a", Side.DEBIT, True, "USD"),))  # type: ignore[arg-type]
    text = fingerprint_content(spec, "{}", reverses=None, hold=None)
    assert text == original_fingerprint_text(spec, None, None)
    assert '"D",true,' in text
    assert request_fingerprint(spec) == sha256(text.encode()).hexdigest()


def original_entry_text(header: EntryHeader, lines: list[tuple[Any, ...]]) -> str:
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
        [list(p) for p in sorted(lines)],
    ]
    return json.dumps(content, separators=(",", ":"))


# Stored values, and what a row altered behind lendcore's back might hold instead.
cells = ids | texts | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
stored_lines = st.lists(
    st.tuples(st.integers(0, 50), ids, st.sampled_from(["D", "C"]), ids, texts),
    max_size=5,
    unique_by=lambda line: line[0],
)
altered_lines = st.lists(
    st.tuples(st.integers(0, 50), cells, cells, cells, cells),
    max_size=4,
    unique_by=lambda line: line[0],
)


@settings(max_examples=400)
@given(
    entry_id=ids,
    key=texts,
    request_hash=texts,
    business_date=dates,
    value_date=dates,
    recorded_at=texts,
    description=texts,
    metadata_json=texts,
    reverses=st.none() | ids,
    hold=st.none() | ids,
    lines=stored_lines | altered_lines,
)
def test_entry_text_is_the_json_text(
    entry_id: int,
    key: str,
    request_hash: str,
    business_date: date,
    value_date: date,
    recorded_at: str,
    description: str,
    metadata_json: str,
    reverses: int | None,
    hold: int | None,
    lines: list[tuple[Any, ...]],
) -> None:
    header = EntryHeader(
        entry_id,
        key,
        request_hash,
        business_date,
        value_date,
        recorded_at,
        description,
        metadata_json,
        reverses,
        hold,
    )
    fast = entry_content(header, lines)  # type: ignore[arg-type]
    assert fast == reference_entry_content(header, lines)  # type: ignore[arg-type]
    assert fast == original_entry_text(header, lines)


# Seal texts hold hashes and numbers: any text that UTF-8 can encode.
encodable = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=70)


@given(
    seq=st.integers(1, 2**40),
    prev=encodable,
    entries=st.lists(st.tuples(st.integers(1, 2**40), encodable), max_size=6),
)
def test_seal_hash_is_the_original_link(
    seq: int, prev: str, entries: list[tuple[int, str]]
) -> None:
    entry_ids = [i for i, _ in entries]
    digests = [d for _, d in entries]
    h = sha256()
    h.update(f"{seq}:{prev}:{len(entry_ids)}".encode())
    for entry_id, digest in entries:
        h.update(f"\n{entry_id}:{digest}".encode())
    assert seal_hash(seq, prev, entry_ids, digests) == h.hexdigest()


def test_digest_of_a_booked_entry_is_unchanged() -> None:
    """A fixed example, so a change of the canonical form cannot pass unnoticed."""
    header = EntryHeader(
        1,
        "k-é",
        "f" * 64,
        date(2026, 1, 2),
        date(2026, 1, 1),
        "2026-01-02T00:00:00.000000Z",
        'say "hi"\n',
        '{"a":[1,"é"]}',
        None,
        3,
    )
    lines = [(2, 7, "C", 5, "USD"), (1, 6, "D", 5, "USD")]
    assert (
        entry_digest(header, lines)
        == sha256(original_entry_text(header, lines).encode()).hexdigest()
    )
