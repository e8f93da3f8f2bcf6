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
    CHAR,
    BigInteger,
    Boolean,
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
from samband.errors import RecordError
from samband.kinds.sql.connector import SqlConnector


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
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset
    from tests.support.sql import STAMP

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


# -- a value must come back the same (the round-trip rule in _sql_values) ---------------
def test_text_into_a_number_boolean_or_date_column_must_come_back_the_same(
    db_url: str, other: Engine
) -> None:
    """``type: string`` "008" into an INTEGER column was stored as 8 and read back as "8"
    (and "yes" into a BOOLEAN as true → "true"): after an unrelated edit the source got
    the column's spelling back.  A text is accepted only as the column gives it back."""
    table = _table(
        other,
        "coded",
        Column("number", Integer),
        Column("flag", Boolean),
        Column("amount", Numeric(10, 2)),
        Column("day", Date),
    )
    conn = connector(db_url, "coded")
    for given in ("008", " 8", "+8", "8.0", "-0"):
        reason = refused(conn, {"number": given})
        assert "coded.number" in reason and "INTEGER" in reason, reason
        assert f"{given!r} (string)" in reason and "read back as" in reason, reason
        assert "type: integer" in reason and "text column" in reason, reason
    assert "read back as '8'" in refused(conn, {"number": "008"})
    for given in ("yes", "1", "TRUE", " true"):
        reason = refused(conn, {"flag": given})
        assert "coded.flag" in reason and f"{given!r}" in reason, reason
        assert "read back as 'true'" in reason and "type: boolean" in reason, reason
    assert "read back as '1.50'" in refused(conn, {"amount": "1.5"})
    assert "read back as '7.00'" in refused(conn, {"amount": "7"})
    assert "read back as '2026-01-05'" in refused(conn, {"day": "20260105"})
    assert "not an ISO 8601 date" in refused(conn, {"day": "2026-1-5"})
    assert count(other, table) == 0
    # what the column gives back as it was given is written
    record = conn.create(
        "Row", {"number": "8", "flag": "true", "amount": "1.50", "day": "2026-01-05"}
    )
    assert record.data["number"] == 8 and record.data["flag"] is True
    assert (record.data["amount"], record.data["day"]) == ("1.50", "2026-01-05")
    record = conn.create("Row", {"number": "-8", "flag": "false"})
    assert (record.data["number"], record.data["flag"]) == (-8, False)
    # values of the columns' own kinds (and kinds that read back equal) are untouched
    record = conn.create(
        "Row", {"number": 8, "flag": 1, "amount": Decimal("1.5"), "day": date(2026, 1, 5)}
    )
    assert (record.data["number"], record.data["flag"], record.data["amount"]) == (8, True, "1.50")
    assert count(other, table) == 3
    conn.close()


ORACLE_COLUMNS = {  # column → its type (on SQLite, or per dialect)
    "c_int": "INTEGER",
    "c_flag": "BOOLEAN",
    "c_money": "NUMERIC(10,2)",
    "c_plain": "NUMERIC",
    "c_whole": "NUMERIC(10)",
    "c_single": {"postgresql": "REAL", "mysql": "FLOAT", "sqlite": "REAL"},
    "c_double": {"postgresql": "DOUBLE PRECISION", "mysql": "DOUBLE", "sqlite": "DOUBLE"},
    "c_day": "DATE",
    "c_at": {"mysql": "DATETIME(6)", "postgresql": "TIMESTAMP", "sqlite": "TIMESTAMP"},
    "c_zoned": {"postgresql": "TIMESTAMPTZ"},
    "c_code": "CHAR(10)",
    "c_text": "VARCHAR(40)",
}
ORACLE_VALUES: list[Any] = [
    *("8", "008", " 8", "+8", "8.0", "-0", "0", "1", "yes", "true", "false", "TRUE"),
    *("1.5", "1.50", "0.25", "1e3", "0.1", "12345678.12", "1234567890123.12", "D1", ""),
    *("2026-01-05", "20260105", "2026-01-05T00:00:00+00:00", "2026-01-05T10:30:00Z"),
    *("2026-01-05T10:30:00+00:00", "2026-01-05T10:30:00.123456+00:00"),
    *(8, 0, 1, True, False, 0.25, 0.1, 1 / 3, 8.0, 1e-7),
    *(Decimal("1.5"), Decimal("0.1"), Decimal("1234567890123.12"), Decimal("12345.6789")),
    *(Decimal("0.0000001"), Decimal(0), date(2026, 1, 5)),
    datetime(2026, 1, 5, tzinfo=UTC),
    datetime(2026, 1, 5, 10, 30, 0, 123456, tzinfo=UTC),
]


def test_what_a_column_gives_back_is_what_the_checks_expect(db_url: str, other: Engine) -> None:
    """The round-trip rule is decided in Python, from a model of what each database gives
    back (``_sql_values.read_back``).  Held against the databases themselves: each value
    of every type into every kind of column is written with the checks switched off and
    read back; the model must predict the record's value exactly, and a value is accepted
    exactly when the engine would take what comes back for the value it wrote."""
    from samband.kinds.sql.connector import _values as checks
    from samband.types import coerce, infer_type

    dialect = other.dialect.name
    columns = {
        name: kind if isinstance(kind, str) else kind.get(dialect)
        for name, kind in ORACLE_COLUMNS.items()
    }
    columns = {name: kind for name, kind in columns.items() if kind}
    key = {"postgresql": "serial PRIMARY KEY", "mysql": "INT AUTO_INCREMENT PRIMARY KEY"}
    with other.begin() as conn:
        body = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        conn.exec_driver_sql(
            f"CREATE TABLE oracle (id {key.get(dialect, 'INTEGER PRIMARY KEY')}, {body})"
        )
    conn = connector(db_url, "oracle")
    bound = conn.bound("Row")
    assert bound.write is not None
    column_checks, bound.checks = dict(bound.checks), {}
    wrong: list[str] = []
    decided = {True: 0, False: 0}
    for name in columns:
        column, kind = bound.write.c[name], bound.types[name]
        assert kind is not None
        back = checks.read_back(column, kind, conn.engine.dialect)
        kind_check = checks._kind_check(column, kind, conn.engine.dialect, name, "")
        for raw in ORACLE_VALUES:
            given_type = infer_type(raw)
            given = coerce(raw, given_type)
            try:
                value = coerce(given, kind)
            except Exception:
                continue  # refused before anything is written
            if value is None or (kind_check is not None and kind_check(value, given)):
                continue  # the kind's own check refuses it (out of range, digits, spaces)
            record = conn.create("Row", {name: given})
            read = record.data[name]
            again = conn.get("Row", record.id)
            assert again is not None and again.data[name] == read
            if type(read) is not type(back(value)) or read != back(value):
                wrong.append(f"{columns[name]} {given!r}: read {read!r}, model {back(value)!r}")
            try:
                as_written = coerce(read, given_type)
            except Exception:
                as_written = read
            accepted = column_checks[name](value, given) is None
            decided[accepted] += 1
            if accepted != checks.same_value(as_written, given):
                wrong.append(f"{columns[name]} {given!r} → {read!r}: accepted={accepted}")
    assert wrong == []
    assert decided[True] > 150 and decided[False] > 40, decided
    conn.close()


def test_char_columns_are_read_without_padding_and_refuse_trailing_spaces(
    db_url: str, other: Engine
) -> None:
    """PostgreSQL gave "D1" in a CHAR(10) back as "D1        "; MariaDB gave "D2  " back
    as "D2".  A CHAR column is read without its padding, and a value ending in spaces (which
    it would lose) is refused, on every database (SQLite keeps them, but its declared type
    is the contract)."""
    table = _table(other, "dept", Column("code", CHAR(10)), Column("name", String(20)))
    conn = connector(db_url, "dept")
    record = conn.create("Row", {"code": "D1", "name": "Sales"})
    assert record.data["code"] == "D1"
    got = conn.get("Row", record.id)
    assert got is not None and got.data["code"] == "D1"
    (page,) = list(conn.read("Row", None))
    assert [r.data["code"] for r in page.records] == ["D1"]
    # an update that expects the value as read is not taken for a concurrent edit
    conn.update("Row", record.id, {"code": "D3"}, expected={"code": "D1"})
    for given in ("D2  ", " ", "D2 "):
        reason = refused(conn, {"code": given})
        assert "dept.code" in reason and "CHAR(10)" in reason and f"{given!r}" in reason
        assert "ends in spaces" in reason and "VARCHAR" in reason, reason
    assert conn.create("Row", {"code": " D4"}).data["code"] == " D4"  # leading ones stay
    with other.begin() as sql:  # another program's row
        sql.execute(table.insert().values(code="X", name="theirs"))
    (page,) = list(conn.read("Row", None))
    assert sorted(r.data["code"] for r in page.records) == [" D4", "D3", "X"]
    conn.close()


CHAR_FLOW = """
store: sqlite:///{tmp}/store.db
systems:
  crm: {{kind: memory, entity_types: {{Dept: {{}}}}}}
  pms:
    kind: sql
    url: "{url}"
    entity_types:
      Dept: {{table: dept, updated: changed}}
dataflows:
  - source: crm.Dept
    target: pms.Dept
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: number, to: number, type: string}}
      - {{from: flag, to: flag, type: string}}
      - {{from: code, to: code, type: string}}
"""


def test_the_engine_keeps_the_source_text_a_column_would_change(
    db_url: str, other: Engine, tmp_path: Path
) -> None:
    """Memory source → SQL target, ``type: string`` everywhere: "008" into INTEGER, "yes"
    into BOOLEAN and "D2  " into CHAR(10) are quarantined with the reason; "8", "true" and
    "D1" are written.  After an unrelated edit of each record the source still holds its
    own text (it got "8", "true" and PostgreSQL's "D1        " back before) and the next
    run writes nothing."""
    from samband.config import parse_config
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset
    from tests.support.sql import STAMP

    table = _table(
        other,
        "dept",
        Column("name", String(50)),
        Column("number", Integer),
        Column("flag", Boolean),
        Column("code", CHAR(10)),
        Column("changed", STAMP),
    )
    crm = dataset("crm")
    crm.insert("Dept", {"name": "fine", "number": "8", "flag": "true", "code": "D1"})
    crm.insert("Dept", {"name": "zeros", "number": "008", "flag": "false", "code": "D1"})
    crm.insert("Dept", {"name": "yes", "number": "9", "flag": "yes", "code": "D1"})
    crm.insert("Dept", {"name": "spaces", "number": "7", "flag": "false", "code": "D2  "})
    originals = {rid: dict(data) for rid, data in crm.records("Dept").items()}
    config = parse_config(CHAR_FLOW.format(tmp=tmp_path, url=db_url)).config
    with SyncEngine(config) as engine:
        first = engine.sync().to_dict()
        for rid in originals:  # an unrelated edit of every record
            crm.edit("Dept", rid, {"name": f"{originals[rid]['name']} edited"})
        engine.sync()
        again = engine.sync()
        changed = [
            (rid, key, data[key])
            for rid, data in crm.records("Dept").items()
            for key in ("number", "flag", "code")
            if data[key] != originals[rid][key]
        ]
        assert changed == [], "the column's spelling flowed back over the source"
        assert (first["created"], first["errors"]) == (1, 3), first
        letters = {d["ref"]: d["reason"] for d in engine.store().dead_letters()}
        assert sorted(letters) == ["crm:Dept:2", "crm:Dept:3", "crm:Dept:4"]
        assert "dept.number" in letters["crm:Dept:2"] and "'008'" in letters["crm:Dept:2"]
        assert "read back as '8'" in letters["crm:Dept:2"]
        assert "dept.flag" in letters["crm:Dept:3"] and "'yes'" in letters["crm:Dept:3"]
        assert "dept.code" in letters["crm:Dept:4"] and "ends in spaces" in letters["crm:Dept:4"]
        assert again.writes == 0 and again.status == "ok", again.to_dict()
        assert engine.store().conflicts_rows() == []
    with other.connect() as conn:
        stored = conn.execute(select(table.c.name, table.c.number, table.c.flag)).all()
    assert [tuple(row) for row in stored] == [("fine edited", 8, True)]


@pytest.mark.mariadb
def test_mariadb_a_text_too_long_for_its_column_is_refused_not_cut(
    mariadb_url: str, tmp_path: Path
) -> None:
    """A server whose sql_mode is not strict (emulated per session) cuts a text too long
    for TINYTEXT (255 bytes) and says nothing; the connector sets a strict session mode
    and checks the byte length of TEXT-family columns: the record is quarantined with the
    column and its limit, the source keeps its text."""
    from sqlalchemy import text

    from samband.config import parse_config
    from samband.engine.run import Engine as SyncEngine
    from samband.kinds.memory.connector import dataset

    engine = create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE note (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(50), "
                "body TINYTEXT, external_ref VARCHAR(100), updated_at DATETIME(6))"
            )
        )
    lax = f"{mariadb_url}?init_command=SET+SESSION+sql_mode%3D%27%27"
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  crm: {{kind: memory, entity_types: {{Note: {{}}}}}}
  pms:
    kind: sql
    url: "{lax}"
    entity_types:
      Note: {{table: note, id: id, updated: updated_at, external_ref: external_ref}}
dataflows:
  - source: crm.Note
    target: pms.Note
    properties:
      - {{from: title, to: title, type: string}}
      - {{from: body, to: body, type: string}}
"""
    crm = dataset("crm")
    long_text = "Møtenotat: " + "x" * 250  # 261 characters, 262 bytes
    crm.insert("Note", {"title": "Kickoff", "body": long_text})
    crm.insert("Note", {"title": "Short", "body": "ø" * 127})  # 254 bytes: fits
    with SyncEngine(parse_config(config).config) as run:
        report = run.sync().to_dict()
        dead = run.store().dead_letters()
    assert report["created"] == 1 and report["errors"] == 1
    assert len(dead) == 1 and dead[0]["ref"] == "crm:Note:1"
    assert "262 bytes" in dead[0]["reason"] and "note.body" in dead[0]["reason"]
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT title, LENGTH(body) FROM note")).all()
        modes = conn.execute(text("SELECT @@SESSION.sql_mode")).scalar()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("Short", 254)]
    assert crm.records("Note")["1"]["body"] == long_text
    # the connector's own sessions are strict even where the server's default is not
    pms = SqlConnector(
        "pms",
        SystemConfig.model_validate(
            {"kind": "sql", "url": lax, "entity_types": {"Note": {"table": "note", "id": "id"}}}
        ),
        {},
    )
    try:
        with pms.engine.connect() as conn:
            session = conn.execute(text("SELECT @@SESSION.sql_mode")).scalar()
    finally:
        pms.close()
    assert "STRICT_ALL_TABLES" in session.split(","), (session, modes)
