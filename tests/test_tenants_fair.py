"""Fairness of the queue: one ``samband worker`` (one job at a time) and a tenant whose
initial load takes many chunks.  Its run yields after each chunk and its next run waits
behind the jobs queued meanwhile, so every small tenant has synced before the big load is
done — and the big one still converges, nothing created twice."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from samband.queue.connect import connector, ensure_schema
from samband.queue.tasks import build_app
from samband.queue.worker import schedule_missing
from samband.tenants import Registry
from tests.support import tenants as t
from tests.support.cluster import Cluster, overlaps, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("cluster")]

BIG = 2500  # five chunks of 500


def _queue_everyone(queue: str, registry: Path) -> list[str]:
    app = build_app(connector(queue, min_size=1, max_size=2))

    async def queue_all() -> list[str]:
        async with app.open_async():
            return await schedule_missing(app, Registry(registry))

    return asyncio.run(queue_all())


def test_a_huge_initial_load_takes_turns_with_the_other_tenants(
    postgres_url: str, tmp_path: Path
) -> None:
    registry = tmp_path / "tenants"
    env: dict[str, str] = {}
    env.update(t.make_tenant(registry, "big", records=BIG, every="1h"))
    small = [f"small-{i}" for i in range(3)]
    for name in small:
        env.update(t.make_tenant(registry, name, every="1h"))
    logs = tmp_path / "logs"
    logs.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "CRM_URL"} | env
    cluster = Cluster(postgres_url, registry, environ, logs, args=["--turn-chunks", "1"])
    ensure_schema(postgres_url)
    # queued before the worker starts, the big tenant first: without turns it would hold
    # the one worker until its whole load is done
    assert _queue_everyone(postgres_url, registry) == ["big", *small]
    cluster.start()
    try:
        wait_for(
            lambda: (
                all(t.converged(registry, name) for name in ["big", *small])
                and ("big", "ok") in {(r[0], r[5]) for r in cluster.runs()}
            ),
            120,
            "every tenant converges",
        )
    except BaseException:
        cluster.stop()
        print(cluster.log_text())
        raise
    cluster.stop()
    runs = cluster.runs()
    big = [r for r in runs if r[0] == "big"]
    statuses = [r[5] for r in big]
    done = statuses.index("ok")
    big_loaded = big[done][4]
    for name in small:
        first_ok = min(r[4] for r in runs if r[0] == name and r[5] == "ok")
        assert first_ok < big_loaded, f"{name} waited for the big load: {statuses}"
    # its load took turns: each recorded as yielded (not failed), saying what stays queued
    assert statuses[:done] == ["yielded"] * done and done >= 3, statuses
    assert all("stay queued" in r[6] for r in big[:done])
    assert t.duplicates(registry, "big") == []
    assert len(t.pms_customers(registry, "big")) == BIG
    assert overlaps(cluster) == []
    assert {r[5] for r in runs} <= {"ok", "yielded"}
