"""Benchmark 3: API budget — Exact Online accounts read under 60 calls a minute.

Uses :mod:`bench.bench_exact` (the Exact engineer's benchmark) in a child process: the
sandbox with its clock sped up, the ordinary connector, and the full CRUD scan (pages of
60, so the read is rate bound) as well as the Sync API read the connector does by default.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_exact(accounts: int, speed: float) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_exact

    from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
    from samband.sandbox._base import Clock

    os.environ.setdefault("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    random.seed(1)
    box = ExactOnlineSandbox(clock=Clock(speed=speed), minutely_limit=60, daily_limit=100_000)
    bench_exact.fill(box, accounts)
    server = bench_exact._support_serve(box)
    result: dict[str, Any] = {"accounts": accounts, "speed": speed}
    try:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
            result["sync_api"] = bench_exact.measure(
                box, server.url, Path(folder) / "sync", False, "Sync API (default)"
            )
            result["full_scan"] = bench_exact.measure(
                box, server.url, Path(folder) / "scan", True, "CRUD full scan, 60/page"
            )
    finally:
        server.stop()
    return result


def run_quiescent(records: int = 20) -> dict[str, Any]:
    """The five seed dataflows of ``examples/samband.yaml`` on the demo's six sandboxes:
    sync until a run writes nothing, then measure one more run (nothing changed)."""
    from samband.demo import start_world, token_key

    with token_key(), tempfile.TemporaryDirectory(prefix="samband-bench-") as folder:
        world = start_world(Path(folder), records)
        try:
            settling = []
            for _attempt in range(5):
                report = _sync(world)
                settling.append(report["writes"])
                if report["writes"] == 0:
                    break
            quiet = _sync(world)
        finally:
            world.close()
    return {"records": records, "settling_writes": settling, **quiet}


def _sync(world: Any) -> dict[str, Any]:
    engine = world.engine()
    try:
        report = engine.sync()
        data = report.to_dict()
        types: dict[str, list[str]] = {}
        for system, etype in engine.uses:
            types.setdefault(system, []).append(etype)
    finally:
        engine.close()
    if data["status"] != "ok":
        raise RuntimeError(f"the run of examples/samband.yaml failed: {data['messages']}")
    return {
        "writes": report.writes,
        "api_calls": data["api_calls"],
        "api_calls_by_system": data["api_calls_by_system"],
        "types_by_system": types,
        "types": sum(len(v) for v in types.values()),
    }
