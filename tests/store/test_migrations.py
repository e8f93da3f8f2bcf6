"""An existing store of schema version 1 or 2 is brought to the latest version with every
row kept (the dirty marks too), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from samband.store import schema
from samband.store.migrations import LATEST, current_version
from samband.store.store import Store

DATA = Path(__file__).parent / "data"

ROWS = [
    "INSERT INTO samband_snapshots (system, etype, rid, hash, data, modified, deleted, dirty)"
    " VALUES ('crm', 'Company', '7', 'h7', '{\"name\": \"Fjord AS\"}', NULL, false, 0),"
    " ('crm', 'Company', '8', 'h8', '{\"name\": \"Berg AS\"}', NULL, false, 1234)",
    "INSERT INTO samband_links (dataflow, source_ref, target_ref, base, how, created_at)"
    " VALUES ('companies', 'crm:Company:7', 'erp:Customer:70', '{\"Name\": \"Fjord AS\"}',"
    " 'created', '2026-01-01')",
    "INSERT INTO samband_match_keys (name, rid, \"key\") VALUES ('companies#0', '70', '123')",
    'INSERT INTO samband_intents ("key", dataflow, source_ref, target_system, target_etype,'
    " external_ref, \"values\", run_id, created_at) VALUES ('companies|crm:Company:8',"
    " 'companies', 'crm:Company:8', 'erp', 'Customer', 'sb-8', '{\"Name\": \"Berg AS\"}', 3,"
    " '2026-01-01')",
    "INSERT INTO samband_audit (run_id, at, ref, dataflow, op) VALUES"
    " (3, '2026-01-01', 'erp:Customer:70', 'companies', 'create')",
]


def _old_store(url: str, dialect: str, version: int) -> int:
    """A store of schema ``version`` as samband left it; the id of its link."""
    engine = create_engine(url)
    lines = (DATA / f"store_v{version}_{dialect}.sql").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        conn.exec_driver_sql(
            "INSERT INTO samband_schema_version (version, applied_at)"
            f" VALUES ({version}, '2026-01-01')"
        )
        for statement in ROWS:
            conn.exec_driver_sql(statement)
        link_id = int(conn.exec_driver_sql("SELECT id FROM samband_links").scalar_one())
    engine.dispose()
    return link_id


@pytest.fixture(
    params=[("sqlite", 1), ("sqlite", 2), ("postgresql", 1), ("postgresql", 2)],
    ids=lambda p: f"{p[0]}-v{p[1]}",
)
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    dialect, version = request.param
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    return url, _old_store(url, dialect, version)


def test_an_old_store_is_migrated_with_every_row(old_store: tuple[str, int]) -> None:
    url, link_id = old_store
    store = Store(url)
    try:
        assert current_version(store.conn) == LATEST
        snaps = store.snapshots("crm", "Company", ["7", "8"])
        assert snaps["7"].data == {"name": "Fjord AS"} and snaps["8"].hash == "h8"
        assert store.dirty_batch("crm", "Company", None, 10) == [("8", 1234)]
        assert store.count_dirty("crm", "Company") == 1
        columns = {c["name"] for c in inspect(store.conn).get_columns("samband_snapshots")}
        assert "dirty" not in columns
        # the queue works as it did: a newer mark is not cleared by an older one
        with store.tx():
            store.clear_dirty("crm", "Company", [("8", 1000)])
        assert store.count_dirty("crm", "Company") == 1
        with store.tx():
            store.clear_dirty("crm", "Company", [("8", 1234)])
        assert store.count_dirty("crm", "Company") == 0
        link = store.links_by("companies", "source", ["crm:Company:7"])["crm:Company:7"]
        assert (link.id, link.target_ref) == (link_id, "erp:Customer:70")
        assert link.base == {"Name": "Fjord AS"}
        assert [lk.id for lk in store.links_touching(["erp:Customer:70"])] == [link_id]
        # version 13: the links are counted by dataflow through an index of their own
        indexes = {i["name"] for i in inspect(store.conn).get_indexes("samband_links")}
        assert "ix_samband_links_dataflow" in indexes
        assert store.count_links_by_dataflow() == {"companies": 1}
        # merge keys are named after their properties since version 4: the next run
        # builds them again from the snapshots; the links' dataflows are known
        assert store.lookup_match("companies#0", ["123"]) == {}
        assert store.dataflow_types() == {"companies": ("crm.Company", "erp.Customer", None)}
        assert store.open_intents() == [
            {
                "key": "companies|crm:Company:8",
                "dataflow": "companies",
                "source_ref": "crm:Company:8",
                "target_system": "erp",
                "target_etype": "Customer",
                "external_ref": "sb-8",
                "values": '{"Name":"Berg AS"}',
                "run_id": 3,
                "created_at": "2026-01-01",
            }
        ]
        assert len(store.table_rows(schema.audit)) == 1
        # the new constraints hold: a second link of the same source is refused
        with pytest.raises(Exception, match=r"(?i)unique"), store.tx():
            store.add_links(
                [
                    {
                        "dataflow": "companies",
                        "source_ref": "crm:Company:7",
                        "target_ref": "erp:Customer:71",
                        "base": "{}",
                        "how": "created",
                        "created_run": 4,
                        "created_at": "2026-01-02",
                    }
                ]
            )
        names = {i["name"] for i in inspect(store.conn).get_indexes("samband_links")}
        assert not names & {"ix_samband_links_source", "ix_samband_links_target"}
        # new links get ids after the copied ones
        with store.tx():
            store.add_links(
                [
                    {
                        "dataflow": "companies",
                        "source_ref": "crm:Company:8",
                        "target_ref": "erp:Customer:80",
                        "base": "{}",
                        "how": "created",
                        "created_run": 4,
                        "created_at": "2026-01-02",
                    }
                ]
            )
        new = store.links_by("companies", "source", ["crm:Company:8"])["crm:Company:8"]
        assert new.id > link_id
    finally:
        store.close()
    reopened = Store(url)  # a second open runs no step again
    try:
        assert current_version(reopened.conn) == LATEST
        assert len(reopened.all_links()) == 2
    finally:
        reopened.close()


def test_a_new_store_starts_at_the_latest_version(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert current_version(store.conn) == LATEST
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_version_4_store_keeps_which_snapshots_are_to_be_read_again(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Until version 5 a snapshot to read again had the hash "refresh"; it has the
    refresh flag now, and no hash that a record read again could equal."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    engine = create_engine(url)
    lines = (DATA / f"store_v4_{dialect}.sql").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        conn.exec_driver_sql(
            "INSERT INTO samband_schema_version (version, applied_at) VALUES (4, '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO samband_snapshots (system, etype, rid, hash, data, modified, deleted)"
            " VALUES ('crm', 'Company', '7', 'h7', '{\"name\": \"Fjord AS\"}', NULL, false),"
            " ('crm', 'Company', '8', 'refresh', '{\"name\": \"Berg AS\"}', NULL, false)"
        )
    engine.dispose()
    store = Store(url)
    try:
        assert current_version(store.conn) == LATEST
        snaps = store.snapshots("crm", "Company", ["7", "8"])
        assert not snaps["7"].refresh and snaps["7"].hash == "h7"
        assert snaps["8"].refresh and snaps["8"].hash != "refresh"
        assert snaps["8"].data == {"name": "Berg AS"}
        hashes = store.snapshot_hashes("crm", "Company", ["7", "8"])
        assert hashes["7"] == ("h7", False) and hashes["8"][0] not in ("h7", "refresh")
        with store.tx():
            assert store.set_dirty(["crm:Company:7"], refresh=True) == 1
        assert store.snapshots("crm", "Company", ["7"])["7"].refresh
    finally:
        store.close()


def test_an_old_store_gets_the_tables_of_acting_on_a_run(old_store: tuple[str, int]) -> None:
    """Version 9: a conflict keeps its resolution, a dead letter can be dismissed, the
    pairs a user unlinked are kept."""
    url, _link_id = old_store
    store = Store(url)
    try:
        columns = {
            table: {c["name"] for c in inspect(store.conn).get_columns(table)}
            for table in ("samband_conflicts", "samband_dead_letters")
        }
        assert {"resolution", "resolved_at", "applied_at"} <= columns["samband_conflicts"]
        assert "dismissed_at" in columns["samband_dead_letters"]
        with store.tx():
            store.unlinked.add("companies", "crm:Company:7", "erp:Customer:70")
        assert store.unlinked.of("companies", ["crm:Company:7"]) == {
            "crm:Company:7": ({"erp:Customer:70"}, True)
        }
    finally:
        store.close()
