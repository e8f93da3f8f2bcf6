"""``samband sync``, ``run`` and ``worker``: the runs and their reports."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from samband.cli._app import (
    ConfigOption,
    JsonOption,
    app,
    err,
    fail,
    out,
)
from samband.cli._json import fail_as
from samband.durations import format_seconds
from samband.errors import ConfigError, ConnectorError, RunLocked, SambandError, StoreError
from samband.logs import timestamp
from samband.plugin.options import config_given, found_config

# -- sync --------------------------------------------------------------------------
LeaseWaitOption = Annotated[
    str,
    typer.Option(
        "--lease-wait",
        help="How long to wait for an entity type another worker is reading before "
        "giving the plan up, e.g. 0s, 60s, 5m.",
    ),
]


def _engine(config: Path, lease_wait: str = "60s") -> Any:
    from samband.durations import parse_interval
    from samband.engine.run import Engine

    try:
        wait = parse_interval(lease_wait)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lease-wait") from None
    return Engine.from_file(config, lease_wait=wait)


StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit 3 when the run went through but set records aside (quarantined).",
    ),
]
QUARANTINED = 3
INTERRUPTED = 130


@app.command()
def sync(
    config: ConfigOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; write nothing.")
    ] = False,
    as_json: JsonOption = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run even if the circuit breaker trips, or a system looks renamed.",
        ),
    ] = False,
    lease_wait: LeaseWaitOption = "60s",
    confirm_deletions: Annotated[
        list[str] | None,
        typer.Option(
            "--confirm-deletions",
            metavar="SYSTEM.TYPE",
            help="Take this type's complete read as it is even if it returned far fewer "
            "records than expected: the records it misses are deleted (held deletions: "
            "`samband status`). Repeatable; --force does not do this.",
        ),
    ] = None,
    strict: StrictOption = False,
    dataflows: Annotated[
        list[str] | None,
        typer.Option(
            "--dataflow",
            metavar="KEY",
            help="Run only this dataflow (and those its references depend on). "
            "Repeatable; default: every dataflow that is not paused.",
        ),
    ] = None,
    max_chunks: Annotated[
        int | None,
        typer.Option(
            "--max-chunks",
            min=1,
            help="Yield after this many chunks that moved something: the run ends with "
            "status yielded, everything done is kept, and the next run goes on.",
        ),
    ] = None,
    max_time: Annotated[
        str | None,
        typer.Option(
            "--max-time",
            help="Yield between two chunks once the run has worked this long, e.g. 30s, 5m.",
        ),
    ] = None,
) -> None:
    """One run: collect, link, plan, apply, commit."""
    from samband.progress import RichProgress

    max_seconds = _seconds(max_time, "--max-time")
    try:
        engine = _engine(config, lease_wait)
    except SambandError as exc:
        raise fail_as(exc, as_json) from None
    # SIGTERM ends the run as Ctrl-C does: what was committed stays, the rest rolls back
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        progress = None if as_json or not sys.stderr.isatty() else RichProgress(err)
        report = engine.sync(
            dry_run=dry_run,
            force=force,
            progress=progress,
            confirm_deletions=confirm_deletions or (),
            dataflows=dataflows or None,
            max_chunks=max_chunks,
            max_seconds=max_seconds,
        )
    except KeyboardInterrupt:
        raise _interrupted(engine.last_report) from None
    except SambandError as exc:
        # with --json a tripped circuit breaker prints what it counted and how to go on
        raise fail_as(exc, as_json) from None
    finally:
        engine.close()
    _print_report(report, as_json, config)
    if not as_json and not sys.stdout.isatty():
        err.print(f"{timestamp()} sync {report.one_line()}")
    raise typer.Exit(_exit_code(report, strict))


def _seconds(value: str | None, option: str) -> float | None:
    from samband.durations import parse_interval

    if value is None:
        return None
    try:
        return parse_interval(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupted(report: Any) -> typer.Exit:
    hint = report.continue_hint() if report is not None else "run again to continue"
    err.print(f"interrupted: {hint}")
    return typer.Exit(INTERRUPTED)


def _exit_code(report: Any, strict: bool) -> int:
    if report.failed:
        return 1
    if strict and (report.total().errors or report.total().ambiguous):
        return QUARANTINED
    return 0


def _print_report(report: Any, as_json: bool, config: Path) -> None:
    data = report.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        if report.failed:
            for message in report.messages:
                err.print(f"error: {message}")
        return
    if report.failed and not any(data.get(c) for c in ("created", "updated", "deleted", "linked")):
        for message in report.messages:
            err.print(f"error: {message}")
        return
    table = Table(title="dry run: nothing was written" if report.dry_run else "sync summary")
    columns = [
        "created",
        "updated",
        "deleted",
        "linked",
        "unlinked",
        "archived",
        "conflicts",
        "errors",
        "waiting",
        "ambiguous",
    ]
    table.add_column("dataflow")
    for column in columns:
        table.add_column(column, justify="right")
    for key, counts in data["dataflows"].items():
        table.add_row(key, *(str(counts.get(c, 0)) for c in columns))
    table.add_row("total", *(str(data.get(c, 0)) for c in columns), style="bold")
    out.print(table)
    by_system = ", ".join(f"{s} {n}" for s, n in report.api_calls_by_system.items())
    took = f"{report.seconds:.1f} s" if report.seconds is not None else "?"
    out.print(f"took {took}; {report.api_calls} API calls ({by_system or 'none'})")
    if report.dry_run and report.plan:
        for line in report.plan[:200]:
            out.print(str(line))
        if len(report.plan) > 200:
            out.print(f"… and {len(report.plan) - 200} more")
    prefix = "error: " if report.failed else ""
    for message in report.messages:
        err.print(f"{prefix}{message}")
    if not report.dry_run:
        for step in report.next_steps(str(config)):
            err.print(f"next: {step}")


@app.command("run")
def run_forever(
    config: ConfigOption,
    every: Annotated[str, typer.Option("--every", help="Interval, e.g. 30s, 5m, 1h.")] = "60s",
    as_json: JsonOption = False,
    lease_wait: LeaseWaitOption = "60s",
) -> None:
    """Run a sync repeatedly until stopped; Ctrl-C finishes the current step cleanly.
    A cycle prints one timestamped line, and its table only when something changed.
    While a system cannot be reached, the wait doubles each cycle (up to 15 minutes)."""
    _repeat(config, every, as_json, lease_wait, shared=False)


def _repeat(config: Path, every: str, as_json: bool, lease_wait: str, *, shared: bool) -> None:
    from samband.engine.run import parse_interval
    from samband.engine.schedule import next_wait

    try:
        interval = parse_interval(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from None
    stop = {"now": False}
    name = "worker" if shared else "run"

    def handle(signum: int, frame: object) -> None:
        if stop["now"]:
            raise KeyboardInterrupt
        stop["now"] = True
        err.print("stopping after the current step (Ctrl-C again to abort)")

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    try:
        engine = _engine(config, lease_wait)
        engine.store()  # a store that cannot be opened ends the command at once
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    failures = 0
    report = None
    try:
        while not stop["now"]:
            failed = False
            try:
                if shared:
                    report = engine.work(should_stop=lambda: stop["now"])
                else:
                    report = engine.sync(should_stop=lambda: stop["now"])
                if report.changed or as_json:
                    _print_report(report, as_json, config)
                err.print(f"{timestamp()} {name} {report.one_line()}")
                failed = report.failed
            except ConnectorError as exc:
                err.print(f"{timestamp()} {name} error: {exc}")
                failed = True
            except StoreError as exc:
                if not shared:
                    raise
                # a worker outlives a store hiccup (server restart, a deadlock with another
                # worker): what was committed is consistent; the next turn goes on
                err.print(f"{timestamp()} {name} error: {exc}")
                failed = True
            except RunLocked as exc:
                # another worker holds the store: stand by and take over when it stops
                err.print(f"{timestamp()} {name} waiting: {exc}")
            failures = failures + 1 if failed else 0
            wait = next_wait(interval, failures)
            if failures:
                err.print(f"{timestamp()} {name}: next try in {format_seconds(wait)}")
            deadline = time.monotonic() + wait
            while not stop["now"] and time.monotonic() < deadline:
                time.sleep(0.2)
    except KeyboardInterrupt:
        raise _interrupted(engine.last_report) from None
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    finally:
        engine.close()
    if report is not None and report.interrupted:
        raise _interrupted(report)
    # stopped while waiting for the next cycle: the way a service ends, nothing half done
    err.print("stopped between two cycles; nothing was left half done")
    raise typer.Exit(0)


@app.command("worker")
def worker(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Without --queue: the config file (YAML) the workers share; default: the "
            "--tenant's, else $SAMBAND_CONFIG, else ./samband.yaml.",
            show_default=False,
            callback=config_given,
        ),
    ] = None,
    every: Annotated[str, typer.Option("--every", help="Interval, e.g. 30s, 5m, 1h.")] = "30s",
    as_json: JsonOption = False,
    lease_wait: LeaseWaitOption = "60s",
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            envvar="SAMBAND_QUEUE",
            help="Take tenants' jobs from this queue (PostgreSQL: postgresql://USER@HOST/DB) "
            "instead of running one config; see `samband tenants`.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="With --queue: jobs run at once.")
    ] = 1,
    tenants_dir: Annotated[
        Path | None,
        typer.Option(
            "--tenants-dir",
            help="With --queue: the tenants registry; default: $SAMBAND_TENANTS, else ./tenants.",
            show_default=False,
        ),
    ] = None,
    heartbeat: Annotated[
        str,
        typer.Option(
            "--heartbeat",
            help="With --queue: how often this worker says it is alive (e.g. 10s).",
        ),
    ] = "10s",
    dead_after: Annotated[
        str,
        typer.Option(
            "--dead-after",
            help="With --queue: a worker silent this long whose connections to the queue "
            "are gone is dead, and its jobs are run again (e.g. 30s).",
        ),
    ] = "30s",
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="With --queue: on SIGTERM or Ctrl-C, how long the running jobs have to "
            "end; past it their runs stop after the current chunk and are queued again.",
        ),
    ] = "30s",
    turn: Annotated[
        str,
        typer.Option(
            "--turn",
            help="With --queue: a tenant's run yields between two chunks once it has worked "
            "this long (e.g. 60s, 5m), and its next run waits behind the jobs queued "
            "meanwhile: a huge initial load takes turns with the other tenants. 0: no limit.",
        ),
    ] = "60s",
    turn_chunks: Annotated[
        int | None,
        typer.Option(
            "--turn-chunks",
            min=1,
            help="With --queue: a tenant's run also yields after this many chunks that moved "
            "something (default: no limit but --turn).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """With --queue: take tenants' jobs (runs, pushed runs, resyncs) from the queue, any
    number of workers on any number of machines; a job of a worker that dies is run
    again.  Without: like `run`, for several processes sharing one config's store (they
    divide the reading by entity type, one at a time plans and applies)."""
    if queue is None:
        _repeat(config or found_config(), every, as_json, lease_wait, shared=True)
        return
    _queue_worker(
        queue,
        concurrency,
        tenants_dir,
        heartbeat,
        dead_after,
        grace=grace,
        turn=turn,
        turn_chunks=turn_chunks,
    )


def _queue_worker(
    queue: str,
    concurrency: int,
    tenants_dir: Path | None,
    heartbeat: str,
    dead_after: str,
    *,
    grace: str,
    turn: str,
    turn_chunks: int | None,
) -> None:
    from samband.durations import parse_interval
    from samband.queue.jobs import Turn
    from samband.queue.worker import WorkerOptions, run_worker
    from samband.tenants import registry_dir

    times = {}
    for option, value in (
        ("--heartbeat", heartbeat),
        ("--dead-after", dead_after),
        ("--grace", grace),
        ("--turn", turn),
    ):
        try:
            times[option] = parse_interval(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from None
    if times["--dead-after"] < 2 * times["--heartbeat"]:
        raise typer.BadParameter(
            "a worker is declared dead only after two missed heartbeats at least: give "
            "--dead-after twice --heartbeat or more",
            param_hint="--dead-after",
        )
    options = WorkerOptions(
        queue_url=queue,
        registry=registry_dir(tenants_dir),
        concurrency=concurrency,
        heartbeat=times["--heartbeat"],
        stalled_after=times["--dead-after"],
        grace=times["--grace"],
        turn=Turn(seconds=times["--turn"] or None, chunks=turn_chunks),
    )
    err.print(f"{timestamp()} worker: taking jobs of the tenants in {options.registry}")
    try:
        run_worker(options)
    except SambandError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None
    err.print(f"{timestamp()} worker: stopped")
