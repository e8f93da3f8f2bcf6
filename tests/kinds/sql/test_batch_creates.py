"""Creates into a SQL table go in one transaction per chunk; a refused row is reported
alone and the others are created."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from samband.config import parse_config
from samband.connectors.base import RecordData
from samband.engine.run import Engine
from samband.errors import RecordError
from samband.kinds.memory.connector import dataset


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/target.db"
    else:
        url = request.getfixturevalue("postgres_url")
    create_customer_table(url, String(100))
    yield url


def create_customer_table(url: str, external_ref_type: Any) -> None:
    engine = create_engine(url)
    meta = MetaData()
    Table(
        "customer",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(20), nullable=False),
        Column("email", String(100), unique=True),
        Column("external_ref", external_ref_type),
    )
    meta.create_all(engine)
    engine.dispose()


def config(db_url: str, tmp_path: Path) -> str:
    return f"""
store: sqlite:///{tmp_path}/store.db
systems:
  crm: {{kind: memory, entity_types: {{Customer: {{}}}}}}
  pms:
    kind: sql
    url: "{db_url}"
    entity_types:
      Customer: {{table: customer, id: id, external_ref: external_ref}}
dataflows:
  - source: crm.Customer
    target: pms.Customer
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: email, to: email, type: string}}
"""


def rows(db_url: str) -> list[tuple[str, str]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        table = Table("customer", MetaData(), autoload_with=conn)
        result = sorted((r.name, r.email) for r in conn.execute(select(table)))
    engine.dispose()
    return result


def test_create_many_reports_a_refused_row_alone(db_url: str, tmp_path: Path) -> None:
    engine = Engine(parse_config(config(db_url, tmp_path)).config)
    engine.compile()
    connector = engine.connector("pms")
    results = connector.create_many(
        "Customer",
        [
            ({"name": "Acme", "email": "a@x.no"}, "crm:Customer:1"),
            ({"name": "Far too long a name for it", "email": "b@x.no"}, "crm:Customer:2"),
            ({"name": "Fjord", "email": "a@x.no"}, "crm:Customer:3"),  # duplicate e-mail
            ({"name": "Vik", "email": "c@x.no"}, "crm:Customer:4"),
        ],
    )
    assert [type(r).__name__ for r in results] == [
        "RecordData",
        "RecordError",
        "RecordError",
        "RecordData",
    ]
    assert isinstance(results[1], RecordError) and "20" in results[1].reason
    assert rows(db_url) == [("Acme", "a@x.no"), ("Vik", "c@x.no")]
    engine.close()


def test_the_engine_creates_a_chunk_in_one_transaction(db_url: str, tmp_path: Path) -> None:
    crm = dataset("crm")
    for index in range(50):
        crm.insert("Customer", {"name": f"C{index}", "email": f"c{index}@x.no"})
    crm.insert("Customer", {"name": "Duplicate", "email": "c7@x.no"})
    with Engine(parse_config(config(db_url, tmp_path)).config) as engine:
        report = engine.sync()
        assert report.to_dict()["created"] == 50 and report.to_dict()["errors"] == 1
        pms = engine.connector("pms")
        assert pms.stats.writes == 50
        (letter,) = engine.store().dead_letters()
        # the two share an e-mail: whichever comes second is refused, alone
        assert letter["ref"] in ("crm:Customer:8", "crm:Customer:51")
        assert engine.sync().writes == 0
    assert len(rows(db_url)) == 50


def test_a_batch_with_an_unknown_outcome_is_resolved_by_lookup(db_url: str, tmp_path: Path) -> None:
    from samband.errors import TransientError
    from samband.kinds.sql.connector import SqlConnector

    crm = dataset("crm")
    for index in range(5):
        crm.insert("Customer", {"name": f"C{index}", "email": f"c{index}@x.no"})

    original = SqlConnector.create_many

    def applied_then_lost(self, entity_type, items):  # type: ignore[no-untyped-def]
        original(self, entity_type, items)
        raise TransientError("the connection dropped during COMMIT")

    SqlConnector.create_many = applied_then_lost  # type: ignore[method-assign]
    try:
        with Engine(parse_config(config(db_url, tmp_path)).config) as engine:
            report = engine.sync()
            assert report.to_dict()["created"] == 0 and report.to_dict()["errors"] == 5
    finally:
        SqlConnector.create_many = original  # type: ignore[method-assign]
    with Engine(parse_config(config(db_url, tmp_path)).config) as engine:
        engine.sync()
        assert len(engine.store().all_links()) == 5
        assert engine.sync().writes == 0
    assert len(rows(db_url)) == 5  # found again by external reference, not created twice


def test_each_new_id_goes_to_its_own_row(db_url: str, tmp_path: Path) -> None:
    """Multi-row inserts (rows with different columns in separate statements) give every
    record the id of the row made from its values."""
    engine = Engine(parse_config(config(db_url, tmp_path)).config)
    engine.compile()
    items: list[tuple[dict[str, Any], str | None]] = [
        ({"name": f"N{i}", **({"email": f"n{i}@x.no"} if i % 3 else {})}, f"crm:Customer:{i}")
        for i in range(40)
    ]
    results = engine.connector("pms").create_many("Customer", items)
    db = create_engine(db_url)
    with db.connect() as conn:
        table = Table("customer", MetaData(), autoload_with=conn)
        by_id = {str(r.id): (r.name, r.email, r.external_ref) for r in conn.execute(select(table))}
    db.dispose()
    assert len(by_id) == 40
    for (values, ext), result in zip(items, results, strict=True):
        assert isinstance(result, RecordData)
        assert by_id[result.id] == (values["name"], values.get("email"), ext)
        assert result.data["name"] == values["name"]
    engine.close()


@contextmanager
def _counting_connector(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    """The ``pms`` connector, and the INSERT statements it sends from now on."""
    from sqlalchemy import event

    sent: list[str] = []
    with Engine(parse_config(config(db_url, tmp_path)).config) as engine:
        engine.compile()
        connector = engine.connector("pms")

        @event.listens_for(connector.engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT"):
                sent.append(statement)

        yield connector, sent


def _new_customers(count: int) -> list[tuple[dict[str, Any], str | None]]:
    return [({"name": f"N{i}", "email": f"n{i}@x.no"}, f"crm:Customer:{i}") for i in range(count)]


def test_a_chunk_goes_in_one_insert_statement(db_url: str, tmp_path: Path) -> None:
    """The new ids are matched to their rows by the external reference each row carries,
    so a chunk is one statement also where the key is a PostgreSQL ``serial`` (whose
    order SQLAlchemy cannot rely on: it sent one statement per row)."""
    with _counting_connector(db_url, tmp_path) as (connector, sent):
        items = _new_customers(30)
        results = connector.create_many("Customer", items)
        assert len(sent) == 1
        found = {r.data["external_ref"]: (r.id, r.data["name"]) for r in results}  # type: ignore[union-attr]
        assert len({new_id for new_id, _ in found.values()}) == 30
        assert all(found[ext][1] == values["name"] for values, ext in items)


@pytest.mark.postgres
def test_a_padded_external_reference_column_falls_back_to_a_row_at_a_time(
    postgres_url: str, tmp_path: Path
) -> None:
    """A ``CHAR(n)`` column returns the reference padded with blanks: the rows cannot be
    matched by it, so they go again one per transaction, each with its own id."""
    from sqlalchemy import CHAR

    create_customer_table(postgres_url, CHAR(40))
    with _counting_connector(postgres_url, tmp_path) as (connector, sent):
        items = _new_customers(5)
        results = connector.create_many("Customer", items)
        assert len(sent) == 1 + 5  # the multi-row statement, rolled back, then one per row
        for (values, _ext), result in zip(items, results, strict=True):
            assert isinstance(result, RecordData) and result.data["name"] == values["name"]
    assert rows(postgres_url) == sorted((f"N{i}", f"n{i}@x.no") for i in range(5))
