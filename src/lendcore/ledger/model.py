"""The ledger's domain: accounts, postings, entries and balance rules (pure).

Nothing here touches storage. The service layer loads rows, calls these
functions, and writes what they return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from hashlib import sha256
from json.encoder import encode_basestring as _text
from typing import Any

from lendcore.errors import (
    BalanceConstraintViolated,
    EntryUnbalanced,
    InvalidAccount,
    InvalidEntry,
    NonPositiveAmount,
)

# Limits, so nothing grows without bound.
POSTINGS_PER_ENTRY_MAX = 1_000
ENTRIES_PER_BATCH_MAX = 100_000
IDEMPOTENCY_KEY_LENGTH_MAX = 128
DESCRIPTION_LENGTH_MAX = 500
ACCOUNT_CODE_LENGTH_MAX = 64
ACCOUNT_NAME_LENGTH_MAX = 200
# Postgres BIGINT; a sum of amounts must still fit.
AMOUNT_MINOR_MAX = 2**62


class Side(StrEnum):
    DEBIT = "D"
    CREDIT = "C"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


class NormalSide(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


# The side on which an account of each type normally carries its balance.
NORMAL_SIDE_OF: Mapping[AccountType, NormalSide] = {
    AccountType.ASSET: NormalSide.DEBIT,
    AccountType.EXPENSE: NormalSide.DEBIT,
    AccountType.LIABILITY: NormalSide.CREDIT,
    AccountType.EQUITY: NormalSide.CREDIT,
    AccountType.INCOME: NormalSide.CREDIT,
}


class BalanceConstraint(StrEnum):
    """A limit on an account's balance, on its normal side."""

    NONE = "none"
    # The balance on the normal side may not go below zero (no overdraft).
    NON_NEGATIVE = "non_negative"
    # The balance on the normal side may not go above zero (a contra limit).
    NON_POSITIVE = "non_positive"


class AccountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What a person asks for when opening an account."""

    code: str
    name: str
    type: AccountType
    currency: str
    normal_side: NormalSide | None = None
    parent_code: str | None = None
    balance_constraint: BalanceConstraint = BalanceConstraint.NONE

    @property
    def effective_normal_side(self) -> NormalSide:
        return self.normal_side or NORMAL_SIDE_OF[self.type]


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals of one account; pending amounts are reserved by holds."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    def posted(self, side: Side, amount_minor: int) -> Totals:
        if side is Side.DEBIT:
            return Totals(
                self.debits_posted + amount_minor,
                self.credits_posted,
                self.debits_pending,
                self.credits_pending,
            )
        return Totals(
            self.debits_posted,
            self.credits_posted + amount_minor,
            self.debits_pending,
            self.credits_pending,
        )

    def reserved(self, side: Side, amount_minor: int) -> Totals:
        """Reserve (positive) or release (negative) a pending amount on `side`."""
        if side is Side.DEBIT:
            return Totals(
                self.debits_posted,
                self.credits_posted,
                self.debits_pending + amount_minor,
                self.credits_pending,
            )
        return Totals(
            self.debits_posted,
            self.credits_posted,
            self.debits_pending,
            self.credits_pending + amount_minor,
        )


def balance_on_normal_side(debits: int, credits: int, normal_side: NormalSide) -> int:
    """The balance as an accountant reads it: positive on the account's normal side."""
    return debits - credits if normal_side is NormalSide.DEBIT else credits - debits


def available_balance(totals: Totals, normal_side: NormalSide) -> int:
    """Posted balance less what holds may still take away from it."""
    posted = balance_on_normal_side(totals.debits_posted, totals.credits_posted, normal_side)
    pending_away = (
        totals.credits_pending if normal_side is NormalSide.DEBIT else totals.debits_pending
    )
    return posted - pending_away


def ceiling_balance(totals: Totals, normal_side: NormalSide) -> int:
    """Posted balance plus what holds may still add to it on the normal side."""
    posted = balance_on_normal_side(totals.debits_posted, totals.credits_posted, normal_side)
    pending_toward = (
        totals.debits_pending if normal_side is NormalSide.DEBIT else totals.credits_pending
    )
    return posted + pending_toward


def constraint_breach(
    totals: Totals, normal_side: NormalSide, constraint: BalanceConstraint
) -> int | None:
    """The balance that breaks `constraint`, or None when the totals respect it."""
    if constraint is BalanceConstraint.NON_NEGATIVE:
        available = available_balance(totals, normal_side)
        return available if available < 0 else None
    if constraint is BalanceConstraint.NON_POSITIVE:
        ceiling = ceiling_balance(totals, normal_side)
        return ceiling if ceiling > 0 else None
    return None


def check_constraint(
    account_code: str, totals: Totals, normal_side: NormalSide, constraint: BalanceConstraint
) -> None:
    breach = constraint_breach(totals, normal_side, constraint)
    if breach is None:
        return
    limit = "below zero" if constraint is BalanceConstraint.NON_NEGATIVE else "above zero"
    raise BalanceConstraintViolated(
        f"account {account_code} may not go {limit} on its {normal_side} side: "
        f"this would take it to {breach} minor units (holds included)",
        account=account_code,
        balance_minor=breach,
    )


@dataclass(frozen=True, slots=True)
class PostingSpec:
    """One line of a journal entry: a debit or a credit of a positive amount."""

    account: str
    side: Side
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """A journal entry as a caller asks for it; the service dates and numbers it."""

    idempotency_key: str
    postings: tuple[PostingSpec, ...]
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    value_date: date | None = None


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def metadata_text(metadata: Mapping[str, Any]) -> str:
    """The canonical JSON of an entry's metadata (most entries have none)."""
    return canonical_json(dict(metadata)) if metadata else "{}"


def validate_idempotency_key(key: str) -> None:
    if not key or len(key) > IDEMPOTENCY_KEY_LENGTH_MAX or not key.isprintable():
        raise InvalidEntry(
            f"idempotency key must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} printable characters",
            idempotency_key=key[:IDEMPOTENCY_KEY_LENGTH_MAX],
        )


def validate_amount(amount_minor: int) -> None:
    if type(amount_minor) is not int:
        raise InvalidEntry(f"amount must be an integer number of minor units, not {amount_minor!r}")
    if amount_minor <= 0:
        raise NonPositiveAmount(f"amount must be positive, got {amount_minor} minor units")
    if amount_minor > AMOUNT_MINOR_MAX:
        raise InvalidEntry(f"amount {amount_minor} minor units exceeds the maximum of 2^62")


def validate_description(description: str) -> None:
    """The description of an entry or a hold: what fits its column on every database."""
    if len(description) > DESCRIPTION_LENGTH_MAX:
        raise InvalidEntry(f"description is longer than {DESCRIPTION_LENGTH_MAX} characters")
    # PostgreSQL refuses text with NUL; SQLite would keep it: refuse it on both.
    if "\x00" in description:
        raise InvalidEntry("description may not contain NUL characters")


def validate_entry(spec: EntrySpec) -> None:
    """Check the form of an entry: key, at least two postings, positive amounts,
    debits equal to credits in every currency. Raises a typed error."""
    validate_idempotency_key(spec.idempotency_key)
    validate_description(spec.description)
    count = len(spec.postings)
    if count < 2:
        raise InvalidEntry(f"a journal entry needs at least two postings, got {count}")
    if count > POSTINGS_PER_ENTRY_MAX:
        raise InvalidEntry(f"a journal entry may have at most {POSTINGS_PER_ENTRY_MAX} postings")
    net: dict[str, int] = {}
    for posting in spec.postings:
        amount = posting.amount_minor
        # The common case inline (bulk booking checks every posting); the function
        # raises the right error for anything else.
        if type(amount) is not int or amount <= 0 or amount > AMOUNT_MINOR_MAX:
            validate_amount(amount)
        currency = posting.currency
        if not currency.isupper():
            currency = currency.upper()
        net[currency] = net.get(currency, 0) + (amount if posting.side is Side.DEBIT else -amount)
    unbalanced = {cur: diff for cur, diff in net.items() if diff != 0}
    if unbalanced:
        detail = ", ".join(
            f"{cur} debits exceed credits by {diff}"
            if diff > 0
            else f"{cur} credits exceed debits by {-diff}"
            for cur, diff in sorted(unbalanced.items())
        )
        raise EntryUnbalanced(
            f"entry {spec.idempotency_key!r} is unbalanced: {detail} minor units",
            unbalanced_minor=unbalanced,
        )


def validate_account_spec(spec: AccountSpec) -> None:
    code = spec.code
    if not code or len(code) > ACCOUNT_CODE_LENGTH_MAX or not code.isprintable() or " " in code:
        raise InvalidAccount(
            f"account code must be 1 to {ACCOUNT_CODE_LENGTH_MAX} printable characters "
            f"without spaces, got {code!r}"
        )
    if not spec.name.strip():
        raise InvalidAccount(f"account {code} needs a name")
    # PostgreSQL refuses text with NUL and a name longer than its column.
    if len(spec.name) > ACCOUNT_NAME_LENGTH_MAX or "\x00" in spec.name:
        raise InvalidAccount(
            f"account {code} needs a name of at most {ACCOUNT_NAME_LENGTH_MAX} characters "
            "without NUL characters"
        )
    if spec.parent_code == code:
        raise InvalidAccount(f"account {code} cannot be its own parent")


def reversal_postings(postings: Sequence[PostingSpec]) -> tuple[PostingSpec, ...]:
    """The postings that undo `postings`: every side swapped, amounts unchanged."""
    return tuple(
        PostingSpec(p.account, p.side.opposite, p.amount_minor, p.currency) for p in postings
    )


def request_fingerprint(
    spec: EntrySpec,
    *,
    reverses: int | None = None,
    hold: int | None = None,
    metadata_json: str | None = None,
) -> str:
    """What makes two requests with one idempotency key the same request.

    `metadata_json` is canonical_json(dict(spec.metadata)) when the caller has it
    already (booking encodes the metadata once for the fingerprint and the row).
    """
    if metadata_json is None:
        metadata_json = metadata_text(spec.metadata)
    return sha256(
        fingerprint_content(spec, metadata_json, reverses=reverses, hold=hold).encode()
    ).hexdigest()


def fingerprint_content(
    spec: EntrySpec, metadata_json: str, *, reverses: int | None, hold: int | None
) -> str:
    """The canonical text a fingerprint covers, written out by hand (json.dumps is
    several times slower, and bulk booking computes one per entry); byte for byte
    `reference_fingerprint_content`, which a property test checks."""
    lines: list[str] = []
    for p in spec.postings:
        account, currency, amount = p.account, p.currency, p.amount_minor
        if type(account) is not str or type(currency) is not str or type(amount) is not int:
            return reference_fingerprint_content(spec, metadata_json, reverses=reverses, hold=hold)
        side = "D" if p.side is Side.DEBIT else "C" if p.side is Side.CREDIT else p.side.value
        lines.append(f'[{_text(account)},"{side}",{amount},{_text(currency)}]')
    value_date = "null" if spec.value_date is None else f'"{spec.value_date.isoformat()}"'
    if (
        type(spec.description) is not str
        or (reverses is not None and type(reverses) is not int)
        or (hold is not None and type(hold) is not int)
    ):
        return reference_fingerprint_content(spec, metadata_json, reverses=reverses, hold=hold)
    return (
        f"[[{','.join(lines)}],{_text(spec.description)},{_text(metadata_json)},"
        f"{value_date},"
        f"{'null' if reverses is None else reverses},{'null' if hold is None else hold}]"
    )


def reference_fingerprint_content(
    spec: EntrySpec, metadata_json: str, *, reverses: int | None, hold: int | None
) -> str:
    """The definition of the fingerprinted text, through canonical_json."""
    body = [
        [[p.account, p.side.value, p.amount_minor, p.currency] for p in spec.postings],
        spec.description,
        metadata_json,
        spec.value_date.isoformat() if spec.value_date else None,
        reverses,
        hold,
    ]
    return canonical_json(body)
