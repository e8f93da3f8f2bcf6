"""``python -m bench [--quick] [--only NAME ...]``: the benchmark suite (``make bench``).

Every measurement runs in a fresh child process (:mod:`bench.worker`), is repeated, and
is reported as median and spread (min–max).  One table is printed at the end and every
figure is written to ``bench/results.json`` with the machine, date and commit.

Benchmarks: ``engine`` (1 and 5: the engine alone at several sizes), ``http`` (2:
PowerOffice GO sandbox → PMS on PostgreSQL, clean and with injected faults), ``budget``
(3: Exact Online under 60 calls/minute), ``peer`` (4: samband and dlt, one-way load),
``push`` (6: edit-to-arrival latency through a webhook, Exact Online and REST),
``serve`` (7: every page of ``samband serve`` with 1 000 000 links, and its idle CPU),
``cluster`` (8: the shared API-quota bucket per call, the job queue's overhead per job),
``tenants`` (9: quiescent runs of many tenants a minute with 1, 2 and 4 worker processes),
``tenants-queue`` (10: the same through the job queue and real ``samband worker``
processes, and 20 tenants' initial loads queued at once).
``--quick`` uses small sizes and one repetition (a smoke check, under a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from bench.worker import MARK

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
NAMES = (
    "engine",
    "http",
    "budget",
    "peer",
    "push",
    "serve",
    "cluster",
    "tenants",
    "tenants-queue",
)


@dataclass
class Figure:
    """One measured quantity over several runs."""

    benchmark: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    goal: str = ""
    check: Callable[[float], bool] | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def met(self) -> bool | None:
        if self.check is None or not self.values:
            return None
        return bool(self.check(self.median))

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "name": self.name,
            "unit": self.unit,
            "runs": len(self.values),
            "values": self.values,
            "median": self.median,
            "min": min(self.values) if self.values else None,
            "max": max(self.values) if self.values else None,
            "goal": self.goal or None,
            "met": self.met,
            "note": self.note or None,
        }


class Suite:
    def __init__(self, quick: bool, repeat: int | None) -> None:
        self.quick = quick
        self.repeat = repeat or (1 if quick else 3)
        self.figures: list[Figure] = []
        self.failures: list[str] = []
        self.notes: list[str] = []

    def figure(self, benchmark: str, name: str, unit: str, **kwargs: Any) -> Figure:
        for existing in self.figures:
            if existing.benchmark == benchmark and existing.name == name:
                return existing
        result = Figure(benchmark, name, unit, **kwargs)
        self.figures.append(result)
        return result

    def child(self, task: str, timeout: float = 3600, **arguments: Any) -> dict[str, Any] | None:
        """Run one measurement in a fresh interpreter; None (and a failure noted) on error."""
        command = [sys.executable, "-m", "bench.worker", task, json.dumps(arguments)]
        env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONPATH": str(ROOT)}
        try:
            done = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            self.failures.append(f"{task} {arguments}: no result within {timeout:.0f} s")
            return None
        for line in reversed(done.stdout.splitlines()):
            if line.startswith(MARK):
                result: dict[str, Any] = json.loads(line[len(MARK) :])
                return result
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        self.failures.append(f"{task} {arguments}: exit {done.returncode}\n{tail}")
        return None


def _progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- 1 and 5: the engine alone -----------------------------------------------------------
def bench_engine(suite: Suite) -> None:
    sizes = [1_000, 10_000] if suite.quick else [10_000, 100_000, 1_000_000]
    for size in sizes:
        label = f"{size:,}".replace(",", " ")
        repeat = suite.repeat if size < 1_000_000 else max(1, min(suite.repeat, 2))
        for run in range(repeat):
            _progress(f"engine: {label} records, run {run + 1}/{repeat}")
            result = suite.child("engine", size=size)
            if result is None:
                continue
            initial, incremental = result["initial"], result["incremental"]
            quiet = result["quiescent"]
            f = suite.figure
            f(
                "engine",
                f"initial sync {label}: throughput",
                "records/s",
                goal=">= 20 000",
                check=lambda v: v >= 20_000,
            ).values.append(size / initial["seconds"])
            f("engine", f"initial sync {label}: time", "s").values.append(initial["seconds"])
            f(
                "engine",
                f"initial sync {label}: throughput per CPU second",
                "records/CPU-s",
                note="the process's own CPU time: what a quiet machine would give",
            ).values.append(size / initial["cpu_seconds"])
            f(
                "engine",
                f"initial sync {label}: peak RSS",
                "MB",
                goal="<= 300 at 1 000 000",
                check=(lambda v: v <= 300) if size >= 1_000_000 else None,
            ).values.append(result["peak_rss_mb"])
            f("engine", f"settling run {label} (reads back own writes)", "s").values.append(
                result["settle"]["seconds"]
            )
            f(
                "engine",
                f"incremental {label}, 100 changes: time",
                "s",
                note="flat as the data grows",
            ).values.append(incremental["seconds"])
            f(
                "engine",
                f"incremental {label}, 100 changes: share of initial",
                "%",
                goal="<= 1 % at 100 000",
                check=(lambda v: v <= 1.0) if size == 100_000 else None,
            ).values.append(100 * incremental["seconds"] / initial["seconds"])
            f(
                "engine",
                f"quiescent run {label}: writes",
                "writes",
                goal="0",
                check=lambda v: v == 0,
            ).values.append(quiet["writes"])
            f("engine", f"quiescent run {label}: time", "s").values.append(quiet["seconds"])
            f("engine", f"quiescent run {label}: reads", "calls").values.append(quiet["api_calls"])
            if incremental["updated"] != 100 or initial["created"] != size:
                suite.failures.append(
                    f"engine {label}: created {initial['created']} (want {size}), incremental "
                    f"updated {incremental['updated']} (want 100)"
                )
    # the same with the store on PostgreSQL (shared deployments, `samband worker`)
    from bench.http_bench import postgres_available

    reason = postgres_available()
    if reason:
        suite.notes.append(f"engine, PostgreSQL store: skipped: {reason}")
        return
    size = 10_000 if suite.quick else 100_000
    label = f"{size:,}".replace(",", " ")
    for run in range(suite.repeat):
        _progress(f"engine, PostgreSQL store: {label} records, run {run + 1}/{suite.repeat}")
        result = suite.child("engine", size=size, store="postgresql")
        if result is None:
            continue
        f = suite.figure
        f(
            "engine",
            f"initial sync {label}, PostgreSQL store: throughput",
            "records/s",
            note="the store on the machine's PostgreSQL (127.0.0.1)",
        ).values.append(size / result["initial"]["seconds"])
        f("engine", f"settling run {label}, PostgreSQL store", "s").values.append(
            result["settle"]["seconds"]
        )
        f("engine", f"incremental {label}, 100 changes, PostgreSQL store", "s").values.append(
            result["incremental"]["seconds"]
        )


# -- 2 and 4: over HTTP, and the peer --------------------------------------------------------
class PowerOfficeBox:
    """A seeded PowerOffice GO sandbox served on loopback (in this process)."""

    def __init__(self, size: int) -> None:
        from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox

        self.box = PowerOfficeSandbox()
        self.box.seed(size, 1, only=("Customers",))
        self.box.clock.advance(60)
        self.server = self.box.serve()
        self.url = self.server.url

    def faults(self, **settings: Any) -> None:
        self.box.faults.update(**settings)

    def injected(self) -> int:
        return sum(self.box.faults.injected.values())

    def stop(self) -> None:
        self.server.stop()


def _pms_run(suite: Suite, task: str, box: PowerOfficeBox, size: int) -> dict[str, Any] | None:
    from bench.http_bench import pg_schema
    from samband.kinds.sql.demo import create_pms_schema

    with pg_schema("samband") as url:
        create_pms_schema(url)
        return suite.child(task, po_url=box.url, pms_url=url, size=size)


def bench_http(suite: Suite) -> None:
    from bench.http_bench import PAGE_SIZE, postgres_available

    reason = postgres_available()
    if reason:
        suite.notes.append(f"http: skipped: {reason}")
        return
    sizes = [2_000] if suite.quick else [10_000, 100_000]
    for size in sizes:
        label = f"{size:,}".replace(",", " ")
        box = PowerOfficeBox(size)
        goal_calls = 1.01 * math.ceil(size / PAGE_SIZE) / size
        try:
            for run in range(suite.repeat if size <= 10_000 else max(1, suite.repeat - 1)):
                _progress(f"http: {label} customers, run {run + 1}")
                clean = _pms_run(suite, "http", box, size)
                if clean is None:
                    continue
                box.faults(error_rate=0.025, throttle_rate=0.025, seed=run + 1)
                before = box.injected()
                _progress(f"http: {label} customers with 5 % faults, run {run + 1}")
                try:
                    faulty = _pms_run(suite, "http", box, size)
                finally:
                    box.faults(error_rate=0.0, throttle_rate=0.0)
                injected = box.injected() - before
                f = suite.figure
                f(
                    "http",
                    f"PowerOffice → PMS {label}: throughput",
                    "records/s",
                    goal=">= 2 000",
                    check=lambda v: v >= 2_000,
                ).values.append(size / clean["seconds"])
                f(
                    "http",
                    f"PowerOffice → PMS {label}: API read calls per record",
                    "calls/record",
                    goal=f"<= {goal_calls:.5f}",
                    check=lambda v, g=goal_calls: v <= g,
                    note=f"page size {PAGE_SIZE}; without the token request and check()",
                ).values.append((clean["api_calls"] - 2) / size)
                f("http", f"PowerOffice → PMS {label}: API calls, all", "calls").values.append(
                    clean["api_calls"]
                )
                f("http", f"PowerOffice → PMS {label}: peak RSS", "MB").values.append(
                    clean["peak_rss_mb"]
                )
                if faulty is None:
                    continue
                f(
                    "http",
                    f"with 5 % 5xx/429 {label}: faults injected",
                    "responses",
                ).values.append(injected)
                f("http", f"with 5 % 5xx/429 {label}: extra API calls", "calls").values.append(
                    faulty["api_calls"] - clean["api_calls"]
                )
                f("http", f"with 5 % 5xx/429 {label}: extra time", "s").values.append(
                    faulty["seconds"] - clean["seconds"]
                )
                f(
                    "http",
                    f"with 5 % 5xx/429 {label}: records created",
                    "records",
                    goal=f"= {size}",
                    check=lambda v, n=size: v == n,
                ).values.append(faulty["created"])
        finally:
            box.stop()


def bench_peer(suite: Suite) -> None:
    from bench.http_bench import pg_schema, postgres_available

    reason = postgres_available()
    if reason:
        suite.notes.append(f"peer: skipped: {reason}")
        return
    try:
        import dlt  # noqa: F401
    except ImportError:
        suite.notes.append("peer: skipped: dlt is not installed (pip install -e '.[bench]')")
        return
    size = 2_000 if suite.quick else 10_000
    label = f"{size:,}".replace(",", " ")
    box = PowerOfficeBox(size)
    try:
        for run in range(suite.repeat):
            _progress(f"peer: {label} customers, samband and dlt, run {run + 1}")
            ours = _pms_run(suite, "samband-load", box, size)
            with pg_schema("dlt") as url:
                theirs = suite.child(
                    "dlt", po_url=box.url, schema=url.rsplit("%3D", 1)[1], size=size
                )
            if ours is None or theirs is None:
                continue
            f = suite.figure
            f("peer", f"samband one-way load {label}", "records/s").values.append(
                size / ours["seconds"]
            )
            f("peer", f"dlt rest_api one-way load {label}", "records/s").values.append(
                size / theirs["seconds"]
            )
            f(
                "peer",
                "samband / dlt",
                "ratio",
                goal=">= 1",
                check=lambda v: v >= 1.0,
            ).values.append(theirs["seconds"] / ours["seconds"])
    finally:
        box.stop()


# -- 3: API budget ---------------------------------------------------------------------------
def bench_budget(suite: Suite) -> None:
    accounts, speed = (6_000, 60.0) if suite.quick else (50_000, 20.0)
    label = f"{accounts:,}".replace(",", " ")
    for run in range(1 if suite.quick else min(suite.repeat, 2)):
        _progress(f"budget: Exact Online {label} accounts, run {run + 1}")
        result = suite.child("exact", accounts=accounts, speed=speed)
        if result is None:
            continue
        scan, sync = result["full_scan"], result["sync_api"]
        f = suite.figure
        f(
            "budget",
            f"Exact {label} accounts, CRUD scan: call rate",
            "% of 60/min",
            goal=">= 95",
            check=lambda v: v >= 95,
            note=f"sandbox clock x{speed:g}",
        ).values.append(100 * scan["rate_share"])
        f(
            "budget",
            f"Exact {label} accounts, CRUD scan: 429s",
            "responses",
            goal="0",
            check=lambda v: v == 0,
        ).values.append(scan["throttled"])
        f("budget", f"Exact {label} accounts, CRUD scan: calls", "calls").values.append(
            scan["calls"]
        )
        f("budget", f"Exact {label} accounts, Sync API: calls", "calls").values.append(
            sync["calls"]
        )
        f("budget", f"Exact {label} accounts, Sync API: 429s", "responses").values.append(
            sync["throttled"]
        )
    examples = ROOT / "examples" / "samband.yaml"
    if not examples.exists():
        suite.notes.append(
            "budget: the quiescent run of all five dataflows is not measured: "
            "examples/samband.yaml does not exist yet"
        )
        return
    for run in range(1 if suite.quick else min(suite.repeat, 2)):
        _progress(f"budget: quiescent run of examples/samband.yaml, run {run + 1}")
        quiet = suite.child("quiescent", records=10 if suite.quick else 50)
        if quiet is None:
            continue
        types = quiet["types"]
        f = suite.figure
        f(
            "budget",
            "five dataflows, quiescent run: writes",
            "writes",
            goal="0",
            check=lambda v: v == 0,
        ).values.append(quiet["writes"])
        f(
            "budget",
            f"five dataflows, quiescent run: API calls ({types} entity types)",
            "calls",
            goal=f"<= {types} (one read per type)",
            check=lambda v, n=types: v <= n,
        ).values.append(quiet["api_calls"])
        detail = ", ".join(
            f"{system} {calls} calls/{len(quiet['types_by_system'].get(system, []))} types"
            for system, calls in quiet["api_calls_by_system"].items()
        )
        note = f"quiescent run by system: {detail}"
        if note not in suite.notes:
            suite.notes.append(note)


# -- 6: pushed changes -------------------------------------------------------------------------
def bench_push(suite: Suite) -> None:
    edits, size = (10, 100) if suite.quick else (40, 1_000)
    for run in range(suite.repeat):
        _progress(f"push: {edits} edits through webhooks, {size} records, run {run + 1}")
        result = suite.child("push", edits=edits, size=size)
        if result is None:
            continue
        f = suite.figure
        for system, label in (("exact", "Exact Online"), ("rest", "REST")):
            figures = result[system]
            f(
                "push",
                f"{label} edit → arrival through its webhook: p95",
                "s",
                goal="<= 2" if system == "exact" else "",
                check=(lambda v: v <= 2.0) if system == "exact" else None,
                note=f"{figures['edits']} edits, {size} records, schedule at 1 h",
            ).values.append(figures["p95"])
            f("push", f"{label} edit → arrival: median", "s").values.append(figures["p50"])
            f("push", f"{label} edit → arrival: max", "s").values.append(figures["max"])


# -- 7: samband serve with a large store ------------------------------------------------------
def bench_serve(suite: Suite) -> None:
    """Every GET route of ``samband serve`` over HTTP with a store of a million links
    (p50/p95 per route), then the process's CPU while the schedule is quiet."""
    from bench.http_bench import postgres_available

    links = 20_000 if suite.quick else 1_000_000
    requests, idle = (5, 5.0) if suite.quick else (20, 60.0)
    stores = ["sqlite"]
    reason = "not in --quick" if suite.quick else postgres_available()
    if reason:
        suite.notes.append(f"serve, PostgreSQL store: skipped: {reason}")
    else:
        stores.append("postgresql")
    label = f"{links:,}".replace(",", " ")
    for store in stores:
        _progress(f"serve: {label} links, {store} store, every GET route")
        result = suite.child(
            "serve", links=links, requests=requests, idle_seconds=idle, store=store
        )
        if result is None:
            continue
        name = "SQLite" if store == "sqlite" else "PostgreSQL"
        f = suite.figure
        detail = []
        pages = {}
        for template, page in result["pages"].items():
            if page["status"] == 0 or page["status"] >= 500:
                answer = "no answer in 60 s" if page["status"] == 0 else page["status"]
                suite.failures.append(f"serve: GET {page['path']}: {answer}")
            elif page["status"] >= 400:  # e.g. a search asked without what to look for
                suite.notes.append(f"serve: GET {page['path']} answered {page['status']}")
            if page.get("attachment"):
                # a download (the quarantine as CSV): as large as what it exports, so its
                # first byte is held to the goal and the whole of it is shown beside
                kib = page["bytes"] / 1024
                f(
                    "serve",
                    f"GET {template} ({kib:,.0f} KiB), {label} links, {name}: whole, p95",
                    "ms",
                    note=f"p50 {page['p50']:.1f} ms",
                ).values.append(page["p95"])
                page = {**page, "p50": page["first_byte_p50"], "p95": page["first_byte_p95"]}
                template = f"{template} first byte"
            pages[template] = page
            f(
                "serve",
                f"GET {template}, {label} links, {name}: p95",
                "ms",
                goal="<= 200",
                check=lambda v: v <= 200,
                note=f"p50 {page['p50']:.1f} ms over {page['requests']} requests",
            ).values.append(page["p95"])
            detail.append(f"{template} {page['p50']:.0f}/{page['p95']:.0f}")
        slowest = max(pages.values(), key=lambda page: page["p95"])
        f(
            "serve",
            f"slowest route, {label} links, {name}: p95 ({slowest['path']})",
            "ms",
            goal="<= 200",
            check=lambda v: v <= 200,
        ).values.append(slowest["p95"])
        f(
            "serve",
            f"idle, schedule quiet, {name} store: CPU over {idle:.0f} s",
            "% of a core",
            goal="<= 1",
            check=lambda v: v <= 1.0,
        ).values.append(result["idle_cpu_percent"])
        f("serve", f"building the {label}-link {name} store", "s").values.append(
            result["build_seconds"]
        )
        suite.notes.append(
            f"serve, {label} links, {name}: p50/p95 ms per route: " + ", ".join(detail)
        )
        for template, why in result.get("skipped", {}).items():
            suite.notes.append(f"serve: {template} not measured: {why}")


# -- 8: past one machine ------------------------------------------------------------------
def bench_cluster(suite: Suite) -> None:
    from bench.http_bench import postgres_available

    reason = postgres_available()
    if reason:
        suite.notes.append(f"cluster: skipped: {reason}")
        return
    calls, jobs = (2_000, 200) if suite.quick else (10_000, 1_000)
    for run in range(suite.repeat):
        _progress(f"cluster: token bucket, {calls} calls, run {run + 1}/{suite.repeat}")
        quota = suite.child("quota", calls=calls)
        if quota is not None:
            f = suite.figure
            f("cluster", "API call pacing, this process only", "µs/call").values.append(
                quota["local_us"]
            )
            f(
                "cluster",
                "API call pacing, shared bucket in PostgreSQL",
                "µs/call",
                goal="< 10 000 (PowerOffice GO's 100 ms slot)",
                check=lambda v: v < 10_000,
            ).values.append(quota["bucket_us"])
            f(
                "cluster",
                f"shared bucket, {quota['workers']} connections on one row",
                "µs/call",
                note="wall time over all calls",
            ).values.append(quota["contended_us"])
            f("cluster", "PostgreSQL round trip (SELECT 1), for scale", "µs").values.append(
                quota["round_trip_us"]
            )
        _progress(f"cluster: job queue, {jobs} jobs, run {run + 1}/{suite.repeat}")
        queue = suite.child("queue", jobs=jobs)
        if queue is None:
            continue
        if "skipped" in queue:
            note = f"cluster: job queue overhead not measured: {queue['skipped']}"
            if note not in suite.notes:
                suite.notes.append(note)
            continue
        f = suite.figure
        f(
            "cluster",
            f"job queue (procrastinate {queue['version']}): defer with locks",
            "ms/job",
        ).values.append(queue["defer_ms"])
        f(
            "cluster",
            f"job queue (procrastinate {queue['version']}): take and run a no-op job",
            "ms/job",
        ).values.append(queue["run_ms"])


# -- 9: many tenants ---------------------------------------------------------------------
def bench_tenants(suite: Suite) -> None:
    tenants, workers = (50, [1, 2]) if suite.quick else (1_000, [1, 2, 4])
    _progress(f"tenants: {tenants} tenants, initial loads, then quiescent cycles")
    result = suite.child("tenants", tenants=tenants, workers=workers)
    if result is None:
        return
    f = suite.figure
    f("tenants", f"{tenants} tenants, initial loads of 20 records", "s").values.append(
        result["initial"]["seconds"]
    )
    for count, cycle in result["cycles"].items():
        f(
            "tenants",
            f"{tenants} tenants, quiescent runs, {count} worker process(es)",
            "runs/min",
            note="plain processes splitting the tenants, no job queue yet: the ceiling",
        ).values.append(cycle["runs_per_minute"])
        f(
            "tenants",
            f"{tenants} tenants, quiescent cycle, {count} worker(s): writes",
            "writes",
            goal="0",
            check=lambda v: v == 0,
        ).values.append(cycle["writes"])


# -- 10: many tenants through the job queue ------------------------------------------------
def bench_tenants_queue(suite: Suite) -> None:
    """Quiescent cycles of many tenants taken by real ``samband worker --queue`` processes
    (and the same tenants without the queue: the ceiling), then initial loads of 20 tenants
    queued at once; see :mod:`bench.queue_bench`."""
    from bench.http_bench import postgres_available

    reason = postgres_available()
    if reason:
        suite.notes.append(f"tenants-queue: skipped: {reason}")
        return
    tenants, workers = (50, [1, 2]) if suite.quick else (1_000, [1, 2, 4])
    loads, records, load_workers = (20, 100, [2]) if suite.quick else (20, 500, [1, 2, 4])
    label = f"{tenants:,}".replace(",", " ")
    cores = os.cpu_count() or 1
    f = suite.figure
    for run in range(1 if suite.quick else min(suite.repeat, 2)):
        _progress(f"tenants-queue: {label} tenants through the queue, run {run + 1}")
        result = suite.child("queue-cycles", tenants=tenants, workers=workers)
        if result is None:
            continue
        initial = result["initial"]
        f(
            "tenants-queue",
            f"{label} tenants' initial loads (20 records), {initial['workers']} workers",
            "s",
        ).values.append(initial["seconds"])
        for count, cycle in result["cycles"].items():
            _queue_failures(suite, f"{label} tenants, {count} worker(s)", cycle)
            ceiling = result["ceiling"][count]
            if ceiling["writes"]:
                suite.failures.append(f"tenants-queue: a quiescent cycle wrote {ceiling['writes']}")
            f(
                "tenants-queue",
                f"{label} tenants, quiescent runs through the queue, {count} worker(s)",
                "runs/min",
                note=f"samband worker processes on {cores} cores; first run taken to last end",
            ).values.append(cycle["runs_per_minute"])
            f(
                "tenants-queue",
                f"{label} tenants, the same without the queue, {count} process(es)",
                "runs/min",
                note="bench.tenants_bench's plain processes: the ceiling",
            ).values.append(ceiling["runs_per_minute"])
            per_worker = int(count) / tenants * 1000
            f(
                "tenants-queue",
                f"the queue's cost per quiescent run, {count} worker(s)",
                "ms/run",
                note="(cycle through the queue - cycle without) x workers / tenants",
            ).values.append((cycle["seconds"] - ceiling["seconds"]) * per_worker)
            f(
                "tenants-queue",
                f"a quiescent run in its job (run log), {count} worker(s): median",
                "ms",
            ).values.append(cycle["job_median_s"] * 1000)
            f(
                "tenants-queue",
                f"the queue around a run, {count} worker(s): taken → run, run → done, "
                "done → next taken",
                "ms",
                note=f"medians: {cycle['taken_to_run_ms']:.1f} + {cycle['run_to_finished_ms']:.1f}"
                f" + {cycle['finished_to_next_ms']:.1f} (procrastinate's events, the run log)",
            ).values.append(
                cycle["taken_to_run_ms"]
                + cycle["run_to_finished_ms"]
                + cycle["finished_to_next_ms"]
            )
            f(
                "tenants-queue",
                f"CPU per quiescent run through the queue, {count} worker(s)",
                "ms",
                note="the worker processes' CPU over the cycle / runs (not PostgreSQL's)",
            ).values.append(cycle["cpu_ms_per_run"])
            f(
                "tenants-queue",
                f"CPU per quiescent run without the queue, {count} process(es)",
                "ms",
            ).values.append(ceiling["cpu_ms_per_run"])
        load = ", ".join(f"{v:.1f}" for v in result["load_average"])
        suite.notes.append(f"tenants-queue: load average after the {label}-tenant run: {load}")
    for run in range(1 if suite.quick else min(suite.repeat, 2)):
        _progress(
            f"tenants-queue: {loads} initial loads of {records} records at once, run {run + 1}"
        )
        result = suite.child("queue-loads", tenants=loads, records=records, workers=load_workers)
        if result is None:
            continue
        for count, load in result["loads"].items():
            _queue_failures(suite, f"{loads} initial loads, {count} worker(s)", load)
            f(
                "tenants-queue",
                f"{loads} initial loads of {records} records queued at once, {count} worker(s)",
                "s",
                note="first defer to the last load's end",
            ).values.append(load["seconds"])
            f(
                "tenants-queue",
                f"{loads} initial loads at once, {count} worker(s): one tenant's, median",
                "s",
                note="its job's start to end (run log)",
            ).values.append(load["job_median_s"])


def _queue_failures(suite: Suite, what: str, figures: dict[str, Any]) -> None:
    if figures["not_ok"]:
        suite.failures.append(
            f"tenants-queue: {what}: {figures['not_ok']} runs not ok, e.g. "
            f"{figures['first_failure']}"
        )


# -- output -------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if magnitude >= 10 or value == int(value):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"


def table(figures: list[Figure]) -> str:
    rows = [("benchmark", "figure", "median", "spread (min–max)", "unit", "goal", "met")]
    for fig in figures:
        spread = (
            f"{_fmt(min(fig.values))}–{_fmt(max(fig.values))} (n={len(fig.values)})"
            if len(fig.values) > 1
            else "(n=1)"
        )
        met = {True: "yes", False: "NO", None: ""}[fig.met]
        rows.append((fig.benchmark, fig.name, _fmt(fig.median), spread, fig.unit, fig.goal, met))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": memory,
        "calibration_ms": calibration_ms(),
    }


@cache
def calibration_ms() -> float:
    """The time of a fixed workload like the engine's (Python dicts and strings, JSON,
    SQLite inserts into an in-memory database), best of fifteen, in milliseconds.  Machines
    of one name differ (shared hosts): figures of two runs compare only through this."""
    best = float("inf")
    for _ in range(15):
        started = time.perf_counter()
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
        rows = []
        for i in range(20_000):
            record = {"id": i, "name": f"Company {i} AS", "org": str(900_000_000 + i)}
            rows.append((f"src:Company:{i}", orjson.dumps(record).decode()))
        db.executemany("INSERT INTO t VALUES (?, ?)", rows)
        db.commit()
        db.close()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "src", "bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+local-changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--only", nargs="+", choices=NAMES, help="run only these benchmarks")
    parser.add_argument("--repeat", type=int, help="repetitions (default 3, --quick 1)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    suite = Suite(args.quick, args.repeat)
    calibration_ms()  # before the benchmarks load the machine
    started = time.perf_counter()
    steps = {
        "engine": bench_engine,
        "http": bench_http,
        "budget": bench_budget,
        "peer": bench_peer,
        "push": bench_push,
        "serve": bench_serve,
        "cluster": bench_cluster,
        "tenants": bench_tenants,
        "tenants-queue": bench_tenants_queue,
    }
    for name in args.only or NAMES:
        try:
            steps[name](suite)
        except Exception as exc:  # one failure must not lose the rest
            suite.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        _write(args.output, suite, args.quick, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    _write(args.output, suite, args.quick, elapsed)
    print(table(suite.figures))
    for note in suite.notes:
        print(f"note: {note}")
    for failure in suite.failures:
        print(f"FAILED: {failure}")
    print(f"{len(suite.figures)} figures in {elapsed:.0f} s; written to {args.output}")
    return 1 if suite.failures else 0


def _write(output: Path, suite: Suite, quick: bool, elapsed: float) -> None:
    """Write results.json (after every benchmark, so a late failure keeps the rest)."""
    payload = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "quick": quick,
        "repeat": suite.repeat,
        "seconds": round(elapsed, 1),
        "figures": [fig.as_dict() for fig in suite.figures],
        "notes": suite.notes,
        "failures": suite.failures,
    }
    output.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
