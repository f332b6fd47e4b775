"""The API's plumbing, on a small application of its own: routes that validate
and serialize their response in the endpoint's thread (lendcore.api.routing)
answer exactly as FastAPI's own routes do, and the request-context middleware
gives every request an id and one log line, failures included."""

from __future__ import annotations

import json
import logging
import warnings

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from lendcore.api import logs, problems
from lendcore.api.logs import JsonFormatter
from lendcore.api.middleware import RequestContext
from lendcore.api.routing import Route

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


class Item(BaseModel):
    name: str
    amount: str
    note: str | None = None


class Broken(BaseModel):
    name: int


def build(route_class: type[Route] | None) -> FastAPI:
    """The same endpoints on FastAPI's routes or on lendcore's."""
    app = FastAPI()
    problems.install(app)
    app.add_middleware(RequestContext)
    router = (
        APIRouter(prefix="/v1")
        if route_class is None
        else APIRouter(prefix="/v1", route_class=route_class)
    )

    @router.get("/item", response_model=Item)
    def item() -> Item:
        return Item(name="café ☕", amount="1.50")

    @router.post("/items", response_model=list[Item], status_code=201)
    def items() -> list[Item]:
        return [Item(name="a", amount="1.00"), Item(name="b", amount="2.00", note="x")]

    @router.get("/as-dict", response_model=Item)
    def as_dict() -> dict[str, str]:
        # Validated against the response model: extra keys are dropped.
        return {"name": "d", "amount": "4.00", "secret": "never in the response"}

    @router.get("/response", response_model=Item)
    def response() -> JSONResponse:
        return JSONResponse({"name": "r", "amount": "0.01"}, status_code=202)

    @router.get("/broken", response_model=Item)
    def broken() -> Broken:
        return Broken(name=1)

    @router.get("/fails")
    def fails() -> None:
        raise RuntimeError("boom")

    app.include_router(router)
    return app


def test_routes_answer_exactly_as_fastapis_own() -> None:
    ours = TestClient(build(Route), raise_server_exceptions=False)
    theirs = TestClient(build(None), raise_server_exceptions=False)
    for method, path in (
        ("GET", "/v1/item"),
        ("POST", "/v1/items"),
        ("GET", "/v1/as-dict"),
        ("GET", "/v1/response"),
        ("GET", "/v1/broken"),
    ):
        mine, reference = ours.request(method, path), theirs.request(method, path)
        assert (mine.status_code, mine.headers["content-type"]) == (
            reference.status_code,
            reference.headers["content-type"],
        ), path
        body = mine.json()
        if mine.status_code == 500:
            assert body["code"] == "INTERNAL_ERROR"
            assert reference.json()["code"] == "INTERNAL_ERROR"
        else:
            assert body == reference.json(), path
    assert ours.get("/v1/item").json() == {"name": "café ☕", "amount": "1.50", "note": None}
    assert ours.post("/v1/items").status_code == 201
    assert "secret" not in ours.get("/v1/as-dict").text
    assert ours.app.openapi() == theirs.app.openapi()  # type: ignore[attr-defined]


def test_every_request_gets_an_id_and_one_log_line_failures_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs.configure()
    records: list[logging.LogRecord] = []
    monkeypatch.setattr(logging.getLogger("lendcore.api"), "handle", records.append)
    client = TestClient(build(Route), raise_server_exceptions=False)
    answered = client.get("/v1/item", headers={"X-Request-ID": "given.id-1"})
    replaced = client.get("/v1/item", headers={"X-Request-ID": "not safe to echo!"})
    failed = client.get("/v1/fails", headers={"X-Request-ID": "failing-1"})
    assert answered.headers["x-request-id"] == "given.id-1"
    assert len(replaced.headers["x-request-id"]) == 32
    assert failed.status_code == 500
    assert failed.json()["request_id"] == "failing-1"

    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    assert [(d["message"], d["request_id"], d.get("path"), d.get("status")) for d in lines] == [
        ("request", "given.id-1", "/v1/item", 200),
        ("request", replaced.headers["x-request-id"], "/v1/item", 200),
        # The request's line as the error passes through the middleware, then
        # the error itself from the handler that answers 500.
        ("request", "failing-1", "/v1/fails", 500),
        ("unhandled error", "failing-1", None, None),
    ]
