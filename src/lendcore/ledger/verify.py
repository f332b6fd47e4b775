"""Checks behind `ledger verify` (pure): each function takes rows, returns problems.

The service streams the journal through these; anything altered, inserted or
removed behind lendcore's back shows up as a problem naming the entry, seal or
account concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lendcore.ledger.chain import (
    GENESIS_HASH,
    EntryHeader,
    PostingRow,
    decode_id_ranges,
    entry_digest,
    seal_hash,
)
from lendcore.ledger.model import BalanceConstraint, NormalSide, Totals, constraint_breach

# Stop collecting after this many problems: one is enough to fail, a few help to diagnose.
PROBLEMS_MAX = 100


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    entry_id: int | None = None
    account: str | None = None
    seal_seq: int | None = None


@dataclass(slots=True)
class VerifyReport:
    entries_checked: int = 0
    postings_checked: int = 0
    seals_checked: int = 0
    accounts_checked: int = 0
    audit_records_checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_entry(self) -> int | None:
        ids = [p.entry_id for p in self.problems if p.entry_id is not None]
        return min(ids) if ids else None

    def add(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            if len(self.problems) < PROBLEMS_MAX:
                self.problems.append(problem)


def check_entry(
    header: EntryHeader, lines: Sequence[PostingRow], stored_digest: str
) -> tuple[str, list[Problem]]:
    """Recompute an entry's digest and check its form; return the recomputed digest."""
    problems: list[Problem] = []
    digest = entry_digest(header, lines)
    if digest != stored_digest:
        problems.append(
            Problem(
                "ENTRY_ALTERED",
                f"entry {header.id}: its content no longer matches its digest "
                "(a row of the entry or of its postings was changed, added or removed)",
                entry_id=header.id,
            )
        )
    if len(lines) < 2:
        problems.append(
            Problem(
                "ENTRY_TOO_FEW_POSTINGS",
                f"entry {header.id} has {len(lines)} posting(s)",
                entry_id=header.id,
            )
        )
    net: dict[str, int] = {}
    for _line, _account, side, amount, currency in lines:
        if amount <= 0 or side not in ("D", "C"):
            problems.append(
                Problem(
                    "POSTING_INVALID",
                    f"entry {header.id} has an invalid posting",
                    entry_id=header.id,
                )
            )
        net[currency] = net.get(currency, 0) + (amount if side == "D" else -amount)
    for currency, diff in sorted(net.items()):
        if diff:
            problems.append(
                Problem(
                    "ENTRY_UNBALANCED",
                    f"entry {header.id} is unbalanced in {currency} by {diff} minor units",
                    entry_id=header.id,
                )
            )
    return digest, problems


@dataclass(frozen=True, slots=True)
class SealRow:
    seq: int
    prev_hash: str
    seal_hash: str
    entry_ids: str
    entry_count: int


def check_chain(
    seals: Iterable[SealRow],
    digest_of: Mapping[int, str],
    head_seq: int,
    head_hash: str,
) -> tuple[int, list[Problem]]:
    """Walk the chain from genesis; every entry must be sealed exactly once."""
    problems: list[Problem] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    sealed: set[int] = set()
    count = 0
    for seal in seals:
        count += 1
        if seal.seq != expected_seq:
            problems.append(
                Problem(
                    "SEAL_MISSING",
                    f"seal {expected_seq} is missing before seal {seal.seq}",
                    seal_seq=seal.seq,
                )
            )
        if seal.prev_hash != expected_prev:
            problems.append(
                Problem(
                    "SEAL_BROKEN",
                    f"seal {seal.seq} does not follow the seal before it",
                    seal_seq=seal.seq,
                )
            )
        ids = decode_id_ranges(seal.entry_ids)
        missing = [i for i in ids if i not in digest_of]
        for entry_id in missing:
            problems.append(
                Problem(
                    "ENTRY_REMOVED",
                    f"entry {entry_id}, sealed in seal {seal.seq}, is gone",
                    entry_id=entry_id,
                    seal_seq=seal.seq,
                )
            )
        twice = [i for i in ids if i in sealed]
        for entry_id in twice:
            problems.append(
                Problem(
                    "ENTRY_SEALED_TWICE",
                    f"entry {entry_id} is in more than one seal",
                    entry_id=entry_id,
                    seal_seq=seal.seq,
                )
            )
        sealed.update(ids)
        if not missing and len(ids) == seal.entry_count:
            recomputed = seal_hash(seal.seq, seal.prev_hash, ids, [digest_of[i] for i in ids])
            if recomputed != seal.seal_hash:
                problems.append(
                    Problem(
                        "SEAL_ALTERED",
                        f"seal {seal.seq} does not match the entries it covers ({ids[0]}..{ids[-1]})",
                        entry_id=ids[0] if len(ids) == 1 else None,
                        seal_seq=seal.seq,
                    )
                )
        elif len(ids) != seal.entry_count:
            problems.append(
                Problem(
                    "SEAL_ALTERED",
                    f"seal {seal.seq} lists the wrong number of entries",
                    seal_seq=seal.seq,
                )
            )
        expected_prev = seal.seal_hash
        expected_seq = seal.seq + 1
    if (head_seq, head_hash) != (expected_seq - 1, expected_prev):
        problems.append(
            Problem("CHAIN_HEAD_MISMATCH", f"the chain head (seal {head_seq}) is not the last seal")
        )
    for entry_id in sorted(set(digest_of) - sealed):
        problems.append(
            Problem(
                "ENTRY_UNSEALED",
                f"entry {entry_id} is in no seal: it was inserted behind lendcore's back",
                entry_id=entry_id,
            )
        )
    return count, problems


@dataclass(frozen=True, slots=True)
class AccountState:
    id: int
    code: str
    normal_side: NormalSide
    constraint: BalanceConstraint
    stored: Totals
    latest_daily: tuple[int, int] | None


def check_account(
    state: AccountState, posted: tuple[int, int], pending: tuple[int, int]
) -> list[Problem]:
    """Stored totals must equal the journal and the pending holds; constraints must hold."""
    problems: list[Problem] = []
    stored = state.stored
    if (stored.debits_posted, stored.credits_posted) != posted:
        problems.append(
            Problem(
                "BALANCE_MISMATCH",
                f"account {state.code}: stored totals D {stored.debits_posted} / C {stored.credits_posted} "
                f"differ from its postings D {posted[0]} / C {posted[1]}",
                account=state.code,
            )
        )
    if (stored.debits_pending, stored.credits_pending) != pending:
        problems.append(
            Problem(
                "PENDING_MISMATCH",
                f"account {state.code}: stored pending amounts differ from its pending holds",
                account=state.code,
            )
        )
    if posted != (0, 0) and state.latest_daily != posted:
        problems.append(
            Problem(
                "DAILY_BALANCE_MISMATCH",
                f"account {state.code}: its latest end-of-day balance differs from its postings",
                account=state.code,
            )
        )
    breach = constraint_breach(stored, state.normal_side, state.constraint)
    if breach is not None:
        problems.append(
            Problem(
                "CONSTRAINT_BROKEN",
                f"account {state.code} breaks its {state.constraint} constraint ({breach} minor units)",
                account=state.code,
            )
        )
    return problems
