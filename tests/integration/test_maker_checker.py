"""Maker-checker on real databases: manual entries and reversals need a second
accountant; the maker never decides their own command; an approval executes
exactly once, even when two checkers race; a failed execution leaves the
approval pending; rejections need a reason; and the books and the audit chain
verify afterwards."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from lendcore.auth.actors import Role, local_operator
from lendcore.auth.permissions import PermissionDenied, permission_table
from lendcore.errors import (
    BalanceConstraintViolated,
    EntryAlreadyReversed,
    IdempotencyConflict,
    InvalidEntry,
    InvalidInput,
)
from lendcore.ledger.model import (
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.services import approvals, audit, events, identity, ledger, manual_entries, verify
from lendcore.services.approvals import ApprovalDecided, MakerCannotApprove, PendingApproval
from lendcore.store.database import Database
from tests.integration.audit_helpers import audit_after, audit_head, count, table_contents

USD = "USD"


def transfer(key: str, debit: str, credit: str, amount_minor: int) -> EntrySpec:
    return EntrySpec(
        key,
        (
            PostingSpec(debit, Side.DEBIT, amount_minor, USD),
            PostingSpec(credit, Side.CREDIT, amount_minor, USD),
        ),
        description=f"manual {key}",
    )


@dataclass(frozen=True)
class Book:
    operator: Database
    maker: Database
    checker: Database
    third: Database
    users: dict[str, identity.User]
    seed_entry_id: int

    def as_role(self, role: Role) -> Database:
        return self.operator.acting_as(self.users[f"only-{role.value}"].actor())


def open_book(db: Database) -> Book:
    """Cash (never below zero) holding 1,000.00 of equity, three accountants, one user per role."""
    ledger.open_account(
        db,
        AccountSpec(
            "cash",
            "Cash",
            AccountType.ASSET,
            USD,
            balance_constraint=BalanceConstraint.NON_NEGATIVE,
        ),
    )
    ledger.open_account(db, AccountSpec("equity", "Equity", AccountType.EQUITY, USD))
    ledger.open_account(db, AccountSpec("expense", "Expense", AccountType.EXPENSE, USD))
    seed = ledger.book_entry(db, transfer("seed", "cash", "equity", 100_000))
    users = {
        name: identity.create_user(db, name, ["accountant"])
        for name in ("maker", "checker", "third")
    }
    for role in Role:
        users[f"only-{role.value}"] = identity.create_user(db, f"only-{role.value}", [role.value])
    return Book(
        operator=db,
        maker=db.acting_as(users["maker"].actor()),
        checker=db.acting_as(users["checker"].actor()),
        third=db.acting_as(users["third"].actor()),
        users=users,
        seed_entry_id=seed.id,
    )


def cash(db: Database) -> int:
    return ledger.account_balance(db, "cash").posted


def status_of(db: Database, approval_id: int) -> str:
    return approvals.get_approval(db, approval_id).status


def entry_keys(db: Database) -> list[str]:
    return [e.idempotency_key for e in ledger.list_entries(db)]


def assert_books_verify(db: Database) -> None:
    report = verify.verify_ledger(db)
    assert (report.ok, report.problems) == (True, [])
    chain = audit.verify_audit(db)
    assert (chain.ok, chain.problems, chain.records_checked) == (
        True,
        [],
        count(db, "audit_log"),
    )


def refused_record(db: Database, seq: int) -> list[tuple[Any, ...]]:
    return [(r.actor, r.command, r.outcome, r.error_code) for r in audit_after(db, seq)]


# --- the maker is never the checker ----------------------------------------------------


def test_a_maker_cannot_approve_or_reject_their_own_entry(db: Database) -> None:
    book = open_book(db)
    pending = manual_entries.submit_manual_entry(book.maker, transfer("m1", "expense", "cash", 500))
    assert (pending.status, pending.maker, pending.command) == (
        "pending",
        "maker",
        "ledger.manual_entry",
    )
    before = table_contents(db)
    seq, _ = audit_head(db)

    with pytest.raises(MakerCannotApprove) as approving:
        approvals.approve(book.maker, pending.id)
    assert approving.value.code == "MAKER_CANNOT_APPROVE"
    with pytest.raises(MakerCannotApprove) as rejecting:
        approvals.reject(book.maker, pending.id, "changed my mind")
    assert rejecting.value.code == "MAKER_CANNOT_APPROVE"
    # Being the maker is a refusal like any other: callers catching PermissionDenied see it.
    assert isinstance(approving.value, PermissionDenied)

    assert table_contents(db) == before
    assert refused_record(db, seq) == [
        ("maker", "approvals.approve", "refused", "MAKER_CANNOT_APPROVE"),
        ("maker", "approvals.reject", "refused", "MAKER_CANNOT_APPROVE"),
    ]
    assert status_of(db, pending.id) == "pending"
    assert entry_keys(db) == ["seed"]
    assert_books_verify(db)


def test_the_local_operator_cannot_approve_their_own_entry(db: Database) -> None:
    book = open_book(db)
    operator = db.actor.label
    pending = manual_entries.submit_manual_entry(db, transfer("op1", "expense", "cash", 700))
    assert pending.maker == operator
    before = table_contents(db)
    seq, _ = audit_head(db)

    with pytest.raises(MakerCannotApprove) as approving:
        approvals.approve(db, pending.id)
    assert approving.value.code == "MAKER_CANNOT_APPROVE"
    # Another view of the same operator (a new request) is still the same person.
    with pytest.raises(MakerCannotApprove):
        approvals.reject(db.acting_as(db.actor), pending.id, "no")
    assert table_contents(db) == before
    assert refused_record(db, seq) == [
        (operator, "approvals.approve", "refused", "MAKER_CANNOT_APPROVE"),
        (operator, "approvals.reject", "refused", "MAKER_CANNOT_APPROVE"),
    ]

    # A user who is an accountant is someone else: the approval executes.
    done = approvals.approve(book.checker, pending.id)
    assert (done.status, done.checker) == ("executed", "checker")
    assert entry_keys(db) == ["seed", "op1"]
    assert cash(db) == 99_300
    assert_books_verify(db)


def test_a_user_maker_may_be_checked_by_another_local_operator(db: Database) -> None:
    """People are compared, not roles: another operator account is another person."""
    book = open_book(db)
    pending = manual_entries.submit_manual_entry(book.maker, transfer("m2", "expense", "cash", 1))
    other_operator = db.acting_as(local_operator("someone-else"))
    done = approvals.approve(other_operator, pending.id, "checked")
    assert (done.status, done.checker, done.note) == (
        "executed",
        "local_operator:someone-else",
        "checked",
    )
    assert entry_keys(db) == ["seed", "m2"]


def test_roles_that_may_not_approve_are_refused_and_change_nothing(db: Database) -> None:
    book = open_book(db)
    pending = manual_entries.submit_manual_entry(book.maker, transfer("m3", "expense", "cash", 300))
    approvers = permission_table()["ledger.manual_entry"].approvers
    assert approvers == frozenset({Role.ACCOUNTANT})
    refused_roles = sorted((r for r in Role if r not in approvers), key=lambda r: r.value)
    assert len(refused_roles) == 6
    for role in refused_roles:
        checker = book.as_role(role)
        before = table_contents(db)
        seq, _ = audit_head(db)
        with pytest.raises(PermissionDenied) as approving:
            approvals.approve(checker, pending.id)
        with pytest.raises(PermissionDenied) as rejecting:
            approvals.reject(checker, pending.id, "not mine to decide")
        for refused in (approving.value, rejecting.value):
            assert type(refused) is PermissionDenied
            assert refused.code == "PERMISSION_DENIED"
            assert refused.details == {"command": "ledger.manual_entry"}
        assert table_contents(db) == before
        name = f"only-{role.value}"
        assert refused_record(db, seq) == [
            (name, "approvals.approve", "refused", "PERMISSION_DENIED"),
            (name, "approvals.reject", "refused", "PERMISSION_DENIED"),
        ]
    # The one role that may approve does.
    done = approvals.approve(book.as_role(Role.ACCOUNTANT), pending.id)
    assert (done.status, done.checker) == ("executed", "only-accountant")
    assert entry_keys(db) == ["seed", "m3"]


# --- an approval executes exactly once --------------------------------------------------


def test_an_approval_books_the_entry_exactly_once(db: Database) -> None:
    book = open_book(db)
    spec = transfer("m4", "expense", "cash", 2_500)
    pending = manual_entries.submit_manual_entry(book.maker, spec)
    assert entry_keys(db) == ["seed"]
    assert cash(db) == 100_000
    seq, _ = audit_head(db)

    done = approvals.approve(book.checker, pending.id, "looks right")
    entry_id = ledger.list_entries(db)[-1].id
    assert (done.id, done.status, done.maker, done.checker, done.note, done.result) == (
        pending.id,
        "executed",
        "maker",
        "checker",
        "looks right",
        {"entry_id": entry_id},
    )
    entry = ledger.get_entry(db, entry_id)
    assert (entry.idempotency_key, entry.description) == ("m4", "manual m4")
    assert [(p.account, p.side, p.amount_minor) for p in entry.postings] == [
        ("expense", Side.DEBIT, 2_500),
        ("cash", Side.CREDIT, 2_500),
    ]
    assert cash(db) == 97_500
    [record] = audit_after(db, seq)
    assert (record.actor, record.command, record.outcome, record.error_code) == (
        "checker",
        "approvals.approve",
        "ok",
        None,
    )
    assert record.result_json == (
        f'{{"approval_id":{pending.id},"command":"ledger.manual_entry",'
        f'"entry_id":{entry_id},"entry_ids":[{entry_id}]}}'
    )

    # Deciding again, by anyone, is refused and books nothing.
    before = table_contents(db)
    for decide in (
        lambda: approvals.approve(book.third, pending.id),
        lambda: approvals.approve(book.checker, pending.id),
        lambda: approvals.reject(book.third, pending.id, "too late"),
    ):
        with pytest.raises(ApprovalDecided) as decided:
            decide()
        assert decided.value.code == "APPROVAL_ALREADY_DECIDED"
    assert table_contents(db) == before
    # Submitting the same entry again hands back the executed approval.
    again = manual_entries.submit_manual_entry(book.maker, spec)
    assert again == approvals.get_approval(db, pending.id)
    assert again.status == "executed"
    assert entry_keys(db) == ["seed", "m4"]
    assert [e.event_type for e in approvals_events(db)] == [
        "approval.requested",
        "approval.executed",
    ]
    assert_books_verify(db)


def approvals_events(db: Database) -> list[Any]:
    return events.list_events(db, aggregate_type="approval")


def race_approvals(approval_id: int, checkers: dict[str, Database]) -> dict[str, Any]:
    """Every checker approves at once, each in its own thread; name -> result or error."""
    barrier = threading.Barrier(len(checkers))
    outcomes: dict[str, Any] = {}

    def decide(name: str, checker: Database) -> None:
        barrier.wait()
        try:
            outcomes[name] = approvals.approve(checker, approval_id)
        except Exception as error:  # any error is an outcome the test reports
            outcomes[name] = error

    threads = [threading.Thread(target=decide, args=item) for item in checkers.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_concurrent_approvals_execute_once(db: Database) -> None:
    book = open_book(db)
    rounds = 4
    pending = [
        manual_entries.submit_manual_entry(
            book.maker, transfer(f"race-{n}", "expense", "cash", 100)
        )
        for n in range(rounds)
    ]
    for approval in pending:
        outcomes = race_approvals(approval.id, {"checker": book.checker, "third": book.third})
        assert sorted(outcomes) == ["checker", "third"]
        won = [v for v in outcomes.values() if isinstance(v, PendingApproval)]
        lost = [v for v in outcomes.values() if not isinstance(v, PendingApproval)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert (type(lost[0]), lost[0].code) == (ApprovalDecided, "APPROVAL_ALREADY_DECIDED")
        assert won[0].status == "executed"
        assert approvals.get_approval(db, approval.id).checker == won[0].checker
    assert entry_keys(db) == ["seed", *(f"race-{n}" for n in range(rounds))]
    assert cash(db) == 100_000 - rounds * 100
    decisions = [
        (e.command, e.outcome, e.error_code)
        for e in audit.list_audit(book.as_role(Role.AUDITOR), command_name="approvals.approve")
    ]
    assert sorted(decisions) == sorted(
        [("approvals.approve", "ok", None)] * rounds
        + [("approvals.approve", "failed", "APPROVAL_ALREADY_DECIDED")] * rounds
    )
    assert_books_verify(db)


# --- rejection ---------------------------------------------------------------------------


def test_a_rejection_needs_a_reason_and_executes_nothing(db: Database) -> None:
    book = open_book(db)
    spec = transfer("m5", "expense", "cash", 4_000)
    pending = manual_entries.submit_manual_entry(book.maker, spec)
    for note in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput) as invalid:
            approvals.reject(book.checker, pending.id, note)
        assert invalid.value.code == "INVALID_INPUT"
    assert status_of(db, pending.id) == "pending"

    rejected = approvals.reject(book.checker, pending.id, "wrong expense account")
    assert (rejected.status, rejected.checker, rejected.note, rejected.result) == (
        "rejected",
        "checker",
        "wrong expense account",
        None,
    )
    assert entry_keys(db) == ["seed"]
    assert cash(db) == 100_000
    with pytest.raises(ApprovalDecided):
        approvals.approve(book.third, pending.id)
    # The key stays with the rejected approval: a corrected entry needs a new key.
    assert manual_entries.submit_manual_entry(book.maker, spec) == rejected
    assert entry_keys(db) == ["seed"]
    assert [e.event_type for e in approvals_events(db)] == [
        "approval.requested",
        "approval.rejected",
    ]
    assert_books_verify(db)


# --- a failed execution ------------------------------------------------------------------


def test_an_approval_that_cannot_execute_stays_pending_and_books_nothing(db: Database) -> None:
    book = open_book(db)
    pending = manual_entries.submit_manual_entry(
        book.maker, transfer("m6", "expense", "cash", 80_000)
    )
    # Between submission and approval the cash is spent: approving would overdraw it.
    ledger.book_entry(db, transfer("spend", "expense", "cash", 50_000))
    before = table_contents(db)
    seq, _ = audit_head(db)

    with pytest.raises(BalanceConstraintViolated) as violated:
        approvals.approve(book.checker, pending.id)
    assert violated.value.code == "BALANCE_CONSTRAINT_VIOLATED"
    assert table_contents(db) == before
    assert refused_record(db, seq) == [
        ("checker", "approvals.approve", "failed", "BALANCE_CONSTRAINT_VIOLATED")
    ]
    assert status_of(db, pending.id) == "pending"
    assert cash(db) == 50_000

    # Once the cash is back, the same approval executes.
    ledger.book_entry(db, transfer("top-up", "cash", "equity", 30_000))
    done = approvals.approve(book.checker, pending.id)
    assert done.status == "executed"
    assert entry_keys(db) == ["seed", "spend", "top-up", "m6"]
    assert cash(db) == 0
    assert_books_verify(db)


# --- reversals ---------------------------------------------------------------------------


def test_a_reversal_goes_through_maker_checker(db: Database) -> None:
    book = open_book(db)
    booked = manual_entries.submit_manual_entry(book.maker, transfer("m7", "expense", "cash", 900))
    entry_id = approvals.approve(book.checker, booked.id).result["entry_id"]  # type: ignore[index]

    pending = manual_entries.submit_reversal(book.maker, entry_id, "rev-m7", "typo")
    assert (pending.command, pending.status, pending.payload) == (
        "ledger.reversal",
        "pending",
        {"entry_id": entry_id, "idempotency_key": "rev-m7", "description": "typo"},
    )
    assert cash(db) == 99_100
    with pytest.raises(MakerCannotApprove):
        approvals.approve(book.maker, pending.id)
    done = approvals.approve(book.third, pending.id)
    reversal = ledger.get_entry(db, done.result["entry_id"])  # type: ignore[index]
    assert done.result == {"entry_id": reversal.id, "reverses_entry_id": entry_id}
    assert (reversal.reverses_entry_id, reversal.idempotency_key) == (entry_id, "rev-m7")
    assert [(p.account, p.side, p.amount_minor) for p in reversal.postings] == [
        ("expense", Side.CREDIT, 900),
        ("cash", Side.DEBIT, 900),
    ]
    assert cash(db) == 100_000

    # A reversal is final: reversing it is refused at submission.
    with pytest.raises(InvalidEntry) as invalid:
        manual_entries.submit_reversal(book.maker, reversal.id, "rev-rev")
    assert invalid.value.code == "ENTRY_INVALID"
    # A second reversal of the same entry is refused at approval and stays pending.
    second = manual_entries.submit_reversal(book.maker, entry_id, "rev-m7-again")
    with pytest.raises(EntryAlreadyReversed) as reversed_already:
        approvals.approve(book.checker, second.id)
    assert reversed_already.value.code == "ENTRY_ALREADY_REVERSED"
    assert status_of(db, second.id) == "pending"
    assert entry_keys(db) == ["seed", "m7", "rev-m7"]
    assert_books_verify(db)


# --- idempotent submission -----------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_same_pending_approval(db: Database) -> None:
    book = open_book(db)
    spec = transfer("m8", "expense", "cash", 1_000)
    first = manual_entries.submit_manual_entry(book.maker, spec)
    assert manual_entries.submit_manual_entry(book.maker, spec) == first
    # The key names the entry, whoever submits it: the first maker stays the maker.
    assert manual_entries.submit_manual_entry(book.checker, spec) == first
    assert [(a.id, a.status, a.maker) for a in approvals.list_approvals(db)] == [
        (first.id, "pending", "maker")
    ]

    before = table_contents(db)
    for other in (
        transfer("m8", "expense", "cash", 1_001),
        transfer("m8", "cash", "expense", 1_000),
        EntrySpec("m8", spec.postings, description="another description"),
    ):
        with pytest.raises(IdempotencyConflict) as reused:
            manual_entries.submit_manual_entry(book.maker, other)
        assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert table_contents(db) == before

    reversal = manual_entries.submit_reversal(book.maker, book.seed_entry_id, "rev-seed")
    assert manual_entries.submit_reversal(book.maker, book.seed_entry_id, "rev-seed") == reversal
    with pytest.raises(IdempotencyConflict) as reused:
        manual_entries.submit_reversal(book.maker, book.seed_entry_id, "rev-seed", "other reason")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert [a.id for a in approvals.list_approvals(db, status="pending")] == [
        first.id,
        reversal.id,
    ]

    # Approved once, the entry is booked once, however often it was submitted.
    approvals.approve(book.checker, first.id)
    assert manual_entries.submit_manual_entry(book.maker, spec).status == "executed"
    assert entry_keys(db) == ["seed", "m8"]
    assert_books_verify(db)
