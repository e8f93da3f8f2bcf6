"""``samband demo`` and bad input around the shipped config.

* ``run_demo`` with a few records: every seed section passes, ``summary.json`` has one
  entry per section with its counts, the documents are there as RST and HTML, every
  sandbox is stopped, and nothing is left in the work folder.
* A port in use: one clear error naming the system, nothing written.
* ``samband sync`` with a system whose sandbox is not running, and with wrong
  credentials: one message naming the system, a non-zero exit, nothing written.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from rich.console import Console
from typer.testing import CliRunner

from samband.cli import app
from samband.demo import EXAMPLE, SEEDS, DemoError, run_demo
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.kinds.rest.sandbox import CustomCrmSandbox

pytestmark = pytest.mark.xdist_group("demo")


def sandbox_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sandbox:") and t.is_alive()]


def test_run_demo_writes_summary_and_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sandbox_threads()
    output = tmp_path / "demo-output"
    console = Console(file=io.StringIO(), width=120)
    # relative, as `make demo` passes it: the config lives in another folder
    monkeypatch.chdir(tmp_path)
    assert run_demo(Path(output.name), records=12, console=console) is True

    summary = json.loads((output / "summary.json").read_text())
    sections = summary["sections"]
    expected = [key for _, flows in SEEDS.values() for key in flows]
    assert [s["dataflow"] for s in sections] == expected
    for section in sections:
        assert section["status"] == "ok", section
        assert section["checks"] and all(c["passed"] for c in section["checks"]), section
        assert section["third_run_writes"] == 0
        for run in ("first_run", "second_run"):
            assert set(section[run]) >= {"created", "updated", "linked", "conflicts", "errors"}
    by_key = {s["dataflow"]: s for s in sections}
    # merge criteria found the deliberate overlaps
    assert by_key["crm.Customer->poweroffice.Customers"]["first_run"]["linked"] >= 1
    assert by_key["poweroffice.Contactperson->webcrm.Persons"]["first_run"]["linked"] >= 1
    # the conflicting edit and the record the target cannot hold
    assert by_key["crm.Customer->poweroffice.Customers"]["second_run"]["conflicts"] >= 1
    assert by_key["poweroffice.Departments->webcrm.Organisations"]["second_run"]["errors"] == 1
    assert summary["runs"]["third"]["created"] == summary["runs"]["third"]["updated"] == 0
    # samband qa ran every section it can (Exact's read-only types it cannot create in)
    assert summary["qa"]["passed"] is True
    for section in sections:
        read_only = section["dataflow"].startswith(("exact.Departments", "exact.Divisions"))
        assert section["qa"] == ("skipped" if read_only else "passed"), section["dataflow"]
    assert len(list((output / "qa").glob("qa-*.html"))) == 5

    docs = sorted(p.name for p in (output / "docs").iterdir())
    stems = ["crm-poweroffice", "crmoffice-poweroffice", "exact-pms"]
    stems += ["poweroffice-pms", "poweroffice-webcrm"]
    assert docs == sorted([f"{s}.html" for s in stems] + [f"{s}.rst" for s in stems])
    assert (
        "Customcrm to Powerofficego Dataflow" in (output / "docs/crm-poweroffice.rst").read_text()
    )
    assert not (output / ".partial").exists()
    assert (output / "samband.db").exists() and (output / "pms.db").exists()
    assert sandbox_threads() == before


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_port_in_use_is_one_clear_error_and_nothing_is_written(
    tmp_path: Path, busy_port: int
) -> None:
    before = sandbox_threads()
    output = tmp_path / "demo-output"
    with pytest.raises(DemoError) as caught:
        run_demo(
            output, records=3, console=Console(file=io.StringIO()), ports={"webcrm": busy_port}
        )
    message = str(caught.value)
    assert "webcrm" in message and str(busy_port) in message
    assert not output.exists()
    assert sandbox_threads() == before


def test_the_cli_demo_reports_a_port_in_use(tmp_path: Path, busy_port: int) -> None:
    """Through ``samband demo``: exit code 1 and one ``error:`` line."""
    import samband.demo as demo

    original = demo.run_demo

    def with_port(output: Path, records: int = 200, console: Any = None) -> bool:
        return original(output, records=records, console=console, ports={"crm": busy_port})

    demo.run_demo = with_port  # type: ignore[assignment]
    try:
        result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "out"), "--records", "2"])
    finally:
        demo.run_demo = original  # type: ignore[assignment]
    assert result.exit_code == 1
    assert "Starting the sandboxes" in result.output and "[bold]" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "crm" in errors[0]
    assert not (tmp_path / "out").exists()


# -- samband sync with bad input --------------------------------------------------------
def seed_002_config(folder: Path) -> Path:
    """The custom CRM → PowerOffice GO part of the shipped config, as its own file."""
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["systems"] = {k: v for k, v in data["systems"].items() if k in ("crm", "poweroffice")}
    data["dataflows"] = [f for f in data["dataflows"] if f["source"].startswith("crm.")]
    path = folder / "samband.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    crm, po = CustomCrmSandbox(), PowerOfficeSandbox()
    crm.seed(3, 1)
    po.seed(3, 2)
    crm_server, po_server = crm.serve(), po.serve()
    try:
        yield {"crm": crm, "po": po, "crm_url": crm_server.url, "po_url": po_server.url}
    finally:
        crm_server.stop()
        po_server.stop()


def environ(servers: dict[str, Any], **changes: str) -> dict[str, str]:
    env = {
        "CUSTOMCRM_BASE_URL": servers["crm_url"],
        "CUSTOMCRM_TOKEN": "sandbox-token",
        "POWEROFFICE_BASE_URL": servers["po_url"] + "/v2",
        "POWEROFFICE_APPLICATION_KEY": "sandbox-application-key",
        "POWEROFFICE_CLIENT_KEY": "sandbox-client-key",
        "POWEROFFICE_SUBSCRIPTION_KEY": "sandbox-subscription-key",
        "POWEROFFICE_RATE_LIMIT": "1000",
        "SAMBAND_TOKEN_KEY": Fernet.generate_key().decode(),
    }
    env.update(changes)
    return env


def counts(servers: dict[str, Any]) -> tuple[int, ...]:
    po, crm = servers["po"], servers["crm"]
    return (
        len(po.records("Customers")),
        len(po.records("ContactPersons")),
        len(po.records("Products")),
        len(crm.records("Customer")),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sync_with_a_sandbox_that_is_not_running(tmp_path: Path, servers: dict[str, Any]) -> None:
    config = seed_002_config(tmp_path)
    before = counts(servers)
    dead = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["sync", "-c", str(config)], env=environ(servers, CUSTOMCRM_BASE_URL=dead)
    )
    assert result.exit_code != 0
    reasons = [line for line in result.output.splitlines() if line.startswith("error: system '")]
    assert len(reasons) == 1, result.output
    assert reasons[0].startswith("error: system 'crm': ") and dead in reasons[0]
    assert "is running" in reasons[0]
    assert counts(servers) == before


def test_sync_with_wrong_credentials(tmp_path: Path, servers: dict[str, Any]) -> None:
    config = seed_002_config(tmp_path)
    before = counts(servers)
    result = CliRunner().invoke(
        app,
        ["sync", "-c", str(config)],
        env=environ(servers, POWEROFFICE_CLIENT_KEY="not-the-key-4711"),
    )
    assert result.exit_code != 0
    reasons = [line for line in result.output.splitlines() if line.startswith("error: system '")]
    assert len(reasons) == 1, result.output
    assert reasons[0].startswith("error: system 'poweroffice': ") and "refused" in reasons[0]
    assert "not-the-key-4711" not in result.output
    assert counts(servers) == before
