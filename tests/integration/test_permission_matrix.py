"""The permission matrix: for every command and query, each role the permission
table allows succeeds, and each other role is refused and writes nothing but
one audit record of the refusal.

The table of cases below names every decorated service function. Two checks
keep it honest as lendcore grows: every @command/@query function found in
`lendcore.services` must have a case (or a documented reason in EXCLUDED), and
every key of the permission table must be exercised by a case (or be listed in
UNTESTED_PERMISSIONS with the reason).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import lendcore.services
from lendcore.auth.actors import Role
from lendcore.auth.permissions import PermissionDenied, permission_table
from lendcore.ledger.model import (
    AccountSpec,
    AccountStatus,
    AccountType,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.origination.borrowers import BorrowerUpdate, KycEvidence, KycOutcome
from lendcore.products.model import Product, load_product_text
from lendcore.risk.model import demo_model_path  # models
from lendcore.risk.policy import default_policy_text
from lendcore.services import (
    applications,
    approvals,
    audit,
    borrowers,
    business_date,
    commands,
    eod,
    events,
    identity,
    ledger,
    loans,
    manual_entries,
    policies,
    portfolio,
    products,
    provisions,
    publisher,
    schedules,
    verify,
    webhooks,
)
from lendcore.services import lender as lender_service
from lendcore.services import models as model_service  # models
from lendcore.services.approvals import PendingApproval
from lendcore.services.clock import current_business_date
from lendcore.store.database import Database
from tests.integration.audit_helpers import audit_after, audit_head, count, table_contents
from tests.integration.borrower_helpers import LISTED, demo_list, person
from tests.integration.loan_helpers import open_lender

USD = "USD"
# 10,000.00 at 12 % over 12 months on 30/360: 888.49 a month.
PREVIEW = schedules.PreviewRequest(
    "10000",
    annual_rate="0.12",
    term=12,
    day_count="30/360",
    calendar="none",
    start=date(2026, 1, 15),
)
EXAMPLES = Path(__file__).parents[2] / "src" / "lendcore" / "products" / "examples"
ROLES: tuple[Role, ...] = tuple(sorted(Role, key=lambda r: r.value))
Ctx = dict[str, Any]

# Decorated functions that this matrix does not call, and why.
EXCLUDED: dict[str, str] = {
    # check=False: their permission depends on the approval's command; covered
    # role by role in tests/integration/test_maker_checker.py.
    "lendcore.services.approvals.approve": "maker-checker test",
    "lendcore.services.approvals.reject": "maker-checker test",
}

# Permission keys that no service function uses yet.
UNTESTED_PERMISSIONS: dict[str, str] = {}


def username(role: Role) -> str:
    return f"user-{role.value}"


def today(db: Database) -> date:
    """The business date, read behind the permission check (any actor may call this)."""
    with db.reading() as conn:
        return current_business_date(conn)


def transfer(key: str, debit: str, credit: str, amount_minor: int) -> EntrySpec:
    return EntrySpec(
        key,
        (
            PostingSpec(debit, Side.DEBIT, amount_minor, USD),
            PostingSpec(credit, Side.CREDIT, amount_minor, USD),
        ),
        description=f"transfer {key}",
    )


# --- setups (run as the local operator) --------------------------------------------------


def no_setup(db: Database) -> Ctx:
    return {"today": today(db)}


def seed_ledger(db: Database) -> Ctx:
    ledger.open_account(db, AccountSpec("cash", "Cash", AccountType.ASSET, USD))
    ledger.open_account(db, AccountSpec("equity", "Equity", AccountType.EQUITY, USD))
    entry = ledger.book_entry(db, transfer("seed", "cash", "equity", 100_000))
    return {"today": today(db), "entry_id": entry.id, "operator": db.actor.label}


def accounts_to_close(db: Database) -> Ctx:
    for role in ROLES:
        ledger.open_account(
            db, AccountSpec(f"close-{role.value}", "To close", AccountType.ASSET, USD)
        )
    return no_setup(db)


def place(db: Database, ctx: Ctx, key: str) -> ledger.Hold:
    return ledger.place_hold(
        db,
        idempotency_key=key,
        debit_account="cash",
        credit_account="equity",
        amount_minor=1_000,
        currency=USD,
        expires_on=ctx["today"] + timedelta(days=5),
    )


def hold_per_role(db: Database) -> Ctx:
    ctx = seed_ledger(db)
    ctx["holds"] = {role: place(db, ctx, f"hold-{role.value}").id for role in ROLES}
    return ctx


def one_hold(db: Database) -> Ctx:
    ctx = seed_ledger(db)
    ctx["hold_id"] = place(db, ctx, "the-hold").id
    return ctx


def target_user(db: Database) -> Ctx:
    identity.create_user(db, "target", ["loan_officer"])
    return no_setup(db)


def target_per_role(db: Database) -> Ctx:
    for role in ROLES:
        identity.create_user(db, f"target-{role.value}", ["loan_officer"])
    return no_setup(db)


def key_per_role(db: Database) -> Ctx:
    identity.create_user(db, "target", ["loan_officer"])
    return {
        "keys": {
            role: identity.create_api_key(db, "target", label=role.value).key.key_id
            for role in ROLES
        }
    }


def one_key(db: Database) -> Ctx:
    identity.create_user(db, "target", ["loan_officer"])
    identity.create_api_key(db, "target", label="only")
    return {}


def pending_manual_entry(db: Database) -> Ctx:
    ctx = seed_ledger(db)
    pending = manual_entries.submit_manual_entry(db, transfer("by-operator", "equity", "cash", 5))
    ctx["approval_id"] = pending.id
    return ctx


def product_document(code: str) -> Product:
    path = EXAMPLES / "consumer-annuity.yaml"
    return load_product_text(path.read_text().replace("code: consumer-annuity", f"code: {code}"))


def one_product(db: Database) -> Ctx:
    """consumer-annuity version 1: loaded by the operator, approved by the risk manager."""
    pending = products.submit_product(db, product_document("consumer-annuity")).approval
    assert pending is not None
    checker = db.acting_as(identity.actor_for_username(db, username(Role.RISK_MANAGER)))
    approvals.approve(checker, pending.id)
    return no_setup(db)


def one_loan(db: Database) -> Ctx:
    """A funded lender, the consumer-annuity product and one disbursed loan of 5,000.00."""
    lender = open_lender(db, prefix="setup-")
    loan = loans.disburse(lender.servicing, lender.book("5000.00", 6).id)
    return {**no_setup(db), "loan_id": loan.id, "lender": lender}


def one_closed_day(db: Database) -> Ctx:
    """One disbursed loan and two business dates closed by end of day (the
    second accrues a day's interest)."""
    ctx = one_loan(db)
    eod.run_day(ctx["lender"].servicing)
    close = eod.run_day(ctx["lender"].servicing)
    return {**ctx, "entry_id": close.entries[0], "closed": close.business_date}


def one_application(db: Database, *, born: date = date(1984, 5, 17)) -> Ctx:
    """A lender and one application as the engine decided it (born before 1950: referred)."""
    lender = open_lender(db, prefix="setup-")
    borrower = lender_service.onboard(lender.staff, "Ada Applicant", "USD", date_of_birth=born)
    application = applications.submit_application(
        lender.staff.loan_officer,
        borrower,
        "consumer-annuity",
        "4000.00",
        12,
        purpose="Car",
        monthly_income="6000.00",
        credit_profile=dict(lender_service.GOOD_PROFILE),
    )
    return {
        **no_setup(db),
        "lender": lender,
        "borrower_id": borrower,
        "application_id": application.id,
        "status": application.status,
        "decision_id": application.decision_id,
    }


def referred_application(db: Database) -> Ctx:
    ctx = one_application(db, born=date(1941, 3, 3))
    assert ctx["status"] == "referred", ctx["status"]
    return ctx


def approved_application(db: Database) -> Ctx:
    ctx = one_application(db)
    assert ctx["status"] == "approved", ctx["status"]
    return ctx


# --- models (begin): setups
def demo_model_registered(db: Database) -> Ctx:
    registered = model_service.register_model(db, str(demo_model_path()))
    return {"today": today(db), "version": registered.version}


# --- models (end): setups


def pending_summary(p: PendingApproval) -> tuple[str, str, str]:
    return (p.command, p.status, p.maker)


def moved_by(db: Database, move: Callable[[Database, Any], date], arg: Any) -> timedelta:
    """How far `move(db, arg)` took the business date."""
    before = today(db)
    returned = move(db, arg)
    assert returned == today(db)
    return returned - before


def webhook_per_role(db: Database) -> Ctx:
    return {
        "webhooks": {
            role: webhooks.register_webhook(db, f"https://hooks.example/{role.value}")[0].id
            for role in ROLES
        }
    }


def one_webhook(db: Database) -> Ctx:
    """A webhook for account events from the start, with its deliveries queued."""
    ctx = seed_ledger(db)
    ctx["webhook_id"] = webhooks.register_webhook(
        db, "https://hooks.example/one", ["account.*"], start_after=0
    )[0].id
    assert publisher.queue_deliveries(db) == 2
    return ctx


def dead_delivery_per_role(db: Database) -> Ctx:
    """Per role, a webhook whose one delivery failed for good."""
    ctx = seed_ledger(db)
    ctx["webhooks"] = {
        role: webhooks.register_webhook(
            db, f"https://hooks.example/{role.value}", ["account.opened"], start_after=0
        )[0].id
        for role in ROLES
    }
    ctx["outbox_id"] = events.list_events(db, event_type="account.opened")[0].id
    assert publisher.queue_deliveries(db) == 2 * len(ROLES)
    refusing = httpx.MockTransport(lambda request: httpx.Response(500))
    with httpx.Client(transport=refusing) as client:
        stats = publisher.deliver_due(db, client, policy=publisher.RetryPolicy(max_attempts=1))
    assert stats.dead == 2 * len(ROLES)
    return ctx


# --- borrowers (begin): setups --------------------------------------------------------


def one_borrower(db: Database) -> Ctx:
    return {**no_setup(db), "borrower_id": borrowers.create_borrower(db, person()).id}


def borrower_per_role(db: Database) -> Ctx:
    return {
        **no_setup(db),
        "borrowers": {
            role: borrowers.create_borrower(db, person(f"Per {role.value}")).id for role in ROLES
        },
    }


def hit_per_role(db: Database) -> Ctx:
    """The demo list, and per role a borrower on it with one pending hit."""
    borrowers.load_watch_list(db, demo_list())
    found = {}
    for role in ROLES:
        listed = borrowers.create_borrower(db, person(*LISTED))
        [hit] = borrowers.list_hits(db, borrower_id=listed.id)
        found[role] = hit.id
    return {**no_setup(db), "hits": found}


def one_hit(db: Database) -> Ctx:
    borrowers.load_watch_list(db, demo_list())
    listed = borrowers.create_borrower(db, person(*LISTED))
    return {**no_setup(db), "borrower_id": listed.id}


# --- borrowers (end): setups ----------------------------------------------------------


# --- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    function: Callable[..., Any]
    setup: Callable[[Database], Ctx]
    # Runs the function as the role's user; returns a summary of the result.
    call: Callable[[Database, Ctx, Role], Any]
    # The summary an allowed role must get.
    expect: Callable[[Ctx, Role], Any]

    @property
    def name(self) -> str:
        return f"{self.function.__module__}.{self.function.__name__}"

    @property
    def short_name(self) -> str:
        return self.name.removeprefix("lendcore.services.")

    @property
    def declared(self) -> tuple[str, str]:
        found = declared_permission(self.function)
        assert found is not None, f"{self.name} is not decorated with @command or @query"
        return found


def declared_permission(fn: Any) -> tuple[str, str] | None:
    """("command" | "query", permission) for a function wrapped by services.commands.

    The wrappers are closures over the permission `name` (and, for commands,
    `check`); reading the closure avoids keeping a second list by hand.
    """
    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename != commands.__file__ or fn.__closure__ is None:
        return None
    cells = dict(zip(code.co_freevars, (c.cell_contents for c in fn.__closure__), strict=True))
    if code.co_qualname == "command.<locals>.decorate.<locals>.run":
        return "command", cells["name"]
    if code.co_qualname == "query.<locals>.decorate.<locals>.run":
        return "query", cells["name"]
    return None


def discover() -> dict[str, tuple[str, str]]:
    """Every decorated function defined in a lendcore.services module."""
    found: dict[str, tuple[str, str]] = {}
    for info in pkgutil.iter_modules(lendcore.services.__path__):
        module = importlib.import_module(f"lendcore.services.{info.name}")
        for attr, value in vars(module).items():
            declared = declared_permission(value)
            if declared is not None and value.__module__ == module.__name__:
                found[f"{module.__name__}.{attr}"] = declared
    return found


CASES: tuple[Case, ...] = (
    # --- ledger: accounts
    Case(
        ledger.open_account,
        no_setup,
        lambda db, ctx, role: (
            (
                a := ledger.open_account(
                    db, AccountSpec(f"open-{role.value}", "Opened", AccountType.ASSET, USD)
                )
            ).code,
            a.status,
            a.opened_on,
        ),
        lambda ctx, role: (f"open-{role.value}", AccountStatus.OPEN, ctx["today"]),
    ),
    Case(
        ledger.close_account,
        accounts_to_close,
        lambda db, ctx, role: (
            (a := ledger.close_account(db, f"close-{role.value}")).code,
            a.status,
            a.closed_on,
        ),
        lambda ctx, role: (f"close-{role.value}", AccountStatus.CLOSED, ctx["today"]),
    ),
    Case(
        ledger.get_account,
        seed_ledger,
        lambda db, ctx, role: ((a := ledger.get_account(db, "cash")).code, a.type, a.currency),
        lambda ctx, role: ("cash", AccountType.ASSET, USD),
    ),
    Case(
        ledger.list_accounts,
        seed_ledger,
        lambda db, ctx, role: [a.code for a in ledger.list_accounts(db)],
        lambda ctx, role: ["cash", "equity"],
    ),
    # --- ledger: entries
    Case(
        ledger.get_entry,
        seed_ledger,
        lambda db, ctx, role: (
            (e := ledger.get_entry(db, ctx["entry_id"])).idempotency_key,
            [(p.account, p.side, p.amount_minor) for p in e.postings],
        ),
        lambda ctx, role: (
            "seed",
            [("cash", Side.DEBIT, 100_000), ("equity", Side.CREDIT, 100_000)],
        ),
    ),
    Case(
        ledger.list_entries,
        seed_ledger,
        lambda db, ctx, role: [(e.id, e.idempotency_key) for e in ledger.list_entries(db)],
        lambda ctx, role: [(ctx["entry_id"], "seed")],
    ),
    # --- ledger: holds
    Case(
        ledger.place_hold,
        seed_ledger,
        lambda db, ctx, role: (
            (h := place(db, ctx, f"new-{role.value}")).status,
            h.debit_account,
            h.credit_account,
            h.amount_minor,
        ),
        lambda ctx, role: ("pending", "cash", "equity", 1_000),
    ),
    Case(
        ledger.post_hold,
        hold_per_role,
        lambda db, ctx, role: (
            (
                e := ledger.post_hold(db, ctx["holds"][role], idempotency_key=f"p-{role.value}")
            ).hold_id,
            [(p.account, p.side, p.amount_minor) for p in e.postings],
        ),
        lambda ctx, role: (
            ctx["holds"][role],
            [("cash", Side.DEBIT, 1_000), ("equity", Side.CREDIT, 1_000)],
        ),
    ),
    Case(
        ledger.void_hold,
        hold_per_role,
        lambda db, ctx, role: (
            (h := ledger.void_hold(db, ctx["holds"][role])).id,
            h.status,
            h.resolved_on,
        ),
        lambda ctx, role: (ctx["holds"][role], "voided", ctx["today"]),
    ),
    Case(
        ledger.get_hold,
        one_hold,
        lambda db, ctx, role: ((h := ledger.get_hold(db, ctx["hold_id"])).id, h.status),
        lambda ctx, role: (ctx["hold_id"], "pending"),
    ),
    Case(
        ledger.list_holds,
        one_hold,
        lambda db, ctx, role: [(h.id, h.idempotency_key) for h in ledger.list_holds(db)],
        lambda ctx, role: [(ctx["hold_id"], "the-hold")],
    ),
    # --- ledger: balances and reports
    Case(
        ledger.account_balance,
        one_hold,
        lambda db, ctx, role: (
            (b := ledger.account_balance(db, "equity")).posted,
            b.available,
            b.credits_pending,
        ),
        lambda ctx, role: (100_000, 100_000, 1_000),
    ),
    Case(
        ledger.trial_balance,
        seed_ledger,
        lambda db, ctx, role: (
            (tb := ledger.trial_balance(db)).balanced,
            tb.totals,
            [(r.code, r.debit_minor, r.credit_minor) for r in tb.rows],
        ),
        lambda ctx, role: (
            True,
            {USD: (100_000, 100_000)},
            [("cash", 100_000, 0), ("equity", 0, 100_000)],
        ),
    ),
    Case(
        verify.verify_ledger,
        seed_ledger,
        lambda db, ctx, role: (
            (r := verify.verify_ledger(db)).ok,
            r.entries_checked,
            r.postings_checked,
            r.accounts_checked,
        ),
        lambda ctx, role: (True, 1, 2, 2),
    ),
    # --- business date
    Case(
        business_date.business_date,
        no_setup,
        lambda db, ctx, role: business_date.business_date(db),
        lambda ctx, role: ctx["today"],
    ),
    Case(
        business_date.set_business_date,
        no_setup,
        lambda db, ctx, role: moved_by(
            db, business_date.set_business_date, today(db) + timedelta(3)
        ),
        lambda ctx, role: timedelta(days=3),
    ),
    Case(
        business_date.advance_business_date,
        no_setup,
        lambda db, ctx, role: moved_by(db, business_date.advance_business_date, 2),
        lambda ctx, role: timedelta(days=2),
    ),
    # --- identity
    Case(
        identity.create_user,
        no_setup,
        lambda db, ctx, role: (
            (u := identity.create_user(db, f"new-{role.value}", ["servicing", "auditor"])).username,
            u.roles,
            u.status,
        ),
        lambda ctx, role: (
            f"new-{role.value}",
            frozenset({Role.SERVICING, Role.AUDITOR}),
            "active",
        ),
    ),
    Case(
        identity.disable_user,
        target_per_role,
        lambda db, ctx, role: (
            (u := identity.disable_user(db, f"target-{role.value}")).username,
            u.status,
        ),
        lambda ctx, role: (f"target-{role.value}", "disabled"),
    ),
    Case(
        identity.set_password,
        target_user,
        lambda db, ctx, role: (
            (u := identity.set_password(db, "target", "a long enough password")).username,
            u.has_password,
        ),
        lambda ctx, role: ("target", True),
    ),
    Case(
        identity.list_users,
        target_user,
        lambda db, ctx, role: [u.username for u in identity.list_users(db)],
        lambda ctx, role: sorted(["target", *(username(r) for r in ROLES)]),
    ),
    Case(
        identity.get_user,
        target_user,
        lambda db, ctx, role: (
            (u := identity.get_user(db, "target")).username,
            u.roles,
            u.has_password,
        ),
        lambda ctx, role: ("target", frozenset({Role.LOAN_OFFICER}), False),
    ),
    Case(
        identity.create_api_key,
        target_user,
        lambda db, ctx, role: (
            (k := identity.create_api_key(db, "target", label=role.value)).key.username,
            k.key.label,
            k.key.active,
            k.token.startswith(f"lck_{k.key.key_id}_"),
        ),
        lambda ctx, role: ("target", role.value, True, True),
    ),
    Case(
        identity.revoke_api_key,
        key_per_role,
        lambda db, ctx, role: (
            (k := identity.revoke_api_key(db, ctx["keys"][role])).key_id,
            k.label,
            k.active,
            k.revoked_at is not None,
        ),
        lambda ctx, role: (ctx["keys"][role], role.value, False, True),
    ),
    Case(
        identity.list_api_keys,
        one_key,
        lambda db, ctx, role: [(k.username, k.label, k.active) for k in identity.list_api_keys(db)],
        lambda ctx, role: [("target", "only", True)],
    ),
    # --- manual entries (the maker's step)
    Case(
        manual_entries.submit_manual_entry,
        seed_ledger,
        lambda db, ctx, role: (
            (
                a := manual_entries.submit_manual_entry(
                    db, transfer(f"m-{role.value}", "equity", "cash", 10)
                )
            ).command,
            a.status,
            a.maker,
            a.payload["idempotency_key"],
        ),
        lambda ctx, role: ("ledger.manual_entry", "pending", username(role), f"m-{role.value}"),
    ),
    Case(
        manual_entries.submit_reversal,
        seed_ledger,
        lambda db, ctx, role: (
            (a := manual_entries.submit_reversal(db, ctx["entry_id"], f"r-{role.value}")).command,
            a.status,
            a.maker,
            a.payload["entry_id"],
        ),
        lambda ctx, role: ("ledger.reversal", "pending", username(role), ctx["entry_id"]),
    ),
    # --- products (the maker's step of a change, and reads)
    Case(
        products.submit_product,
        no_setup,
        lambda db, ctx, role: (
            (
                s := products.submit_product(
                    db, product_document(f"p-{role.value.replace('_', '-')}")
                )
            ).outcome,
            None if s.approval is None else (s.approval.command, s.approval.status),
            None if s.approval is None else s.approval.maker,
        ),
        lambda ctx, role: ("submitted", ("product.change", "pending"), username(role)),
    ),
    Case(
        products.get_product,
        one_product,
        lambda db, ctx, role: (
            (p := products.get_product(db, "consumer-annuity")).code,
            p.version,
            p.approved_by,
        ),
        lambda ctx, role: ("consumer-annuity", 1, username(Role.RISK_MANAGER)),
    ),
    Case(
        products.list_products,
        one_product,
        lambda db, ctx, role: [(p.code, p.version) for p in products.list_products(db)],
        lambda ctx, role: [("consumer-annuity", 1)],
    ),
    Case(
        products.product_versions,
        one_product,
        lambda db, ctx, role: [
            p.version for p in products.product_versions(db, "consumer-annuity")
        ],
        lambda ctx, role: [1],
    ),
    # --- applications, decisions, policy
    Case(
        applications.submit_application,
        approved_application,
        lambda db, ctx, role: (
            (
                a := applications.submit_application(
                    db,
                    ctx["borrower_id"],
                    "consumer-annuity",
                    "1000.00",
                    6,
                    purpose="Phone",
                    monthly_income="6000.00",
                    credit_profile=dict(lender_service.GOOD_PROFILE),
                )
            ).entered_by,
            a.status,
        ),
        lambda ctx, role: (username(role), "approved"),
    ),
    Case(
        applications.get_application,
        approved_application,
        lambda db, ctx, role: applications.get_application(db, ctx["application_id"]).status,
        lambda ctx, role: "approved",
    ),
    Case(
        applications.view_application,
        approved_application,
        lambda db, ctx, role: (
            (view := applications.view_application(db, ctx["application_id"])).application.id,
            view.champion is not None and view.champion.role,
            view.challenger,
        ),
        lambda ctx, role: (ctx["application_id"], "champion", None),
    ),
    Case(
        applications.list_applications,
        approved_application,
        lambda db, ctx, role: [a.id for a in applications.list_applications(db)],
        lambda ctx, role: [ctx["application_id"]],
    ),
    Case(
        applications.get_decision,
        approved_application,
        lambda db, ctx, role: applications.get_decision(db, ctx["decision_id"]).outcome,
        lambda ctx, role: "approve",
    ),
    Case(
        applications.decisions_of,
        approved_application,
        lambda db, ctx, role: [
            d.kind for d in applications.decisions_of(db, ctx["application_id"])
        ],
        lambda ctx, role: ["engine"],
    ),
    Case(
        applications.replay_decision,
        approved_application,
        lambda db, ctx, role: applications.replay_decision(db, ctx["decision_id"]).reproduced,
        lambda ctx, role: True,
    ),
    Case(
        applications.approve_application,
        referred_application,
        lambda db, ctx, role: (
            applications.approve_application(db, ctx["application_id"], "ok").status
        ),
        lambda ctx, role: "approved",
    ),
    Case(
        applications.decline_application,
        referred_application,
        lambda db, ctx, role: (
            applications.decline_application(db, ctx["application_id"], "no").status
        ),
        lambda ctx, role: "declined",
    ),
    Case(
        applications.override_decision,
        approved_application,
        lambda db, ctx, role: pending_summary(
            applications.override_decision(db, ctx["application_id"], "decline", "fraud suspicion")
        ),
        lambda ctx, role: ("application.override", "pending", username(role)),
    ),
    Case(
        applications.withdraw_application,
        approved_application,
        lambda db, ctx, role: (
            applications.withdraw_application(db, ctx["application_id"], "asked").status
        ),
        lambda ctx, role: "withdrawn",
    ),
    Case(
        applications.book_application,
        approved_application,
        lambda db, ctx, role: (
            applications.book_application(db, ctx["application_id"]).state.status.value
        ),
        lambda ctx, role: "approved",
    ),
    Case(
        policies.submit_policy,
        no_setup,
        lambda db, ctx, role: pending_summary(policies.submit_policy(db, default_policy_text())),
        lambda ctx, role: ("policy.change", "pending", username(role)),
    ),
    Case(
        policies.list_policies,
        approved_application,
        lambda db, ctx, role: [p.active for p in policies.list_policies(db)],
        lambda ctx, role: [True],
    ),
    Case(
        policies.get_policy,
        approved_application,
        lambda db, ctx, role: policies.get_policy(db).name,
        lambda ctx, role: "default retail policy",
    ),
    # --- loans
    Case(
        loans.disburse,
        lambda db: {
            **(ctx := approved_application(db)),
            "new": applications.book_application(ctx["lender"].servicing, ctx["application_id"]).id,
        },
        lambda db, ctx, role: loans.disburse(db, ctx["new"]).state.status.value,
        lambda ctx, role: "active",
    ),
    Case(
        loans.repay,
        one_loan,
        lambda db, ctx, role: (
            loans.repay(db, ctx["loan_id"], "10.00", "USD").state.allocations[-1].amount
        ),
        lambda ctx, role: 1_000,
    ),
    Case(
        loans.reverse_repayment,
        lambda db: {
            **(c := one_loan(db)),
            "seq": loans.repay(db, c["loan_id"], "10.00", "USD").history[-1].seq,
        },
        lambda db, ctx, role: (
            loans.reverse_repayment(db, ctx["loan_id"], ctx["seq"], "bounced").history[-1].kind
        ),
        lambda ctx, role: "repayment-reversal",
    ),
    Case(
        loans.waive,
        one_loan,
        lambda db, ctx, role: pending_summary(loans.waive(db, ctx["loan_id"], "interest", "1.00")),
        lambda ctx, role: ("loan.waive", "pending", username(role)),
    ),
    Case(
        loans.reschedule,
        one_loan,
        lambda db, ctx, role: pending_summary(loans.reschedule(db, ctx["loan_id"], extend_by=2)),
        lambda ctx, role: ("loan.reschedule", "pending", username(role)),
    ),
    Case(
        loans.write_off,
        one_loan,
        lambda db, ctx, role: pending_summary(loans.write_off(db, ctx["loan_id"], "fraud")),
        lambda ctx, role: ("loan.write_off", "pending", username(role)),
    ),
    Case(
        loans.accrue_book,
        one_loan,
        lambda db, ctx, role: loans.accrue_book(db).loans_seen,
        lambda ctx, role: 1,
    ),
    # --- end of day
    Case(
        eod.run_day,
        one_loan,
        lambda db, ctx, role: eod.run_day(db).loans_processed,
        lambda ctx, role: 1,
    ),
    Case(
        eod.status,
        one_closed_day,
        lambda db, ctx, role: eod.status(db).last_run["business_date"],  # type: ignore[index]
        lambda ctx, role: ctx["closed"].isoformat(),
    ),
    Case(
        provisions.provision_report,
        one_closed_day,
        lambda db, ctx, role: [
            r.currency for r in provisions.provision_report(db, ctx["closed"]).reports
        ],
        lambda ctx, role: ["USD"],
    ),
    Case(
        eod.drill,
        one_closed_day,
        lambda db, ctx, role: [line.loan_id for line in eod.drill(db, ctx["entry_id"])[1]],
        lambda ctx, role: [ctx["loan_id"]],
    ),
    Case(
        loans.get_loan,
        one_loan,
        lambda db, ctx, role: (
            (v := loans.get_loan(db, ctx["loan_id"])).id,
            v.state.status.value,
            v.state.disbursed,
        ),
        lambda ctx, role: (ctx["loan_id"], "active", 500_000),
    ),
    Case(
        loans.list_loans,
        one_loan,
        lambda db, ctx, role: [(s.id, s.status) for s in loans.list_loans(db)],
        lambda ctx, role: [(ctx["loan_id"], "active")],
    ),
    # --- approvals (reads; approve and reject: see EXCLUDED)
    # --- portfolio
    Case(
        portfolio.position,
        one_loan,
        lambda db, ctx, role: [
            (p.currency, p.loans_active, p.outstanding_minor)
            for p in portfolio.position(db).positions
        ],
        lambda ctx, role: [("USD", 1, 500_000)],
    ),
    Case(
        portfolio.portfolio_report,
        one_loan,
        lambda db, ctx, role: [
            (c.currency, c.disbursed_minor, c.position.outstanding_minor)
            for c in portfolio.portfolio_report(db).currencies
        ],
        lambda ctx, role: [("USD", 500_000, 500_000)],
    ),
    Case(
        approvals.get_approval,
        pending_manual_entry,
        lambda db, ctx, role: (
            (a := approvals.get_approval(db, ctx["approval_id"])).id,
            a.status,
            a.maker,
        ),
        lambda ctx, role: (ctx["approval_id"], "pending", ctx["operator"]),
    ),
    Case(
        approvals.list_approvals,
        pending_manual_entry,
        lambda db, ctx, role: [
            (a.id, a.command) for a in approvals.list_approvals(db, status="pending")
        ],
        lambda ctx, role: [(ctx["approval_id"], "ledger.manual_entry")],
    ),
    # --- audit and events
    Case(
        audit.list_audit,
        no_setup,
        lambda db, ctx, role: [
            e.inputs["username"]
            for e in audit.list_audit(db, command_name="identity.user.create", outcome="ok")
        ],
        lambda ctx, role: [username(r) for r in ROLES],
    ),
    Case(
        audit.verify_audit,
        no_setup,
        lambda db, ctx, role: (
            (r := audit.verify_audit(db)).ok,
            r.records_checked == r.head_seq == count(db, "audit_log"),
        ),
        lambda ctx, role: (True, True),
    ),
    # --- webhooks
    Case(
        webhooks.register_webhook,
        no_setup,
        lambda db, ctx, role: (
            (
                w := webhooks.register_webhook(
                    db, f"https://hooks.example/{role.value}", ["ledger.*"]
                )
            )[0].url,
            w[0].event_types,
            w[0].active,
            w[1].startswith("whsec_"),
        ),
        lambda ctx, role: (f"https://hooks.example/{role.value}", ("ledger.*",), True, True),
    ),
    Case(
        webhooks.deactivate_webhook,
        webhook_per_role,
        lambda db, ctx, role: (
            (w := webhooks.deactivate_webhook(db, ctx["webhooks"][role])).id,
            w.active,
        ),
        lambda ctx, role: (ctx["webhooks"][role], False),
    ),
    Case(
        webhooks.list_webhooks,
        one_webhook,
        lambda db, ctx, role: [(w.id, w.url, w.active) for w in webhooks.list_webhooks(db)],
        lambda ctx, role: [(ctx["webhook_id"], "https://hooks.example/one", True)],
    ),
    Case(
        webhooks.list_deliveries,
        one_webhook,
        lambda db, ctx, role: [
            (d.webhook_id, d.event_type, d.aggregate_key, d.status)
            for d in webhooks.list_deliveries(db)
        ],
        lambda ctx, role: [
            (ctx["webhook_id"], "account.opened", "account:cash", "pending"),
            (ctx["webhook_id"], "account.opened", "account:equity", "pending"),
        ],
    ),
    Case(
        webhooks.redeliver,
        dead_delivery_per_role,
        lambda db, ctx, role: (
            (d := webhooks.redeliver(db, ctx["webhooks"][role], ctx["outbox_id"])).status,
            d.attempts,
            d.aggregate_key,
        ),
        lambda ctx, role: ("pending", 0, "account:cash"),
    ),
    Case(
        events.list_events,
        seed_ledger,
        lambda db, ctx, role: [
            e.aggregate_id for e in events.list_events(db, event_type="account.opened")
        ],
        lambda ctx, role: ["cash", "equity"],
    ),
    # --- schedules
    Case(
        schedules.preview_schedule,
        no_setup,
        lambda db, ctx, role: (
            (p := schedules.preview_schedule(db, PREVIEW)).product_code,
            len(p.schedule.instalments),
            p.schedule.instalments[0].total,
        ),
        lambda ctx, role: ("consumer-annuity", 12, 88_849),
    ),
    # --- borrowers (begin): cases
    Case(
        borrowers.create_borrower,
        no_setup,
        lambda db, ctx, role: (
            (b := borrowers.create_borrower(db, person(f"New {role.value}"))).name,
            b.kyc_status,
            b.screening_status,
        ),
        lambda ctx, role: (f"New {role.value}", "pending", "not-screened"),
    ),
    Case(
        borrowers.update_borrower,
        borrower_per_role,
        lambda db, ctx, role: (
            borrowers.update_borrower(
                db,
                ctx["borrowers"][role],
                BorrowerUpdate(monthly_income_minor=123),
            ).monthly_income_minor
        ),
        lambda ctx, role: 123,
    ),
    Case(
        borrowers.set_group,
        borrower_per_role,
        lambda db, ctx, role: (
            borrowers.set_group(db, ctx["borrowers"][role], f"group {role.value}").group_name
        ),
        lambda ctx, role: f"group {role.value}",
    ),
    Case(
        borrowers.record_kyc_check,
        one_borrower,
        lambda db, ctx, role: (
            (
                c := borrowers.record_kyc_check(
                    db,
                    ctx["borrower_id"],
                    KycEvidence(
                        KycOutcome.VERIFIED,
                        "passport",
                        f"P-{role.value}",
                        valid_until=ctx["today"] + timedelta(days=365),
                    ),
                )
            ).outcome.value,
            c.checked_by,
        ),
        lambda ctx, role: ("verified", username(role)),
    ),
    Case(
        borrowers.get_borrower,
        one_borrower,
        lambda db, ctx, role: (
            (v := borrowers.get_borrower(db, ctx["borrower_id"])).borrower.id,
            v.borrower.kyc_status,
            v.kyc_checks,
        ),
        lambda ctx, role: (ctx["borrower_id"], "pending", ()),
    ),
    Case(
        borrowers.list_borrowers,
        one_borrower,
        lambda db, ctx, role: [b.id for b in borrowers.list_borrowers(db)],
        lambda ctx, role: [ctx["borrower_id"]],
    ),
    Case(
        borrowers.screen_borrower,
        one_hit,
        lambda db, ctx, role: (
            (o := borrowers.screen_borrower(db, ctx["borrower_id"])).status,
            o.new_hits,
        ),
        lambda ctx, role: ("pending", ()),
    ),
    Case(
        borrowers.screen_all,
        one_hit,
        lambda db, ctx, role: (
            (s := borrowers.screen_all(db)).borrowers_screened,
            s.new_hits,
            dict(s.by_status),
        ),
        lambda ctx, role: (1, 0, {"pending": 1}),
    ),
    Case(
        borrowers.load_watch_list,
        no_setup,
        lambda db, ctx, role: (
            (w := borrowers.load_watch_list(db, demo_list(f"list-{role.value}"))).outcome,
            w.watch_list.version,
            w.watch_list.entry_count,
        ),
        lambda ctx, role: ("loaded", 1, 10),
    ),
    Case(
        borrowers.list_watch_lists,
        one_hit,
        lambda db, ctx, role: [(w.name, w.version) for w in borrowers.list_watch_lists(db)],
        lambda ctx, role: [("demo", 1)],
    ),
    Case(
        borrowers.list_hits,
        one_hit,
        lambda db, ctx, role: [
            (h.borrower_id, h.entry_reference, h.status) for h in borrowers.list_hits(db)
        ],
        lambda ctx, role: [(ctx["borrower_id"], "SYN-0009", "pending")],
    ),
    Case(
        borrowers.submit_resolution,
        hit_per_role,
        lambda db, ctx, role: pending_summary(
            borrowers.submit_resolution(db, ctx["hits"][role], "clear", "another person")
        ),
        lambda ctx, role: ("screening.resolve", "pending", username(role)),
    ),
    # --- borrowers (end): cases
    # --- models (begin): cases
    Case(
        model_service.register_model,
        no_setup,
        lambda db, ctx, role: model_service.register_model(db, str(demo_model_path())).kind,
        lambda ctx, role: "scorecard",
    ),
    Case(
        model_service.activate_model,
        demo_model_registered,
        lambda db, ctx, role: pending_summary(
            model_service.activate_model(db, ctx["version"], "champion")
        ),
        lambda ctx, role: ("model.activate", "pending", username(role)),
    ),
    Case(
        model_service.list_models,
        demo_model_registered,
        lambda db, ctx, role: [m.version for m in model_service.list_models(db)],
        lambda ctx, role: [ctx["version"]],
    ),
    Case(
        model_service.get_model,
        demo_model_registered,
        lambda db, ctx, role: model_service.get_model(db, ctx["version"]).version,
        lambda ctx, role: ctx["version"],
    ),
    Case(
        model_service.monitor_model,
        approved_application,
        lambda db, ctx, role: model_service.monitor_model(db).applications,
        lambda ctx, role: 1,
    ),
    # --- models (end): cases
)

# --- the table is complete ---------------------------------------------------------------


def test_every_decorated_service_function_has_a_case() -> None:
    found = discover()
    covered = {case.name for case in CASES}
    assert len(covered) == len(CASES), "a function has two cases"
    assert sorted(set(found) - covered - set(EXCLUDED)) == []
    # No stale entries: every case and exclusion names a decorated function.
    assert sorted((covered | set(EXCLUDED)) - set(found)) == []
    assert {name: found[name] for name in EXCLUDED} == {
        "lendcore.services.approvals.approve": ("command", "approvals.approve"),
        "lendcore.services.approvals.reject": ("command", "approvals.reject"),
    }


def test_every_permission_is_exercised() -> None:
    exercised = {case.declared[1] for case in CASES}
    table = set(permission_table())
    assert sorted(table - exercised - set(UNTESTED_PERMISSIONS)) == []
    assert sorted(exercised - table) == []
    # An untested permission must really be unused: once a function uses it, it needs a case.
    used = {permission for _kind, permission in discover().values()}
    assert sorted(set(UNTESTED_PERMISSIONS) & used) == []
    assert sorted(set(UNTESTED_PERMISSIONS) - table) == []


def test_every_role_is_allowed_somewhere_and_refused_somewhere() -> None:
    """The matrix below only means something if each role meets both outcomes."""
    rules = [permission_table()[case.declared[1]] for case in CASES]
    for role in ROLES:
        assert any(role in rule.roles for rule in rules), role
        assert any(role not in rule.roles for rule in rules), role


# --- the matrix --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.short_name)
def test_permission_matrix(case: Case, db: Database) -> None:
    """One database per case (the `db` fixture: SQLite, and PostgreSQL when configured)."""
    kind, permission = case.declared
    rule = permission_table()[permission]
    users = {role: identity.create_user(db, username(role), [role.value]) for role in ROLES}
    assert {role: user.roles for role, user in users.items()} == {
        role: frozenset({role}) for role in ROLES
    }
    ctx = case.setup(db)
    for role in ROLES:
        as_user = db.acting_as(users[role].actor())
        before = table_contents(db)
        head_seq, _ = audit_head(db)
        if role in rule.roles:
            assert case.call(as_user, ctx, role) == case.expect(ctx, role), role
            written = audit_after(db, head_seq)
            expected = [(username(role), permission, "ok", None)] if kind == "command" else []
            assert [(r.actor, r.command, r.outcome, r.error_code) for r in written] == expected
        else:
            with pytest.raises(PermissionDenied) as refused:
                case.call(as_user, ctx, role)
            assert type(refused.value) is PermissionDenied
            assert refused.value.code == "PERMISSION_DENIED"
            assert refused.value.details == {"command": permission}
            assert table_contents(db) == before, role
            written = audit_after(db, head_seq)
            assert [
                (
                    r.seq,
                    r.actor,
                    r.actor_kind,
                    r.roles,
                    r.command,
                    r.request_id,
                    r.outcome,
                    r.error_code,
                    r.result_json,
                )
                for r in written
            ] == [
                (
                    head_seq + 1,
                    username(role),
                    "user",
                    role.value,
                    permission,
                    as_user.request_id,
                    "refused",
                    "PERMISSION_DENIED",
                    "{}",
                )
            ]
            assert audit_head(db) == (head_seq + 1, written[0].record_hash)
    with db.reading() as conn:
        chain = audit.verify_audit_on(conn)
    assert (chain.ok, chain.problems) == (True, [])
