"""docs/many-companies.md: its "Try it on one machine" block runs as written, with two
tenants of the test's making and the test's PostgreSQL as the queue."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import tenants as t
from tests.support.cluster import wait_for
from tests.support.docs_examples import DOCS, block_after

pytestmark = pytest.mark.postgres


def test_try_it_on_one_machine_runs(postgres_url: str, tmp_path: Path) -> None:
    block = block_after(DOCS / "many-companies.md", "## Try it on one machine", "sh")
    made = tmp_path / "made"
    values: dict[str, str] = {}
    for name in ("acme", "beta"):
        values.update(t.make_tenant(made, name))
        shutil.copy(made / name / "samband.yaml", tmp_path / f"{name}.yaml")
    values["SAMBAND_QUEUE"] = postgres_url
    samband = str(Path(sys.executable).with_name("samband"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMBAND_")}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for raw in block.code.splitlines():
            line = raw.split("  #", 1)[0].strip()
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = values.get(key, value)  # this test's databases
                continue
            words = line.rstrip("&").split()
            assert words[0] == "samband", line
            command = [samband, *words[1:]]
            if line.endswith("&"):
                log = (tmp_path / "worker.log").open("wb")
                workers.append(
                    subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
                )
                continue
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=120)
            assert done.returncode == 0, f"{line}: {done.stderr.decode()}"
        assert (tmp_path / "tenants" / "beta" / "tenant.yaml").exists() is False
        # the tenants' systems are this test's (made/NAME/crm.db and pms.db)
        assert t.converged(made, "acme")  # by `samband sync --tenant acme`
        wait_for(lambda: t.converged(made, "beta"), 60, "the worker runs beta")
        runs = subprocess.run(
            [samband, "tenants", "runs", "--json"], cwd=tmp_path, env=env, capture_output=True
        )
        assert b'"tenant": "beta"' in runs.stdout and b'"status": "ok"' in runs.stdout
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    assert [w.returncode for w in workers] == [0]


def test_the_python_example_of_seeing_every_tenant_runs(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support.cluster import run_due_jobs
    from tests.support.docs_examples import run_python

    registry = tmp_path / "tenants"
    for name in ("acme", "beta"):
        for key, value in t.make_tenant(registry, name, every="5m").items():
            monkeypatch.setenv(key, value)
    run_due_jobs(postgres_url, registry)
    (registry / "beta" / "samband.yaml").write_text("systems: {}\ndataflows: [1]\n")
    t.make_tenant(registry, "gamma", every="5m")  # added since: no run yet
    monkeypatch.setenv("SAMBAND_QUEUE", postgres_url)
    run_python(
        block_after(DOCS / "many-companies.md", "## Seeing every tenant", "python"), tmp_path
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "acme: every 5m, valid, last run ok"
    assert re.fullmatch(
        r"beta: every 5m, .*tenants/beta/samband\.yaml:\d+:\d+: error: .*, last run ok", lines[1]
    ), lines[1]
    assert lines[2] == "gamma: every 5m, valid, no run yet"
