"""Shared fixtures: real databases, one fresh per test.

SQLite: a template database is migrated once per session and copied for each
test. PostgreSQL (when LENDCORE_TEST_PG_URL is set): each test gets its own
schema, migrated from scratch and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lendcore.store.database import Database, open_database

PG_URL_ENV = "LENDCORE_TEST_PG_URL"


def pg_base_url() -> str | None:
    return os.environ.get(PG_URL_ENV)


requires_pg = pytest.mark.skipif(pg_base_url() is None, reason=f"{PG_URL_ENV} is not set")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    # Closing the last connection checkpoints the WAL into the file we copy.
    open_database(f"sqlite:///{path}").dispose()
    return path


def fresh_sqlite_url(template: Path, directory: Path) -> str:
    path = directory / f"lendcore-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def _pg_admin_url() -> str:
    base = pg_base_url()
    assert base is not None
    return base.replace("postgresql://", "postgresql+psycopg://", 1)


def create_pg_schema() -> tuple[str, str]:
    """A new empty schema; returns (schema, URL whose search_path is that schema)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(_pg_admin_url())
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    base = pg_base_url()
    assert base is not None
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    engine = create_engine(_pg_admin_url())
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return fresh_sqlite_url(sqlite_template, tmp_path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    if pg_base_url() is None:
        pytest.skip(f"{PG_URL_ENV} is not set")
    schema, url = create_pg_schema()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite and, when configured, PostgreSQL."""
    if request.param == "sqlite":
        yield fresh_sqlite_url(sqlite_template, tmp_path)
        return
    if pg_base_url() is None:
        pytest.skip(f"{PG_URL_ENV} is not set")
    schema, url = create_pg_schema()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    try:
        yield database
    finally:
        database.dispose()
