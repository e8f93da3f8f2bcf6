"""``samband sql install-tracking`` / ``remove-tracking`` on SQLite, PostgreSQL and MariaDB.

"Another program" edits the tables with plain SQL (no Samband code involved); the
connector must then see inserts, updates and deletions incrementally.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from samband.config import parse_config
from samband.config.model import Config, SystemConfig
from samband.connectors.base import RecordData
from samband.errors import ConnectorError
from samband.kinds.sql import demo as pms
from samband.kinds.sql.connector import SqlConnector, install_tracking, remove_tracking


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pms.db'}"
    fixture = "postgres_url" if request.param == "postgresql" else "mariadb_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def other(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def config_for(url: str, entity_types: dict[str, Any]) -> Config:
    document = {"systems": {"pms": {"kind": "sql", "url": url, "entity_types": entity_types}}}
    return parse_config(yaml.safe_dump(document)).config


def connector(config: Config) -> SqlConnector:
    return SqlConnector("pms", config.systems["pms"], {})


def read_all(
    conn: SqlConnector, type_name: str, cursor: str | None
) -> tuple[list[RecordData], str | None]:
    records: list[RecordData] = []
    last = cursor
    for page in conn.read(type_name, cursor):
        records.extend(page.records)
        last = page.cursor or last
    return records, last


def triggers(engine: Engine) -> set[str]:
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect == "sqlite":
            rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        elif dialect == "postgresql":
            rows = conn.exec_driver_sql(
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            )
        else:
            rows = conn.exec_driver_sql(
                "SELECT trigger_name FROM information_schema.triggers "
                "WHERE trigger_schema = DATABASE()"
            )
        return {str(r[0]) for r in rows}


def test_edits_by_another_program_are_seen_incrementally_including_deletes(
    db_url: str, other: Engine
) -> None:
    pms.create_pms_schema(db_url)
    with other.begin() as conn:
        conn.execute(
            text("INSERT INTO customer (name, is_active) VALUES (:n, :a)"),
            [{"n": "Before AS", "a": True}, {"n": "Gone AS", "a": True}],
        )
    config = config_for(db_url, pms.ENTITY_TYPES)
    message = install_tracking(config, "pms", "Customer")
    assert "pms.Customer" in message and "trigger" in message
    installed = triggers(other)
    assert installed
    # idempotent: the same triggers, one registration
    install_tracking(config, "pms", "Customer")
    assert triggers(other) == installed

    conn_ = connector(config)
    etype = conn_.entity_type("Customer")
    assert etype.incremental and etype.reports_deletes
    records, cursor = read_all(conn_, "Customer", None)
    assert sorted(r.data["name"] for r in records) == ["Before AS", "Gone AS"]
    assert cursor is not None and cursor.startswith("log:")

    with other.begin() as conn:
        conn.execute(
            text("INSERT INTO customer (name, is_active) VALUES (:n, :a)"),
            {"n": "'); DROP TABLE customer;--", "a": True},
        )
        conn.execute(
            text("UPDATE customer SET city = :c WHERE name = :n"), {"c": "Bodø", "n": "Before AS"}
        )
        conn.execute(text("DELETE FROM customer WHERE name = :n"), {"n": "Gone AS"})
    records, cursor2 = read_all(conn_, "Customer", cursor)
    by_name = {r.data.get("name"): r for r in records if not r.deleted}
    assert set(by_name) == {"'); DROP TABLE customer;--", "Before AS"}
    assert by_name["Before AS"].data["city"] == "Bodø"
    # the trigger stamped the change column of the row another program inserted
    assert by_name["'); DROP TABLE customer;--"].data["updated_at"] is not None
    assert by_name["'); DROP TABLE customer;--"].modified is not None
    deleted = [r for r in records if r.deleted]
    assert len(deleted) == 1 and deleted[0].id not in {r.id for r in by_name.values()}
    assert cursor2 != cursor

    # nothing happened since: the overlap may re-read, but the cursor does not go back
    conn_.overlap_seconds = 0
    records, cursor3 = read_all(conn_, "Customer", cursor2)
    assert records == [] and cursor3 == cursor2
    # writes through the connector are logged too
    created = conn_.create("Customer", {"name": "Via Samband AS"})
    records, _ = read_all(conn_, "Customer", cursor3)
    assert [r.id for r in records] == [created.id]
    conn_.close()


def test_install_adds_a_missing_change_column_and_remove_takes_triggers_away(
    db_url: str, other: Engine
) -> None:
    table = Table(
        "job",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("title", String(50)),
    )
    table.create(other)
    with other.begin() as conn:
        conn.execute(text("INSERT INTO job (title) VALUES (:t)"), {"t": "old"})
    config = config_for(db_url, {"Job": {"table": "job", "updated": "changed_at"}})
    # before tracking, the configured change column does not exist: full scans
    assert connector(config).entity_type("Job").incremental is False
    message = install_tracking(config, "pms", "Job")
    assert "changed_at" in message
    columns = {c["name"] for c in inspect(other).get_columns("job")}
    assert "changed_at" in columns
    with other.connect() as conn:
        assert conn.execute(text("SELECT changed_at FROM job")).scalar() is not None

    conn_ = connector(config)
    _, cursor = read_all(conn_, "Job", None)
    with other.begin() as conn:
        conn.execute(text("INSERT INTO job (title) VALUES (:t)"), {"t": "new"})
        conn.execute(text("DELETE FROM job WHERE title = :t"), {"t": "old"})
    records, _ = read_all(conn_, "Job", cursor)
    assert sorted((r.deleted, r.data.get("title")) for r in records) == [
        (False, "new"),
        (True, None),
    ]
    conn_.close()

    message = remove_tracking(config, "pms", "Job")
    assert "removed" in message
    assert not triggers(other)
    assert not inspect(other).has_table("samband_changes")
    with other.begin() as conn:
        conn.execute(text("INSERT INTO job (title) VALUES (:t)"), {"t": "untracked"})
        stamp = conn.execute(
            text("SELECT changed_at FROM job WHERE title = :t"), {"t": "untracked"}
        ).scalar()
    assert stamp is None  # no trigger stamps it any more
    assert "nothing to remove" in remove_tracking(config, "pms", "Job")
    # the connector falls back to the change column
    conn_ = connector(config)
    assert conn_.entity_type("Job").reports_deletes is False
    records, cursor = read_all(conn_, "Job", None)
    assert sorted(r.data["title"] for r in records) == ["new", "untracked"]
    assert cursor is not None and not cursor.startswith("log:")
    conn_.close()


def test_tracking_without_change_column_uses_the_log_alone(db_url: str, other: Engine) -> None:
    pms.create_pms_schema(db_url)
    config = config_for(
        db_url, {"Project": {"table": "project"}, "Customer": {"table": "customer"}}
    )
    assert connector(config).entity_type("Project").incremental is False
    install_tracking(config, "pms", "Project")
    install_tracking(config, "pms", "Customer")
    conn_ = connector(config)
    assert conn_.entity_type("Project").incremental
    _, cursor = read_all(conn_, "Project", None)
    with other.begin() as conn:
        conn.execute(
            text("INSERT INTO project (code, name, status, is_active) VALUES (:c, :n, :s, :a)"),
            {"c": "P-1", "n": "Kontorbygg", "s": "active", "a": True},
        )
        conn.execute(text("INSERT INTO customer (name, is_active) VALUES ('x', :a)"), {"a": True})
    records, _ = read_all(conn_, "Project", cursor)
    assert [r.data["code"] for r in records] == ["P-1"]  # the customer's log is separate
    # removing one table's tracking keeps the other's log
    remove_tracking(config, "pms", "Project")
    assert inspect(other).has_table("samband_changes")
    remove_tracking(config, "pms", "Customer")
    assert not inspect(other).has_table("samband_changes")
    conn_.close()


def test_tracking_a_table_with_quotes_and_spaces(db_url: str, other: Engine) -> None:
    name = 'my "table'
    table = Table(
        name,
        MetaData(),
        Column("key id", Integer, primary_key=True, autoincrement=True),
        Column("order", String(100)),
        mysql_charset="utf8mb4",
    )
    table.create(other)
    config = config_for(db_url, {"Odd": {"table": name, "id": "key id", "updated": "when changed"}})
    install_tracking(config, "pms", "Odd")
    conn_ = connector(config)
    _, cursor = read_all(conn_, "Odd", None)
    reflected = Table(name, MetaData(), autoload_with=other)
    with other.begin() as conn:
        conn.execute(reflected.insert().values({"order": "'); DROP TABLE x;--"}))
    records, cursor = read_all(conn_, "Odd", cursor)
    assert [r.data["order"] for r in records] == ["'); DROP TABLE x;--"]
    assert records[0].data["when changed"] is not None
    with other.begin() as conn:
        conn.execute(reflected.delete())
    records, _ = read_all(conn_, "Odd", cursor)
    assert [r.deleted for r in records] == [True]
    conn_.close()
    remove_tracking(config, "pms", "Odd")
    assert not triggers(other)


def test_tracking_errors_name_the_system(tmp_path: Path) -> None:
    config = config_for(f"sqlite:///{tmp_path / 'x.db'}", {"Customer": {"table": "customer"}})
    with pytest.raises(ConnectorError, match="does not exist"):
        install_tracking(config, "pms", "Customer")
    assert not (tmp_path / "x.db").exists()  # no empty database left behind
    with sqlite3.connect(tmp_path / "x.db") as db:
        db.execute("CREATE TABLE other (id INTEGER PRIMARY KEY)")
    with pytest.raises(ConnectorError, match="no table 'customer'"):
        install_tracking(config, "pms", "Customer")
    with pytest.raises(ConnectorError, match="Nope"):
        install_tracking(config, "pms", "Nope")
    view = config_for(f"sqlite:///{tmp_path / 'x.db'}", {"V": {"view": "v"}})
    with pytest.raises(ConnectorError, match="view"):
        install_tracking(view, "pms", "V")


def test_cli_install_and_remove(tmp_path: Path) -> None:
    from samband.cli import app

    pms.create_pms_schema(f"sqlite:///{tmp_path / 'pms.db'}")
    document = {"systems": {"pms": pms.system_config("sqlite:///pms.db")}}
    path = tmp_path / "samband.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["sql", "install-tracking", "-c", str(path), "pms.Customer"])
    assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{tmp_path / 'pms.db'}")
    assert triggers(engine)
    result = runner.invoke(app, ["sql", "remove-tracking", "-c", str(path), "pms.Customer"])
    assert result.exit_code == 0, result.output
    assert not triggers(engine)
    engine.dispose()


def test_system_config_shape() -> None:
    system = SystemConfig(**pms.system_config("sqlite:///pms.db"))
    assert set(system.entity_types) == {"Customer", "Project"}
    assert yaml.safe_load(pms.ENTITY_TYPES_YAML)["entity_types"] == pms.ENTITY_TYPES


# -- the engine's convergence test with system B (erp) as a tracked SQL database -------------
ERP_SQL = """
systems:
  crm:
    kind: memory
    entity_types: {{Company: {{external_ref: ext}}, Person: {{external_ref: ext}}, Dept: {{}}}}
  erp:
    kind: sql
    url: "{url}"
    entity_types:
      Org: {{table: org, updated: updated_at, external_ref: ext}}
      Contact: {{table: contact, updated: updated_at}}
  pms:
    kind: memory
    entity_types: {{Account: {{external_ref: ext}}, Client: {{external_ref: ext}}}}
"""


def _sql_world_class(url_of: Any) -> Any:
    """A convergence-harness world whose ``erp`` system is SQL with tracking installed;
    the world's own edits are plain SQL, like another program's."""
    convergence = pytest.importorskip("tests.support.convergence")

    class CrashingSql(convergence.CrashOnDemand, SqlConnector):
        """The connector, crashing when the world asks (see tests/support/convergence.py)."""

    class SqlWorld(convergence.MemoryWorld):  # type: ignore[misc]
        def __init__(self) -> None:
            self.url = url_of()
            self.db = create_engine(self.url)
            meta = MetaData()
            self.tables = {
                "Org": Table(
                    "org",
                    meta,
                    Column("id", Integer, primary_key=True, autoincrement=True),
                    *(Column(c, String(100)) for c in ("title", "org_no", "tel", "city", "ext")),
                    # the wide dataflows' exact decimals (SQLite keeps 15 digits of a
                    # NUMERIC: there they are text) and references to the own type
                    Column("amount", Numeric(38, 10).with_variant(String(60), "sqlite")),
                    Column("bill_to", Integer),
                    Column("updated_at", pms._TIMESTAMP),
                    sqlite_autoincrement=True,
                ),
                "Contact": Table(
                    "contact",
                    meta,
                    Column("id", Integer, primary_key=True, autoincrement=True),
                    Column("given", String(100)),
                    Column("mail", String(100)),
                    Column("org_id", Integer),
                    Column("updated_at", pms._TIMESTAMP),
                    sqlite_autoincrement=True,
                ),
            }
            meta.create_all(self.db)
            self.failures: list[str] = []
            self.failing: list[tuple[str, BaseException]] = []
            self._config: Config | None = None

        def config(self, store_url: str, flows: str = convergence.FLOWS_YAML) -> Config:
            text_ = f"store: {store_url}\n{ERP_SQL.format(url=self.url)}{flows}"
            self._config = parse_config(text_).config
            for type_name in ("Org", "Contact"):
                install_tracking(self._config, "erp", type_name)
            return self._config

        def connectors(self) -> dict[str, Any]:
            assert self._config is not None
            self.failures.clear()
            conn_ = CrashingSql("erp", self._config.systems["erp"], {})
            conn_.world = self
            return {"erp": conn_}

        def insert(self, system: str, etype: str, data: dict[str, Any]) -> str:
            if system != "erp":
                return str(super().insert(system, etype, data))
            with self.db.begin() as conn:
                result = conn.execute(self.tables[etype].insert().values(data))
                assert result.inserted_primary_key is not None
                return str(result.inserted_primary_key[0])

        def edit(self, system: str, etype: str, rid: str, changes: dict[str, Any]) -> None:
            if system != "erp":
                return super().edit(system, etype, rid, changes)  # type: ignore[no-any-return]
            table = self.tables[etype]
            with self.db.begin() as conn:
                conn.execute(table.update().where(table.c.id == int(rid)).values(changes))

        def delete(self, system: str, etype: str, rid: str) -> None:
            if system != "erp":
                return super().delete(system, etype, rid)  # type: ignore[no-any-return]
            table = self.tables[etype]
            with self.db.begin() as conn:
                conn.execute(table.delete().where(table.c.id == int(rid)))

        def records(self, system: str, etype: str) -> dict[str, dict[str, Any]]:
            if system != "erp":
                return dict(super().records(system, etype))
            with self.db.connect() as conn:
                rows = conn.execute(self.tables[etype].select()).mappings().all()
            return {str(row["id"]): dict(row) for row in rows}

        def crash_on(self, system: str, op: str) -> None:
            if system == "erp":
                self.failures.append(op)
            else:
                super().crash_on(system, op)

        def fail_on(self, system: str, op: str, exc: BaseException) -> None:
            if system == "erp":
                self.failing.append((op, exc))
            else:
                super().fail_on(system, op, exc)

        def clear_failures(self) -> None:
            self.failing.clear()
            super().clear_failures()

    return SqlWorld


def _run_convergence(url_of: Any, store_of: Any, examples: int, steps: int) -> None:
    machines = pytest.importorskip("tests.support.machines")
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from samband.kinds.memory import connector as memory
    from tests.support.convergence import DERANDOMIZE, SCALE

    world = _sql_world_class(url_of)

    class PerExample(machines.WideSyncMachine):  # type: ignore[misc,name-defined]
        world_factory = world

        def __init__(self) -> None:
            self.store_url = store_of()
            memory._DATASETS.clear()
            super().__init__()

        def teardown(self) -> None:
            super().teardown()
            self.world.db.dispose()

    run_state_machine_as_test(
        PerExample,
        settings=settings(
            max_examples=examples * SCALE,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # no shrinking: a failure is reported as found, within the file's time budget;
            # a fixed set of examples, so a run of the suite is reproducible
            phases=[Phase.explicit, Phase.generate],
            derandomize=DERANDOMIZE or SCALE == 1,
            database=None,
        ),
    )


def test_convergence_with_sql_in_place_of_memory_sqlite(tmp_path: Path) -> None:
    import itertools

    counter = itertools.count()

    def url_of() -> str:
        return f"sqlite:///{tmp_path / f'erp-{next(counter)}.db'}"

    def store_of() -> str:
        return f"sqlite:///{tmp_path / f'store-{next(counter)}.db'}"

    _run_convergence(url_of, store_of, examples=12, steps=20)


@pytest.mark.parametrize("server", ["postgres_server", "mariadb_server"])
def test_convergence_with_sql_in_place_of_memory_servers(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import itertools

    from tests.conftest import _fresh_schema_url

    base = str(request.getfixturevalue(server))
    dialect = "postgresql" if server == "postgres_server" else "mysql"
    schemas: list[Iterator[str]] = []
    counter = itertools.count()

    def url_of() -> str:
        schema = _fresh_schema_url(base, dialect)
        schemas.append(schema)
        return next(schema)

    def store_of() -> str:
        return f"sqlite:///{tmp_path / f'store-{next(counter)}.db'}"

    try:
        _run_convergence(url_of, store_of, examples=4, steps=15)
    finally:
        for schema in schemas:
            next(schema, None)


def _age_the_log(engine: Engine) -> None:
    """Make every change-log entry eight days old."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE samband_changes SET changed_at = :at"),
            {"at": datetime.now(UTC).replace(tzinfo=None) - timedelta(days=8)},
        )


def _log_ops(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(op) for op in conn.scalars(text("SELECT op FROM samband_changes ORDER BY seq"))]


def test_the_change_log_is_pruned_and_a_reader_left_behind_reads_everything(
    db_url: str, other: Engine, tmp_path: Path
) -> None:
    """Entries older than keep_changes that the store has read are deleted; a store whose
    cursor is older than what was pruned (a restored backup, a second installation)
    reads the table in full and still sees what was deleted meanwhile."""
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset, forget_dataset

    pms.create_pms_schema(db_url)
    with other.begin() as conn:
        conn.execute(
            text("INSERT INTO customer (name, is_active) VALUES (:n, true)"),
            [{"n": "Stays AS"}, {"n": "Edited AS"}, {"n": "Gone AS"}],
        )
    install_tracking(config_for(db_url, pms.ENTITY_TYPES), "pms", "Customer")
    document: dict[str, Any] = {
        "systems": {
            "pms": {"kind": "sql", "url": db_url, "entity_types": pms.ENTITY_TYPES},
            "erp": {"kind": "memory", "entity_types": {"Account": {}}},
        },
        "dataflows": [
            {
                "source": "pms.Customer",
                "target": "erp.Account",
                "on_delete": "propagate",
                "properties": [{"from": "name", "to": "name", "type": "string"}],
            }
        ],
    }

    def engine_for(name: str) -> SyncEngine:
        """An installation with a store and an ERP of its own, on the one PMS."""
        systems = {**document["systems"], "erp": {**document["systems"]["erp"], "dataset": name}}
        store = f"sqlite:///{tmp_path}/{name}.db"
        text_ = yaml.safe_dump({**document, "store": store, "systems": systems})
        return SyncEngine(parse_config(text_).config, state_dir=str(tmp_path / name))

    current, behind = f"current-{uuid.uuid4().hex[:6]}", f"behind-{uuid.uuid4().hex[:6]}"
    for name in (current, behind):
        with engine_for(name) as engine:
            assert engine.sync().to_dict()["created"] == 3
    with other.begin() as conn:
        conn.execute(text("UPDATE customer SET name = 'Changed AS' WHERE name = 'Edited AS'"))
        conn.execute(text("DELETE FROM customer WHERE name = 'Gone AS'"))
    _age_the_log(other)
    assert _log_ops(other) == ["U", "D"]

    with engine_for(current) as engine:
        report = engine.sync().to_dict()
        assert (report["updated"], report["deleted"]) == (1, 1)
    # pruned: the newest entry stays (SQLite would reuse its number), a marker says how far
    assert _log_ops(other) == ["D", "P"]

    with engine_for(behind) as engine:  # its cursor predates what was pruned
        report = engine.sync()
        assert report.collected["pms.Customer"]["deleted"] == 1
        assert report.to_dict()["deleted"] == 1
        assert report.collected["pms.Customer"]["read"] == 2  # the table read in full
        assert engine.sync().writes == 0
        # from its new cursor it reads the log again
        with other.begin() as conn:
            conn.execute(text("UPDATE customer SET name = 'Again AS' WHERE name = 'Stays AS'"))
        assert engine.sync().to_dict()["updated"] == 1
    assert sorted(a["name"] for a in dataset(behind).records("Account").values()) == [
        "Again AS",
        "Changed AS",
    ]
    for name in (current, behind):
        forget_dataset(name)


def test_a_dry_run_read_leaves_the_change_log_as_it_is(db_url: str, other: Engine) -> None:
    """``samband sync --dry-run`` changes nothing anywhere: the engine sets the connector's
    ``dry_run``, and a read then does not prune the log (a real read does)."""
    pms.create_pms_schema(db_url)
    with other.begin() as conn:
        conn.execute(
            text("INSERT INTO customer (name, is_active) VALUES (:n, true)"),
            [{"n": "Edited AS"}, {"n": "Gone AS"}],
        )
    config = config_for(db_url, pms.ENTITY_TYPES)
    install_tracking(config, "pms", "Customer")
    conn_ = connector(config)
    _, cursor = read_all(conn_, "Customer", None)
    with other.begin() as conn:
        conn.execute(text("UPDATE customer SET name = 'Changed AS' WHERE name = 'Edited AS'"))
        conn.execute(text("DELETE FROM customer WHERE name = 'Gone AS'"))
    _age_the_log(other)
    logged = _log_ops(other)
    assert logged[-2:] == ["U", "D"]

    conn_.dry_run = True
    records, _ = read_all(conn_, "Customer", cursor)
    assert {(r.data.get("name"), r.deleted) for r in records} >= {("Changed AS", False)}
    assert _log_ops(other) == logged  # nothing pruned, no marker written
    conn_.dry_run = False
    read_all(conn_, "Customer", cursor)
    assert "P" in _log_ops(other)  # a real read prunes what the dry run left
    conn_.close()


def test_sync_dry_run_leaves_the_change_log_and_every_system_as_they_are(
    db_url: str, other: Engine, tmp_path: Path
) -> None:
    """The same through the engine: ``sync --dry-run`` sets the connector's dry_run."""
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset

    pms.create_pms_schema(db_url)
    with other.begin() as conn:
        conn.execute(text("INSERT INTO customer (name, is_active) VALUES ('Fjord AS', true)"))
    document = {
        "store": f"sqlite:///{tmp_path / 'state.db'}",
        "systems": {
            "pms": {"kind": "sql", "url": db_url, "entity_types": pms.ENTITY_TYPES},
            "crm": {"kind": "memory", "entity_types": {"Company": {}}},
        },
        "dataflows": [
            {
                "source": "pms.Customer",
                "target": "crm.Company",
                "properties": [{"from": "name", "to": "name", "type": "string"}],
            }
        ],
    }
    config = parse_config(yaml.safe_dump(document)).config
    install_tracking(config, "pms", "Customer")
    with SyncEngine(config) as engine:
        engine.sync()
    with other.begin() as conn:
        conn.execute(text("UPDATE customer SET name = 'Fjord Data'"))
        conn.execute(text("UPDATE customer SET name = 'Fjord Data AS'"))
    _age_the_log(other)
    logged = _log_ops(other)
    assert logged == ["U", "U"]  # a read would prune the first (the newest is kept)
    before = dataset("crm").records("Company")
    with SyncEngine(config) as engine:  # a new process: its reads may prune (once an hour)
        report = engine.sync(dry_run=True)
        assert report.to_dict()["updated"] == 1
        assert _log_ops(other) == logged
        assert dataset("crm").records("Company") == before
        engine.sync()
        assert [c["name"] for c in dataset("crm").records("Company").values()] == ["Fjord Data AS"]


def test_keep_changes_is_a_duration() -> None:
    from samband.kinds.sql.connector import keep_seconds

    assert keep_seconds("7d", "pms") == 7 * 86400
    assert keep_seconds("36h", "pms") == 36 * 3600
    assert keep_seconds("forever", "pms") is None
    with pytest.raises(ConnectorError, match="keep_changes"):
        keep_seconds("a week", "pms")
