"""A dry run changes nothing anywhere, not even the store's schema: on an empty PostgreSQL
database it creates no table (the adversary's f20), and an older store is not migrated."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset
from samband.store.store import Store

CONFIG = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
"""


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_dry_run_on_an_empty_postgresql_database_creates_no_table(postgres_url: str) -> None:
    dataset("crm").insert("Customer", {"name": "A"})
    with Engine(parse_config(f'store: "{postgres_url}"\n{CONFIG}').config) as engine:
        report = engine.sync(dry_run=True).to_dict()
    assert report["status"] == "dry-run" and report["created"] == 1
    assert tables(postgres_url) == []
    assert dataset("erp").records("Account") == {}
    # the real run creates the store as ever
    with Engine(parse_config(f'store: "{postgres_url}"\n{CONFIG}').config) as engine:
        assert engine.sync().to_dict()["created"] == 1
    assert "samband_links" in tables(postgres_url)


@pytest.mark.postgres
def test_a_dry_run_does_not_migrate_an_older_store(postgres_url: str) -> None:
    Store(postgres_url).close()
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE samband_dataflows DROP COLUMN linking")
        conn.exec_driver_sql("UPDATE samband_schema_version SET version = 5")
    preview = Store.preview(postgres_url)
    preview.close()
    columns = {c["name"] for c in inspect(engine).get_columns("samband_dataflows")}
    engine.dispose()
    assert "linking" not in columns
