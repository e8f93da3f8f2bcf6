"""`samband check` against every sandbox and SQL database: a system that is reachable and
takes the credentials is ok, with one record read per type in use; wrong credentials, a
port nobody listens on and a mapped field the system does not have each fail with what
to do, and the exit code says so (0 ok, 1 failed, 2 a config error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samband.check import check_config
from samband.cli import app
from samband.config.starter import starter_text
from samband.demo import resolved, token_key
from samband.kinds.sql.demo import create_pms_schema
from samband.plugin import get_kind
from tests.support.sandbox import serve

SANDBOX_KINDS = ["poweroffice-go", "webcrm", "rest", "crmoffice", "exact-online"]
SECRETS = {  # a credential of each kind, set wrong
    "poweroffice-go": "POWEROFFICE_CLIENT_KEY",
    "webcrm": "WEBCRM_API_TOKEN",
    "rest": "CUSTOMCRM_TOKEN",
}
BASE_URLS = {
    "poweroffice-go": ("POWEROFFICE_BASE_URL", "/v2"),
    "webcrm": ("WEBCRM_BASE_URL", ""),
    "rest": ("CUSTOMCRM_BASE_URL", ""),
    "crmoffice": ("CRMOFFICE_BASE_URL", ""),
    "exact-online": ("EXACT_BASE_URL", ""),
}


class World:
    """One kind's sandbox and a SQLite custom PMS, with a starter config of the two."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder = kind, folder
        descriptor = get_kind(kind)
        hooks = descriptor.demo_hooks()
        self.box = descriptor.create_sandbox(**hooks.sandbox_options)
        self.box.seed(3, 1)
        self.server = serve(self.box)
        assert hooks.environ is not None
        self.environ = hooks.environ(self.server.url)
        create_pms_schema(f"sqlite:///{folder / 'pms.db'}")
        self.environ["PMS_URL"] = "sqlite:///pms.db"
        self.path = folder / "samband.yaml"
        self.path.write_text(starter_text([kind, "sql"]), encoding="utf-8")
        self.state_dir = str(folder / ".samband")

    def login(self) -> None:
        from samband.config import load_config

        hooks = get_kind(self.kind).demo_hooks()
        if hooks.login is not None:
            config = resolved(load_config(self.path), self.environ)
            system_id = next(iter(config.systems))
            hooks.login(system_id, config, self.box, Path(self.state_dir), self.environ)

    def check(self, **changes: str) -> dict[str, object]:
        report = check_config(
            self.path, environ={**self.environ, **changes}, state_dir=self.state_dir
        )
        return report.as_dict()

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(params=SANDBOX_KINDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with token_key():
        found = World(request.param, tmp_path)
        try:
            found.login()
            yield found
        finally:
            found.close()


def _system(report: dict[str, object], index: int = 0) -> dict[str, object]:
    systems = report["systems"]
    assert isinstance(systems, list)
    return systems[index]  # type: ignore[no-any-return]


def test_a_reachable_system_is_ok_with_one_record_read(world: World) -> None:
    report = world.check()
    assert report["ok"] is True, report
    kind_system, pms = _system(report, 0), _system(report, 1)
    assert kind_system["kind"] == world.kind
    (found,) = kind_system["types"]  # type: ignore[misc]
    assert found["status"] == "ok" and found["sampled"] is True  # the sandbox holds records
    (table,) = pms["types"]  # type: ignore[misc]
    assert table["status"] == "ok" and table["sampled"] is False  # an empty table reads fine


def test_a_port_nobody_listens_on_fails_with_what_to_do(world: World) -> None:
    name, suffix = BASE_URLS[world.kind]
    report = world.check(**{name: "http://127.0.0.1:1" + suffix})
    assert report["ok"] is False
    system = _system(report)
    assert system["status"] == "failed"
    assert "cannot connect" in str(system["message"]) or "127.0.0.1:1" in str(system["message"])
    assert system["hint"]
    assert [t["status"] for t in system["types"]] == ["skipped"]  # type: ignore[union-attr]
    assert _system(report, 1)["status"] == "ok"  # the other system is still checked


def test_wrong_credentials_fail_without_showing_them(world: World) -> None:
    if world.kind not in SECRETS:
        pytest.skip("an OAuth kind: its wrong credentials are a missing login (next test)")
    wrong = "wrong-secret-4711"
    report = world.check(**{SECRETS[world.kind]: wrong})
    system = _system(report)
    assert system["status"] == "failed", system
    assert system["hint"]
    assert wrong not in json.dumps(report)


@pytest.mark.parametrize("kind", ["crmoffice", "exact-online"])
def test_an_oauth_system_never_logged_in_says_to_log_in(kind: str, tmp_path: Path) -> None:
    with token_key():
        found = World(kind, tmp_path)
        try:
            system = _system(found.check())
        finally:
            found.close()
    assert system["status"] == "failed"
    assert "samband auth" in f"{system['message']} {system['hint']}"


def test_a_mapped_field_the_records_do_not_have_fails(tmp_path: Path) -> None:
    """A REST type without a declared schema: only a record read shows the field is not
    there (validate cannot know)."""
    with token_key():
        found = World("rest", tmp_path)
        try:
            text = found.path.read_text(encoding="utf-8")
            start = text.index("        properties:")
            end = text.index("\n\n", start)
            text = text[:start] + text[end:]  # an open schema
            found.path.write_text(text.replace("{from: name,", "{from: nmae,"), encoding="utf-8")
            system = _system(found.check())
        finally:
            found.close()
    (crm_type,) = system["types"]  # type: ignore[misc]
    assert crm_type["status"] == "failed"
    assert crm_type["missing_fields"] == ["nmae"]
    assert system["status"] == "failed"


@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_sql_servers(server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(server)
    create_pms_schema(url)
    (tmp_path / "c.yaml").write_text(starter_text(["sql"]), encoding="utf-8")
    ok = check_config(tmp_path / "c.yaml", environ={"PMS_URL": url})
    assert ok.ok, ok.as_dict()
    assert [t.status for t in ok.systems[0].types] == ["ok"]
    port = "5432" if server == "postgres_url" else "3306"
    down = check_config(tmp_path / "c.yaml", environ={"PMS_URL": url.replace(port, "1", 1)})
    assert down.systems[0].status == "failed"
    assert down.systems[0].hint


def test_the_command_exits_0_1_and_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with token_key():
        found = World("rest", tmp_path)
        try:
            for name, value in found.environ.items():
                monkeypatch.setenv(name, value)
            monkeypatch.chdir(tmp_path)  # samband.yaml is found without -c
            runner = CliRunner()
            ok = runner.invoke(app, ["check", "--json"])
            assert ok.exit_code == 0, ok.output
            assert json.loads(ok.stdout)["ok"] is True
            monkeypatch.setenv("CUSTOMCRM_TOKEN", "wrong")
            failed = runner.invoke(app, ["check", "crm"])
            assert failed.exit_code == 1
            assert "crm (rest): FAILED" in failed.output
            unknown = runner.invoke(app, ["check", "crn"])
            assert unknown.exit_code == 2
            assert "there is no system 'crn'" in unknown.output
        finally:
            found.close()
