"""`lendcore user|apikey ...`: people, their roles and their API keys."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, print_json
from lendcore.presentation import apikey_doc, user_doc
from lendcore.services import identity

user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)


@user_app.command("create")
@handles_errors
def user_create(
    ctx: typer.Context,
    username: str,
    role: list[str] = typer.Option(..., "--role", help="Repeat for several roles."),
    name: str = typer.Option("", "--name", help="Display name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a password for API login from stdin."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Create a user with one or more roles."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    user = identity.create_user(db(ctx), username, role, display_name=name, password=password)
    if json_out:
        print_json(user_doc(user))
    else:
        console.print(f"Created user {user.username} with roles {', '.join(sorted(user.roles))}")


@user_app.command("list")
@handles_errors
def user_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """List users."""
    found = identity.list_users(db(ctx))
    if json_out:
        print_json({"users": [user_doc(u) for u in found]})
        return
    table = Table(title="Users")
    for column in ("User", "Name", "Roles", "Status", "Password", "Created"):
        table.add_column(column)
    for u in found:
        table.add_row(
            u.username,
            u.display_name,
            ", ".join(sorted(u.roles)),
            u.status,
            "yes" if u.has_password else "no",
            u.created_at[:19],
        )
    console.print(table)


@user_app.command("disable")
@handles_errors
def user_disable(ctx: typer.Context, username: str) -> None:
    """Disable a user: their keys and tokens stop working at once."""
    user = identity.disable_user(db(ctx), username)
    console.print(f"User {user.username} is {user.status}")


@user_app.command("set-password")
@handles_errors
def user_set_password(ctx: typer.Context, username: str) -> None:
    """Set a user's API login password, read from stdin."""
    identity.set_password(db(ctx), username, sys.stdin.readline().rstrip("\n"))
    console.print(f"Password set for {username}")


@apikey_app.command("create")
@handles_errors
def apikey_create(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user"),
    label: str = typer.Option("", "--label"),
    days: int = typer.Option(
        identity.API_KEY_DAYS_DEFAULT, "--days", help="Days until it expires."
    ),
) -> None:
    """Create an API key for a user; prints the key alone on stdout, once."""
    issued = identity.create_api_key(db(ctx), user, label=label, days=days)
    sys.stdout.write(issued.token + "\n")


@apikey_app.command("revoke")
@handles_errors
def apikey_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke an API key by its id (the part after `lck_`)."""
    key = identity.revoke_api_key(db(ctx), key_id)
    console.print(f"API key {key.key_id} of {key.username} revoked at {key.revoked_at}")


@apikey_app.command("list")
@handles_errors
def apikey_list(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user"),
    json_out: bool = JsonOption,
) -> None:
    """List API keys (never their secrets)."""
    found = identity.list_api_keys(db(ctx), user)
    if json_out:
        print_json({"api_keys": [apikey_doc(k) for k in found]})
        return
    table = Table(title="API keys")
    for column in ("Key id", "User", "Label", "Expires", "State"):
        table.add_column(column)
    for k in found:
        state = "revoked" if k.revoked_at else ("active" if k.active else "expired")
        table.add_row(k.key_id, k.username, k.label, k.expires_at[:10], state)
    console.print(table)
