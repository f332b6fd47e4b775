"""The OpenAPI document: FastAPI's, plus what FastAPI cannot infer.

Errors are answered by the exception handlers in `problems` as RFC 9457
problem documents (application/problem+json), not by the routes, so FastAPI
documents none of them and documents its own validation error shape, which
lendcore never sends. Here every operation gets the problem responses it can
give, and every response the X-Request-ID header the middleware sets.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from lendcore.api.problems import PROBLEM_JSON, TITLES
from lendcore.api.schemas import Problem

REF_PREFIX = "#/components/schemas/"

# Statuses an operation answers outside the rules in `problem_statuses`.
EXTRA_STATUSES: dict[tuple[str, str], frozenset[int]] = {
    # A wrong username or password.
    ("/v1/auth/token", "post"): frozenset({401}),
    # The database does not answer or its schema is not current.
    ("/readyz", "get"): frozenset({503}),
    # No credit policy has been approved yet.
    ("/v1/policies/active", "get"): frozenset({409}),
}

REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id: the caller's X-Request-ID when it is safe to log "
        "(1 to 64 letters, digits, '.', '_' or '-'), else a new one. The audit log records it.",
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,64}$"},
    }
}
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": 'Present ("true") when the response is the stored first response to '
        "an earlier request with the same Idempotency-Key.",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def problem_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses an operation can answer with."""
    statuses = set(EXTRA_STATUSES.get((path, method), frozenset()))
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    if takes_input:
        # Schema validation, and domain checks of well-formed input (an amount
        # with too many decimals, an unbalanced entry).
        statuses.add(422)
    if "requestBody" in operation:
        # A body that is not even text (not UTF-8) cannot be parsed at all.
        statuses.add(400)
    if operation.get("security"):
        statuses |= {401, 403}
        if takes_input:
            # A named record (a path parameter, an account in a body or a filter) is unknown.
            statuses.add(404)
        if method == "post":
            # A conflict with the current state: exists already, decided already, key reused.
            statuses.add(409)
    return statuses


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error") + " (a problem document; match on `code`)",
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF_PREFIX + "Problem"}}},
    }


def _problem_components() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template=REF_PREFIX + "{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    components["Problem"] = schema
    return components


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app`, built once."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    # FastAPI's validation error shape is never sent: validation errors are problems too.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(_problem_components())
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(problem_statuses(path, method, operation)):
                responses[str(status)] = problem_response(status)
            replayable = any(
                p.get("in") == "header" and p.get("name") == "Idempotency-Key"
                for p in operation.get("parameters", [])
            )
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.update(REQUEST_ID_HEADER)
                if replayable and status.startswith("2"):
                    headers.update(REPLAYED_HEADER)
    app.openapi_schema = spec
    return spec
