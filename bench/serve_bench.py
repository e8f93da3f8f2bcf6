"""Benchmark 6: ``samband serve`` with a large store.  Every page and JSON endpoint the
app registers is requested over real HTTP from a real ``samband serve`` process whose
store holds ``links`` links (with their snapshots, history, runs, conflicts and
quarantined records); then the process's CPU time is measured while the schedule is quiet.

The store is made the way a long-used one is: a real run of a small world first (so the
dataflows, cursors and runs are the engine's own), then rows added in bulk in the store's
own schema (:mod:`samband.store.schema`), far faster than syncing a million records.
The routes come from the app itself, so a page added later is measured too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from samband.store import schema as s

# two dataflows, one large and one small: a page sums or lists both
FLOWS = (
    ("customers", "crm", "Customer", "erp", "Account", 0.8),
    ("contacts", "crm", "Contact", "erp", "Person", 0.2),
)
FIRST_ID = 1_000_000  # bulk rows' ids start here, above the small world's
AT = "2026-11-01T08:00:00+00:00"

CONFIG = """\
store: {store}
systems:
  crm:
    kind: memory
    path: crm.json
    entity_types:
      Customer: {{external_ref: ext}}
      Contact: {{external_ref: ext}}
  erp:
    kind: memory
    path: erp.json
    entity_types:
      Account: {{external_ref: ext}}
      Person: {{external_ref: ext}}
dataflows:
  - id: customers
    source: crm.Customer
    target: erp.Account
    match: [[{{from: org, to: org}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org, to: org, type: string}}
      - {{from: email, to: email, type: string}}
  - id: contacts
    source: crm.Contact
    target: erp.Person
    match: [[{{from: email, to: email}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: email, to: email, type: string}}
"""


def _record(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"Company {i} AS", "org": f"9{i:08d}", "email": f"post{i}@firma{i}.no"}


def make_world(folder: Path, store_url: str) -> Path:
    """A config of two memory systems with a few records each, synced once."""
    from samband.config.validate import load_valid
    from samband.engine.run import Engine

    def dataset(types: dict[str, list[dict[str, Any]]]) -> str:
        return json.dumps(
            {
                "version": 1,
                "types": {
                    name: {
                        str(r["id"]): {"data": r, "version": 1, "modified": AT, "deleted": False}
                        for r in records
                    }
                    for name, records in types.items()
                },
            }
        )

    small = [_record(i) for i in range(1, 4)]
    (folder / "crm.json").write_text(dataset({"Customer": small, "Contact": small}))
    (folder / "erp.json").write_text(dataset({"Account": [], "Person": []}))
    path = folder / "samband.yaml"
    path.write_text(CONFIG.format(store=json.dumps(store_url)), encoding="utf-8")
    engine = Engine(load_valid(path).config, store_url=store_url)
    try:
        report = engine.sync()
    finally:
        engine.close()
    if report.status != "ok":
        raise RuntimeError(f"the small world's run ended {report.status}: {report.messages}")
    return path


# -- the bulk rows ---------------------------------------------------------------------------
def _split(links: int) -> list[tuple[str, str, str, str, str, int, int]]:
    """(flow, source system, type, target system, type, first id, count) per dataflow."""
    parts, start = [], FIRST_ID
    for index, (flow, ssys, stype, tsys, ttype, share) in enumerate(FLOWS):
        count = links - (start - FIRST_ID) if index == len(FLOWS) - 1 else int(links * share)
        parts.append((flow, ssys, stype, tsys, ttype, start, count))
        start += count
    return parts


def _snapshot_rows(links: int, run_id: int) -> Iterator[tuple[Any, ...]]:
    for _flow, ssys, stype, tsys, ttype, start, count in _split(links):
        for system, etype in ((ssys, stype), (tsys, ttype)):
            for i in range(start, start + count):
                data = json.dumps(_record(i), sort_keys=True)
                yield (system, etype, str(i), f"{i:040x}", data, AT, False, run_id, False)


def _link_rows(links: int, run_id: int) -> Iterator[tuple[Any, ...]]:
    for flow, ssys, stype, tsys, ttype, start, count in _split(links):
        for i in range(start, start + count):
            base = json.dumps({"name": f"Company {i} AS", "org": f"9{i:08d}"})
            yield (flow, f"{ssys}:{stype}:{i}", f"{tsys}:{ttype}:{i}", base, "created", run_id, AT)


def _audit_rows(links: int, run_id: int) -> Iterator[tuple[Any, ...]]:
    """A create per link, and an update of every tenth record."""
    for flow, _ssys, _stype, tsys, ttype, start, count in _split(links):
        for i in range(start, start + count):
            after = json.dumps(_record(i))
            yield (run_id, AT, f"{tsys}:{ttype}:{i}", flow, "create", None, after)
            if i % 10 == 0:
                before = json.dumps({"name": f"Company {i} AS"})
                changed = json.dumps({"name": f"Company {i} ASA"})
                yield (run_id, AT, f"{tsys}:{ttype}:{i}", flow, "update", before, changed)


def _run_rows(runs: int) -> Iterator[tuple[Any, ...]]:
    stats = {
        "created": 0,
        "updated": 3,
        "deleted": 0,
        "linked": 0,
        "conflicts": 1,
        "errors": 0,
        "api_calls": 8,
        "api_calls_by_system": {"crm": 4, "erp": 4},
        "messages": [],
    }
    for n in range(runs):
        failed = n % 97 == 0
        row_stats = {**stats, "messages": ["erp: 503 Service Unavailable"] if failed else []}
        status = "failed" if failed else "ok"
        yield (AT, AT, status, False, "bench", json.dumps(row_stats))


def _conflict_rows(count: int, run_id: int) -> Iterator[tuple[Any, ...]]:
    for n in range(count):
        i = FIRST_ID + n * 7
        yield (
            run_id, AT, "customers", f"crm:Customer:{i}", f"erp:Account:{i}", "name",
            json.dumps(f"Company {i} AS"), json.dumps(f"Company {i} ASA"),
            json.dumps(f"Company {i} A/S"), "source", "both changed; the source wins",
        )  # fmt: skip


def _dead_letter_rows(count: int, run_id: int) -> Iterator[tuple[Any, ...]]:
    for n in range(count):
        i = FIRST_ID + n * 11
        yield (
            f"crm:Customer:{i}", "customers", "rejected",
            f"erp rejected the record: 422 org {i} is not a valid organisation number",
            None, 1 + n % 4, AT, AT, run_id, None,
        )  # fmt: skip


COLUMNS = {
    s.snapshots: (
        "system", "etype", "rid", "hash", "data", "modified", "deleted", "seen_run", "refresh",
    ),
    s.links: ("dataflow", "source_ref", "target_ref", "base", "how", "created_run", "created_at"),
    s.audit: ("run_id", "at", "ref", "dataflow", "op", "before", "after"),
    s.runs: ("started_at", "finished_at", "status", "dry_run", "owner", "stats"),
    s.conflicts: (
        "run_id", "at", "dataflow", "source_ref", "target_ref", "property", "base",
        "source_value", "target_value", "winner", "reason",
    ),
    s.dead_letters: (
        "ref", "dataflow", "kind", "reason", "details", "attempts", "first_at", "last_at",
        "run_id", "dismissed_at",
    ),
}  # fmt: skip


def fill(store_url: str, links: int, runs: int = 5_000, conflicts: int = 20_000,
         quarantined: int = 10_000) -> dict[str, int]:  # fmt: skip
    """Add the bulk rows to a store made by :func:`make_world`; the row counts by table."""
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            run_id = int(conn.execute(text("SELECT max(id) FROM samband_runs")).scalar_one())
    finally:
        engine.dispose()
    tables: list[tuple[Any, Iterable[tuple[Any, ...]]]] = [
        (s.snapshots, _snapshot_rows(links, run_id)),
        (s.links, _link_rows(links, run_id)),
        (s.audit, _audit_rows(links, run_id)),
        (s.runs, _run_rows(runs)),
        (s.conflicts, _conflict_rows(conflicts, run_id)),
        (s.dead_letters, _dead_letter_rows(quarantined, run_id)),
    ]
    if store_url.startswith("sqlite"):
        return _fill_sqlite(store_url.split("///", 1)[1], tables)
    return _fill_postgres(store_url, tables)


def _fill_sqlite(path: str, tables: list[tuple[Any, Iterable[tuple[Any, ...]]]]) -> dict[str, int]:
    import sqlite3

    counts = {}
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")
        for table, rows in tables:
            columns = COLUMNS[table]
            sql = (
                f"INSERT INTO {table.name} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            before = db.total_changes
            db.executemany(sql, rows)
            db.commit()
            counts[table.name] = db.total_changes - before
        db.execute("ANALYZE")
        db.commit()
    finally:
        db.close()
    return counts


def _fill_postgres(url: str, tables: list[tuple[Any, Iterable[tuple[Any, ...]]]]) -> dict[str, int]:
    import psycopg
    from sqlalchemy import make_url

    parsed = make_url(url)
    options = parsed.query.get("options")
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    dsn = dsn.split("?", 1)[0]
    counts = {}
    with psycopg.connect(dsn, options=str(options or "")) as conn:
        for table, rows in tables:
            columns = COLUMNS[table]
            count = 0
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            conn.commit()
            counts[table.name] = count
        # the ids were given by COPY's defaults; ANALYZE as autovacuum would soon
        conn.execute("ANALYZE")
        conn.commit()
    return counts


# -- serving and measuring -------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(config: Path, every: str = "24h") -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``samband serve`` in a process of its own; (process, base URL) once it listens.
    Its output goes to ``serve.log`` beside the config: a pipe nobody reads would fill
    with its log lines and stop it."""
    port = _free_port()
    log = config.parent / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "samband.cli", "serve", "-c", str(config), "--port",
             str(port), "--every", every],
            cwd=config.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while b"serving" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_bytes().decode(errors="replace")[-2000:]
                raise RuntimeError(f"samband serve did not start: {tail}")
            time.sleep(0.1)  # paces the wait for the line it prints once it listens
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_first_run(client: httpx.Client, timeout: float = 600) -> None:
    """Until the run the service starts with is over, with what follows it (the metrics
    of the run are the last of that: ``samband_runs_total``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = client.get("/metrics").text
        if re.search(r"^samband_runs_total\{[^}]*\} [1-9]", metrics, re.M):
            return
        time.sleep(0.2)  # paces the polls of a run in progress
    raise RuntimeError(f"the service's first run did not finish within {timeout:.0f} s")


def samples(config: Path, store_url: str, links: int = 0) -> dict[str, str]:
    """A value for each path parameter a route may have, taken from the store (a record in
    the middle of the bulk rows, the latest conflict and run) and the config."""
    from sqlalchemy import create_engine, text

    from samband.config.validate import load_valid
    from samband.docs import render_documents

    cfg = load_valid(config).config
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            conflict = conn.execute(text("SELECT max(id) FROM samband_conflicts")).scalar_one()
            run = conn.execute(text("SELECT max(id) FROM samband_runs")).scalar_one()
            letter = conn.execute(text("SELECT max(ref) FROM samband_dead_letters")).scalar_one()
            middle = f"crm:Customer:{FIRST_ID + links // 3}" if links else None
    finally:
        engine.dispose()
    flow = cfg.dataflows[0]
    system = next(iter(cfg.systems))
    documents = sorted(render_documents(cfg, "html"))
    ref = str(middle or letter or "crm:Customer:1")
    return {
        "ref": ref,
        "record": ref,
        "name": documents[0] if documents else "",
        "document": documents[0] if documents else "",
        "id": str(conflict or 1),
        "conflict": str(conflict or 1),
        "run": str(run or 1),
        "run_id": str(run or 1),
        "key": flow.key,
        "flow": flow.key,
        "dataflow": flow.key,
        "system": system,
        "etype": "Customer",
        "type": "Customer",
        "entity_type": "Customer",
    }


def get_routes(config: Path) -> list[str]:
    """The paths of every GET route the app registers, as templates (``/runs``,
    ``/api/records/{ref:path}``)."""
    from starlette.routing import Mount, Route

    from samband.service import Service, create_app

    service = Service(config, every=86_400)
    app = create_app(service, manage_service=False)
    found: list[str] = []

    def walk(routes: Iterable[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route) and "GET" in (route.methods or {"GET"}):
                found.append(prefix + route.path)

    walk(app.routes, "")
    return found


_PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}")


def fill_path(template: str, values: dict[str, str]) -> str | None:
    """The template with each parameter given a sample value; None when one has none."""
    missing = [name for name in _PARAM.findall(template) if not values.get(name)]
    if missing:
        return None
    return _PARAM.sub(lambda m: values[m.group(1)], template)


def measure(client: httpx.Client, paths: dict[str, str], requests: int) -> dict[str, Any]:
    """Per route: latencies of ``requests`` GETs in ms, to the first byte of the body and
    to its end.  The routes take turns (a round asks each once, after a round to warm
    up), so a moment the machine is busy falls on all of them alike.  An event stream is
    timed to its headers: it does not end.  A route that times out (status 0) is not
    asked again."""
    times: dict[str, list[float]] = {template: [] for template in paths}
    firsts: dict[str, list[float]] = {template: [] for template in paths}
    seen: dict[str, dict[str, Any]] = {}
    for round_ in range(requests + 1):
        for template, path in paths.items():
            if seen.get(template, {}).get("status") == 0:
                continue
            answer = _get(client, path)
            seen[template] = {"path": path, "requests": requests, **answer}
            if round_ or answer["status"] == 0:
                times[template].append(answer.pop("ms"))
                firsts[template].append(answer.pop("first_ms"))
    return {
        template: {
            **{k: v for k, v in seen[template].items() if k not in ("ms", "first_ms")},
            **_percentiles(times[template], ""),
            **_percentiles(firsts[template], "first_byte_"),
        }
        for template in paths
    }


def _get(client: httpx.Client, path: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with client.stream("GET", path) as response:
            first = time.perf_counter()
            kind = response.headers.get("content-type", "")
            size = 0
            if not kind.startswith("text/event-stream"):
                for number, chunk in enumerate(response.iter_bytes()):
                    if number == 0:
                        first = time.perf_counter()
                    size += len(chunk)
            status = response.status_code
            attachment = "attachment" in response.headers.get("content-disposition", "")
    except httpx.TimeoutException:
        elapsed = (time.perf_counter() - started) * 1000
        return {"status": 0, "content_type": "", "attachment": False, "bytes": 0,
                "ms": elapsed, "first_ms": elapsed}  # fmt: skip
    return {
        "status": status,
        "content_type": kind.split(";")[0],
        "attachment": attachment,
        "bytes": size,
        "ms": (time.perf_counter() - started) * 1000,
        "first_ms": (first - started) * 1000,
    }


def _percentiles(values: list[float], prefix: str) -> dict[str, float]:
    values = sorted(values)
    return {
        f"{prefix}p50": statistics.median(values),
        f"{prefix}p95": values[min(len(values) - 1, round(0.95 * (len(values) - 1)))],
        f"{prefix}max": values[-1],
    }


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pid: int, seconds: float) -> float:
    """The process's CPU use over ``seconds`` of wall time, in % of one core."""
    cpu, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)  # the measurement itself: the process is left alone meanwhile
    return 100 * (cpu_seconds(pid) - cpu) / (time.monotonic() - started)


def run_serve(
    links: int, requests: int = 20, idle_seconds: float = 60, store: str = "sqlite"
) -> dict[str, Any]:
    """Build the store, serve it, time every GET route, then measure the idle CPU."""
    from bench.http_bench import pg_schema

    with tempfile.TemporaryDirectory(prefix="samband-bench-serve-") as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            if store == "sqlite":
                store_url = f"sqlite:///{folder / 'state.db'}"
            else:
                store_url = stack.enter_context(pg_schema("serve"))
            started = time.perf_counter()
            config = make_world(folder, store_url)
            rows = fill(store_url, links)
            build = time.perf_counter() - started
            routes = get_routes(config)
            values = samples(config, store_url, links)
            result: dict[str, Any] = {"links": links, "store": store, "build_seconds": build}
            result["rows"] = rows
            with served(config) as (process, url), httpx.Client(base_url=url, timeout=60) as client:
                started = time.perf_counter()
                wait_first_run(client)
                result["first_run_seconds"] = time.perf_counter() - started
                paths: dict[str, str] = {}
                skipped: dict[str, str] = {}
                for template in routes:
                    path = fill_path(template, values)
                    if path is None:
                        skipped[template] = "no sample value for its parameters"
                    else:
                        paths[template] = path
                result["pages"] = measure(client, paths, requests)
                result["skipped"] = skipped
                time.sleep(2)  # let the last response's work end before the idle measurement
                result["idle_seconds"] = idle_seconds
                result["idle_cpu_percent"] = idle_cpu(process.pid, idle_seconds)
                result["serve_cpu_seconds"] = cpu_seconds(process.pid)
    return result
