"""The permission table: which roles may run each command, and which commands
need a second person. It is data (permissions.yaml), read once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from lendcore.auth.actors import Actor, Role
from lendcore.errors import LendcoreError


class PermissionDenied(LendcoreError):
    code = "PERMISSION_DENIED"
    http_status = 403


class UnknownCommand(LendcoreError):
    code = "COMMAND_UNKNOWN"
    http_status = 500


@dataclass(frozen=True, slots=True)
class Rule:
    command: str
    roles: frozenset[Role]
    # Roles that may approve; None when the command needs no second person.
    approvers: frozenset[Role] | None = None

    @property
    def needs_approval(self) -> bool:
        return self.approvers is not None


def parse_table(raw: Mapping[str, Any]) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    for command, spec in raw.items():
        if not isinstance(spec, Mapping) or "roles" not in spec:
            raise ValueError(f"permission {command!r} needs a 'roles' list")
        approvers = spec.get("approvers")
        table[command] = Rule(
            command=command,
            roles=frozenset(Role(r) for r in spec["roles"]),
            approvers=None if approvers is None else frozenset(Role(r) for r in approvers),
        )
    return table


@lru_cache(maxsize=1)
def permission_table() -> dict[str, Rule]:
    text = resources.files("lendcore.auth").joinpath("permissions.yaml").read_text()
    return parse_table(yaml.safe_load(text))


def rule_for(command: str) -> Rule:
    try:
        return permission_table()[command]
    except KeyError:
        raise UnknownCommand(f"command {command!r} is not in the permission table") from None


def may_run(actor: Actor, command: str) -> bool:
    return bool(actor.roles & rule_for(command).roles)


def authorize(actor: Actor, command: str) -> Rule:
    rule = rule_for(command)
    if not actor.roles & rule.roles:
        allowed = ", ".join(sorted(r.value for r in rule.roles))
        raise PermissionDenied(
            f"{actor.label} may not run {command}: it needs one of the roles {allowed}",
            command=command,
        )
    return rule


def authorize_approval(actor: Actor, command: str) -> Rule:
    rule = rule_for(command)
    if rule.approvers is None:
        raise PermissionDenied(f"{command} does not take approvals", command=command)
    if not actor.roles & rule.approvers:
        allowed = ", ".join(sorted(r.value for r in rule.approvers))
        raise PermissionDenied(
            f"{actor.label} may not approve {command}: it needs one of the roles {allowed}",
            command=command,
        )
    return rule
