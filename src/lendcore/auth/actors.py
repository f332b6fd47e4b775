"""Who is acting: a user with roles, the local operator, or lendcore itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    LOAN_OFFICER = "loan_officer"
    CREDIT_APPROVER = "credit_approver"
    SERVICING = "servicing"
    RISK_MANAGER = "risk_manager"
    ACCOUNTANT = "accountant"
    # Reads everything, changes nothing.
    AUDITOR = "auditor"
    # Users and configuration; never moves money.
    ADMIN = "admin"


ALL_ROLES: frozenset[Role] = frozenset(Role)


class ActorKind(StrEnum):
    USER = "user"
    # Whoever runs the CLI on the database's own machine, as with a database's own shell.
    LOCAL_OPERATOR = "local_operator"
    # lendcore's own jobs (end of day, the demo): never a person.
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    roles: frozenset[Role]
    kind: ActorKind = ActorKind.USER
    user_id: int | None = None

    @property
    def label(self) -> str:
        """How the actor appears in the audit log."""
        if self.kind is ActorKind.USER:
            return self.name
        return f"{self.kind.value}:{self.name}"

    def same_person(self, other: Actor) -> bool:
        """Maker-checker compares people: the same user, or the same non-user actor."""
        if self.user_id is not None or other.user_id is not None:
            return self.user_id == other.user_id
        return self.label == other.label


def local_operator(os_user: str) -> Actor:
    return Actor(name=os_user, roles=ALL_ROLES, kind=ActorKind.LOCAL_OPERATOR)


SYSTEM = Actor(name="lendcore", roles=ALL_ROLES, kind=ActorKind.SYSTEM)
