"""A wheel holds every file the package reads at run time: each file under src/samband
that is not Python is listed in ``[tool.setuptools.package-data]`` (else `pip install .`,
as the systemd unit and the Containerfile install it, serves pages without templates)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "samband"


def test_every_data_file_of_the_package_is_in_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["samband"]
    listed = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    data = {
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert data, "no data files found: the test looks in the wrong place"
    missing = sorted(str(path.relative_to(PACKAGE)) for path in data - listed)
    assert not missing, f"not in the wheel (add to package-data in pyproject.toml): {missing}"
