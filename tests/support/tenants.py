"""Tenants for tests: each its own CRM (SQLite) synced to its own PMS (SQLite), its own
store in its folder, and its own environment (the CRM's URL comes from the tenant's
``${CRM_URL}``)."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine

from samband.kinds.sql import demo as pms
from samband.tenants.registry import env_prefix

RECORDS = 12


def crm_file(registry: Path, name: str) -> Path:
    return registry / name / "crm.db"


def pms_file(registry: Path, name: str) -> Path:
    return registry / name / "pms.db"


def make_crm(registry: Path, name: str, records: int = RECORDS) -> str:
    """Tenant ``name``'s folder and CRM with ``records`` companies; the CRM's URL."""
    (registry / name).mkdir(parents=True)
    crm_url = f"sqlite:///{crm_file(registry, name)}"
    engine = create_engine(crm_url)
    meta = MetaData()
    company = Table(
        "company",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
        Column("org", String(20)),
        Column("updated", String(40)),
    )
    meta.create_all(engine)
    now = datetime.now(UTC).isoformat()
    with engine.begin() as conn:
        conn.execute(
            company.insert(),
            [
                {"name": f"{name} firma {i}", "org": str(910_000_000 + i), "updated": now}
                for i in range(records)
            ],
        )
    engine.dispose()
    return crm_url


def crm_system() -> dict[str, Any]:
    """The CRM in a tenant's config (its URL from the tenant's ``${CRM_URL}``)."""
    return {
        "kind": "sql",
        "url": "${CRM_URL}",
        "entity_types": {"Company": {"table": "company", "id": "id"}},
    }


def write_tenant(registry: Path, name: str, config: dict[str, Any], every: str) -> None:
    folder = registry / name
    (folder / "samband.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (folder / "tenant.yaml").write_text(f"every: {every}\n", encoding="utf-8")


def make_tenant(
    registry: Path, name: str, records: int = RECORDS, every: str = "2s"
) -> dict[str, str]:
    """Make tenant ``name`` in ``registry``; the environment variables it needs."""
    crm_url = make_crm(registry, name, records)
    pms.create_pms_schema(f"sqlite:///{pms_file(registry, name)}")
    config = {
        # the edits of a test reach most of a tenant's few records between two runs
        "defaults": {"max_change_share": 1.0},
        "systems": {
            "crm": crm_system(),
            "pms": {
                "kind": "sql",
                "url": f"sqlite:///{pms_file(registry, name)}",
                "entity_types": pms.ENTITY_TYPES,
            },
        },
        "dataflows": [
            {
                "id": "companies",
                "source": "crm.Company",
                "target": "pms.Customer",
                "match": [[{"from": "org", "to": "org_no", "normalize": "digits"}]],
                "properties": [
                    {"from": "name", "to": "name", "type": "string"},
                    {"from": "org", "to": "org_no", "type": "string"},
                ],
            }
        ],
    }
    write_tenant(registry, name, config, every)
    return {f"{env_prefix(name)}CRM_URL": crm_url}


def edit(registry: Path, name: str, rng: random.Random, turn: int) -> None:
    """Rename one of the tenant's CRM companies."""
    with sqlite3.connect(crm_file(registry, name), timeout=30) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM company").fetchone()
        index = rng.randrange(1, count + 1)
        db.execute(
            "UPDATE company SET name = ?, updated = ? WHERE id = ?",
            (f"{name} edited {turn}", datetime.now(UTC).isoformat(), index),
        )


def crm_names(registry: Path, name: str) -> dict[str, str]:
    with sqlite3.connect(crm_file(registry, name)) as db:
        return dict(db.execute("SELECT org, name FROM company").fetchall())


def pms_customers(registry: Path, name: str) -> list[tuple[str, str]]:
    with sqlite3.connect(pms_file(registry, name)) as db:
        return [tuple(row) for row in db.execute("SELECT org_no, name FROM customer")]


def duplicates(registry: Path, name: str) -> list[str]:
    counts = Counter(org for org, _ in pms_customers(registry, name))
    return sorted(org for org, n in counts.items() if n > 1)


def converged(registry: Path, name: str) -> bool:
    return dict(pms_customers(registry, name)) == crm_names(registry, name) and not duplicates(
        registry, name
    )


class Tenants(Protocol):
    """How a test's tenants are made and checked (:func:`tests.support.cluster.run_cluster`):
    :class:`SqlTenants`, or :class:`tests.support.sandbox_tenants.PowerOfficeTenants`."""

    def make(self, registry: Path, name: str, records: int, every: str) -> dict[str, str]: ...

    def duplicates(self, registry: Path, name: str) -> list[str]: ...

    def converged(self, registry: Path, name: str) -> bool: ...


class SqlTenants:
    """Each tenant's CRM synced to its own PMS, both SQLite files in its folder."""

    def make(self, registry: Path, name: str, records: int, every: str) -> dict[str, str]:
        return make_tenant(registry, name, records=records, every=every)

    def duplicates(self, registry: Path, name: str) -> list[str]:
        return duplicates(registry, name)

    def converged(self, registry: Path, name: str) -> bool:
        return converged(registry, name)
