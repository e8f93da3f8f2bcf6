"""Benchmark 1 and 5: the engine alone, initial, settling, quiescent and incremental runs.

One child process per measurement (see :mod:`bench.worker`), so peak RSS is the run's own.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._connectors import GeneratedSource, SqliteSink, bench_config
from bench.http_bench import pg_schema
from samband.engine.run import Engine


@contextlib.contextmanager
def _store_url(kind: str, folder: str) -> Iterator[str]:
    """The embedded SQLite store, or a PostgreSQL schema of its own, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{Path(folder) / 'state.db'}"
        return
    with pg_schema("engine") as url:
        yield url


def run_engine(size: int, changes: int = 100, store: str = "sqlite") -> dict[str, Any]:
    """Initial sync of ``size`` records, a settling run, a quiescent run, then ``changes``
    edits and the incremental run.  Times in seconds.  ``store``: sqlite or postgresql."""
    with (
        tempfile.TemporaryDirectory(prefix="samband-bench-") as folder,
        _store_url(store, folder) as store_url,
    ):
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
