"""Migration 6: the dataflows keep a digest of what decides which records flow and how they
are linked.  A store from before knows none: the first run records it without planning
every record again (only a change made after it does)."""

from __future__ import annotations

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


def sync(url: str, config: str = CONFIG) -> dict[str, object]:
    with Engine(parse_config(f'store: "{url}"\n{config}').config) as engine:
        return engine.sync().to_dict()


def test_a_store_of_version_5_gets_the_digest_without_planning_again(store_url: str) -> None:
    dataset("crm").insert("Customer", {"name": "Acme"})
    assert sync(store_url)["created"] == 1
    engine = create_engine(store_url)
    with engine.begin() as conn:  # the store as version 5 left it
        conn.exec_driver_sql("ALTER TABLE samband_dataflows DROP COLUMN linking")
        conn.exec_driver_sql("UPDATE samband_schema_version SET version = 5")
    Store(store_url).close()
    columns = {c["name"] for c in inspect(engine).get_columns("samband_dataflows")}
    engine.dispose()
    assert "linking" in columns
    report = sync(store_url)
    assert not any("planned again" in m for m in report["messages"]), report["messages"]
    # from now on a change of the filter reaches the records synced before
    filtered = CONFIG.replace(
        "    properties:", "    filter: {text: x, where: {name: A}}\n    properties:"
    )
    assert any("planned again" in m for m in sync(store_url, filtered)["messages"])
