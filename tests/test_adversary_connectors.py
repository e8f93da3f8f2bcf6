"""Connector breaks an adversarial tester found (round 2), each through the engine where
the harm showed: records never read, a value changed in another row, a duplicate, a
truncated text, one bad item that stopped a system or a table.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset

Handler = Callable[[dict[str, str]], bytes]


@pytest.fixture
def api() -> Iterator[Callable[[Handler], str]]:
    """Serve a tiny JSON API (a function of the query parameters) on 127.0.0.1."""
    servers: list[ThreadingHTTPServer] = []

    def serve(answer: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                body = answer(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _sync(text: str) -> dict[str, Any]:
    with Engine(parse_config(text).config) as engine:
        return engine.sync().to_dict()


# -- f4: a REST API that caps its page size ------------------------------------------------


def test_rest_a_page_shorter_than_asked_is_not_the_last_page(
    api: Callable[[Handler], str], tmp_path: Path
) -> None:
    """Asked for 25 a page, the API answers 20 (its own cap) and says nothing of more
    pages: the connector reads on until an empty page, so with a full read and propagated
    deletes no live record is deleted in the other system."""
    rows = [
        {"id": i, "name": f"Customer {i}", "updated_at": "2026-01-01T00:00:00Z"}
        for i in range(1, 31)
    ]
    cap = {"n": 1000}

    def answer(query: dict[str, str]) -> bytes:
        page, size = int(query.get("page", "1")), min(int(query["page_size"]), cap["n"])
        return json.dumps({"items": rows[(page - 1) * size : page * size]}).encode()

    base_url = api(answer)
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  shop:
    kind: rest
    base_url: {base_url}
    auth: none
    entity_types:
      Customer: {{path: customers, paging: page, page_size: 25, incremental: false,
                  deleted: null}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: shop.Customer
    target: erp.Account
    on_delete: propagate
    properties:
      - {{from: name, to: name, type: string}}
"""
    assert _sync(config)["created"] == 30
    cap["n"] = 20
    report = _sync(config)
    assert report["deleted"] == 0, report["messages"]
    assert len(dataset("erp").records("Account")) == 30


# -- f5: an id column that is not unique ---------------------------------------------------

COMPOSITE = """
CREATE TABLE line (order_no INTEGER NOT NULL, line_no INTEGER NOT NULL, product TEXT,
                   qty INTEGER, updated_at TIMESTAMP, PRIMARY KEY (order_no, line_no));
INSERT INTO line VALUES (1, 1, 'Bolt', 5, '2026-01-01 00:00:00'),
                        (1, 2, 'Nut', 7, '2026-01-01 00:00:00'),
                        (2, 1, 'Screw', 3, '2026-01-01 00:00:00');
"""


def _line_config(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""
store: "sqlite:///{tmp_path / "state.db"}"
systems:
  pms:
    kind: sql
    url: "sqlite:///{tmp_path / "pms.db"}"
    entity_types:
      Line: {{table: line, id: order_no, updated: updated_at}}
  erp: {{kind: memory, entity_types: {{OrderLine: {{external_ref: ext}}}}}}
dataflows:
  - source: pms.Line
    target: erp.OrderLine
    properties:
      - {{from: product, to: product, type: string}}
      - {{from: qty, to: qty, type: integer}}
"""
    )
    return path


def test_sql_an_id_column_that_is_not_unique_is_refused(tmp_path: Path) -> None:
    """``id: order_no`` of a table keyed by (order_no, line_no): validate says so in one
    line naming the table and the column, and a run stops before reading or writing."""
    import sqlite3

    import samband
    from samband.errors import ConfigError, ConnectorError

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.executescript(COMPOSITE)
    path = _line_config(tmp_path)
    errors = [p for p in samband.validate(str(path)) if p.severity == "error"]
    assert len(errors) == 1, [str(p) for p in samband.validate(str(path))]
    text = str(errors[0])
    assert "\n" not in text
    assert "'order_no'" in text and "'line'" in text and "not unique" in text
    assert "unique constraint" in text
    assert "system 'pms'" in text
    with pytest.raises(ConfigError, match="not unique"):
        Engine.from_file(path)
    config = parse_config(path.read_text()).config
    with pytest.raises(ConnectorError, match="not unique"), Engine(config) as engine:
        engine.sync()
    assert dataset("erp").records("OrderLine") == {}


def test_sql_an_update_that_would_reach_two_rows_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where keys cannot be reflected (a view, say), an update by id that reaches more
    than one row is rolled back and refused: another row's value never changes."""
    import sqlite3

    from samband.config.model import SystemConfig
    from samband.errors import RecordError
    from samband.kinds.sql.connector import SqlConnector
    from samband.kinds.sql.connector import _schema as sql_schema

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.executescript(COMPOSITE)
    monkeypatch.setattr(sql_schema, "check_unique_id", lambda *args: None, raising=False)
    config = SystemConfig.model_validate(
        {
            "kind": "sql",
            "url": f"sqlite:///{tmp_path / 'pms.db'}",
            "entity_types": {"Line": {"table": "line", "id": "order_no"}},
        }
    )
    connector = SqlConnector("pms", config, {})
    try:
        with pytest.raises(RecordError, match="2 rows have order_no = '1'"):
            connector.update("Line", "1", {"qty": 9})
        with pytest.raises(RecordError, match="2 rows have order_no = '1'"):
            connector.delete("Line", "1")
    finally:
        connector.close()
    with sqlite3.connect(tmp_path / "pms.db") as db:
        rows = db.execute("SELECT order_no, line_no, qty FROM line ORDER BY 1, 2").fetchall()
    assert rows == [(1, 1, 5), (1, 2, 7), (2, 1, 3)]


# -- f6: MariaDB's case-insensitive collation ----------------------------------------------


def _sql_connector(url: str, types: dict[str, Any]) -> Any:
    from samband.config.model import SystemConfig
    from samband.kinds.sql.connector import SqlConnector

    config = SystemConfig.model_validate({"kind": "sql", "url": url, "entity_types": types})
    return SqlConnector("pms", config, {})


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
    pms = _sql_connector(
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


# -- f8: MariaDB without a strict sql_mode -------------------------------------------------


@pytest.mark.mariadb
def test_mariadb_a_text_too_long_for_its_column_is_refused_not_cut(
    mariadb_url: str, tmp_path: Path
) -> None:
    """A server whose sql_mode is not strict (emulated per session) cuts a text too long
    for TINYTEXT (255 bytes) and says nothing; the connector sets a strict session mode
    and checks the byte length of TEXT-family columns: the record is quarantined with the
    column and its limit, the source keeps its text."""
    from sqlalchemy import create_engine, text

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
    with Engine(parse_config(config).config) as run:
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
    pms = _sql_connector(lax, {"Note": {"table": "note", "id": "id"}})
    try:
        with pms.engine.connect() as conn:
            session = conn.execute(text("SELECT @@SESSION.sql_mode")).scalar()
    finally:
        pms.close()
    assert "STRICT_ALL_TABLES" in session.split(","), (session, modes)


# -- f14: a REST item with a lone surrogate escape -----------------------------------------


def test_rest_an_item_with_a_lone_surrogate_is_quarantined_the_page_syncs(
    api: Callable[[Handler], str], tmp_path: Path
) -> None:
    """``"Caf\\ud83d"`` (an emoji cut in half) is valid JSON that orjson refuses: the
    page still parses, that one item is quarantined with the field and the reason, the
    others sync, and the next run is not stopped either."""
    items = [
        {"id": 1, "name": "Good", "updated_at": "2026-01-01T00:00:00Z"},
        {"id": 2, "name": "Caf\ud83d", "updated_at": "2026-01-01T00:00:00Z"},
        {"id": 3, "name": "Also good", "updated_at": "2026-01-01T00:00:00Z"},
    ]

    def answer(query: dict[str, str]) -> bytes:
        start, limit = int(query.get("since", "0")), int(query.get("limit", "100"))
        page = items[start : start + limit]
        end = start + len(page)
        body = {"items": page, "next": str(end), "has_more": end < len(items)}
        return json.dumps(body).encode()  # ensure_ascii: the surrogate as \\ud83d

    base_url = api(answer)
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  shop:
    kind: rest
    base_url: {base_url}
    auth: none
    entity_types: {{Customer: {{path: customers}}}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: shop.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
"""
    for run in range(2):
        with Engine(parse_config(config).config) as engine:
            report = engine.sync().to_dict()
            dead = engine.store().dead_letters()
        assert report["status"] != "failed", report["messages"]
        assert report["errors"] == (1 if run == 0 else 0)  # read again only when changed
        names = sorted(a["name"] for a in dataset("erp").records("Account").values())
        assert names == ["Also good", "Good"]
        assert [d["ref"] for d in dead] == ["shop:Customer:2"]
        assert "name contains an unpaired surrogate" in dead[0]["reason"]


# -- f23: a SQLite row whose text is not UTF-8 ---------------------------------------------


def test_sqlite_a_latin1_row_is_quarantined_the_table_syncs(tmp_path: Path) -> None:
    """One name stored as Latin-1 bytes (``b'Caf\\xe9'``) by a legacy program: the table
    is read all the same, that row is quarantined with a reason naming the column, the
    other rows sync (it was reported as "a lock, a deadlock or a timeout" and the whole
    table was never read)."""
    import sqlite3

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.execute(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, "
            "updated_at TIMESTAMP)"
        )
        stamp = "2026-01-01 00:00:00"
        db.execute("INSERT INTO customer (name, updated_at) VALUES ('Good', ?)", (stamp,))
        db.execute(
            "INSERT INTO customer (name, updated_at) VALUES (CAST(? AS TEXT), ?)",
            (b"Caf\xe9", stamp),
        )
        db.execute("INSERT INTO customer (name, updated_at) VALUES ('Good 2', ?)", (stamp,))
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  pms:
    kind: sql
    url: "sqlite:///{tmp_path / "pms.db"}"
    entity_types: {{Customer: {{table: customer, id: id, updated: updated_at}}}}
  crm: {{kind: memory, entity_types: {{Company: {{external_ref: ext}}}}}}
dataflows:
  - source: pms.Customer
    target: crm.Company
    properties:
      - {{from: name, to: name, type: string}}
"""
    with Engine(parse_config(config).config) as engine:
        report = engine.sync().to_dict()
        dead = engine.store().dead_letters()
    assert report["status"] != "failed", report["messages"]
    assert report["created"] == 2 and report["errors"] == 1
    names = sorted(c["name"] for c in dataset("crm").records("Company").values())
    assert names == ["Good", "Good 2"]
    assert [d["ref"] for d in dead] == ["pms:Customer:2"]
    assert "customer.name" in dead[0]["reason"] and "not UTF-8" in dead[0]["reason"]
    assert "Caf\\xe9" in dead[0]["reason"]


# -- f10: a flag written back in the source's own spelling ---------------------------------


@pytest.mark.parametrize(
    ("yes", "no"), [("yes", "no"), ("Y", "N"), ("On", "Off"), ("1", "0"), (1, 0)]
)
def test_a_boolean_flows_back_in_the_spelling_the_source_uses(
    tmp_path: Path, yes: Any, no: Any
) -> None:
    """A source keeps a flag as "yes"/"no" (or "Y"/"N", 1/0), mapped as a boolean: an
    edit in the target comes back in that spelling, not as "false"."""
    kind = "string" if isinstance(yes, str) else "integer"
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  crm: {{kind: memory, entity_types: {{Customer: {{properties: {{name: {{type: string}},
                                                           active: {{type: {kind}}}}}}}}}}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext, properties: {{
         name: {{type: string}}, active: {{type: boolean}}}}}}}}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: active, to: active, type: boolean}}
"""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Customer", {"name": "Acme", "active": yes})
    crm.insert("Customer", {"name": "Beta", "active": no})
    _sync(config)
    accounts = {a["name"]: rid for rid, a in erp.records("Account").items()}
    erp.edit("Account", accounts["Acme"], {"active": False})
    erp.edit("Account", accounts["Beta"], {"active": True})
    _sync(config)
    assert [c["active"] for c in crm.records("Customer").values()] == [no, yes]
    assert _sync(config)["updated"] == 0  # and it stays so


def test_rest_an_api_that_does_not_page_is_read_once(api: Callable[[Handler], str]) -> None:
    """An API that ignores the page parameter and answers everything every time: the
    second answer repeats the first (a short one), so the read ends there, each record
    read once (a full first page repeated is still refused: more cannot be reached)."""
    from samband.config.model import SystemConfig
    from samband.kinds.rest.connector import RestConnector

    rows = [{"id": i, "updated_at": "2026-01-01T00:00:00Z"} for i in range(5)]
    asked: list[dict[str, str]] = []

    def answer(query: dict[str, str]) -> bytes:
        asked.append(query)
        return json.dumps({"items": rows}).encode()

    base_url = api(answer)
    config = SystemConfig.model_validate(
        {
            "kind": "rest",
            "base_url": base_url,
            "auth": "none",
            "entity_types": {"Thing": {"path": "things", "paging": "page", "incremental": False}},
        }
    )
    connector = RestConnector("shop", config, {})
    try:
        ids = [r.id for page in connector.read("Thing", None) for r in page.records]
    finally:
        connector.close()
    assert ids == ["0", "1", "2", "3", "4"]
    assert [q.get("page") for q in asked] == ["1", "2"]


def test_sqlite_a_latin1_row_asked_for_alone_is_a_record_error(tmp_path: Path) -> None:
    """The same row asked for by id (a check before an update, a refresh) is that
    record's error with the reason, never a record whose text was changed."""
    import sqlite3

    from samband.errors import RecordError

    with sqlite3.connect(tmp_path / "pms.db") as db:
        db.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customer VALUES (1, CAST(? AS TEXT))", (b"Caf\xe9",))
        db.execute("INSERT INTO customer VALUES (2, 'Good')")
    pms = _sql_connector(
        f"sqlite:///{tmp_path / 'pms.db'}", {"Customer": {"table": "customer", "id": "id"}}
    )
    try:
        with pytest.raises(RecordError, match=r"customer\.name .*not UTF-8"):
            pms.get("Customer", "1")
        good = pms.get("Customer", "2")
        assert good is not None and good.data["name"] == "Good"
    finally:
        pms.close()
