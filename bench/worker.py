"""Runs one measurement in a child process and prints its figures as one JSON line.

    python -m bench.worker <task> '<json arguments>'

A fresh process per measurement keeps runs from polluting each other (imports, caches,
memory) and makes the peak RSS reported the measurement's own: the high-water mark of this
process's memory (``VmHWM``), taken when the task is done.  Not ``ru_maxrss``: Linux
carries it over an ``exec``, so it would report the parent's size at the ``fork`` (the
bench's main process, which holds the sandboxes and their records).
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable
from typing import Any

MARK = "BENCH-RESULT "


def _task(name: str) -> Callable[..., dict[str, Any]]:
    if name == "engine":
        from bench.engine_bench import run_engine

        return run_engine
    if name == "http":
        from bench.http_bench import run_http

        return run_http
    if name == "dlt":
        from bench.peer_bench import run_dlt

        return run_dlt
    if name == "samband-load":
        from bench.peer_bench import run_samband

        return run_samband
    if name == "exact":
        from bench.budget_bench import run_exact

        return run_exact
    if name == "quiescent":
        from bench.budget_bench import run_quiescent

        return run_quiescent
    if name == "push":
        from bench.push_bench import run_push

        return run_push
    if name == "serve":
        from bench.serve_bench import run_serve

        return run_serve
    if name == "quota":
        from bench.cluster_bench import run_quota

        return run_quota
    if name == "queue":
        from bench.cluster_bench import run_queue

        return run_queue
    if name == "tenants":
        from bench.tenants_bench import run_tenants

        return run_tenants
    if name == "queue-cycles":
        from bench.queue_bench import run_cycles

        return run_cycles
    if name == "queue-loads":
        from bench.queue_bench import run_initial_loads

        return run_initial_loads
    raise SystemExit(f"unknown benchmark task {name!r}")


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (its own image, not its
    parent's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    result = _task(name)(**arguments)
    result["peak_rss_mb"] = peak_rss_mb()
    print(MARK + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
