"""What a user gets wrong ends in one line that says what to do, never a traceback: a
malformed ref, a hand-edited data file that is not JSON, a damaged store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from samband.cli import app

CONFIG = """
store: sqlite:///state.db
systems:
  crm: {kind: memory, path: crm.json, entity_types: {Customer: {}}}
  erp: {kind: memory, path: erp.json, entity_types: {Account: {external_ref: ext}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
"""

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "samband.yaml"
    path.write_text(CONFIG)
    return path


def _one_clear_line(result: Result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    # a clean exit, not an exception the CLI let through (which prints a traceback)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    for needle in needles:
        assert needle in result.output, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["links", "crm-Customer-1"],
        ["history", "crm:Customer"],
        ["retry", "Customer1"],
        ["retry", "crm:Customer:1", "crm::"],
    ],
)
def test_a_malformed_ref_is_refused_with_the_form_to_use(config: Path, args: list[str]) -> None:
    result = runner.invoke(app, [*args, "-c", str(config)])
    _one_clear_line(result, 2, "SYSTEM:TYPE:ID")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"version": 1, "types": {"Customer": {"1": {data: 1}}}}', "line 1"),
        (
            '{"version": 1, "types": {"Customer": {"1": {"data": {"name": "A"}, "version": 1,'
            ' "modified": "01.01.2026"}}}}',
            "01.01.2026",
        ),
    ],
)
def test_a_data_file_that_cannot_be_read_names_the_file(
    config: Path, content: str, needle: str
) -> None:
    (config.parent / "crm.json").write_text(content)
    result = runner.invoke(app, ["sync", "-c", str(config)])
    _one_clear_line(result, 1, "crm.json", needle)


@pytest.mark.parametrize("command", ["sync", "status", "errors"])
def test_a_damaged_store_says_to_restore_or_move_it(config: Path, command: str) -> None:
    (config.parent / "state.db").write_bytes(b"this is not a database, it was overwritten" * 50)
    result = runner.invoke(app, [command, "-c", str(config)])
    _one_clear_line(result, 1, "restore it from a backup", "nothing in your systems")
