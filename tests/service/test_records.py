"""Finding records: by ref, by a bare id, by a value (a name, an e-mail, an org number)
from the Python API, the CLI, the page and the JSON API; queries with SQL wildcards,
quotes and letters beyond ASCII find exactly what holds them; the result is bounded; a
store made before the search terms gets them when it is migrated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from samband.cli import app
from samband.config.validate import load_valid
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset
from samband.service import Service, create_app
from samband.service.access import Access
from samband.store import schema as s
from samband.store.search import fold, terms_of
from samband.store.store import Store
from tests.support.docs_examples import DOCS, block_after
from tests.support.service import USERS, VIEWER_PASSWORD, TestClient
from tests.support.service import login as _login
from tests.support.service import world as _world

NAMES = [
    "Acme AS",
    "100% Rabatt AS",
    "O'Brien & Sønner",
    "Ærlig Øl ÅS",
    "Fjord_AS",
    "ＦＵＬＬ Width AS",
]


def _customers() -> str:
    records = {
        str(i): {
            "data": {"id": i, "name": name, "org": f"912 345 6{i:02d}", "mail": f"Post{i}@X.no"},
            "version": 1,
            "modified": "2026-01-01T00:00:00+00:00",
            "deleted": False,
        }
        for i, name in enumerate(NAMES, 1)
    }
    return json.dumps({"version": 1, "types": {"Customer": records}})


def _mailed_world(folder: Path) -> Path:
    """The world of the service tests with the e-mail mapped too (the store keeps the
    mapped properties: those are what a search finds)."""
    config = _world(folder, crm=_customers())
    mapped = "      - {from: org, to: org, type: string}\n"
    text_ = config.read_text(encoding="utf-8")
    config.write_text(
        text_.replace(mapped, mapped + "      - {from: mail, to: mail, type: string}\n"),
        encoding="utf-8",
    )
    return config


@pytest.fixture
def synced(tmp_path: Path) -> Path:
    config = _mailed_world(tmp_path)
    with Engine(load_valid(config).config) as engine:
        assert engine.sync().status == "ok"
    return config


def _found(config: Path, query: str, limit: int = 10) -> list[str]:
    with Inspector.from_file(config) as inspector:
        return [group["found"] for group in inspector.find(query, limit)["groups"]]


def test_a_value_finds_its_group_with_the_values_side_by_side_and_the_writes(
    synced: Path,
) -> None:
    with Inspector.from_file(synced) as inspector:
        found = inspector.find("acme")
    [group] = found["groups"]
    assert group["found"].startswith("crm:Customer:1") or group["found"].startswith("erp:")
    refs = [member["ref"] for member in group["members"]]
    assert "crm:Customer:1" in refs and any(ref.startswith("erp:Account:") for ref in refs)
    [link] = group["links"]
    name = next(p for p in link["properties"] if p["source_property"] == "name")
    assert name["source_value"] == name["target_value"] == name["agreed"] == "Acme AS"
    assert [write["op"] for write in group["history"]] == ["create"]
    assert group["history"][0]["after"]["name"] == "Acme AS"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("crm:Customer:3", "crm:Customer:3"),  # a ref
        ("4", "crm:Customer:4"),  # a bare id, in whatever system holds it
        ("o'brien", "crm:Customer:3"),  # a quote is a character, not SQL
        ("100%", "crm:Customer:2"),  # % and _ are characters, not wildcards
        ("fjord_", "crm:Customer:5"),
        ("ærlig øl", "crm:Customer:4"),  # case folded beyond ASCII
        ("ÆRLIG ØL ÅS", "crm:Customer:4"),
        ("full width", "crm:Customer:6"),  # full-width letters are letters
        ("912345603", "crm:Customer:3"),  # an org number without its spaces
        ("912 345 603", "crm:Customer:3"),
        ("POST5@x.NO", "crm:Customer:5"),  # an e-mail, any case
    ],
)
def test_a_query_finds_exactly_what_holds_it(synced: Path, query: str, expected: str) -> None:
    found = _found(synced, query)
    assert len(found) == 1, found
    members = Inspector.from_file(synced).find(query)["groups"][0]["members"]
    assert expected in [member["ref"] for member in members]


@pytest.mark.parametrize("query", ["%", "_", "%%", "' OR 1=1 --", "a%", "zzz", "'", "\\"])
def test_wildcards_and_injections_find_nothing(synced: Path, query: str) -> None:
    assert _found(synced, query) == []


def test_the_result_is_bounded(synced: Path) -> None:
    with Inspector.from_file(synced) as inspector:
        found = inspector.find("912", limit=2)
        assert len(found["groups"]) == 2 and found["truncated"]
        every = inspector.find("912", limit=50)
    assert len(every["groups"]) == len(NAMES) and not every["truncated"]
    with pytest.raises(ValueError, match="say what to look for"):
        Inspector.from_file(synced).find("  ")


def test_an_edit_moves_the_terms_and_a_deletion_drops_them(synced: Path) -> None:
    dataset("crm").edit("Customer", "1", {"name": "Zenith Holding"})
    dataset("crm").remove("Customer", "2")
    with Engine(load_valid(synced).config) as engine:
        assert engine.sync().status == "ok"
    with Inspector.from_file(synced) as inspector:
        acme = [m["ref"] for g in inspector.find("acme")["groups"] for m in g["members"]]
        zenith = [m["ref"] for g in inspector.find("zenith")["groups"] for m in g["members"]]
        gone = [m["ref"] for g in inspector.find("100%")["groups"] for m in g["members"]]
    assert "crm:Customer:1" in zenith and "crm:Customer:1" not in acme
    assert "crm:Customer:2" not in gone  # deleted: its terms went


def test_terms_fold_case_width_and_spaces() -> None:
    assert fold("  Ærlig   ØL ") == "ærlig øl"
    assert terms_of(
        {"org": "912 345 678", "n": 12345, "ok": True, "x": None, "d": {"c": "Oslo"}}
    ) == {
        "912 345 678",
        "912345678",
        "12345",
        "oslo",
    }


def test_the_page_and_the_api_find_records_for_a_viewer_only(synced: Path) -> None:
    service = Service(synced, every=3600)
    client = TestClient(create_app(service, Access({"SAMBAND_USERS": USERS}), manage_service=False))
    page = client.get("/records?q=acme", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/api/records?q=acme").status_code == 401
    _login(client, "vic", VIEWER_PASSWORD)
    page = client.get("/records", params={"q": "<script>alert(1)</script>"})
    assert page.status_code == 200 and "<script>alert(1)</script>" not in page.text
    page = client.get("/records", params={"q": "Acme"})
    assert 'class="pair"' in page.text and "Acme AS" in page.text and "crm:Customer:1" in page.text
    found = client.get("/api/records", params={"q": "o'brien"}).json()
    assert [g["found"] for g in found["groups"]] == ["crm:Customer:3"]
    assert client.get("/api/records", params={"q": ""}).status_code == 400
    assert client.get("/api/records/crm:Customer:1").status_code == 200  # by ref, as before
    service.stop()


def test_records_find_on_the_command_line(synced: Path) -> None:
    result = CliRunner().invoke(app, ["records", "find", "ærlig", "-c", str(synced), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["groups"][0]["found"] == "crm:Customer:4"
    shown = CliRunner().invoke(app, ["records", "find", "Acme", "-c", str(synced)])
    assert shown.exit_code == 0 and "Acme AS" in shown.stdout
    none = CliRunner().invoke(app, ["records", "find", "nothing-like-it", "-c", str(synced)])
    assert none.exit_code == 0 and "no record" in none.stdout
    systems = CliRunner().invoke(app, ["systems", "-c", str(synced), "--json"])
    assert {row["system"]: row["health"] for row in json.loads(systems.stdout)} == {
        "crm": "connected",
        "erp": "connected",
    }


def test_a_store_from_before_gets_the_terms_of_its_records(synced: Path) -> None:
    store_url = f"sqlite:///{synced.parent / 'state.db'}"
    store = Store(store_url)
    with store.tx() as conn:
        conn.execute(text("DROP TABLE samband_search_terms"))
        conn.execute(text("DROP TABLE samband_search_queue"))
        conn.execute(s.schema_version.update().values(version=8))
    store.close()
    assert _found(synced, "o'brien") == ["crm:Customer:3"]  # opening it migrated it


def test_records_are_found_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    config = _mailed_world(tmp_path)
    text_ = config.read_text(encoding="utf-8").replace("sqlite:///state.db", postgres_url)
    config.write_text(text_, encoding="utf-8")
    with Engine(load_valid(config).config) as engine:
        assert engine.sync().status == "ok"
    with Inspector.from_file(config) as inspector:
        [group] = inspector.find("ærlig")["groups"]
        assert "crm:Customer:4" in [member["ref"] for member in group["members"]]
        assert inspector.find("%")["groups"] == []
        assert len(inspector.find("100%")["groups"]) == 1
        assert len(inspector.find("912345603")["groups"]) == 1
        assert len(inspector.find("912", limit=50)["groups"]) == len(NAMES)


def test_the_service_makes_the_terms_of_each_run_after_it(tmp_path: Path) -> None:
    service = Service(_mailed_world(tmp_path), every=3600)
    with TestClient(create_app(service)):
        assert service.scheduler.wait_runs(1, timeout=60)
        assert service.read("index_search", None) == 0  # nothing left queued
        store = Store(f"sqlite:///{tmp_path / 'state.db'}")
        terms = store.conn.execute(text("SELECT count(*) FROM samband_search_terms")).scalar()
        store.close()
    assert terms and terms > len(NAMES)


def test_the_python_example_of_the_records_section_runs(
    synced: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(synced.parent)
    example = block_after(DOCS / "service.md", "## Finding a record", "python")
    exec(compile(example.code, example.where, "exec"), {})
    printed = capsys.readouterr().out
    assert "customers name Acme AS Acme AS" in printed and "1 writes" in printed
