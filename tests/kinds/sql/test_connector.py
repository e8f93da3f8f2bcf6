"""``kind: sql`` on SQLite, PostgreSQL and MariaDB: reflection, reads, writes, bad input.

The database is real in every test.  "Another program" is plain SQLAlchemy on its own
engine, the way a PMS would write its own tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine

from samband.config.model import SystemConfig
from samband.connectors.base import RecordData
from samband.connectors.registry import connector_class
from samband.errors import AuthError, ConnectorError, InUse, NotFound, RecordError, Stale
from samband.kinds.sql import demo as pms
from samband.kinds.sql.connector import SqlConnector
from tests.support.sql import STAMP

TRICKY = [
    "'); DROP TABLE customer;--",
    'O\'Brien "the quoted" ; --',
    "back\\slash\\\\ and \\' escaped",
    "Ærlig Øl & Å — Zoë, 日本語, 🚀",
    "%s %(name)s ? :name $1",
]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pms.db'}"
    fixture = "postgres_url" if request.param == "postgresql" else "mariadb_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def other(db_url: str) -> Iterator[Engine]:
    """Another program's connection to the same database."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def make(url: str, entity_types: dict[str, Any], **settings: Any) -> SqlConnector:
    config = SystemConfig(kind="sql", url=url, entity_types=entity_types, **settings)
    return SqlConnector("pms", config, {})


@pytest.fixture
def pms_conn(db_url: str) -> Iterator[SqlConnector]:
    pms.create_pms_schema(db_url)
    conn = make(db_url, pms.ENTITY_TYPES)
    yield conn
    conn.close()


def all_records(
    conn: SqlConnector, type_name: str, cursor: str | None = None
) -> tuple[list[RecordData], str | None]:
    records: list[RecordData] = []
    last = cursor
    for page in conn.read(type_name, cursor):
        records.extend(page.records)
        if page.cursor is not None:
            last = page.cursor
    return records, last


def test_registry_names_the_class() -> None:
    assert connector_class("sql") is SqlConnector


def test_describe_reflects_types_required_and_references(db_url: str) -> None:
    pms.create_pms_schema(db_url)
    config = SystemConfig(kind="sql", url=db_url, entity_types=pms.ENTITY_TYPES)
    types = SqlConnector.describe(config)
    customer, project = types["Customer"], types["Project"]
    assert not customer.open_schema and customer.incremental
    assert customer.external_ref_field == "external_ref"
    assert customer.modified_field == "updated_at"
    props = customer.properties
    assert props["id"].type == "integer" and props["id"].read_only
    assert props["name"].type == "string" and props["name"].max_length == 200
    assert props["name"].required and not props["email"].required
    assert props["is_active"].type == "boolean" and not props["is_active"].required
    assert props["updated_at"].type == "datetime"
    assert project.properties["start_date"].type == "date"
    assert project.properties["customer_id"].references == "Customer"
    assert project.properties["customer_id"].type == "reference"


def test_create_reads_back_generated_ids_and_tricky_values(
    pms_conn: SqlConnector, other: Engine
) -> None:
    ids = []
    for index, value in enumerate(TRICKY):
        record = pms_conn.create(
            "Customer", {"name": value, "city": value[:100], "org_no": f"99{index}"}
        )
        assert record.id.isdigit() and record.data["id"] == int(record.id)
        assert record.data["name"] == value
        assert record.data["is_active"] is True  # the database default, read back
        ids.append(record.id)
    assert len(set(ids)) == len(TRICKY)
    with other.connect() as conn:
        stored = dict(conn.execute(select(pms.customer.c.id, pms.customer.c.name)).all())
    assert {str(k): v for k, v in stored.items()} == dict(zip(ids, TRICKY, strict=True))
    for rid, value in zip(ids, TRICKY, strict=True):
        got = pms_conn.get("Customer", rid)
        assert got is not None and got.data["name"] == value and got.data["city"] == value
    assert pms_conn.get("Customer", "999999") is None
    assert pms_conn.get("Customer", "1 OR 1=1") is None
    assert pms_conn.stats.api_calls > 0 and pms_conn.stats.writes == len(TRICKY)


def test_update_changes_only_given_columns_and_stamps_the_change_column(
    pms_conn: SqlConnector, other: Engine
) -> None:
    created = pms_conn.create("Customer", {"name": "Fjord Bygg AS", "email": "post@fjord.no"})
    with other.begin() as conn:
        conn.execute(
            update(pms.customer)
            .where(pms.customer.c.id == int(created.id))
            .values(phone="+47 22 33 44 55", updated_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    changed = pms_conn.update("Customer", created.id, {"email": TRICKY[0]})
    assert changed.data["email"] == TRICKY[0]
    assert changed.data["phone"] == "+47 22 33 44 55"  # untouched
    assert changed.data["name"] == "Fjord Bygg AS"
    assert changed.modified is not None and changed.modified.year > 2020
    with pytest.raises(NotFound):
        pms_conn.update("Customer", "424242", {"email": "x@y.no"})


def test_update_with_expected_values_refuses_to_overwrite_an_edit(
    pms_conn: SqlConnector, other: Engine
) -> None:
    created = pms_conn.create("Customer", {"name": "Fjord Bygg AS", "email": "post@fjord.no"})
    assert pms_conn.checks_expected
    read = pms_conn.get("Customer", created.id)
    assert read is not None
    # what was read is still there: the update goes through
    pms_conn.update(
        "Customer", created.id, {"email": "a@fjord.no"}, expected={"email": read.data["email"]}
    )
    with other.begin() as conn:  # a user edits the e-mail after the engine read it
        conn.execute(
            update(pms.customer)
            .where(pms.customer.c.id == int(created.id))
            .values(email="user@fjord.no")
        )
    with pytest.raises(Stale, match="email changed since it was read"):
        pms_conn.update(
            "Customer",
            created.id,
            {"email": "b@fjord.no", "name": "Fjord AS"},
            expected={"email": "a@fjord.no", "name": "Fjord Bygg AS"},
        )
    with other.connect() as conn:
        row = conn.execute(
            select(pms.customer.c.email, pms.customer.c.name).where(
                pms.customer.c.id == int(created.id)
            )
        ).one()
    assert (row.email, row.name) == ("user@fjord.no", "Fjord Bygg AS")  # nothing written
    with pytest.raises(NotFound):
        pms_conn.update("Customer", "424242", {"email": "x@y.no"}, expected={"email": None})


def test_delete_removes_the_row_and_refuses_rows_in_use(pms_conn: SqlConnector) -> None:
    customer = pms_conn.create("Customer", {"name": "Nord Data AS"})
    project = pms_conn.create(
        "Project",
        {"code": "P-1", "name": "ERP", "customer_id": customer.id, "start_date": date(2026, 3, 1)},
    )
    assert project.data["customer_id"] == int(customer.id)
    assert project.data["start_date"] == "2026-03-01"
    with pytest.raises(InUse):
        pms_conn.delete("Customer", customer.id)
    pms_conn.delete("Project", project.id)
    assert pms_conn.get("Project", project.id) is None
    with pytest.raises(NotFound):
        pms_conn.delete("Project", project.id)
    pms_conn.delete("Customer", customer.id)
    assert all_records(pms_conn, "Customer")[0] == []


def test_incremental_read_uses_cursor_minus_overlap(pms_conn: SqlConnector, other: Engine) -> None:
    t0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    with other.begin() as conn:
        for name, offset in (("old", 0), ("newest", 10)):
            conn.execute(
                insert(pms.customer).values(
                    name=name, updated_at=t0 + timedelta(seconds=offset), is_active=True
                )
            )
    records, cursor = all_records(pms_conn, "Customer")
    assert sorted(r.data["name"] for r in records) == ["newest", "old"]
    assert cursor is not None and datetime.fromisoformat(cursor) == t0 + timedelta(seconds=10)
    # a transaction that committed late with a timestamp just before the cursor
    with other.begin() as conn:
        conn.execute(
            insert(pms.customer).values(
                name="late", updated_at=t0 + timedelta(seconds=7), is_active=True
            )
        )
        conn.execute(
            insert(pms.customer).values(
                name="too old", updated_at=t0 + timedelta(seconds=3), is_active=True
            )
        )
    pms_conn.overlap_seconds = 5
    records, cursor2 = all_records(pms_conn, "Customer", cursor)
    assert sorted(r.data["name"] for r in records) == ["late", "newest"]
    assert cursor2 == cursor
    pms_conn.overlap_seconds = 0
    records, _ = all_records(pms_conn, "Customer", cursor)
    assert [r.data["name"] for r in records] == ["newest"]


def test_a_row_stamped_by_a_clock_ahead_does_not_hold_back_later_edits(
    pms_conn: SqlConnector, other: Engine
) -> None:
    """A client whose clock is a day ahead stamps a row with tomorrow: the cursor stays at
    the database's own now, so an edit made a moment later (by a correct clock) is seen
    by the next read, not a day later."""
    now = datetime.now(UTC)
    with other.begin() as conn:
        conn.execute(
            insert(pms.customer).values(
                name="from the future", updated_at=now + timedelta(days=1), is_active=True
            )
        )
        conn.execute(insert(pms.customer).values(name="today", updated_at=now, is_active=True))
    records, cursor = all_records(pms_conn, "Customer")
    assert sorted(r.data["name"] for r in records) == ["from the future", "today"]
    with other.begin() as conn:
        conn.execute(
            update(pms.customer)
            .where(pms.customer.c.name == "today")
            .values(name="edited today", updated_at=datetime.now(UTC))
        )
    records, later = all_records(pms_conn, "Customer", cursor)
    assert "edited today" in {r.data["name"] for r in records}
    for position in (cursor, later):  # never past the database's now
        assert position is not None and datetime.fromisoformat(position) < now + timedelta(1)


def test_keyset_pages_return_each_row_once_with_equal_timestamps(
    db_url: str, other: Engine
) -> None:
    pms.create_pms_schema(db_url)
    same = datetime(2026, 6, 1, tzinfo=UTC)
    with other.begin() as conn:
        for index in range(7):
            conn.execute(
                insert(pms.customer).values(name=f"c{index}", updated_at=same, is_active=True)
            )
        conn.execute(insert(pms.customer).values(name="no stamp", is_active=True))
    conn_ = make(db_url, pms.ENTITY_TYPES, page_size=2)
    pages = list(conn_.read("Customer", None))
    names = [r.data["name"] for p in pages for r in p.records]
    assert sorted(names) == sorted([f"c{i}" for i in range(7)] + ["no stamp"])
    assert len(pages) >= 4 and all(len(p.records) <= 2 for p in pages)
    assert pages[-1].cursor is not None
    # nothing changed: the overlap re-reads the last rows, and the cursor stays
    again = list(conn_.read("Customer", pages[-1].cursor))
    assert again[-1].cursor == pages[-1].cursor
    conn_.close()


def test_without_change_column_every_read_is_a_full_scan(db_url: str, other: Engine) -> None:
    pms.create_pms_schema(db_url)
    conn_ = make(db_url, {"Customer": {"table": "customer"}}, page_size=3)
    assert conn_.entity_type("Customer").incremental is False
    with other.begin() as conn:
        for index in range(5):
            conn.execute(insert(pms.customer).values(name=f"c{index}", is_active=True))
    pages = list(conn_.read("Customer", None))
    assert [len(p.records) for p in pages] == [3, 2]
    assert all(p.cursor is None for p in pages)
    with other.begin() as conn:
        conn.execute(text("DELETE FROM customer WHERE name = :n"), {"n": "c1"})
    records, _ = all_records(conn_, "Customer", "whatever")
    assert sorted(r.data["name"] for r in records) == ["c0", "c2", "c3", "c4"]
    conn_.close()


def test_soft_delete_column(db_url: str, other: Engine) -> None:
    table = Table(
        "account",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(50)),
        Column("is_deleted", Boolean, nullable=False, server_default="0"),
        Column("changed", STAMP),
    )
    table.create(other)
    conn_ = make(
        db_url, {"Account": {"table": "account", "updated": "changed", "deleted": "is_deleted"}}
    )
    etype = conn_.entity_type("Account")
    assert etype.reports_deletes and etype.archive == ("is_deleted", True)
    kept = conn_.create("Account", {"name": "kept"})
    gone = conn_.create("Account", {"name": "gone"})
    _, cursor = all_records(conn_, "Account")
    conn_.delete("Account", gone.id)
    assert conn_.get("Account", gone.id) is None
    records, _ = all_records(conn_, "Account", cursor)
    flags = {r.id: r.deleted for r in records}
    assert flags[gone.id] is True and flags.get(kept.id, False) is False
    with other.connect() as conn:
        assert conn.execute(select(table.c.is_deleted).where(table.c.id == int(gone.id))).scalar()
    conn_.close()


def test_bad_values_are_record_errors_and_the_connector_goes_on(
    pms_conn: SqlConnector, db_url: str
) -> None:
    customer = pms_conn.create("Customer", {"name": "Vest Marin AS"})
    pms_conn.create("Project", {"code": "P-9", "name": "A", "customer_id": customer.id})
    cases: list[tuple[str, dict[str, Any]]] = [
        ("Project", {"code": "P-9", "name": "duplicate code"}),  # unique
        ("Project", {"code": "P-10", "name": "B", "customer_id": "987654"}),  # foreign key
        ("Customer", {"name": None}),  # not null
        ("Customer", {"name": "x" * 201}),  # too long
        ("Project", {"code": "P-11", "name": "C", "customer_id": "not a number"}),
        ("Customer", {"name": "y", "is_active": "perhaps"}),
        ("Customer", {"name": "z", "no_such_column": 1}),
    ]
    for type_name, values in cases:
        with pytest.raises(RecordError) as info:
            pms_conn.create(type_name, values)
        assert not isinstance(info.value, NotFound)
        assert info.value.reason
    # the database's own message comes through
    with pytest.raises(RecordError, match=r"(?i)unique|duplicate"):
        pms_conn.create("Project", {"code": "P-9", "name": "again"})
    # and the connector still works afterwards
    assert pms_conn.create("Customer", {"name": "after"}).data["name"] == "after"


def test_value_the_column_cannot_hold(db_url: str, other: Engine) -> None:
    # SQLite would store any number in a NUMERIC column: the declared type is the
    # contract there too (see tests/kinds/sql/test_values.py)
    table = Table(
        "price",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("amount", Numeric(5, 2)),
    )
    table.create(other)
    conn_ = make(db_url, {"Price": {"table": "price"}})
    with pytest.raises(RecordError) as info:
        conn_.create("Price", {"amount": Decimal("123456.78")})
    assert info.value.reason
    assert conn_.create("Price", {"amount": Decimal("123.45")}).data["amount"] == "123.45"
    conn_.close()


def test_decimals_dates_datetimes_round_trip(db_url: str, other: Engine) -> None:
    table = Table(
        "ledger",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("amount", Numeric(14, 2)),
        Column("booked", Date),
        Column("at", STAMP),
        Column("ok", Boolean),
    )
    table.create(other)
    conn_ = make(db_url, {"Ledger": {"table": "ledger"}})
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    row = conn_.create(
        "Ledger", {"amount": Decimal("1234.50"), "booked": date(2026, 2, 28), "at": at, "ok": False}
    )
    assert Decimal(row.data["amount"]) == Decimal("1234.5")
    assert row.data["booked"] == "2026-02-28"
    assert datetime.fromisoformat(row.data["at"]) == at
    assert row.data["ok"] is False
    conn_.close()


def test_unreachable_database_is_one_clear_error_without_the_password() -> None:
    for url in (
        "postgresql+psycopg://pms:s3cr3t-PW@127.0.0.1:1/pms",
        "mysql+pymysql://pms:s3cr3t-PW@127.0.0.1:1/pms",
    ):
        conn_ = make(url, pms.ENTITY_TYPES)
        with pytest.raises(ConnectorError) as info:
            conn_.check()
        message = str(info.value)
        assert "s3cr3t-PW" not in message and "s3cr3t-PW" not in repr(info.value.args)
        assert "'pms'" in message and "127.0.0.1" in message
        assert info.value.hint and "url" in info.value.hint
        # describe falls back to the config, with an open schema
        types = SqlConnector.describe(conn_.config)
        assert types["Customer"].open_schema and types["Customer"].incremental
        conn_.close()


def test_sqlite_file_in_a_missing_folder_is_unreachable(tmp_path: Path) -> None:
    conn_ = make(f"sqlite:///{tmp_path / 'no' / 'such' / 'pms.db'}", pms.ENTITY_TYPES)
    with pytest.raises(ConnectorError, match=r"pms\.db"):
        conn_.check()
    conn_.close()


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    conn_ = make(f"sqlite:///{tmp_path / 'typo.db'}", pms.ENTITY_TYPES)
    with pytest.raises(ConnectorError, match="does not exist"):
        conn_.check()
    types = SqlConnector.describe(conn_.config)
    assert types["Customer"].open_schema
    assert not (tmp_path / "typo.db").exists()


def test_update_without_changes_on_a_table_without_change_column(db_url: str) -> None:
    pms.create_pms_schema(db_url)
    conn_ = make(db_url, {"Customer": {"table": "customer"}})
    created = conn_.create("Customer", {"name": "Tinde Elektro AS"})
    assert conn_.update("Customer", created.id, {}).data == created.data
    conn_.close()


def test_wrong_password_is_an_auth_error(mariadb_url: str) -> None:
    base = mariadb_url.split("@", 1)[1]
    conn_ = make(f"mysql+pymysql://nobody:wr0ng-PW@{base}", pms.ENTITY_TYPES)
    with pytest.raises(AuthError) as info:
        conn_.check()
    assert "wr0ng-PW" not in str(info.value)
    conn_.close()


def test_missing_table_and_column_are_named(db_url: str) -> None:
    pms.create_pms_schema(db_url)
    conn_ = make(db_url, {"Thing": {"table": "no_such_table"}})
    with pytest.raises(ConnectorError, match="no_such_table"):
        conn_.check()
    conn_ = make(
        db_url, {"Customer": {"table": "customer", "updated": "changed_on", "columns": ["nme"]}}
    )
    with pytest.raises(ConnectorError, match="nme"):
        conn_.check()
    conn_.close()


def test_identifiers_with_quotes_spaces_and_keywords(db_url: str, other: Engine) -> None:
    name = 'my "table'
    table = Table(
        name,
        MetaData(),
        Column("key id", Integer, primary_key=True, autoincrement=True),
        Column("order", String(100)),
        Column("select", String(100)),
        Column("two words", Integer),
        Column("when changed", STAMP),
        mysql_charset="utf8mb4",
    )
    table.create(other)
    conn_ = make(
        db_url,
        {"Odd": {"table": name, "id": "key id", "updated": "when changed"}},
    )
    conn_.check()
    props = conn_.entity_type("Odd").properties
    assert set(props) == {"key id", "order", "select", "two words", "when changed"}
    record = conn_.create("Odd", {"order": TRICKY[0], "select": TRICKY[3], "two words": 7})
    changed = conn_.update("Odd", record.id, {"select": TRICKY[1]})
    assert changed.data == {
        **record.data,
        "select": TRICKY[1],
        "when changed": changed.data["when changed"],
    }
    records, cursor = all_records(conn_, "Odd")
    assert [r.id for r in records] == [record.id] and cursor
    conn_.delete("Odd", record.id)
    assert conn_.get("Odd", record.id) is None
    with other.connect() as conn:
        assert conn.execute(select(table.c["order"])).all() == []
    conn_.close()


def test_view_is_read_only(db_url: str, other: Engine) -> None:
    pms.create_pms_schema(db_url)
    with other.begin() as conn:
        conn.execute(insert(pms.customer).values(name="Aktiv AS", is_active=True))
        conn.execute(insert(pms.customer).values(name="Passiv AS", is_active=False))
        # DDL cannot take parameters; "is_active" is true/1 in every dialect's syntax
        truth = "is_active" if db_url.startswith("postgresql") else "is_active = 1"
        conn.exec_driver_sql(
            f"CREATE VIEW active_customer AS SELECT id, name FROM customer WHERE {truth}"
        )
    conn_ = make(db_url, {"Active": {"view": "active_customer"}})
    etype = conn_.entity_type("Active")
    assert etype.read_only and not etype.incremental
    records, _ = all_records(conn_, "Active")
    assert [r.data["name"] for r in records] == ["Aktiv AS"]
    with pytest.raises(RecordError, match="read only"):
        conn_.create("Active", {"name": "x"})
    conn_.close()


def test_integer_version_column(db_url: str, other: Engine) -> None:
    table = Table(
        "item",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(50)),
        Column("version", Integer),
    )
    table.create(other)
    conn_ = make(db_url, {"Item": {"table": "item", "updated": "version"}})
    assert conn_.entity_type("Item").modified_field is None
    a = conn_.create("Item", {"name": "a"})
    b = conn_.create("Item", {"name": "b"})
    assert (a.data["version"], b.data["version"]) == (1, 2)
    _, cursor = all_records(conn_, "Item")
    assert cursor == "2"
    conn_.update("Item", a.id, {"name": "a2"})
    records, cursor = all_records(conn_, "Item", cursor)
    assert {r.data["name"] for r in records} == {"a2", "b"}  # >= cursor re-reads the last one
    assert cursor == "3"
    # another program's transaction took version 2 before ours took 3, and commits only
    # now: the next read still goes back far enough to see it
    with other.begin() as conn:
        conn.execute(insert(table).values(name="late", version=2))
    records, cursor = all_records(conn_, "Item", cursor)
    assert "late" in {r.data["name"] for r in records}
    assert cursor == "3"
    conn_.close()


def test_find_by_external_ref(pms_conn: SqlConnector) -> None:
    created = pms_conn.create(
        "Customer", {"name": "Sør Regnskap AS"}, external_ref="crm:Customer:7"
    )
    found = pms_conn.find_by_external_ref("Customer", "crm:Customer:7")
    assert found is not None and found.id == created.id
    assert pms_conn.find_by_external_ref("Customer", "crm:Customer:8") is None
    assert pms_conn.find_by_external_ref("Customer", "' OR '1'='1") is None


@pytest.mark.mariadb
def test_mariadb_a_ref_that_differs_only_in_case_is_another_record(mariadb_url: str) -> None:
    """The lookup that resolves an interrupted create (``WHERE external_ref = …``) under
    MariaDB's default collation (utf8mb4_general_ci) also matches the ref of another
    record that differs only in case; the connector compares the found value exactly, so
    the create is not taken as done (and the record not left uncreated or duplicated)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE customer (id VARCHAR(20) PRIMARY KEY, name VARCHAR(50), "
                "external_ref VARCHAR(100), updated_at DATETIME(6))"
            )
        )
        conn.execute(
            text("INSERT INTO customer VALUES ('a0XK', 'Beta', 'crm:Customer:a0XK', NULL)")
        )
    engine.dispose()
    pms = make(
        mariadb_url,
        {"Customer": {"table": "customer", "id": "id", "external_ref": "external_ref"}},
    )
    try:
        assert pms.find_by_external_ref("Customer", "crm:Customer:a0Xk") is None
        found = pms.find_by_external_ref("Customer", "crm:Customer:a0XK")
        assert found is not None and found.id == "a0XK"
        assert pms.get("Customer", "a0xk") is None  # a text id is exact too
        assert pms.get("Customer", "a0XK") is not None
    finally:
        pms.close()


def test_relative_sqlite_path_is_beside_the_config(tmp_path: Path) -> None:
    pms.create_pms_schema(f"sqlite:///{tmp_path / 'pms.db'}")
    config = SystemConfig(
        kind="sql", url="sqlite:///pms.db", entity_types=pms.ENTITY_TYPES, base_dir=str(tmp_path)
    )
    conn_ = SqlConnector("pms", config, {})
    conn_.check()
    assert conn_.create("Customer", {"name": "x"}).id == "1"
    conn_.close()


# -- through the Engine ------------------------------------------------------------------
ENGINE_CONFIG = """
store: {store}
systems:
  crm:
    kind: memory
    dataset: {dataset}
    entity_types:
      Customer: {{external_ref: ext}}
      Job: {{external_ref: ext}}
  pms:
    kind: sql
    label: Custom PMS
    url: {url}
    entity_types:
      Customer: {{table: customer, id: id, updated: updated_at, external_ref: external_ref}}
      Project: {{table: project, id: id, updated: updated_at, external_ref: external_ref}}
dataflows:
  - source: crm.Customer
    target: pms.Customer
    match: [[{{from: OrgNo, to: org_no}}]]
    properties:
      - {{from: Name, to: name, type: string}}
      - {{from: OrgNo, to: org_no, type: string}}
      - {{from: Mail, to: email, type: string}}
      - {{from: City, to: city, type: string}}
  - source: pms.Project
    target: crm.Job
    match: [[{{from: code, to: Code}}]]
    properties:
      - {{from: code, to: Code, type: string}}
      - {{from: name, to: Title, type: string}}
      - {{from: start_date, to: Start, type: date}}
      - {{from: customer_id, to: CustomerId, type: reference, source_ref: Customer,
          target_ref: Customer}}
"""


def test_memory_and_sql_converge_through_the_engine(
    db_url: str, other: Engine, tmp_path: Path
) -> None:
    import uuid

    from samband.config import parse_config
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset, forget_dataset

    pms.create_pms_schema(db_url)
    name = f"crm-{uuid.uuid4().hex[:8]}"
    text_ = ENGINE_CONFIG.format(
        store=f"sqlite:///{tmp_path / 'state.db'}", dataset=name, url=db_url
    )
    config = parse_config(text_).config
    crm = dataset(name)
    engine = SyncEngine(config, environ={}, state_dir=str(tmp_path))
    try:
        crm.insert("Customer", {"Name": "Fjord Data AS", "OrgNo": "923609016", "City": "Bergen"})
        with other.begin() as conn:  # already in the PMS: linked by org number
            conn.execute(
                insert(pms.customer).values(
                    name="Nordlys AS",
                    org_no="987654325",
                    city="Tromsø",
                    is_active=True,
                    updated_at=datetime.now(UTC),
                )
            )
        crm.insert("Customer", {"Name": "Nordlys AS", "OrgNo": "987654325", "City": "Tromsø"})
        first = engine.sync()
        assert first.status == "ok", first.messages
        assert (first.to_dict()["created"], first.to_dict()["linked"]) == (1, 1)
        with other.connect() as conn:
            rows = conn.execute(
                select(pms.customer.c.id, pms.customer.c.city, pms.customer.c.external_ref).where(
                    pms.customer.c.org_no == "923609016"
                )
            ).all()
        assert len(rows) == 1 and rows[0].city == "Bergen"
        assert rows[0].external_ref == "crm:Customer:1"
        fjord_pms = rows[0].id

        # a project created in the PMS flows to the CRM, its customer reference translated
        with other.begin() as conn:
            conn.execute(
                insert(pms.project).values(
                    code="PRJ-1",
                    name="ERP-innføring",
                    customer_id=fjord_pms,
                    start_date=date(2026, 3, 1),
                    status="active",
                    is_active=True,
                    updated_at=datetime.now(UTC),
                )
            )
        # and edits on both sides
        crm.edit("Customer", "1", {"City": "Oslo"})
        with other.begin() as conn:
            conn.execute(
                update(pms.customer)
                .where(pms.customer.c.org_no == "987654325")
                .values(email="post@nordlys.no", updated_at=datetime.now(UTC))
            )
        second = engine.sync()
        assert second.status == "ok", second.messages
        counts = second.to_dict()
        assert (counts["created"], counts["updated"], counts["errors"]) == (1, 2, 0)
        job = next(iter(crm.records("Job").values()))
        assert (job["Code"], job["Title"], job["Start"]) == ("PRJ-1", "ERP-innføring", "2026-03-01")
        assert str(job["CustomerId"]) == "1"
        nordlys = next(r for r in crm.records("Customer").values() if r["OrgNo"] == "987654325")
        assert nordlys["Mail"] == "post@nordlys.no"
        with other.connect() as conn:
            city = conn.execute(
                select(pms.customer.c.city).where(pms.customer.c.id == fjord_pms)
            ).scalar()
        assert city == "Oslo"

        writes = engine.connector("pms").stats.writes
        third = engine.sync()
        assert third.status == "ok", third.messages
        assert engine.connector("pms").stats.writes == writes
        quiet = third.to_dict()
        assert (quiet["created"], quiet["updated"], quiet["deleted"]) == (0, 0, 0)
    finally:
        engine.close()
        forget_dataset(name)


def test_an_edit_made_in_the_sql_system_during_a_run_is_not_overwritten(
    db_url: str, other: Engine, tmp_path: Path
) -> None:
    """The engine read the PMS, then a user edits the e-mail there while the CRM's newer
    edit of the same e-mail is being planned: the update stops (the row is read again) and
    the user's edit, the newest, wins as a recorded conflict instead of being lost."""
    import uuid

    from samband.config import parse_config
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset, forget_dataset
    from tests.support.convergence import EditDuringTheRun

    pms.create_pms_schema(db_url)
    name = f"crm-{uuid.uuid4().hex[:8]}"
    text_ = ENGINE_CONFIG.format(
        store=f"sqlite:///{tmp_path / 'state.db'}", dataset=name, url=db_url
    )
    crm = dataset(name)
    engine = SyncEngine(parse_config(text_).config, environ={}, state_dir=str(tmp_path))
    try:
        crm.insert("Customer", {"Name": "Fjord AS", "OrgNo": "923609016", "Mail": "a@fjord.no"})
        assert engine.sync().to_dict()["created"] == 1
        crm.edit("Customer", "1", {"Mail": "crm@fjord.no"})

        def user_edits_the_pms() -> None:
            with other.begin() as conn:
                conn.execute(
                    update(pms.customer)
                    .where(pms.customer.c.org_no == "923609016")
                    .values(email="pms@fjord.no", updated_at=datetime.now(UTC) + timedelta(1))
                )

        report = engine.sync(progress=EditDuringTheRun(user_edits_the_pms)).to_dict()
        assert report["errors"] == 0, report
        conflicts = [c for c in engine.store().conflicts_rows() if c["property"] == "email"]
        with other.connect() as conn:
            email = conn.execute(
                select(pms.customer.c.email).where(pms.customer.c.org_no == "923609016")
            ).scalar()
        assert email == "pms@fjord.no"
        assert crm.records("Customer")["1"]["Mail"] == "pms@fjord.no"
        (conflict,) = conflicts
        assert conflict["winner"] == "target" and "crm@fjord.no" in conflict["source_value"]
        quiet = engine.sync().to_dict()
        assert (quiet["updated"], quiet["conflicts"]) == (0, 0), quiet
    finally:
        engine.close()
        forget_dataset(name)


def test_seeded_pms_reads_back_through_the_connector(db_url: str) -> None:
    pms.create_pms_schema(db_url)
    pms.create_pms_schema(db_url)  # existing tables are kept
    pms.seed_pms(db_url, customers=6, projects=9, seed=3)
    conn_ = make(db_url, pms.ENTITY_TYPES)
    customers, _ = all_records(conn_, "Customer")
    projects, _ = all_records(conn_, "Project")
    assert len(customers) == 6 and len(projects) == 9
    ids = {int(c.id) for c in customers}
    assert all(p.data["customer_id"] in ids for p in projects)
    assert all(len(c.data["org_no"]) == 9 and c.data["country"] == "NO" for c in customers)
    conn_.close()


def test_credentials_fill_in_a_url_without_user(mariadb_url: str) -> None:
    scheme, rest = mariadb_url.split("://", 1)
    user, host = rest.split("@", 1)
    pms.create_pms_schema(mariadb_url)
    config = SystemConfig(
        kind="sql",
        url=f"{scheme}://{host}",
        credentials={"username": "${SQL_TEST_USER}"},
        entity_types=pms.ENTITY_TYPES,
    )
    conn_ = SqlConnector("pms", config, {"username": user.split(":")[0]})
    conn_.check()
    assert conn_.create("Customer", {"name": "Kyst Transport AS"}).id
    conn_.close()
