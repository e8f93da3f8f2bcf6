"""A worker keeps each tenant's checked config between its jobs: a changed file is read
again, and each job has a copy of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samband.queue import jobs
from samband.queue.jobs import run_job
from tests.support import tenants as t


def _tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = tmp_path / "tenants"
    for key, value in t.make_tenant(registry, "acme").items():
        monkeypatch.setenv(key, value)
    return registry


def test_a_changed_config_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _tenant(tmp_path, monkeypatch)
    path = registry / "acme" / "samband.yaml"
    assert run_job(registry, "acme").status == "ok"
    assert run_job(registry, "acme").status == "ok"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["dataflows"][0]["id"] = "firms"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    unknown = run_job(registry, "acme", dataflows=["companies"])
    assert unknown.status == "failed" and "its dataflows: firms" in unknown.message
    path.write_text("systems: [not, a, mapping\n", encoding="utf-8")
    broken = run_job(registry, "acme")
    assert broken.status == "failed" and "acme/samband.yaml" in broken.message


def test_each_job_has_a_copy_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _tenant(tmp_path, monkeypatch)
    path = registry / "acme" / "samband.yaml"
    first = jobs._config(path)
    first.dataflows.clear()  # what one job does to its config stays its own
    second = jobs._config(path)
    assert second.dataflows and second is not first
    assert second.path == str(path.resolve())
