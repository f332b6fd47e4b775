"""The request context as pure ASGI middleware: request id and one log line.

Starlette's BaseHTTPMiddleware (what `@app.middleware("http")` makes) runs the
rest of the application in a task of its own and streams the response back
through a memory channel: several task switches and copies per request. This
middleware only wraps `send`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("lendcore.api")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REQUEST_ID_HEADER = b"x-request-id"


class RequestContext:
    """Give each HTTP request an id (the caller's X-Request-ID when it is safe
    to echo, else a new one), echo it on the response, and log one JSON line
    when the request is done. The id is `request.state.request_id`; routes put
    the authenticated caller in `request.state.actor` for the log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER:
                given = value.decode("latin-1")
                break
        request_id = given if REQUEST_ID_PATTERN.match(given) else uuid.uuid4().hex
        # `request.state` is a view of this dict.
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        echoed = (_REQUEST_ID_HEADER, request_id.encode("latin-1"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "actor": state.get("actor"),
                },
            )
