"""The permission table and its checks, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendcore.auth import permissions
from lendcore.auth.actors import ALL_ROLES, SYSTEM, Actor, ActorKind, Role, local_operator
from lendcore.auth.permissions import (
    PermissionDenied,
    Rule,
    UnknownCommand,
    authorize,
    authorize_approval,
    may_run,
    parse_table,
    permission_table,
    rule_for,
)

TABLE = permission_table()
COMMANDS = sorted(TABLE)
role_sets = st.frozensets(st.sampled_from(sorted(Role, key=lambda r: r.value)))
kinds = st.sampled_from(list(ActorKind))


def user(roles: frozenset[Role], name: str = "uma", user_id: int = 7) -> Actor:
    return Actor(name, roles, ActorKind.USER, user_id)


# --- parse_table --------------------------------------------------------------------------


def test_parse_table_reads_roles_and_approvers() -> None:
    table = parse_table(
        {
            "a.read": {"roles": ["auditor", "admin"]},
            "a.write": {"roles": ["accountant"], "approvers": ["accountant", "risk_manager"]},
            "a.nobody": {"roles": []},
        }
    )
    assert table == {
        "a.read": Rule("a.read", frozenset({Role.AUDITOR, Role.ADMIN}), None),
        "a.write": Rule(
            "a.write",
            frozenset({Role.ACCOUNTANT}),
            frozenset({Role.ACCOUNTANT, Role.RISK_MANAGER}),
        ),
        "a.nobody": Rule("a.nobody", frozenset(), None),
    }
    assert [r.needs_approval for r in table.values()] == [False, True, False]


def test_an_empty_approver_list_freezes_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty list means "a second person, and nobody may be it": never "no approval"."""
    table = parse_table({"x.frozen": {"roles": ["admin"], "approvers": []}})
    assert (table["x.frozen"].needs_approval, table["x.frozen"].approvers) == (True, frozenset())
    monkeypatch.setattr(permissions, "permission_table", lambda: table)
    with pytest.raises(PermissionDenied) as refused:
        authorize_approval(user(ALL_ROLES), "x.frozen")
    assert refused.value.message == "uma may not approve x.frozen: it needs one of the roles "
    assert authorize(user(frozenset({Role.ADMIN})), "x.frozen") is table["x.frozen"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"x": {"approvers": ["admin"]}}, "permission 'x' needs a 'roles' list"),
        ({"x": ["admin"]}, "permission 'x' needs a 'roles' list"),
        ({"x": None}, "permission 'x' needs a 'roles' list"),
        ({"x": "admin"}, "permission 'x' needs a 'roles' list"),
    ],
)
def test_parse_table_refuses_a_rule_without_roles(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_table(raw)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "raw",
    [{"x": {"roles": ["superuser"]}}, {"x": {"roles": ["admin"], "approvers": ["root"]}}],
)
def test_parse_table_refuses_an_unknown_role(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_table(raw)


# --- the shipped table ----------------------------------------------------------------------


def test_the_shipped_table_is_read_once_and_names_each_rule_by_its_key() -> None:
    assert permission_table() is TABLE
    assert all(rule.command == key for key, rule in TABLE.items())
    assert all(rule.roles for rule in TABLE.values())
    assert rule_for("ledger.manual_entry") is TABLE["ledger.manual_entry"]


def test_the_auditor_reads_everything_and_changes_nothing() -> None:
    auditor_may = sorted(k for k, r in TABLE.items() if Role.AUDITOR in r.roles)
    assert auditor_may == [
        "application.read",
        "approvals.read",
        "audit.read",
        "borrower.read",
        "calendar.business_date.read",
        "decision.read",
        "decision.replay",
        "eod.read",
        "events.read",
        "gl.drill",
        "identity.apikey.read",
        "identity.user.read",
        "ledger.read",
        "ledger.verify",
        "loan.read",
        "model.monitor",
        "model.read",
        "policy.read",
        "portfolio.read",
        "product.read",
        "report.provision",
        "schedule.preview",
        "screening.read",
        "watchlist.read",
    ]


def test_admin_never_moves_money() -> None:
    moves_money = {
        "ledger.manual_entry",
        "ledger.reversal",
        "ledger.hold.place",
        "ledger.hold.post",
        "ledger.hold.void",
        "application.book",
        "loan.disburse",
        "loan.repay",
        "loan.repayment.reverse",
        "loan.waive",
        "loan.reschedule",
        "loan.write_off",
        "loan.accrue",
    }
    assert moves_money <= set(TABLE)
    assert sorted(k for k in moves_money if Role.ADMIN in TABLE[k].roles) == []
    assert sorted(k for k, r in TABLE.items() if r.approvers and Role.ADMIN in r.approvers) == []


def test_manual_entries_and_reversals_need_a_second_accountant() -> None:
    needs_approval = {k: (r.roles, r.approvers) for k, r in TABLE.items() if r.needs_approval}
    accountants = frozenset({Role.ACCOUNTANT})
    assert needs_approval["ledger.manual_entry"] == (accountants, accountants)
    assert needs_approval["ledger.reversal"] == (accountants, accountants)
    # A product change: loaded by a risk manager or an admin, approved by a risk manager.
    assert needs_approval["product.change"] == (
        frozenset({Role.RISK_MANAGER, Role.ADMIN}),
        frozenset({Role.RISK_MANAGER}),
    )


# --- authorize ------------------------------------------------------------------------------


@given(roles=role_sets, command=st.sampled_from(COMMANDS), kind=kinds)
def test_authorize_allows_exactly_the_actors_sharing_a_role(
    roles: frozenset[Role], command: str, kind: ActorKind
) -> None:
    actor = Actor("someone", roles, kind, 1 if kind is ActorKind.USER else None)
    allowed = bool(roles & TABLE[command].roles)
    assert may_run(actor, command) is allowed
    if allowed:
        assert authorize(actor, command) is TABLE[command]
        return
    with pytest.raises(PermissionDenied) as refused:
        authorize(actor, command)
    assert type(refused.value) is PermissionDenied
    assert (refused.value.code, refused.value.http_status, refused.value.details) == (
        "PERMISSION_DENIED",
        403,
        {"command": command},
    )
    needed = ", ".join(sorted(r.value for r in TABLE[command].roles))
    assert refused.value.message == (
        f"{actor.label} may not run {command}: it needs one of the roles {needed}"
    )


def test_authorize_messages_name_the_actor_and_the_roles() -> None:
    with pytest.raises(PermissionDenied) as refused:
        authorize(user(frozenset({Role.AUDITOR}), "vic"), "ledger.account.close")
    assert (
        refused.value.message
        == "vic may not run ledger.account.close: it needs one of the roles accountant"
    )


@pytest.mark.parametrize("actor", [local_operator("ops"), SYSTEM, user(ALL_ROLES)])
def test_all_roles_may_run_every_command(actor: Actor) -> None:
    assert [authorize(actor, c).command for c in COMMANDS] == COMMANDS


def test_an_unknown_command_is_a_programming_error_not_a_refusal() -> None:
    for check in (authorize, authorize_approval, may_run):
        with pytest.raises(UnknownCommand) as unknown:
            check(SYSTEM, "ledger.teleport")
        assert not isinstance(unknown.value, PermissionDenied)
        assert (unknown.value.code, unknown.value.http_status) == ("COMMAND_UNKNOWN", 500)
    with pytest.raises(UnknownCommand):
        rule_for("ledger.teleport")


# --- authorize_approval -------------------------------------------------------------------------


@given(roles=role_sets, command=st.sampled_from(COMMANDS))
def test_authorize_approval_allows_exactly_the_approver_roles(
    roles: frozenset[Role], command: str
) -> None:
    actor = user(roles)
    approvers = TABLE[command].approvers
    if approvers is not None and roles & approvers:
        assert authorize_approval(actor, command) is TABLE[command]
        return
    with pytest.raises(PermissionDenied) as refused:
        authorize_approval(actor, command)
    assert type(refused.value) is PermissionDenied
    assert refused.value.details == {"command": command}
    if approvers is None:
        assert refused.value.message == f"{command} does not take approvals"
    else:
        needed = ", ".join(sorted(r.value for r in approvers))
        assert refused.value.message == (
            f"uma may not approve {command}: it needs one of the roles {needed}"
        )


def test_a_command_without_approvers_takes_no_approval_even_from_the_operator() -> None:
    for command in COMMANDS:
        if TABLE[command].approvers is None:
            with pytest.raises(PermissionDenied):
                authorize_approval(local_operator("ops"), command)


# --- Actor -------------------------------------------------------------------------------------


def test_actor_labels() -> None:
    assert user(frozenset(), "wes").label == "wes"
    assert local_operator("wes").label == "local_operator:wes"
    assert SYSTEM.label == "system:lendcore"
    assert (local_operator("wes").roles, SYSTEM.roles) == (ALL_ROLES, ALL_ROLES)
    assert frozenset(Role) == ALL_ROLES and len(ALL_ROLES) == 7


def test_same_person_compares_users_by_id() -> None:
    ann = user(frozenset({Role.ACCOUNTANT}), "ann", 1)
    # A renamed user with other roles is the same person; a namesake with another id is not.
    assert ann.same_person(user(frozenset({Role.AUDITOR}), "ann-renamed", 1)) is True
    assert ann.same_person(user(frozenset({Role.ACCOUNTANT}), "ann", 2)) is False
    # A user is never the operator or lendcore itself, whatever the names.
    assert ann.same_person(local_operator("ann")) is False
    assert local_operator("ann").same_person(ann) is False
    assert ann.same_person(Actor("ann", ann.roles, ActorKind.USER, None)) is False


def test_same_person_compares_other_actors_by_label() -> None:
    assert local_operator("ops").same_person(local_operator("ops")) is True
    assert local_operator("ops").same_person(local_operator("ops2")) is False
    assert SYSTEM.same_person(Actor("lendcore", frozenset(), ActorKind.SYSTEM)) is True
    assert SYSTEM.same_person(local_operator("lendcore")) is False


actors = st.builds(
    Actor,
    name=st.sampled_from(["ann", "bob", "lendcore"]),
    roles=role_sets,
    kind=kinds,
    user_id=st.none() | st.integers(min_value=1, max_value=3),
)


@given(a=actors, b=actors)
def test_same_person_is_symmetric(a: Actor, b: Actor) -> None:
    assert a.same_person(b) is b.same_person(a)


@given(a=actors)
def test_same_person_is_reflexive(a: Actor) -> None:
    assert a.same_person(a) is True


@given(a=actors, b=actors, c=actors)
def test_same_person_is_transitive(a: Actor, b: Actor, c: Actor) -> None:
    if a.same_person(b) and b.same_person(c):
        assert a.same_person(c) is True


def test_loan_changes_that_forgo_money_need_a_credit_decision() -> None:
    """Waivers, reschedules and write-offs: servicing asks, someone with credit
    authority decides (never the maker: the shared mechanism refuses that)."""
    needs_approval = {k: (r.roles, r.approvers) for k, r in TABLE.items() if r.needs_approval}
    servicing = frozenset({Role.SERVICING})
    assert needs_approval["loan.waive"] == (
        servicing,
        frozenset({Role.CREDIT_APPROVER, Role.RISK_MANAGER}),
    )
    assert needs_approval["loan.reschedule"] == (servicing, frozenset({Role.CREDIT_APPROVER}))
    assert needs_approval["loan.write_off"] == (
        servicing,
        frozenset({Role.CREDIT_APPROVER, Role.RISK_MANAGER}),
    )
    assert "loan.repay" not in needs_approval


def test_origination_controls_are_in_the_table() -> None:
    """Who enters never decides, overriding the engine needs a second person, and
    a policy change needs a second risk manager."""
    assert TABLE["application.submit"].roles == frozenset({Role.LOAN_OFFICER})
    assert Role.LOAN_OFFICER not in TABLE["application.approve"].roles
    assert TABLE["application.override"].approvers == frozenset(
        {Role.CREDIT_APPROVER, Role.RISK_MANAGER}
    )
    assert TABLE["policy.change"].approvers == frozenset({Role.RISK_MANAGER})
    assert TABLE["application.book"].roles == frozenset({Role.SERVICING})
    assert "loan.book" not in TABLE  # a loan is booked only from an approved application
