"""The built wheel, installed into a fresh virtualenv, runs ``samband demo``: nothing the
package needs lives only in the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **options)  # type: ignore[call-overload]
    assert result.returncode == 0, (
        f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_wheel_runs_the_demo_from_a_fresh_virtualenv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(dist),
            str(ROOT),
        ]
    )
    (wheel,) = dist.glob("samband-*.whl")
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", str(env)])
    _run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
    work = tmp_path / "elsewhere"
    work.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    result = _run([str(env / "bin" / "samband"), "demo", "--output", "out"], cwd=work, env=clean)
    assert any((work / "out").iterdir()), result.stdout[-2000:]
    assert str(ROOT / "src") not in result.stdout + result.stderr  # not the source tree's
