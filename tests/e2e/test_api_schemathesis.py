"""Property-based conformance of the HTTP API to its own OpenAPI schema (schemathesis).

Each operation of /openapi.json gets generated requests, sent in-process to the
application on a seeded SQLite database (PostgreSQL with LENDCORE_FUZZ_PG=1) as a
user who holds every role, so that permissions do not hide behaviour. Every
response must be a non-5xx with a status, content type, headers and body that
the schema documents, and every operation must refuse a request without (or
with invalid) credentials.

The database is seeded when the module is imported (in each xdist worker that
collects it), not in a fixture: schemathesis builds its coverage cases, and asks
for their credentials, while collecting, before any fixture runs. It lives in a
temporary directory removed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free

from lendcore.api.app import create_app
from lendcore.auth.actors import Role
from lendcore.ledger.model import (
    AccountSpec,
    AccountType,
    BalanceConstraint,
    EntrySpec,
    PostingSpec,
    Side,
)
from lendcore.services import identity, ledger
from lendcore.services.approvals import approve
from lendcore.services.clock import current_business_date
from lendcore.services.manual_entries import submit_manual_entry
from lendcore.store.database import Database, open_database
from tests.conftest import create_pg_schema, drop_pg_schema, pg_base_url

# Bounded: 15 generated requests per operation (plus schemathesis' coverage
# cases) keeps the module well under a minute and a half on two cores. A longer
# hunt: LENDCORE_FUZZ_EXAMPLES=200 LENDCORE_FUZZ_RANDOM=1.
EXAMPLES_PER_OPERATION = int(os.environ.get("LENDCORE_FUZZ_EXAMPLES", "15"))

ACCOUNT_CODES = ("1000", "2000", "3000", "4000")
USERNAMES = ("fuzzer", "checker", "auditor")


def seed(db: Database) -> str:
    """Users, accounts, booked and pending entries and a hold; returns the API key
    of "fuzzer", who holds every role."""
    identity.create_user(db, "fuzzer", [r.value for r in Role])
    identity.create_user(db, "checker", [Role.ACCOUNTANT.value])
    identity.create_user(db, "auditor", [Role.AUDITOR.value])
    token = identity.create_api_key(db, "fuzzer", label="schemathesis").token
    chart = (
        ("1000", "Cash", AccountType.ASSET, BalanceConstraint.NON_NEGATIVE),
        ("2000", "Deposits", AccountType.LIABILITY, BalanceConstraint.NON_NEGATIVE),
        ("3000", "Capital", AccountType.EQUITY, BalanceConstraint.NONE),
        ("4000", "Fees", AccountType.INCOME, BalanceConstraint.NONE),
    )
    for code, name, kind, constraint in chart:
        ledger.open_account(db, AccountSpec(code, name, kind, "USD", balance_constraint=constraint))
    fuzzer = db.acting_as(identity.actor_for_username(db, "fuzzer"))
    checker = db.acting_as(identity.actor_for_username(db, "checker"))
    booked = (("1000", "3000", 1_000_000), ("1000", "2000", 50_000), ("2000", "4000", 1_500))
    for n, (debit, credit, minor) in enumerate(booked):
        postings = (
            PostingSpec(debit, Side.DEBIT, minor, "USD"),
            PostingSpec(credit, Side.CREDIT, minor, "USD"),
        )
        pending = submit_manual_entry(fuzzer, EntrySpec(f"seed-{n}", postings, f"Seed {n}"))
        approve(checker, pending.id, "seeded")
    left_pending = (
        PostingSpec("1000", Side.DEBIT, 100, "USD"),
        PostingSpec("3000", Side.CREDIT, 100, "USD"),
    )
    submit_manual_entry(fuzzer, EntrySpec("seed-pending", left_pending, "Awaiting a checker"))
    with db.reading() as conn:
        today = current_business_date(conn)
    ledger.place_hold(
        fuzzer,
        idempotency_key="seed-hold",
        debit_account="2000",
        credit_account="1000",
        amount_minor=2_500,
        currency="USD",
        expires_on=today + timedelta(days=30),
    )
    return token


def open_seeded() -> tuple[Database, str]:
    """SQLite in a temporary directory; PostgreSQL (a fresh schema) when
    LENDCORE_FUZZ_PG=1 and LENDCORE_TEST_PG_URL is set. Removed at exit."""
    if os.environ.get("LENDCORE_FUZZ_PG") == "1" and pg_base_url() is not None:
        pg_schema, url = create_pg_schema()
        db = open_database(url)

        def close() -> None:
            db.dispose()
            drop_pg_schema(pg_schema)

    else:
        directory = tempfile.mkdtemp(prefix="lendcore-schemathesis-")
        db = open_database(f"sqlite:///{directory}/api.db")

        def close() -> None:
            db.dispose()
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(close)
    return db, seed(db)


DB, API_KEY = open_seeded()
app = create_app(DB)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.auth()
class ApiKeyAuth:
    """The credentials, declared to schemathesis (rather than passed as extra
    headers) so that its `ignored_auth` check knows them: it removes them, or
    swaps in invalid ones, and expects a 401 each time."""

    def get(self, case: Any, ctx: Any) -> str:
        return API_KEY

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@schema.hook
def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Path parameters that often name seeded records, so reads find something and
    writes meet real business rules rather than only 404s."""
    if not path_parameters:
        return st.just(path_parameters)
    known = {"code": ACCOUNT_CODES, "username": USERNAMES}
    choices: dict[str, Any] = {}
    for name, value in path_parameters.items():
        seeded = known.get(name)
        choices[name] = st.just(value) if seeded is None else st.sampled_from((value, *seeded))
    return st.fixed_dictionaries(choices)


# Checks left out of the default set, each a false positive for this API:
# - positive_data_acceptance expects every schema-valid request to succeed, but
#   an OpenAPI schema cannot express business rules: an unknown account (404),
#   a closed one or a reused key (409), an amount with more decimals than its
#   currency (422) are schema-valid and rightly refused. The problem documents
#   of those refusals are still checked against the schema by the other checks.
# - use_after_free flags a resource that still answers after a "delete";
#   lendcore deletes nothing (revoke, close, void change a status and the record
#   stays readable by design: the ledger and its surroundings are append-only).
EXCLUDED_CHECKS = [positive_data_acceptance, use_after_free]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # Reproducible by default; LENDCORE_FUZZ_RANDOM=1 explores new examples.
    derandomize=os.environ.get("LENDCORE_FUZZ_RANDOM") is None,
)
def test_every_operation_conforms_to_the_schema(case: Any) -> None:
    case.call_and_validate(excluded_checks=EXCLUDED_CHECKS)
