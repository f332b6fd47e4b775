"""The command audit log, without a database: redaction, plain values, the record
hash and the chain check that finds an altered, removed or inserted record."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendcore.audit import (
    GENESIS_HASH,
    REDACTED,
    AuditRecord,
    canonical,
    is_secret,
    record_hash,
    redact,
    to_plain,
    verify_audit_chain,
)

# --- redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "new_password",
        "PASSWORD",
        "client_secret",
        "token",
        "refresh_token",
        "api_key",
        "apiKey",
        "APIKEY",
        "national_id",
        "borrower_national_id",
        "credentials",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret(name) is True


@pytest.mark.parametrize(
    "name", ["username", "label", "key_id", "amount_minor", "national", "id", "roles", ""]
)
def test_ordinary_names(name: str) -> None:
    assert is_secret(name) is False


def test_redact_hides_secrets_at_any_depth_and_keeps_the_rest() -> None:
    value = {
        "username": "ann",
        "password": "hunter2hunter2",
        "profile": {"api_key": {"nested": "whole subtree"}, "age": 40},
        "keys": [{"token": "t1", "label": "a"}, [{"Secret": 1}], "plain"],
        "count": 3,
    }
    assert redact(value) == {
        "username": "ann",
        "password": REDACTED,
        "profile": {"api_key": REDACTED, "age": 40},
        "keys": [{"token": REDACTED, "label": "a"}, [{"Secret": REDACTED}], "plain"],
        "count": 3,
    }
    # The input is left as it was.
    assert value["password"] == "hunter2hunter2"


def test_redact_leaves_values_without_names_alone() -> None:
    assert redact("password") == "password"
    assert redact(["password", 1, None]) == ["password", 1, None]
    assert redact(None) is None


json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
ordinary_keys = st.text(min_size=1, max_size=8).filter(lambda k: not is_secret(k))
secret_keys = st.sampled_from(["password", "x_token", "API_KEY", "my_secret", "national_id"])
documents = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(ordinary_keys | secret_keys, children, max_size=4)
    ),
    max_leaves=25,
)
SENTINEL = "s3ntinel-value-never-shown"


def plant(document: Any, path: list[int], key: str) -> Any:
    """Put SENTINEL under `key` somewhere in `document`, following `path` choices."""
    if isinstance(document, dict) and document and path:
        keys = sorted(document)
        k = keys[path[0] % len(keys)]
        return {**document, k: plant(document[k], path[1:], key)}
    if isinstance(document, list) and document and path:
        i = path[0] % len(document)
        return [*document[:i], plant(document[i], path[1:], key), *document[i + 1 :]]
    if isinstance(document, dict):
        return {**document, key: SENTINEL}
    return [document, {key: SENTINEL}]


def secret_free(value: Any) -> bool:
    """No secret-named key holds anything but REDACTED, at any depth."""
    if isinstance(value, dict):
        return all((v == REDACTED if is_secret(k) else secret_free(v)) for k, v in value.items())
    if isinstance(value, list):
        return all(secret_free(v) for v in value)
    return True


@given(documents, st.lists(st.integers(min_value=0, max_value=10), max_size=6), secret_keys)
def test_redact_removes_a_planted_secret_at_any_depth(
    document: Any, path: list[int], key: str
) -> None:
    planted = plant(document, path, key)
    assert SENTINEL in canonical(planted)
    redacted = redact(planted)
    assert SENTINEL not in canonical(redacted)
    assert secret_free(redacted)


@given(documents)
def test_redact_changes_nothing_without_secret_names_and_is_idempotent(document: Any) -> None:
    once = redact(document)
    assert redact(once) == once
    if _has_no_secret_keys(document):
        assert once == document


def _has_no_secret_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not is_secret(k) and _has_no_secret_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_has_no_secret_keys(v) for v in value)
    return True


# --- to_plain and canonical -------------------------------------------------------------------


class Colour(Enum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    when: date
    rate: Decimal


@dataclass(frozen=True)
class Outer:
    name: str
    colour: Colour
    inner: Inner
    tags: frozenset[str]
    items: tuple[int, ...]


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


def test_to_plain_turns_inputs_into_json_data() -> None:
    value = {
        "outer": Outer(
            "loan",
            Colour.RED,
            Inner(date(2024, 2, 29), Decimal("0.0525")),
            frozenset({"b", "a", "c"}),
            (3, 1, 2),
        ),
        1: datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
        "set": {3, 10, 2},
        "other": Opaque(),
        "flags": [True, None, 1.5],
    }
    assert to_plain(value) == {
        "outer": {
            "name": "loan",
            "colour": "red",
            "inner": {"when": "2024-02-29", "rate": "0.0525"},
            "tags": ["a", "b", "c"],
            "items": [3, 1, 2],
        },
        "1": "2024-03-01T12:30:00+00:00",
        # Sets are sorted by their text, so the record does not depend on hash order.
        "set": [10, 2, 3],
        "other": "opaque!",
        "flags": [True, None, 1.5],
    }
    assert json.loads(json.dumps(to_plain(value))) == to_plain(value)
    # A class is not a dataclass instance: it is written as its text.
    assert to_plain(Inner) == str(Inner)


@given(st.sets(st.integers() | st.text(max_size=4), max_size=8))
def test_to_plain_orders_sets_independently_of_insertion(values: set[Any]) -> None:
    forwards = set()
    for v in sorted(values, key=str):
        forwards.add(v)
    backwards = set()
    for v in sorted(values, key=str, reverse=True):
        backwards.add(v)
    assert to_plain(forwards) == to_plain(backwards) == sorted(values, key=str)


def test_canonical_is_compact_sorted_and_keeps_unicode() -> None:
    assert canonical({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == (
        '{"a":[1,{"c":"é","d":null}],"b":1}'
    )


@given(st.dictionaries(st.text(max_size=5), json_leaves, max_size=6))
def test_canonical_does_not_depend_on_key_order(mapping: dict[str, Any]) -> None:
    reversed_order = dict(reversed(list(mapping.items())))
    assert canonical(mapping) == canonical(reversed_order)
    assert json.loads(canonical(mapping)) == mapping


# --- the record hash and the chain --------------------------------------------------------------


def record(seq: int, **changes: Any) -> AuditRecord:
    base = AuditRecord(
        seq=seq,
        recorded_at=f"2024-01-01T00:00:{seq % 60:02d}.000000Z",
        business_date=date(2024, 1, 1),
        actor="ann",
        actor_kind="user",
        roles="accountant",
        command="ledger.account.open",
        request_id=f"req-{seq}",
        inputs_json='{"code":"1000"}',
        outcome="ok",
        error_code=None,
        result_json="{}",
    )
    return dataclasses.replace(base, **changes)


Row = tuple[AuditRecord, str, str]


def chain(records: list[AuditRecord]) -> tuple[list[Row], int, str]:
    """Rows (record, prev_hash, record_hash) as the log stores them, and the head."""
    rows: list[Row] = []
    prev = GENESIS_HASH
    for r in records:
        digest = record_hash(prev, r)
        rows.append((r, prev, digest))
        prev = digest
    return rows, (records[-1].seq if records else 0), prev


def test_record_hash_is_sha256_of_the_canonical_content() -> None:
    r = record(1)
    content = [
        1,
        GENESIS_HASH,
        r.recorded_at,
        "2024-01-01",
        "ann",
        "user",
        "accountant",
        "ledger.account.open",
        "req-1",
        '{"code":"1000"}',
        "ok",
        None,
        "{}",
    ]
    assert record_hash(GENESIS_HASH, r) == hashlib.sha256(canonical(content).encode()).hexdigest()
    assert len(record_hash(GENESIS_HASH, r)) == 64


CHANGES: dict[str, Any] = {
    "seq": 99,
    "recorded_at": "2025-01-01T00:00:00.000000Z",
    "business_date": date(2024, 1, 2),
    "actor": "bob",
    "actor_kind": "local_operator",
    "roles": "accountant,admin",
    "command": "ledger.account.close",
    "request_id": "other",
    "inputs_json": '{"code":"1001"}',
    "outcome": "refused",
    "error_code": "PERMISSION_DENIED",
    "result_json": '{"x":1}',
}


def test_every_field_is_covered_by_the_hash() -> None:
    assert set(CHANGES) == {f.name for f in dataclasses.fields(AuditRecord)}
    original = record_hash(GENESIS_HASH, record(1))
    for name, value in CHANGES.items():
        changed = dataclasses.replace(record(1), **{name: value})
        assert record_hash(GENESIS_HASH, changed) != original, name
    assert record_hash("f" * 64, record(1)) != original


def test_an_intact_chain_verifies() -> None:
    rows, head_seq, head_hash = chain([record(n) for n in range(1, 6)])
    assert verify_audit_chain(rows, head_seq, head_hash) == (5, [])


def test_an_empty_chain_verifies_against_the_genesis_head() -> None:
    assert verify_audit_chain([], 0, GENESIS_HASH) == (0, [])
    assert verify_audit_chain([], 1, GENESIS_HASH) == (
        0,
        ["the audit chain head (record 1) is not the last record"],
    )


@given(
    n=st.integers(min_value=1, max_value=8),
    data=st.data(),
)
def test_any_altered_field_of_any_record_is_found(n: int, data: st.DataObject) -> None:
    rows, head_seq, head_hash = chain([record(i) for i in range(1, n + 1)])
    target = data.draw(st.integers(min_value=0, max_value=n - 1))
    name = data.draw(st.sampled_from(sorted(set(CHANGES) - {"seq"})))
    original, prev, digest = rows[target]
    rows[target] = (dataclasses.replace(original, **{name: CHANGES[name]}), prev, digest)
    count, problems = verify_audit_chain(rows, head_seq, head_hash)
    assert count == n
    assert problems == [f"audit record {target + 1} was altered"]


def test_an_altered_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    rows, head_seq, head_hash = chain([record(n) for n in range(1, 4)])
    forged = record(2, outcome="refused")
    rows[1] = (forged, rows[1][1], record_hash(rows[1][1], forged))
    assert verify_audit_chain(rows, head_seq, head_hash) == (
        3,
        ["audit record 3 does not follow the record before it"],
    )


def test_a_rewritten_tail_is_caught_by_the_head() -> None:
    records = [record(n) for n in range(1, 4)]
    _rows, head_seq, head_hash = chain(records)
    forged_rows, _, _ = chain([*records[:2], record(3, actor="mallory")])
    assert verify_audit_chain(forged_rows, head_seq, head_hash) == (
        3,
        ["the audit chain head (record 3) is not the last record"],
    )


@given(n=st.integers(min_value=3, max_value=8), data=st.data())
def test_a_removed_record_is_found(n: int, data: st.DataObject) -> None:
    rows, head_seq, head_hash = chain([record(i) for i in range(1, n + 1)])
    gone = data.draw(st.integers(min_value=0, max_value=n - 2))
    del rows[gone]
    count, problems = verify_audit_chain(rows, head_seq, head_hash)
    assert count == n - 1
    assert problems == [
        f"audit record {gone + 1} is missing before record {gone + 2}",
        f"audit record {gone + 2} does not follow the record before it",
    ]


def test_a_removed_last_record_is_caught_by_the_head() -> None:
    rows, head_seq, head_hash = chain([record(n) for n in range(1, 4)])
    assert verify_audit_chain(rows[:-1], head_seq, head_hash) == (
        2,
        ["the audit chain head (record 3) is not the last record"],
    )


def test_an_inserted_record_is_found() -> None:
    rows, head_seq, head_hash = chain([record(n) for n in range(1, 4)])
    # A forger slips a record between 1 and 2, linked after record 1.
    extra = record(2, actor="mallory", command="identity.user.create")
    inserted = (extra, rows[0][2], record_hash(rows[0][2], extra))
    count, problems = verify_audit_chain([rows[0], inserted, *rows[1:]], head_seq, head_hash)
    assert count == 4
    assert problems == [
        "audit record 3 is missing before record 2",
        "audit record 2 does not follow the record before it",
    ]


def test_records_out_of_order_are_found() -> None:
    rows, head_seq, head_hash = chain([record(n) for n in range(1, 4)])
    count, problems = verify_audit_chain([rows[1], rows[0], rows[2]], head_seq, head_hash)
    assert count == 3
    assert problems == [
        "audit record 1 is missing before record 2",
        "audit record 2 does not follow the record before it",
        "audit record 3 is missing before record 1",
        "audit record 1 does not follow the record before it",
        "audit record 2 is missing before record 3",
        "audit record 3 does not follow the record before it",
    ]


@pytest.mark.parametrize(
    ("head_seq", "head_hash"),
    [(2, None), (4, None), (3, "0" * 64), (3, "f" * 64), (0, GENESIS_HASH)],
)
def test_a_wrong_head_is_found(head_seq: int, head_hash: str | None) -> None:
    rows, _, real_hash = chain([record(n) for n in range(1, 4)])
    count, problems = verify_audit_chain(rows, head_seq, head_hash or real_hash)
    assert (count, problems) == (
        3,
        [f"the audit chain head (record {head_seq}) is not the last record"],
    )


@given(n=st.integers(min_value=0, max_value=10))
def test_chains_of_any_length_verify(n: int) -> None:
    rows, head_seq, head_hash = chain([record(i) for i in range(1, n + 1)])
    assert verify_audit_chain(iter(rows), head_seq, head_hash) == (n, [])
