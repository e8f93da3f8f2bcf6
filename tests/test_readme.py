"""The README is assembled from docs/readme/ and its first examples run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_assembled_from_its_parts() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import build_readme
    finally:
        sys.path.pop(0)
    assert build_readme.build() == README, "run `python docs/build_readme.py`"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block


def _block_after(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_first_sync_example_runs(tmp_path: Path) -> None:
    script = _block_after("## A first sync in two minutes", "sh").replace(
        "/tmp/samband-hello", str(tmp_path / "hello")
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-e", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    quiet = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    assert json.loads(quiet)["created"] == 0 and json.loads(quiet)["updated"] == 0
    accounts = json.loads((tmp_path / "hello" / "erp.json").read_text())["types"]["Account"]
    assert [a["data"]["name"] for a in accounts.values()] == ["Acme AS"]
    assert (tmp_path / "hello" / "docs" / "crm-erp.html").exists()

    # the Python API example, in the same folder
    code = _block_after("## The Python API", "python")
    from samband.kinds.memory import connector as memory

    memory._DATASETS.clear()
    cwd = os.getcwd()
    os.chdir(tmp_path / "hello")
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)


def test_every_command_in_the_table_exists() -> None:
    from typer.testing import CliRunner

    from samband.cli import app

    table = README.split("## Commands", 1)[1].split("\n\n", 2)[1]
    commands = set(re.findall(r"`samband ([a-z-]+)", table))
    for command in sorted(commands):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, f"samband {command}: {result.output}"
