"""What a run shows: the summary (unlinked, archived, duration, API calls per system, the
next command), exit 3 with --strict when records were set aside, values printed as they
are (no Rich markup, no emoji, not cut at 80 columns when piped), `run --every` with one
timestamped line per cycle and its table only when something changed."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.engine.schedule import BACKOFF_CAP, next_wait
from samband.kinds.memory.connector import MemoryDataset, forget_dataset
from tests.support.cli import run, start

CONFIG = """
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {external_ref: ext}}}
  erp:
    kind: memory
    path: erp.json
    entity_types:
      Account:
        external_ref: ext
        properties: {name: {type: string, max_length: 200}, org: {type: string}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""
TRICKY = "[bold]Fjord[/bold] :smile: " + "Data " * 30 + "AS"
TOO_LONG = "x" * 300
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (sync|run) ", re.MULTILINE)

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "samband.yaml").write_text(CONFIG)
    crm = MemoryDataset("report-crm")
    crm.insert("Customer", {"name": TRICKY, "org": "1"})
    crm.insert("Customer", {"name": TOO_LONG, "org": "2"})
    crm.save(str(tmp_path / "crm.json"))
    MemoryDataset("report-erp").save(str(tmp_path / "erp.json"))
    return tmp_path


def _invoke(workdir: Path, *args: str) -> tuple[int, str]:
    for name in ("crm", "erp"):
        forget_dataset(name)
    result = runner.invoke(app, [*args, "-c", str(workdir / "samband.yaml")])
    return result.exit_code, result.output


def test_the_summary_names_what_needs_attention_and_strict_exits_3(workdir: Path) -> None:
    code, output = _invoke(workdir, "sync", "--strict")
    assert code == 3, output
    for column in ("unlinked", "archived"):
        assert column in output
    assert re.search(r"took \d+\.\d s; \d+ API calls \(crm \d+, erp \d+\)", output), output
    assert "next: 1 record(s) quarantined: see `samband errors -c " in output
    # without --strict a run that set a record aside still did its job
    code, output = _invoke(workdir, "sync")
    assert code == 0, output


def test_values_are_printed_as_they_are_when_piped(workdir: Path) -> None:
    assert run(["sync", "-c", "samband.yaml"], workdir).returncode == 0
    shown = run(["links", "crm:Customer:1", "-c", "samband.yaml"], workdir)
    assert shown.returncode == 0, shown.stderr
    assert TRICKY in shown.stdout  # not styled, no emoji, not cut at 80 columns
    assert "😄" not in shown.stdout


def test_a_piped_sync_ends_with_one_timestamped_line(workdir: Path) -> None:
    result = run(["sync", "-c", "samband.yaml"], workdir)
    assert len(STAMP.findall(result.stderr)) == 1, result.stderr


def test_run_every_prints_a_line_per_cycle_and_a_table_only_on_change(workdir: Path) -> None:
    process = start(["run", "-c", "samband.yaml", "--every", "0s"], workdir)
    assert process.stderr is not None
    cycles: list[str] = []
    for line in process.stderr:
        if STAMP.match(line):
            cycles.append(line)
            if len(cycles) == 3:
                break
    process.send_signal(signal.SIGTERM)
    stdout, rest = process.communicate(timeout=120)
    # stopped mid-cycle: 130 and what was committed; between two cycles: 0
    assert process.returncode in (0, 130), rest
    assert len(cycles) == 3
    # the first cycle created (and quarantined): its table; the next two found nothing new
    assert stdout.count("sync summary") == 1, stdout
    assert "Traceback" not in rest


def test_run_backs_off_while_a_system_is_unusable() -> None:
    waits = [next_wait(30, failures) for failures in range(12)]
    assert waits[:4] == [30, 60, 120, 240]
    assert max(waits) == BACKOFF_CAP and waits[-1] == BACKOFF_CAP
    assert next_wait(3600, 5) == 3600  # an interval longer than the cap is kept
