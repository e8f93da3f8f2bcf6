"""Migration 7: each entity type keeps what its last complete read returned, and a read
held back by the full-scan guard.  A store from before knows no counts: its first complete
read is compared with the records the store holds, so the guard protects from the first
run after the upgrade."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset
from samband.store.migrations import LATEST, current_version
from samband.store.store import Store

CONFIG = """
systems:
  crm: {kind: memory, entity_types: {Customer: {incremental: false}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    on_delete: propagate
    max_delete_share: 1
    properties:
      - {from: name, to: name, type: string}
"""


def sync(url: str) -> dict[str, object]:
    with Engine(parse_config(f'store: "{url}"\n{CONFIG}').config) as engine:
        return engine.sync().to_dict()


def test_a_store_of_version_6_gets_the_table_and_the_guard_protects_at_once(
    store_url: str,
) -> None:
    crm = dataset("crm")
    rids = [crm.insert("Customer", {"name": f"Customer {n}"}) for n in range(10)]
    assert sync(store_url)["created"] == 10
    engine = create_engine(store_url)
    with engine.begin() as conn:  # the store as version 6 left it
        conn.exec_driver_sql("DROP TABLE samband_full_scans")
        conn.exec_driver_sql("UPDATE samband_schema_version SET version = 6")
    store = Store(store_url)
    try:
        assert current_version(store.conn) == LATEST
        assert store.full_scan("crm", "Customer") is None  # no count from before
    finally:
        store.close()
    assert "samband_full_scans" in inspect(engine).get_table_names()
    engine.dispose()

    for rid in rids[3:]:
        crm.remove("Customer", rid)
    report = sync(store_url)
    assert report["deleted"] == 0
    assert report["held_deletions"] == [
        {
            "type": "crm.Customer",
            "read": 3,
            "expected": 10,
            "last_complete": None,
            "unseen": 7,
            "share": 0.5,
        }
    ]
    assert len(dataset("erp").records("Account")) == 10
    store = Store(store_url)
    try:
        scan = store.full_scan("crm", "Customer")
        assert scan is not None and scan.held and scan.held_unseen == 7
    finally:
        store.close()
