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


def test_the_container_keeps_its_store_on_a_volume_checks_health_and_holds_no_secret() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    words = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M)[1])  # type: ignore[index]
    port = words[words.index("--port") + 1]
    assert re.search(r"^VOLUME /var/lib/samband$", text, re.M)
    assert re.search(r"^WORKDIR /var/lib/samband$", text, re.M)
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (\[.*\])$", text, re.M)
    assert health and f"http://127.0.0.1:{port}/healthz" in health[1]
    assert re.search(rf"^EXPOSE {port}$", text, re.M)
    # secrets come from the environment file at run time, never from the image
    settings = " ".join(re.findall(r"^(?:ENV|ARG) (.*)$", text, re.M))
    assert not re.search(r"SECRET|TOKEN|PASSWORD|KEY|SAMBAND_USERS", settings, re.I), settings
    # the build context is what the image needs (.venv, .git and stores stay out)
    ignored = (DEPLOY.parent / ".containerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignored  # all but what is named after it
    assert (DEPLOY.parent / ".dockerignore").read_text(encoding="utf-8") == "\n".join(
        ignored
    ) + "\n", ".dockerignore (docker build) differs from .containerignore (podman)"
    copied = re.findall(r"^COPY (.*) /src", text, re.M)
    for source in " ".join(copied).split():
        assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignored}, source
