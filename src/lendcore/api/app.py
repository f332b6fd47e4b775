"""The FastAPI application: `create_app(url)`; `lendcore serve` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from sqlalchemy.exc import SQLAlchemyError

from lendcore import __version__
from lendcore.api import logs, openapi, problems
from lendcore.api.deps import base_db, refuse_nul
from lendcore.api.middleware import RequestContext
from lendcore.api.routes import (
    applications,
    approvals,
    audit,
    borrowers,
    eod,
    identity,
    ledger,
    loans,
    models,
    products,
    schedules,
    webhooks,
)
from lendcore.api.routing import Route
from lendcore.api.schemas import Health, Readiness
from lendcore.errors import DatabaseUnavailable
from lendcore.services.clock import current_business_date
from lendcore.store import migrations
from lendcore.store.database import Database, open_database


def create_app(db: Database | str | None = None, *, pool_size: int = 10) -> FastAPI:
    """The application on `db` (a Database, a URL, or $LENDCORE_DB_URL)."""
    logs.configure()
    owned = not isinstance(db, Database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned:
            app.state.db = open_database(db if isinstance(db, str) else None, pool_size=pool_size)
        try:
            yield
        finally:
            if owned:
                app.state.db.dispose()

    app = FastAPI(
        title="lendcore",
        version=__version__,
        summary="The system of record and of decision for a lender.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        dependencies=[Depends(refuse_nul)],
    )
    # Health and readiness too: responses serialized in the endpoint's thread.
    app.router.route_class = Route
    if isinstance(db, Database):
        app.state.db = db
    problems.install(app)
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]

    app.add_middleware(RequestContext)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, tags=["health"])
    def ready(request: Request) -> Readiness:
        """Readiness: the database answers and its schema is current."""
        database = base_db(request)
        try:
            with database.reading() as conn:
                revision = migrations.current_revision(conn)
                today = current_business_date(conn)
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable("the database does not answer") from exc
        if revision != migrations.head_revision():
            raise DatabaseUnavailable(
                f"the schema is at {revision}, not {migrations.head_revision()}"
            )
        return Readiness(
            status="ready",
            database=database.dialect,
            schema_revision=revision or "none",
            business_date=today,
        )

    for module in (identity, ledger, products, loans, schedules, approvals, audit, webhooks):
        app.include_router(module.router)
    app.include_router(borrowers.router)
    app.include_router(applications.router)
    app.include_router(models.router)
    app.include_router(eod.router)
    return app
