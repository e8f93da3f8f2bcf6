"""The custom PMS: the project-management database schema shipped with Samband.

Two tables, created portably with SQLAlchemy Core on SQLite, PostgreSQL and MariaDB:
``customer`` and ``project`` (``project.customer_id`` → ``customer.id``).  The seed
dataflows "PowerOffice GO → Custom PMS" and "Exact Online → Custom PMS" write into them.

    >>> from samband.kinds.sql.demo import create_pms_schema
    >>> create_pms_schema("sqlite:///pms.db")          # doctest: +SKIP

and a ``kind: sql`` system with :data:`ENTITY_TYPES_YAML` uses them.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    true,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine

from samband import sampledata
from samband.plugin import DemoHooks

# Microsecond change columns everywhere (MariaDB's DATETIME has whole seconds by default).
_TIMESTAMP = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

metadata = MetaData()

customer = Table(
    "customer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("org_no", String(20), index=True),
    Column("email", String(254), index=True),
    Column("phone", String(40)),
    Column("address", String(200)),
    Column("zip_code", String(12)),
    Column("city", String(100)),
    Column("country", String(2)),
    Column("website", String(200)),
    Column("department_code", String(40)),
    Column("external_ref", String(200), index=True),
    Column("is_active", Boolean, nullable=False, default=True, server_default=true()),
    Column("updated_at", _TIMESTAMP, index=True),
    mysql_charset="utf8mb4",
    sqlite_autoincrement=True,  # never hand out the id of a deleted row again
)

project = Table(
    "project",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("customer_id", Integer, ForeignKey("customer.id"), index=True),
    Column("status", String(20), nullable=False, default="active", server_default="active"),
    Column("start_date", Date),
    Column("end_date", Date),
    Column("is_active", Boolean, nullable=False, default=True, server_default=true()),
    Column("external_ref", String(200), index=True),
    Column("updated_at", _TIMESTAMP, index=True),
    mysql_charset="utf8mb4",
    sqlite_autoincrement=True,  # never hand out the id of a deleted row again
)

#: The ``entity_types`` block of a ``kind: sql`` system on this schema.
ENTITY_TYPES_YAML = """\
entity_types:
  Customer:
    table: customer
    id: id
    updated: updated_at
    external_ref: external_ref
  Project:
    table: project
    id: id
    updated: updated_at
    external_ref: external_ref
"""

#: The same, as a dict (for building configs in code).
ENTITY_TYPES: dict[str, dict[str, Any]] = {
    "Customer": {
        "table": "customer",
        "id": "id",
        "updated": "updated_at",
        "external_ref": "external_ref",
    },
    "Project": {
        "table": "project",
        "id": "id",
        "updated": "updated_at",
        "external_ref": "external_ref",
    },
}


def system_config(url: str, label: str = "Custom PMS") -> dict[str, Any]:
    """A complete ``kind: sql`` system block for the custom PMS at ``url``."""
    return {"kind": "sql", "label": label, "url": url, "entity_types": ENTITY_TYPES}


def _engine(url: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(url, Engine):
        return url, False
    return create_engine(url), True


def create_pms_schema(url: str | URL | Engine) -> None:
    """Create the ``customer`` and ``project`` tables (existing tables are kept)."""
    engine, own = _engine(url)
    try:
        metadata.create_all(engine, checkfirst=True)
    finally:
        if own:
            engine.dispose()


def drop_pms_schema(url: str | URL | Engine) -> None:
    engine, own = _engine(url)
    try:
        metadata.drop_all(engine, checkfirst=True)
    finally:
        if own:
            engine.dispose()


def seed_pms(
    url: str | URL | Engine,
    customers: int = 20,
    projects: int = 30,
    seed: int = 1,
    country: str = "NO",
) -> None:
    """Fill the PMS with sample customers and projects (deterministic per ``seed``)."""
    rng = random.Random(seed)
    engine, own = _engine(url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            ids: list[int] = []
            for company in sampledata.companies(customers, rng, country):
                row = {
                    k: company[k]
                    for k in (
                        "name",
                        "org_no",
                        "email",
                        "phone",
                        "address",
                        "zip_code",
                        "city",
                        "country",
                        "website",
                    )
                }
                row |= {"is_active": True, "updated_at": now}
                result = conn.execute(insert(customer).values(row))
                assert result.inserted_primary_key is not None
                ids.append(int(result.inserted_primary_key[0]))
            for index in range(projects if ids else 0):
                start = date(2025, 1, 1) + timedelta(days=rng.randrange(600))
                conn.execute(
                    insert(project).values(
                        code=f"PRJ-{1000 + index}",
                        name=rng.choice(
                            (
                                "Nytt nettsted",
                                "ERP-innføring",
                                "Kontorbygg",
                                "Rammeavtale",
                                "Vedlikehold",
                                "Migrering",
                                "Revisjon",
                            )
                        ),
                        customer_id=rng.choice(ids),
                        status=rng.choice(("active", "active", "planned", "closed")),
                        start_date=start,
                        end_date=start + timedelta(days=rng.randrange(30, 400)),
                        is_active=True,
                        updated_at=now,
                    )
                )
    finally:
        if own:
            engine.dispose()


def _prepare(folder: Path) -> dict[str, str]:
    """``samband demo``: the PMS as a SQLite file in the demo's folder."""
    url = f"sqlite:///{folder / 'pms.db'}"
    create_pms_schema(url)
    return {"PMS_URL": url}


DEMO = DemoHooks(prepare=_prepare)
