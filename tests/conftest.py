"""Shared fixtures: database servers, the shared/ folder, isolated memory datasets.

PostgreSQL and MariaDB tests run against the servers of this machine (127.0.0.1).  When a
server is down they are skipped with a message — except when ``CI=true``, where they
fail, because CI must test what it claims to test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
POSTGRES_URL = os.environ.get(
    "SAMBAND_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("SAMBAND_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error.__class__.__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it (see .ci/run)")
    pytest.skip(f"{message}; start it to run this test")


def _check(url: str, what: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        _unavailable(what, exc)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    _check(POSTGRES_URL, "PostgreSQL on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    _check(MARIADB_URL, "MariaDB on 127.0.0.1:3306")
    return MARIADB_URL


def _fresh_schema_url(base: str, dialect: str) -> Iterator[str]:
    """A database (MariaDB) or schema (PostgreSQL) of its own for one test."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    from sqlalchemy.pool import NullPool

    # no pooled connection: teardown must work after a server restart (tests/chaos)
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        if dialect == "postgresql":
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE `{name}`"))
    if dialect == "postgresql":
        sep = "&" if "?" in base else "?"
        url = f"{base}{sep}options=-csearch_path%3D{name}"
    else:
        url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            else:
                conn.execute(text(f"DROP DATABASE `{name}`"))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    yield from _fresh_schema_url(postgres_server, "postgresql")


@pytest.fixture
def mariadb_url(mariadb_server: str) -> Iterator[str]:
    """A MariaDB URL of a fresh database, dropped afterwards."""
    yield from _fresh_schema_url(mariadb_server, "mysql")


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        if IN_CI:
            pytest.fail(f"{SHARED} (seeds, references) is missing; CI=true requires it")
        pytest.skip(f"{SHARED} (seeds, references) is not beside the checkout")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated_memory_datasets() -> Iterator[None]:
    """Memory datasets are process-wide; each test starts with none."""
    from samband.kinds.memory import connector as memory

    memory._DATASETS.clear()
    yield
    memory._DATASETS.clear()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store on the embedded SQLite database and one on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    server = request.getfixturevalue("postgres_server")
    yield from _fresh_schema_url(server, "postgresql")
