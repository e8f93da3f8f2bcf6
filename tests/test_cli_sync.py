"""The sync commands of the CLI on memory systems persisted to JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.kinds.memory.connector import MemoryDataset, forget_dataset

CONFIG = """
store: sqlite:///state.db
systems:
  crm:
    kind: memory
    label: CRM
    path: crm.json
    entity_types: {Customer: {external_ref: ext}}
  erp:
    kind: memory
    label: ERP
    path: erp.json
    entity_types:
      Account:
        external_ref: ext
        properties: {name: {type: string, max_length: 10}, org: {type: string}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("crm-file")
    crm.insert("Customer", {"name": "Acme", "org": "912345678"})
    crm.insert("Customer", {"name": "Far too long a name", "org": "987654321"})
    crm.save(str(tmp_path / "crm.json"))
    erp = MemoryDataset("erp-file")
    erp.insert("Account", {"name": "Other", "org": "111"})
    erp.save(str(tmp_path / "erp.json"))
    return tmp_path


def run(workdir: Path, *args: str) -> tuple[int, str]:
    for name in ("crm", "erp"):
        forget_dataset(name)  # each command is a new process for the memory systems
    result = runner.invoke(app, [*args, "-c", str(workdir / "samband.yaml")])
    return result.exit_code, result.output


def test_sync_json_and_inspection_commands(workdir: Path) -> None:
    code, output = run(workdir, "sync", "--json")
    assert code == 0, output
    report = json.loads(output)
    for key in ("created", "updated", "deleted", "linked", "conflicts", "errors", "api_calls"):
        assert isinstance(report[key], int)
    assert report["created"] == 1 and report["errors"] == 1
    assert report["dataflows"]["crm.Customer->erp.Account"]["created"] == 1
    accounts = json.loads((workdir / "erp.json").read_text())["types"]["Account"]
    assert {a["data"]["name"] for a in accounts.values()} == {"Other", "Acme"}

    code, output = run(workdir, "errors", "--json")
    (letter,) = json.loads(output)
    assert letter["ref"] == "crm:Customer:2" and "at most 10" in letter["reason"]

    code, output = run(workdir, "links", "crm:Customer:1", "--json")
    members = {row["ref"] for row in json.loads(output)}
    assert members == {"crm:Customer:1", "erp:Account:2"}

    code, output = run(workdir, "history", "erp:Account:2", "--json")
    (entry,) = json.loads(output)
    assert entry["op"] == "create" and entry["after"]["name"] == "Acme"

    code, output = run(workdir, "status", "--json")
    status = json.loads(output)
    assert status["quarantined"] == 1 and status["runs"][0]["created"] == 1

    code, output = run(workdir, "sync", "--json")
    assert json.loads(output)["created"] == 0 and json.loads(output)["updated"] == 0


def test_retry_after_fixing_the_source(workdir: Path) -> None:
    run(workdir, "sync", "--json")
    crm = json.loads((workdir / "crm.json").read_text())
    crm["types"]["Customer"]["2"]["data"]["name"] = "Fixed"
    (workdir / "crm.json").write_text(json.dumps(crm))
    code, output = run(workdir, "retry", "crm:Customer:2")
    assert code == 0 and "1 record(s) queued" in output
    code, output = run(workdir, "sync", "--json")
    assert json.loads(output)["created"] == 1
    code, output = run(workdir, "errors", "--json")
    assert json.loads(output) == []


def test_dry_run_prints_the_plan_and_changes_nothing(workdir: Path) -> None:
    before = (workdir / "erp.json").read_text()
    code, output = run(workdir, "sync", "--dry-run")
    assert code == 0, output
    assert "dry run: nothing was written" in output
    assert "create erp.Account from crm:Customer:1" in output
    assert (workdir / "erp.json").read_text() == before
    code, output = run(workdir, "status", "--json")
    assert json.loads(output)["runs"] == []


def test_conflicts_command_shows_both_values(workdir: Path) -> None:
    run(workdir, "sync")
    crm = json.loads((workdir / "crm.json").read_text())
    erp = json.loads((workdir / "erp.json").read_text())
    crm["types"]["Customer"]["1"]["data"]["name"] = "CRM side"
    crm["types"]["Customer"]["1"]["version"] = crm["version"] = crm["version"] + 10
    crm["types"]["Customer"]["1"]["modified"] = "2030-01-01T00:00:00+00:00"
    erp_id = next(k for k, v in erp["types"]["Account"].items() if v["data"]["name"] == "Acme")
    erp["types"]["Account"][erp_id]["data"]["name"] = "ERP side"
    erp["types"]["Account"][erp_id]["version"] = erp["version"] = erp["version"] + 10
    erp["types"]["Account"][erp_id]["modified"] = "2029-01-01T00:00:00+00:00"
    (workdir / "crm.json").write_text(json.dumps(crm))
    (workdir / "erp.json").write_text(json.dumps(erp))
    code, output = run(workdir, "sync", "--json")
    assert code == 0 and json.loads(output)["conflicts"] == 1
    code, output = run(workdir, "conflicts", "--json")
    assert code == 0
    (conflict,) = json.loads(output)
    assert (conflict["source_value"], conflict["target_value"]) == ("CRM side", "ERP side")
    assert conflict["winner"] == "source"


def test_sync_with_a_broken_config_exits_2_with_positions(workdir: Path) -> None:
    broken = CONFIG.replace("target: erp.Account", "target: erp.Acount")
    (workdir / "samband.yaml").write_text(broken)
    code, output = run(workdir, "sync")
    assert code == 2
    assert "samband.yaml:" in output and "did you mean 'Account'" in output


def test_run_every_parses_intervals() -> None:
    from samband.engine.run import parse_interval

    assert parse_interval("30s") == 30 and parse_interval("5m") == 300
    assert parse_interval("1h") == 3600 and parse_interval("250ms") == 0.25
    with pytest.raises(ValueError, match="not an interval"):
        parse_interval("often")


def test_run_every_stops_cleanly_on_ctrl_c(workdir: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "samband.cli",
            "run",
            "-c",
            str(workdir / "samband.yaml"),
            "--every",
            "1h",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())  # the first run's report
        assert first["created"] == 1 and first["status"] == "ok"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    # the lease was released: another run can start at once
    code, output = run(workdir, "sync", "--json")
    assert code == 0 and json.loads(output)["created"] == 0


def test_worker_reads_while_another_process_plans_then_takes_over(workdir: Path) -> None:
    import os
    import subprocess
    import sys

    from samband.engine.leases import RUN_LEASE as LEASE
    from samband.store.store import Store

    holder = f"{os.uname().nodename}:{os.getpid()}:test"  # a live process on this machine
    store = Store("sqlite:///state.db", base_dir=str(workdir))
    assert store.acquire_lease(LEASE, holder, 600)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "samband.cli",
            "worker",
            "-c",
            str(workdir / "samband.yaml"),
            "--every",
            "0.1s",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        # it reads, and leaves the plan to the process that holds the run lease
        report = json.loads(process.stdout.readline())
        assert report["status"] == "collected" and report["created"] == 0
        assert report["collected"]["crm.Customer"]["changed"] == 2
        store.release_lease(LEASE, holder)
        while report["status"] == "collected":
            report = json.loads(process.stdout.readline())
        assert report["status"] == "ok" and report["created"] == 1
    finally:
        process.kill()
        store.close()


def test_credentials_come_from_the_keyring_when_the_environment_lacks_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keyring
    from keyring.backend import KeyringBackend

    from samband.config.env import resolve

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store: dict[tuple[str, str], str] = {("samband", "CRM_TOKEN"): "from-the-keyring"}

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.store.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        assert resolve("${CRM_TOKEN}", {}) == "from-the-keyring"
        assert resolve("${CRM_TOKEN}", {"CRM_TOKEN": "from-env"}) == "from-env"
        with pytest.raises(Exception, match="OTHER is not set"):
            resolve("${OTHER}", {})
    finally:
        keyring.set_keyring(previous)


def test_sync_stops_while_a_worker_reads_a_type_and_goes_on_after(workdir: Path) -> None:
    import os

    from samband.engine.leases import collect_lease
    from samband.store.store import Store

    assert run(workdir, "sync", "--lease-wait", "0s")[0] == 0  # the store exists
    store = Store("sqlite:///state.db", base_dir=str(workdir))
    worker = f"{os.uname().nodename}:1:worker"  # pid 1 on this machine: alive
    try:
        assert store.acquire_lease(collect_lease("erp", "Account"), worker, 600)
        code, output = run(workdir, "sync", "--lease-wait", "0s")
        assert code == 1
        assert "erp.Account: being read by another samband worker" in output
        store.release_lease(collect_lease("erp", "Account"), worker)
        assert run(workdir, "sync", "--lease-wait", "0s")[0] == 0
    finally:
        store.close()
    code, output = run(workdir, "sync", "--lease-wait", "soon")
    assert code == 2 and "--lease-wait" in output


def test_sync_with_max_chunks_yields_and_the_next_run_goes_on(workdir: Path) -> None:
    code, output = run(workdir, "sync", "--json", "--max-chunks", "1")
    first = json.loads(output.splitlines()[0])
    assert code == 0 and first["status"] == "yielded"
    assert any("stay queued" in message for message in first["messages"])
    code, output = run(workdir, "sync", "--json")
    assert code == 0 and json.loads(output.splitlines()[0])["status"] == "ok"
    code, output = run(workdir, "sync", "--max-time", "soon")
    assert code == 2 and "--max-time" in output
