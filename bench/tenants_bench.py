"""Benchmark 9 (prepared for the tenants' job queue): quiescent cycles of many tenants.

Each tenant is a config of its own (two memory systems persisted to JSON files, a SQLite
store), synchronised once; a *cycle* is then one quiescent run of every tenant. The
figure is tenants' runs per minute with 1, 2 and 4 worker processes.

Until the job queue lands, the workers are plain processes that split the tenants among
themselves (no queue, no locks): the figure is the engine's ceiling, and the queue's cost
is what `samband worker` loses against it. :func:`run_cycle` takes the function that runs
one tenant, so the queue's bench can pass one that defers and waits instead.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONFIG = """\
store: sqlite:///{folder}/state.db
systems:
  crm:
    kind: memory
    dataset: crm-{tenant}
    path: {folder}/crm.json
    entity_types: {{Customer: {{}}}}
  erp:
    kind: memory
    dataset: erp-{tenant}
    path: {folder}/erp.json
    entity_types: {{Account: {{external_ref: ext}}}}
dataflows:
  - source: crm.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org, to: org, type: string}}
"""


def make_tenants(root: Path, tenants: int, records: int) -> list[Path]:
    """``tenants`` config files under ``root``, each with ``records`` customers."""
    from samband.kinds.memory.connector import MemoryDataset

    paths = []
    for tenant in range(tenants):
        folder = root / f"tenant-{tenant:04d}"
        folder.mkdir(parents=True)
        crm = MemoryDataset(f"crm-{tenant}")
        for number in range(records):
            crm.insert("Customer", {"name": f"Customer {number}", "org": f"{tenant}-{number}"})
        crm.save(str(folder / "crm.json"))
        MemoryDataset(f"erp-{tenant}").save(str(folder / "erp.json"))
        path = folder / "samband.yaml"
        path.write_text(CONFIG.format(folder=folder, tenant=tenant), encoding="utf-8")
        paths.append(path)
    return paths


def sync_tenant(path: str) -> int:
    """One run of one tenant's config, as a worker would do it; its writes."""
    from samband.engine.run import Engine

    with Engine.from_file(path) as engine:
        report = engine.sync()
    if report.failed:
        raise RuntimeError(f"{path}: {report.one_line()}")
    return report.writes


def _warm(_: int) -> int:
    import samband.engine.run  # noqa: F401

    return 0


def run_cycle(
    paths: list[Path], workers: int, run: Callable[[str], int] = sync_tenant
) -> tuple[float, int]:
    """One run of every tenant over ``workers`` processes: (seconds, writes)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        pool.map(_warm, range(workers))  # up, with samband imported, before the clock
        started = time.perf_counter()
        writes = sum(pool.map(run, [str(p) for p in paths], chunksize=1))
        return time.perf_counter() - started, writes


def run_tenants(
    tenants: int, records: int = 20, workers: tuple[int, ...] = (1, 2, 4)
) -> dict[str, Any]:
    """Initial loads, then one quiescent cycle per worker count."""
    result: dict[str, Any] = {"tenants": tenants, "records": records, "cycles": {}}
    with tempfile.TemporaryDirectory(prefix="samband-tenants-") as folder:
        paths = make_tenants(Path(folder), tenants, records)
        seconds, writes = run_cycle(paths, max(workers))
        result["initial"] = {"seconds": seconds, "writes": writes}
        for count in workers:
            seconds, writes = run_cycle(paths, count)
            result["cycles"][str(count)] = {
                "seconds": seconds,
                "writes": writes,
                "runs_per_minute": tenants / seconds * 60,
            }
    return result
