"""Benchmark 1 and 5: the engine alone, initial, settling, quiescent and incremental runs.

One child process per measurement (see :mod:`bench.worker`), so peak RSS is the run's own.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench._connectors import GeneratedSource, SqliteSink, bench_config
from samband.engine.run import Engine


def run_engine(size: int, changes: int = 100) -> dict[str, Any]:
    """Initial sync of ``size`` records, a settling run, a quiescent run, then ``changes``
    edits and the incremental run.  Times in seconds."""
    with tempfile.TemporaryDirectory(prefix="samband-bench-") as folder:
        store_url = f"sqlite:///{Path(folder) / 'state.db'}"
        config = bench_config(store_url)
        source = GeneratedSource(size, "src", config.systems["src"])
        sink = SqliteSink(str(Path(folder) / "sink.db"), "dst", config.systems["dst"])
        engine = Engine(config, connectors={"src": source, "dst": sink}, store_url=store_url)
        try:
            result: dict[str, Any] = {"size": size}
            for name in ("initial", "settle", "quiescent"):
                started, cpu = time.perf_counter(), time.process_time()
                report = engine.sync()
                result[name] = _run_figures(
                    report, time.perf_counter() - started, time.process_time() - cpu
                )
            step = max(size // changes, 1)
            for index in range(1, size + 1, step)[:changes]:
                source.edit(index, {"name": f"Changed {index} AS"})
            started, cpu = time.perf_counter(), time.process_time()
            report = engine.sync()
            result["incremental"] = _run_figures(
                report, time.perf_counter() - started, time.process_time() - cpu
            )
            result["sink_records"] = sink.count()
        finally:
            engine.close()
    return result


def _run_figures(report: Any, seconds: float, cpu_seconds: float) -> dict[str, Any]:
    data = report.to_dict()
    if data["status"] != "ok" or data["errors"]:
        raise RuntimeError(
            f"the benchmark run did not succeed: {data['status']} {data['messages']}"
        )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # this process's CPU time: less sensitive to other load
        "created": data["created"],
        "updated": data["updated"],
        "writes": report.writes,
        "api_calls": data["api_calls"],
        "read": sum(c["read"] for c in data["collected"].values()),
    }
