"""A value a SQL column cannot hold exactly is refused with the reason, never rounded.

A database that rounds ``1.005`` into ``NUMERIC(12,2)``, keeps seven digits of a
``REAL`` or drops the fractions of a second of a ``DATETIME`` hands the changed value
back on the next read, and it would flow back over the source as an edit.  The column's
declared type is the contract on every database, SQLite included (which would store any
number anywhere): what it cannot hold is a :class:`RecordError` naming the column, its
type and the value, and the engine quarantines that record and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    create_engine,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from samband.config.model import SystemConfig
from samband.connectors.sql import SqlConnector
from samband.errors import RecordError


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'values.db'}"
        create_engine(url).connect().close()
        return url
    fixture = "postgres_url" if request.param == "postgresql" else "mariadb_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def other(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def connector(url: str, table: str) -> SqlConnector:
    config = SystemConfig(kind="sql", url=url, entity_types={"Row": {"table": table}})
    return SqlConnector("pms", config, {})


def refused(conn: SqlConnector, values: dict[str, Any]) -> str:
    with pytest.raises(RecordError) as info:
        conn.create("Row", values)
    return info.value.reason


def count(other: Engine, table: Table) -> int:
    with other.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _table(other: Engine, name: str, *columns: Column[Any]) -> Table:
    table = Table(
        name, MetaData(), Column("id", Integer, primary_key=True, autoincrement=True), *columns
    )
    table.create(other)
    return table


def test_numeric_precision_and_scale_are_checked(db_url: str, other: Engine) -> None:
    table = _table(other, "price", Column("amount", Numeric(12, 2)))
    conn = connector(db_url, "price")
    reason = refused(conn, {"amount": Decimal("1.005")})
    assert "price.amount" in reason and "1.005" in reason
    assert re.search(r"(NUMERIC|DECIMAL)\(12, 2\)", reason), reason
    assert "3 decimal places" in reason and "round" in reason
    reason = refused(conn, {"amount": "12345678901.5"})  # 11 digits before the point
    assert "12345678901.5" in reason and "at most 10" in reason
    assert conn.create("Row", {"amount": "1.50"}).data["amount"] in ("1.50", "1.5")
    assert Decimal(conn.create("Row", {"amount": "9999999999.99"}).data["amount"]) == Decimal(
        "9999999999.99"
    )
    assert count(other, table) == 2  # nothing of the refused rows was written
    conn.close()


def test_sqlite_numeric_keeps_fifteen_digits(db_url: str, other: Engine) -> None:
    """SQLite keeps a number as a binary double whatever the column says; PostgreSQL and
    MariaDB keep every digit of a NUMERIC(20,2)."""
    _table(other, "big", Column("amount", Numeric(20, 2)))
    conn = connector(db_url, "big")
    value = "12345678901234567.89"
    if db_url.startswith("sqlite"):
        reason = refused(conn, {"amount": value})
        assert "big.amount" in reason and "19 significant digits" in reason
    else:
        assert Decimal(conn.create("Row", {"amount": value}).data["amount"]) == Decimal(value)
    conn.close()


def test_integers_out_of_the_columns_range_are_refused(db_url: str, other: Engine) -> None:
    table = _table(
        other,
        "stock",
        Column("small", SmallInteger),
        Column("normal", Integer),
        Column("big", BigInteger),
    )
    conn = connector(db_url, "stock")
    reason = refused(conn, {"small": 40000})
    assert "stock.small" in reason and "SMALLINT" in reason and "-32768 to 32767" in reason
    reason = refused(conn, {"big": 2**63})  # SQLite's driver raised OverflowError
    assert "stock.big" in reason and "9223372036854775807" in reason
    assert "stock.big" in refused(conn, {"big": 2**70})
    if db_url.startswith("sqlite"):  # INTEGER is 64 bits in SQLite
        assert conn.create("Row", {"normal": 2**40}).data["normal"] == 2**40
    else:
        assert "2147483647" in refused(conn, {"normal": 2**31})
    record = conn.create("Row", {"small": -32768, "normal": 2**31 - 1, "big": 2**63 - 1})
    assert (record.data["small"], record.data["big"]) == (-32768, 2**63 - 1)
    assert count(other, table) == (2 if db_url.startswith("sqlite") else 1)
    conn.close()


def _float_table(other: Engine) -> None:
    single = {"postgresql": "REAL", "mysql": "FLOAT"}.get(other.dialect.name, "REAL")
    double = "DOUBLE PRECISION" if other.dialect.name == "postgresql" else "DOUBLE"
    key = {
        "postgresql": "serial PRIMARY KEY",
        "mysql": "INT AUTO_INCREMENT PRIMARY KEY",
    }.get(other.dialect.name, "INTEGER PRIMARY KEY")
    with other.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE measure (id {key}, one {single}, two {double})")


def test_float_columns_refuse_digits_they_would_lose(db_url: str, other: Engine) -> None:
    _float_table(other)
    conn = connector(db_url, "measure")
    reason = refused(conn, {"two": Decimal("12345678901234567.89")})
    assert "measure.two" in reason and "12345678901234567.89" in reason
    third = 1 / 3
    record = conn.create("Row", {"two": third})
    assert record.data["two"] == third  # MariaDB's DOUBLE was read back as 0.3333333333
    assert conn.create("Row", {"two": Decimal("0.1")}).data["two"] == 0.1
    if db_url.startswith("sqlite"):  # REAL is a double in SQLite
        assert conn.create("Row", {"one": third}).data["one"] == third
    else:
        reason = refused(conn, {"one": third})
        assert "measure.one" in reason and "single-precision" in reason
    assert conn.create("Row", {"one": 0.25}).data["one"] == 0.25
    conn.close()


def test_datetime_columns_refuse_fractions_they_would_drop(db_url: str, other: Engine) -> None:
    # whole seconds: MariaDB's DATETIME, PostgreSQL's timestamp(0)
    whole = DateTime().with_variant(postgresql.TIMESTAMP(precision=0), "postgresql")
    table = _table(other, "visit", Column("at", whole), Column("day", Date))
    conn = connector(db_url, "visit")
    fraction = datetime(2026, 1, 2, 10, 0, 0, 600000, tzinfo=UTC)
    if db_url.startswith("sqlite"):  # SQLAlchemy keeps microseconds in SQLite's text
        assert conn.create("Row", {"at": fraction}).data["at"] == fraction.isoformat()
    else:
        reason = refused(conn, {"at": fraction})
        assert "visit.at" in reason and "fractions of a second" in reason
        assert "2026-01-02T10:00:00.600000" in reason
    at = datetime(2026, 1, 2, 10, 0, 0, tzinfo=UTC)
    assert conn.create("Row", {"at": at}).data["at"] == at.isoformat()
    assert "time of day" in refused(conn, {"day": "2026-01-02T10:30:00"})
    assert conn.create("Row", {"day": date(2026, 1, 2)}).data["day"] == "2026-01-02"
    assert count(other, table) == (3 if db_url.startswith("sqlite") else 2)
    conn.close()


def test_text_that_is_not_unicode_is_refused(db_url: str, other: Engine) -> None:
    """A lone surrogate (half of a UTF-16 pair, e.g. from a cut JSON string) cannot be
    encoded: the driver raised UnicodeEncodeError, which crashed the run."""
    table = _table(other, "note", Column("body", String(100)))
    conn = connector(db_url, "note")
    reason = refused(conn, {"body": "half \ud83d of an emoji"})
    assert "note.body" in reason and "surrogate" in reason
    results = conn.create_many("Row", [({"body": "fine"}, None), ({"body": "bad \ud800"}, None)])
    assert [type(r).__name__ for r in results] == ["RecordData", "RecordError"]
    assert count(other, table) == 1
    conn.close()


FLOW = """
store: sqlite:///{tmp}/store.db
systems:
  crm: {{kind: memory, entity_types: {{Order: {{}}}}}}
  pms:
    kind: sql
    url: "{url}"
    entity_types:
      Price: {{table: price, updated: changed}}
dataflows:
  - source: crm.Order
    target: pms.Price
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: amount, to: amount, type: decimal}}
"""


def test_the_engine_quarantines_a_value_the_column_would_round(
    db_url: str, other: Engine, tmp_path: Path
) -> None:
    """1.005 into NUMERIC(12,2): the record is quarantined with the reason, the others
    are created, and nothing rounded flows back to the source."""
    from samband.config import parse_config
    from samband.connectors.memory import dataset
    from samband.engine.run import Engine as SyncEngine
    from tests.test_sql_connector import STAMP

    table = _table(
        other,
        "price",
        Column("name", String(50)),
        Column("amount", Numeric(12, 2)),
        Column("changed", STAMP),
    )
    crm = dataset("crm")
    crm.insert("Order", {"name": "exact", "amount": "10.25"})
    crm.insert("Order", {"name": "too fine", "amount": "1.005"})
    crm.insert("Order", {"name": "whole", "amount": 7})
    config = parse_config(FLOW.format(tmp=tmp_path, url=db_url)).config
    with SyncEngine(config) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        counts = report.to_dict()
        assert (counts["created"], counts["errors"]) == (2, 1), counts
        (letter,) = engine.store().dead_letters()
        assert letter["ref"] == "crm:Order:2"
        assert "price.amount" in letter["reason"] and "1.005" in letter["reason"]
        again = engine.sync()
        assert again.writes == 0 and again.status == "ok", again.to_dict()
    assert crm.records("Order")["2"]["amount"] == "1.005"
    with other.connect() as conn:
        stored = sorted(conn.execute(select(table.c.name, table.c.amount)).all())
    assert [(name, Decimal(amount)) for name, amount in stored] == [
        ("exact", Decimal("10.25")),
        ("whole", Decimal(7)),
    ]
