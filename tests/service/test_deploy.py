"""The deployment files: the systemd unit passes ``systemd-analyze verify`` and both it and
the Containerfile start `samband serve` with options the command has."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _serve_options() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "samband.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    return set(re.findall(r"--[a-z][a-z-]+", result.stdout))


def _check_command(words: list[str]) -> None:
    assert Path(words[0]).name == "samband" and words[1] == "serve"
    options = _serve_options()
    for word in words[2:]:
        if word.startswith("--"):
            assert word in options, f"samband serve has no option {word}"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing")
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "samband.service").read_text(encoding="utf-8")
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M)
    assert exec_start
    words = shlex.split(exec_start[1])
    _check_command(words)
    samband = Path(sys.executable).with_name("samband")
    local = tmp_path / "samband.service"  # verify needs the program to exist
    local.write_text(unit.replace(words[0], str(samband)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_containerfile_starts_serve_with_options_it_has() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd
    _check_command(json.loads(cmd[1]))
    assert "STOPSIGNAL SIGTERM" in text and "USER samband" in text
