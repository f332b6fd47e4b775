"""What every command shares: the database option, output and error handling.

Conventions: `--db URL` or $LENDCORE_DB_URL picks the database (default
./lendcore.db); read commands take `--json` and then print one JSON document
and nothing else; an error is one line on stderr, `error[CODE]: message`, and
a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from lendcore.errors import InvalidDate, LendcoreError
from lendcore.store.database import DEFAULT_DB_URL, Database, open_database

console = Console()
err_console = Console(stderr=True)

EXIT_DOMAIN_ERROR = 1

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class State:
    db_url: str = DEFAULT_DB_URL
    # `--as USER`: act as a named user (local trust); default: the local operator.
    as_user: str | None = None
    _db: Database | None = field(default=None, repr=False)

    def db(self) -> Database:
        if self._db is None:
            from lendcore.services.identity import actor_for_username, ensure_bootstrap_admin

            database = open_database(self.db_url)
            created = ensure_bootstrap_admin(database)
            if created is not None:
                err_console.print(
                    "[bold yellow]New database: bootstrap admin created. Its credentials are "
                    "shown once, here, and never again:[/]\n"
                    f"  user:     {created.username}\n"
                    f"  password: {created.password}\n"
                    f"  API key:  {created.api_key}",
                    highlight=False,
                )
            if self.as_user is not None:
                database = database.acting_as(actor_for_username(database, self.as_user))
            self._db = database
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def db(ctx: typer.Context) -> Database:
    return state(ctx).db()


def fail(error: LendcoreError) -> None:
    """Print a domain error as one line on stderr and exit non-zero."""
    message = " ".join(str(error.message).split())
    print(f"error[{error.code}]: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_DOMAIN_ERROR)


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn typed domain errors into the one-line stderr form."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except LendcoreError as error:
            fail(error)
            raise  # unreachable: fail() exits

    return wrapper


@contextmanager
def domain_errors() -> Iterator[None]:
    try:
        yield
    except LendcoreError as error:
        fail(error)


def print_json(document: Any) -> None:
    """Print one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(document, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def parse_iso_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidDate(f"{text!r} is not a date: use YYYY-MM-DD") from exc


JsonOption = typer.Option(False, "--json", help="Print one JSON document and nothing else.")
