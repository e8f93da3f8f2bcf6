"""A run's lifecycle in the store: an interrupted run (Ctrl-C, SIGTERM) is recorded as
``interrupted`` with the writes it committed, the user is told how many and to run again
(exit 130), and the next run goes on from there; a failed run keeps its reason."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
from pathlib import Path

import pytest

from samband.kinds.memory.connector import MemoryDataset
from tests.support.cli import run, start

CONFIG = """
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {}, Contact: {}}}
  erp:
    kind: memory
    path: erp.json
    entity_types: {Account: {external_ref: ext}, Person: {external_ref: ext}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
  - source: crm.Contact
    target: erp.Person
    properties: [{from: name, to: name, type: string}]
"""
CUSTOMERS, CONTACTS = 3, 2


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("lifecycle-crm")
    for n in range(CUSTOMERS):
        crm.insert("Customer", {"name": f"Customer {n}"})
    for n in range(CONTACTS):
        crm.insert("Contact", {"name": f"Contact {n}"})
    crm.save(str(tmp_path / "crm.json"))
    MemoryDataset("lifecycle-erp").save(str(tmp_path / "erp.json"))
    return tmp_path


def _runs(workdir: Path) -> list[tuple[str, dict[str, object]]]:
    with sqlite3.connect(workdir / "state.db") as db:
        rows = db.execute("SELECT status, stats FROM samband_runs ORDER BY id").fetchall()
    return [(status, json.loads(stats or "{}")) for status, stats in rows]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_is_recorded_with_what_it_committed(
    workdir: Path, signum: signal.Signals
) -> None:
    # the first contact's create has returned: every customer is committed (their chunk
    # was), the contact's chunk is not
    process = start(
        ["sync", "-c", "samband.yaml"],
        workdir,
        {"SAMBAND_STOP_AT": f"create:{CUSTOMERS + 1}"},
    )
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the run ended before it reached the stop point"
    process.send_signal(signum)
    os.kill(process.pid, signal.SIGCONT)
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: {CUSTOMERS} writes committed; run again to continue"
    )
    ((status_text, stats),) = _runs(workdir)
    assert status_text == "interrupted"
    assert stats["committed_writes"] == CUSTOMERS

    shown = run(["status", "-c", "samband.yaml", "--json"], workdir)
    last = json.loads(shown.stdout)["runs"][0]
    assert last["status"] == "interrupted"
    assert "run again to continue" in last["reason"]

    # the next run goes on from there: the rest, and nothing twice
    again = run(["sync", "-c", "samband.yaml"], workdir)
    assert again.returncode == 0, again.stderr
    erp = json.loads((workdir / "erp.json").read_text())["types"]
    assert len(erp["Account"]) == CUSTOMERS
    assert len(erp["Person"]) == CONTACTS


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


UNREACHABLE = """
store: sqlite:///state.db
systems:
  crm:
    kind: rest
    base_url: http://127.0.0.1:{port}
    auth: none
    entity_types: {{Customer: {{path: customers, properties: {{name: string}}}}}}
  erp: {{kind: memory, path: erp.json, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{{from: name, to: name, type: string}}]
"""


def test_a_failed_run_keeps_its_reason(tmp_path: Path) -> None:
    (tmp_path / "samband.yaml").write_text(UNREACHABLE.format(port=_closed_port()))
    failed = run(["sync", "-c", "samband.yaml"], tmp_path)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    shown = run(["status", "-c", "samband.yaml", "--json"], tmp_path)
    last = json.loads(shown.stdout)["runs"][0]
    assert last["status"] == "failed"
    assert "cannot connect" in last["reason"]
    table = run(["status", "-c", "samband.yaml"], tmp_path)
    assert "cannot connect" in table.stdout


def test_run_stopped_mid_cycle_says_what_it_committed(workdir: Path) -> None:
    # SIGTERM while the customers are created: `run` finishes the chunk it is in (the
    # customers), does not begin the next (the contacts), and says so
    process = start(
        ["run", "-c", "samband.yaml", "--every", "1h"],
        workdir,
        {"SAMBAND_STOP_AT": "create:1"},
    )
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the run ended before it reached the stop point"
    process.send_signal(signal.SIGTERM)
    os.kill(process.pid, signal.SIGCONT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: {CUSTOMERS} writes committed; run again to continue"
    )
    assert [status for status, _ in _runs(workdir)] == ["stopped"]
