"""The proof of the queue: 20 tenants, 3 ``samband worker --queue`` processes, workers
killed (SIGKILL, one in the middle of a tenant's job each time) while the tenants' records
are edited.  Every tenant converges, nothing is created twice, two runs of one tenant
never overlap, and every job of a killed worker is run again."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from samband.queue.connect import ensure_schema
from tests.support import tenants as t
from tests.support.cluster import Cluster, overlaps, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("cluster")]


def run_cluster(
    postgres_url: str, tmp_path: Path, *, tenants: int, workers: int, kills: int, seconds: float
) -> Cluster:
    registry = tmp_path / "tenants"
    env: dict[str, str] = {}
    names = [f"tenant-{i:03d}" for i in range(tenants)]
    for name in names:
        env.update(t.make_tenant(registry, name))
    import os

    # the tenants' variables only: none of them is readable as plain ${CRM_URL}
    environ = {k: v for k, v in os.environ.items() if k != "CRM_URL"} | env
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(postgres_url, registry, environ, logs)
    rng = random.Random(22)
    try:
        ensure_schema(postgres_url)  # as `samband worker` does, also when several start at once
        for _ in range(workers):
            cluster.start()
        wait_for(lambda: cluster.live_workers() >= workers, 60, "the workers are up")
        # edits and kills, spread over ``seconds``
        deadline = time.monotonic() + seconds
        next_kill = time.monotonic() + seconds / (kills + 1)
        turn = 0
        while time.monotonic() < deadline or len(cluster.killed) < kills:
            turn += 1
            t.edit(registry, rng.choice(names), rng, turn)
            if time.monotonic() >= next_kill and len(cluster.killed) < kills:
                cluster.kill_one(rng)
                next_kill = time.monotonic() + seconds / (kills + 1)
            time.sleep(0.05)
        wait_for(
            lambda: all(t.converged(registry, name) for name in names),
            max(60.0, tenants * 0.5),
            "every tenant converges",
        )
    except BaseException:
        cluster.stop()
        print(cluster.log_text())
        raise
    cluster.stop()
    return cluster


def check(cluster: Cluster, tenants: int, kills: int) -> None:
    registry = cluster.registry
    names = sorted(p.name for p in registry.iterdir())
    assert len(names) == tenants
    for name in names:
        assert t.duplicates(registry, name) == [], f"{name}: created twice"
        assert t.converged(registry, name), name
    assert len(cluster.killed) >= kills
    assert overlaps(cluster) == []
    runs = cluster.runs()
    assert {row[0] for row in runs} == set(names)
    print(f"{len(runs)} runs, {len(cluster.killed)} kills")
    statuses = {row[5] for row in runs if row[4] is not None}
    assert statuses <= {"ok"}, [row for row in runs if row[5] not in ("ok", "running")]
    # every job a killed worker left is run again to its end
    cut = {row[1] for row in runs if row[4] is None}
    assert cut, "no kill landed in the middle of a job"
    done = {row[1] for row in runs if row[5] == "ok"}
    assert cut <= done, f"jobs never run again: {sorted(cut - done)}"
    for row in runs:
        if row[4] is None:
            assert int(row[2].rsplit(":", 1)[1]) in cluster.killed, f"a job left behind: {row}"


def test_twenty_tenants_three_workers_killed_at_random(postgres_url: str, tmp_path: Path) -> None:
    cluster = run_cluster(postgres_url, tmp_path, tenants=20, workers=3, kills=5, seconds=15)
    check(cluster, 20, 5)
