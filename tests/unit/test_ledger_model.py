"""Pure ledger functions: entry rules, balances and constraints, the audit chain
and the checks behind `ledger verify`."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from hashlib import sha256

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendcore.errors import (
    BalanceConstraintViolated,
    EntryUnbalanced,
    InvalidAccount,
    InvalidEntry,
    NonPositiveAmount,
)
from lendcore.ledger.chain import (
    GENESIS_HASH,
    EntryHeader,
    decode_id_ranges,
    encode_id_ranges,
    entry_digest,
    seal_hash,
)
from lendcore.ledger.model import (
    AMOUNT_MINOR_MAX,
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    NormalSide,
    PostingSpec,
    Side,
    Totals,
    available_balance,
    balance_on_normal_side,
    canonical_json,
    ceiling_balance,
    check_constraint,
    constraint_breach,
    request_fingerprint,
    reversal_postings,
    validate_account_spec,
    validate_amount,
    validate_description,
    validate_entry,
    validate_idempotency_key,
)
from lendcore.ledger.verify import (
    PROBLEMS_MAX,
    AccountState,
    Problem,
    SealRow,
    VerifyReport,
    check_account,
    check_chain,
    check_entry,
)

D, C = Side.DEBIT, Side.CREDIT
DEBIT, CREDIT = NormalSide.DEBIT, NormalSide.CREDIT
NN, NP, NONE = (
    BalanceConstraint.NON_NEGATIVE,
    BalanceConstraint.NON_POSITIVE,
    BalanceConstraint.NONE,
)


def spec(*lines: tuple[str, Side, int, str], key: str = "k", **kwargs: object) -> EntrySpec:
    return EntrySpec(key, tuple(PostingSpec(*line) for line in lines), **kwargs)  # type: ignore[arg-type]


# --- entries -------------------------------------------------------------------------------


def test_balanced_entries_pass() -> None:
    validate_entry(spec(("a", D, 100, "USD"), ("b", C, 100, "USD")))
    validate_entry(
        spec(
            ("a", D, 70, "USD"),
            ("b", D, 30, "USD"),
            ("c", C, 100, "USD"),
            ("y", D, 5, "JPY"),
            ("z", C, 5, "JPY"),
        )
    )


def test_unbalanced_entry_reports_each_currency() -> None:
    with pytest.raises(EntryUnbalanced) as caught:
        validate_entry(
            spec(
                ("a", D, 100, "USD"),
                ("b", C, 90, "USD"),
                ("y", D, 5, "JPY"),
                ("z", C, 8, "JPY"),
                ("k", D, 1, "KWD"),
                ("l", C, 1, "KWD"),
            )
        )
    assert caught.value.code == "ENTRY_UNBALANCED"
    assert caught.value.details == {"unbalanced_minor": {"USD": 10, "JPY": -3}}
    assert caught.value.message == (
        "entry 'k' is unbalanced: JPY credits exceed debits by 3, "
        "USD debits exceed credits by 10 minor units"
    )


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ((("a", D, 0, "USD"), ("b", C, 0, "USD")), NonPositiveAmount),
        ((("a", D, -5, "USD"), ("b", C, -5, "USD")), NonPositiveAmount),
        ((("a", D, 1, "USD"),), InvalidEntry),
        ((), InvalidEntry),
        ((("a", D, True, "USD"), ("b", C, True, "USD")), InvalidEntry),
        (
            (("a", D, AMOUNT_MINOR_MAX + 1, "USD"), ("b", C, AMOUNT_MINOR_MAX + 1, "USD")),
            InvalidEntry,
        ),
    ],
    ids=["zero", "negative", "one-line", "no-lines", "bool", "over-max"],
)
def test_malformed_entries(lines: tuple[tuple[str, Side, int, str], ...], error: type) -> None:
    with pytest.raises(error):
        validate_entry(spec(*lines))


def test_amount_limits() -> None:
    validate_amount(1)
    validate_amount(AMOUNT_MINOR_MAX)
    with pytest.raises(InvalidEntry):
        validate_amount(AMOUNT_MINOR_MAX + 1)
    with pytest.raises(InvalidEntry):
        validate_amount(1.0)  # type: ignore[arg-type]
    with pytest.raises(NonPositiveAmount) as caught:
        validate_amount(0)
    assert caught.value.code == "AMOUNT_NOT_POSITIVE"


def test_too_many_postings_and_long_descriptions() -> None:
    lines = [("a", D, 1, "USD"), ("b", C, 1, "USD")] * 500
    validate_entry(spec(*lines))
    with pytest.raises(InvalidEntry):
        validate_entry(spec(*lines, ("a", D, 1, "USD"), ("b", C, 1, "USD")))
    validate_entry(spec(("a", D, 1, "USD"), ("b", C, 1, "USD"), description="d" * 500))
    with pytest.raises(InvalidEntry):
        validate_entry(spec(("a", D, 1, "USD"), ("b", C, 1, "USD"), description="d" * 501))


def test_descriptions() -> None:
    validate_description("")
    validate_description("d" * 500)
    with pytest.raises(InvalidEntry) as caught:
        validate_description("d" * 501)
    assert caught.value.message == "description is longer than 500 characters"
    with pytest.raises(InvalidEntry) as caught:
        validate_description("a\x00b")
    assert "NUL" in caught.value.message
    with pytest.raises(InvalidEntry):
        validate_entry(spec(("a", D, 1, "USD"), ("b", C, 1, "USD"), description="\x00"))


@pytest.mark.parametrize("key", ["", "k" * 129, "tab\there", "new\nline"])
def test_bad_idempotency_keys(key: str) -> None:
    with pytest.raises(InvalidEntry) as caught:
        validate_idempotency_key(key)
    assert caught.value.code == "ENTRY_INVALID"


def test_good_idempotency_keys() -> None:
    validate_idempotency_key("k")
    validate_idempotency_key("k" * 128)
    validate_idempotency_key("loan-42/repayment 3 ✓")


@pytest.mark.parametrize(
    ("account", "message"),
    [
        (AccountSpec("", "Cash", AccountType.ASSET, "USD"), "account code"),
        (AccountSpec("a b", "Cash", AccountType.ASSET, "USD"), "without spaces"),
        (AccountSpec("c" * 65, "Cash", AccountType.ASSET, "USD"), "account code"),
        (AccountSpec("cash", "  ", AccountType.ASSET, "USD"), "needs a name"),
        (AccountSpec("cash", "n" * 201, AccountType.ASSET, "USD"), "at most 200"),
        (AccountSpec("cash", "Ca\x00sh", AccountType.ASSET, "USD"), "without NUL"),
        (AccountSpec("cash", "Cash", AccountType.ASSET, "USD", parent_code="cash"), "own parent"),
    ],
)
def test_bad_account_specs(account: AccountSpec, message: str) -> None:
    with pytest.raises(InvalidAccount) as caught:
        validate_account_spec(account)
    assert message in caught.value.message


def test_normal_side_follows_the_type_unless_given() -> None:
    sides = {t: AccountSpec("x", "X", t, "USD").effective_normal_side for t in AccountType}
    assert sides == {
        AccountType.ASSET: DEBIT,
        AccountType.EXPENSE: DEBIT,
        AccountType.LIABILITY: CREDIT,
        AccountType.EQUITY: CREDIT,
        AccountType.INCOME: CREDIT,
    }
    contra = AccountSpec("x", "X", AccountType.ASSET, "USD", normal_side=CREDIT)
    assert contra.effective_normal_side is CREDIT


def test_reversal_swaps_sides_and_keeps_amounts() -> None:
    lines = (PostingSpec("a", D, 7, "USD"), PostingSpec("b", C, 7, "USD"))
    assert reversal_postings(lines) == (
        PostingSpec("a", C, 7, "USD"),
        PostingSpec("b", D, 7, "USD"),
    )
    assert reversal_postings(reversal_postings(lines)) == lines
    assert Side.DEBIT.opposite is Side.CREDIT and Side.CREDIT.opposite is Side.DEBIT


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
    assert canonical_json({"a": [1, "é"], "b": 1}) == canonical_json({"b": 1, "a": [1, "é"]})


def test_request_fingerprint_covers_every_field() -> None:
    base = spec(("a", D, 5, "USD"), ("b", C, 5, "USD"), description="x", metadata={"m": 1})
    fp = request_fingerprint(base)
    assert len(fp) == 64 and int(fp, 16) >= 0
    # The key is not part of the content: the same content under another key matches.
    assert request_fingerprint(replace(base, idempotency_key="other")) == fp
    # Metadata key order does not matter.
    assert request_fingerprint(replace(base, metadata={"m": 1})) == fp
    variants = [
        replace(base, description="y"),
        replace(base, metadata={"m": 2}),
        replace(base, value_date=date(2026, 1, 1)),
        spec(("a", D, 6, "USD"), ("b", C, 6, "USD"), description="x", metadata={"m": 1}),
        spec(("b", C, 5, "USD"), ("a", D, 5, "USD"), description="x", metadata={"m": 1}),
        spec(("a", C, 5, "USD"), ("b", D, 5, "USD"), description="x", metadata={"m": 1}),
    ]
    prints = {request_fingerprint(v) for v in variants}
    prints |= {request_fingerprint(base, reverses=1), request_fingerprint(base, hold=1)}
    assert fp not in prints
    assert len(prints) == len(variants) + 2


# --- balances and constraints --------------------------------------------------------------


def test_balance_on_normal_side() -> None:
    assert balance_on_normal_side(100, 30, DEBIT) == 70
    assert balance_on_normal_side(100, 30, CREDIT) == -70
    assert balance_on_normal_side(0, 0, CREDIT) == 0


def test_totals_post_and_reserve() -> None:
    t = Totals().posted(D, 10).posted(C, 3).reserved(D, 4).reserved(C, 5)
    assert t == Totals(10, 3, 4, 5)
    assert t.reserved(D, -4).reserved(C, -5) == Totals(10, 3, 0, 0)


def test_available_and_ceiling() -> None:
    # Debit-normal account: 100 posted; 30 may leave (credit held), 20 may arrive (debit held).
    t = Totals(debits_posted=150, credits_posted=50, debits_pending=20, credits_pending=30)
    assert available_balance(t, DEBIT) == 70
    assert ceiling_balance(t, DEBIT) == 120
    # Credit-normal: posted -100; away is debits pending, toward is credits pending.
    assert available_balance(t, CREDIT) == -120
    assert ceiling_balance(t, CREDIT) == -70


@pytest.mark.parametrize(
    ("totals", "normal", "constraint", "breach"),
    [
        (Totals(100, 100, 0, 0), DEBIT, NN, None),
        (Totals(100, 101, 0, 0), DEBIT, NN, -1),
        (Totals(100, 50, 0, 51), DEBIT, NN, -1),
        (Totals(100, 50, 0, 50), DEBIT, NN, None),
        (Totals(0, 10, 0, 0), CREDIT, NN, None),
        (Totals(11, 10, 0, 0), CREDIT, NN, -1),
        (Totals(0, 10, 0, 0), DEBIT, NP, None),
        (Totals(0, 10, 11, 0), DEBIT, NP, 1),
        (Totals(10, 0, 0, 0), CREDIT, NP, None),
        (Totals(10, 0, 0, 11), CREDIT, NP, 1),
        (Totals(0, 10**9, 0, 0), DEBIT, NONE, None),
    ],
)
def test_constraint_breach(
    totals: Totals, normal: NormalSide, constraint: BalanceConstraint, breach: int | None
) -> None:
    assert constraint_breach(totals, normal, constraint) == breach


def test_check_constraint_raises_with_details() -> None:
    check_constraint("cash", Totals(5, 5, 0, 0), DEBIT, NN)
    with pytest.raises(BalanceConstraintViolated) as caught:
        check_constraint("cash", Totals(5, 5, 0, 2), DEBIT, NN)
    assert caught.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    assert caught.value.details == {"account": "cash", "balance_minor": -2}
    assert "below zero" in caught.value.message
    with pytest.raises(BalanceConstraintViolated) as caught:
        check_constraint("contra", Totals(3, 0, 0, 0), DEBIT, NP)
    assert "above zero" in caught.value.message


# --- the chain -------------------------------------------------------------------------------


HEADER = EntryHeader(
    id=7,
    idempotency_key="k7",
    request_hash="f" * 64,
    business_date=date(2026, 3, 31),
    value_date=date(2026, 3, 30),
    recorded_at="2026-03-31T10:00:00.000000Z",
    description="repayment",
    metadata_json='{"loan":1}',
    reverses_entry_id=None,
    hold_id=None,
)
LINES = [(1, 10, "D", 500, "USD"), (2, 20, "C", 500, "USD")]


def test_entry_digest_is_sha256_of_the_canonical_content() -> None:
    expected = sha256(
        b'[7,"k7","' + b"f" * 64 + b'","2026-03-31","2026-03-30","2026-03-31T10:00:00.000000Z",'
        b'"repayment","{\\"loan\\":1}",null,null,[[1,10,"D",500,"USD"],[2,20,"C",500,"USD"]]]'
    ).hexdigest()
    assert entry_digest(HEADER, LINES) == expected
    # Line order as stored does not matter: postings are sorted by line number.
    assert entry_digest(HEADER, list(reversed(LINES))) == expected


@pytest.mark.parametrize(
    "changed",
    [
        replace(HEADER, id=8),
        replace(HEADER, idempotency_key="k8"),
        replace(HEADER, request_hash="e" * 64),
        replace(HEADER, business_date=date(2026, 4, 1)),
        replace(HEADER, value_date=date(2026, 3, 31)),
        replace(HEADER, recorded_at="2026-03-31T10:00:00.000001Z"),
        replace(HEADER, description="Repayment"),
        replace(HEADER, metadata_json='{"loan":2}'),
        replace(HEADER, reverses_entry_id=1),
        replace(HEADER, hold_id=1),
    ],
)
def test_every_header_field_changes_the_digest(changed: EntryHeader) -> None:
    assert entry_digest(changed, LINES) != entry_digest(HEADER, LINES)


@pytest.mark.parametrize(
    "lines",
    [
        [(1, 10, "D", 501, "USD"), (2, 20, "C", 500, "USD")],
        [(1, 11, "D", 500, "USD"), (2, 20, "C", 500, "USD")],
        [(1, 10, "C", 500, "USD"), (2, 20, "C", 500, "USD")],
        [(1, 10, "D", 500, "EUR"), (2, 20, "C", 500, "USD")],
        [(1, 10, "D", 500, "USD")],
        [*LINES, (3, 30, "D", 1, "USD")],
    ],
)
def test_every_posting_change_changes_the_digest(
    lines: list[tuple[int, int, str, int, str]],
) -> None:
    assert entry_digest(HEADER, lines) != entry_digest(HEADER, LINES)


def test_seal_hash_links() -> None:
    first = seal_hash(1, GENESIS_HASH, [1, 2], ["a" * 64, "b" * 64])
    h = sha256()
    h.update(f"1:{GENESIS_HASH}:2".encode())
    h.update(("\n1:" + "a" * 64).encode())
    h.update(("\n2:" + "b" * 64).encode())
    assert first == h.hexdigest()
    assert seal_hash(2, first, [3], ["c" * 64]) != seal_hash(2, GENESIS_HASH, [3], ["c" * 64])
    assert seal_hash(1, GENESIS_HASH, [1, 2], ["b" * 64, "a" * 64]) != first
    assert seal_hash(2, GENESIS_HASH, [1, 2], ["a" * 64, "b" * 64]) != first
    with pytest.raises(ValueError):
        seal_hash(1, GENESIS_HASH, [1, 2], ["a" * 64])


@pytest.mark.parametrize(
    ("ids", "text"),
    [
        ([], ""),
        ([5], "5"),
        ([1, 2, 3], "1-3"),
        ([1, 2, 3, 7, 9, 10], "1-3,7,9-10"),
        ([4, 6, 8], "4,6,8"),
    ],
)
def test_id_ranges(ids: list[int], text: str) -> None:
    assert encode_id_ranges(ids) == text
    assert decode_id_ranges(text) == ids


def test_id_ranges_must_ascend() -> None:
    with pytest.raises(ValueError):
        encode_id_ranges([3, 2])
    with pytest.raises(ValueError):
        encode_id_ranges([2, 2])


@given(st.sets(st.integers(1, 10_000), max_size=200))
def test_id_ranges_round_trip(ids: set[int]) -> None:
    ordered = sorted(ids)
    text = encode_id_ranges(ordered)
    assert decode_id_ranges(text) == ordered
    # Never longer than listing every id.
    assert len(text) <= len(",".join(map(str, ordered)))


# --- verify checks ---------------------------------------------------------------------------


def test_check_entry_of_a_good_entry() -> None:
    digest = entry_digest(HEADER, LINES)
    assert check_entry(HEADER, LINES, digest) == (digest, [])


def test_check_entry_finds_each_problem() -> None:
    digest = entry_digest(HEADER, LINES)
    recomputed, problems = check_entry(HEADER, [(1, 10, "D", 500, "USD")], digest)
    assert recomputed != digest
    assert [p.code for p in problems] == [
        "ENTRY_ALTERED",
        "ENTRY_TOO_FEW_POSTINGS",
        "ENTRY_UNBALANCED",
    ]
    assert {p.entry_id for p in problems} == {7}
    bad_lines = [(1, 10, "X", 500, "USD"), (2, 20, "C", 0, "USD")]
    _, problems = check_entry(HEADER, bad_lines, entry_digest(HEADER, bad_lines))
    assert [p.code for p in problems] == ["POSTING_INVALID", "POSTING_INVALID", "ENTRY_UNBALANCED"]


def _chain(digests: dict[int, str], groups: list[list[int]]) -> list[SealRow]:
    seals, prev = [], GENESIS_HASH
    for seq, ids in enumerate(groups, start=1):
        link = seal_hash(seq, prev, ids, [digests[i] for i in ids])
        seals.append(SealRow(seq, prev, link, encode_id_ranges(ids), len(ids)))
        prev = link
    return seals


DIGESTS = {i: sha256(str(i).encode()).hexdigest() for i in range(1, 6)}
GROUPS = [[1], [2, 3, 4], [5]]


def test_check_chain_of_a_good_chain() -> None:
    seals = _chain(DIGESTS, GROUPS)
    count, problems = check_chain(seals, DIGESTS, 3, seals[-1].seal_hash)
    assert (count, problems) == (3, [])


def test_check_chain_finds_an_altered_entry() -> None:
    seals = _chain(DIGESTS, GROUPS)
    altered = {**DIGESTS, 3: "0" * 64}
    _, problems = check_chain(seals, altered, 3, seals[-1].seal_hash)
    # Seal 2 covers three entries, so it cannot name one of them.
    assert [(p.code, p.seal_seq, p.entry_id) for p in problems] == [("SEAL_ALTERED", 2, None)]
    altered = {**DIGESTS, 5: "0" * 64}
    _, problems = check_chain(seals, altered, 3, seals[-1].seal_hash)
    assert [(p.code, p.seal_seq, p.entry_id) for p in problems] == [("SEAL_ALTERED", 3, 5)]


def test_check_chain_finds_removed_and_inserted_entries() -> None:
    seals = _chain(DIGESTS, GROUPS)
    removed = {i: d for i, d in DIGESTS.items() if i != 4}
    _, problems = check_chain(seals, removed, 3, seals[-1].seal_hash)
    assert [(p.code, p.entry_id, p.seal_seq) for p in problems] == [("ENTRY_REMOVED", 4, 2)]
    inserted = {**DIGESTS, 6: "a" * 64}
    _, problems = check_chain(seals, inserted, 3, seals[-1].seal_hash)
    assert [(p.code, p.entry_id) for p in problems] == [("ENTRY_UNSEALED", 6)]


def test_check_chain_finds_broken_links() -> None:
    seals = _chain(DIGESTS, GROUPS)
    # A seal removed from the middle.
    _, problems = check_chain([seals[0], seals[2]], DIGESTS, 3, seals[-1].seal_hash)
    assert [p.code for p in problems] == [
        "SEAL_MISSING",
        "SEAL_BROKEN",
        "ENTRY_UNSEALED",
        "ENTRY_UNSEALED",
        "ENTRY_UNSEALED",
    ]
    assert [p.entry_id for p in problems if p.code == "ENTRY_UNSEALED"] == [2, 3, 4]
    # The last seal removed: only the head can tell.
    _, problems = check_chain(
        seals[:2], {i: DIGESTS[i] for i in range(1, 5)}, 3, seals[-1].seal_hash
    )
    assert [p.code for p in problems] == ["CHAIN_HEAD_MISMATCH"]
    # An entry listed in two seals.
    twice = _chain(DIGESTS, [[1], [2, 3, 4], [4, 5]])
    _, problems = check_chain(twice, DIGESTS, 3, twice[-1].seal_hash)
    assert [(p.code, p.entry_id) for p in problems] == [("ENTRY_SEALED_TWICE", 4)]
    # A count that does not match the listed ids.
    miscounted = [*seals[:2], replace(seals[2], entry_count=2)]
    _, problems = check_chain(miscounted, DIGESTS, 3, seals[-1].seal_hash)
    assert [(p.code, p.seal_seq) for p in problems] == [("SEAL_ALTERED", 3)]


def _state(
    stored: Totals, daily: tuple[int, int] | None, constraint: BalanceConstraint = NONE
) -> AccountState:
    return AccountState(1, "cash", DEBIT, constraint, stored, daily)


def test_check_account() -> None:
    assert check_account(_state(Totals(10, 4, 1, 2), (10, 4)), (10, 4), (1, 2)) == []
    assert check_account(_state(Totals(), None), (0, 0), (0, 0)) == []
    problems = check_account(_state(Totals(10, 4, 1, 2), (10, 4)), (10, 5), (1, 3))
    assert [p.code for p in problems] == [
        "BALANCE_MISMATCH",
        "PENDING_MISMATCH",
        "DAILY_BALANCE_MISMATCH",
    ]
    assert {p.account for p in problems} == {"cash"}
    problems = check_account(_state(Totals(4, 10, 0, 0), (4, 10), NN), (4, 10), (0, 0))
    assert [p.code for p in problems] == ["CONSTRAINT_BROKEN"]


def test_report_ok_first_bad_entry_and_limit() -> None:
    report = VerifyReport()
    assert report.ok and report.first_bad_entry is None
    report.add([Problem("X", "x", entry_id=9), Problem("Y", "y"), Problem("Z", "z", entry_id=4)])
    assert not report.ok
    assert report.first_bad_entry == 4
    report.add(Problem("N", "n", entry_id=1) for _ in range(PROBLEMS_MAX * 2))
    assert len(report.problems) == PROBLEMS_MAX
