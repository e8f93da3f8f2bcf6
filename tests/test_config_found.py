"""Every command that takes -c finds the config without it: $SAMBAND_CONFIG, else
./samband.yaml; with neither, it says so (exit 2) instead of asking for -c."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from samband.cli import app

CONFIG = """\
systems:
  mem: {kind: memory, entity_types: {T: {}}}
"""


def _commands_with_config() -> list[list[str]]:
    """The command paths (``["sql", "install-tracking"]``) whose options include -c."""
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if any("-c" in getattr(p, "opts", []) for p in command.params):
            found.append(path)  # a command, or a group that lists (`samband conflicts`)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return found


COMMANDS = _commands_with_config()


def test_the_commands_with_a_config_option_are_found() -> None:
    assert ["validate"] in COMMANDS and ["check"] in COMMANDS and ["sync"] in COMMANDS


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != ["docs"]], ids=" ".join)
def test_without_a_config_the_error_says_where_it_looked(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAMBAND_CONFIG", raising=False)
    needed = {
        "sql": ["pms.Customer"],
        "auth": ["rest", "crm"],
        "history": ["crm:Customer:1"],
        "links": ["crm:Customer:1"],
        "unlink": ["crm:Customer:1"],
        "link": ["crm:Customer:1", "erp:Account:1"],
        "resync": ["crm.Customer"],
        "restore": ["backup.db", "--yes"],
        "conflicts resolve": ["1", "--take", "source"],
        "errors dismiss": ["crm:Customer:1"],
        "dataflow pause": ["crm.Customer->erp.Account"],
        "dataflow resume": ["crm.Customer->erp.Account"],
        "dataflow share": ["crm.Customer->erp.Account", "--side", "target", "--off"],
        "dataflow full-sync": ["crm.Customer->erp.Account", "--off"],
        "records find": ["Acme"],
    }
    key = "sql" if command[0] == "sql" else " ".join(command)
    args = [*command, *needed.get(key, [])]
    result = CliRunner().invoke(app, args)
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "no config file" in output and "SAMBAND_CONFIG" in output


def test_samband_yaml_here_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAMBAND_CONFIG", raising=False)
    Path("samband.yaml").write_text(CONFIG + "  bad: {kind: nope}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "samband.yaml:3:" in result.output  # it read this file


def test_samband_config_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("samband.yaml").write_text("not: [valid\n", encoding="utf-8")
    (tmp_path / "other.yaml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("SAMBAND_CONFIG", str(tmp_path / "other.yaml"))
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "other.yaml: valid" in " ".join(result.output.split())
