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
from samband.errors import ConfigError, ConnectorError, RunLocked, SambandError, StoreError

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
) -> None:
    """One run: collect, link, plan, apply, commit."""
    from samband.progress import RichProgress

    try:
        engine = _engine(config, lease_wait)
    except SambandError as exc:
        raise fail_as(exc, as_json) from None
    try:
        progress = None if as_json or not sys.stderr.isatty() else RichProgress(err)
        report = engine.sync(
            dry_run=dry_run,
            force=force,
            progress=progress,
            confirm_deletions=confirm_deletions or (),
        )
    except SambandError as exc:
        # with --json a tripped circuit breaker prints what it counted and how to go on
        raise fail_as(exc, as_json) from None
    finally:
        engine.close()
    _print_report(report, as_json)
    if report.failed:
        raise typer.Exit(1)


def _print_report(report: Any, as_json: bool) -> None:
    data = report.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        if report.failed:
            for message in report.messages:
                err.print(f"error: {message}", markup=False, highlight=False)
        return
    if report.failed and not any(data.get(c) for c in ("created", "updated", "deleted", "linked")):
        for message in report.messages:
            err.print(f"error: {message}", markup=False, highlight=False)
        return
    table = Table(title="dry run: nothing was written" if report.dry_run else "sync summary")
    columns = [
        "created",
        "updated",
        "deleted",
        "linked",
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
    if report.dry_run and report.plan:
        for line in report.plan[:200]:
            out.print(str(line), markup=False, highlight=False)
        if len(report.plan) > 200:
            out.print(f"… and {len(report.plan) - 200} more")
    prefix = "error: " if report.failed else ""
    for message in report.messages:
        err.print(f"{prefix}{message}", markup=False, highlight=False)


@app.command("run")
def run_forever(
    config: ConfigOption,
    every: Annotated[str, typer.Option("--every", help="Interval, e.g. 30s, 5m, 1h.")] = "60s",
    as_json: JsonOption = False,
    lease_wait: LeaseWaitOption = "60s",
) -> None:
    """Run a sync repeatedly until stopped; Ctrl-C finishes the current step cleanly."""
    _repeat(config, every, as_json, lease_wait, shared=False)


def _repeat(config: Path, every: str, as_json: bool, lease_wait: str, *, shared: bool) -> None:
    from samband.engine.run import parse_interval

    interval = parse_interval(every)
    stop = {"now": False}

    def handle(signum: int, frame: object) -> None:
        if stop["now"]:
            raise KeyboardInterrupt
        stop["now"] = True
        err.print("stopping after the current step (Ctrl-C again to abort)")

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    try:
        engine = _engine(config, lease_wait)
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    try:
        while not stop["now"]:
            try:
                if shared:
                    report = engine.work(should_stop=lambda: stop["now"])
                else:
                    report = engine.sync(should_stop=lambda: stop["now"])
                _print_report(report, as_json)
            except ConnectorError as exc:
                err.print(f"error: {exc}", markup=False)
            except StoreError as exc:
                if not shared:
                    raise
                # a worker outlives a store hiccup (server restart, a deadlock with another
                # worker): what was committed is consistent; the next turn goes on
                err.print(f"error: {exc}", markup=False)
            except RunLocked as exc:
                # another worker holds the store: stand by and take over when it stops
                err.print(f"waiting: {exc}", markup=False)
            deadline = time.monotonic() + interval
            while not stop["now"] and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        engine.close()


@app.command("worker")
def worker(
    config: ConfigOption,
    every: Annotated[str, typer.Option("--every", help="Interval, e.g. 30s, 5m, 1h.")] = "30s",
    as_json: JsonOption = False,
    lease_wait: LeaseWaitOption = "60s",
) -> None:
    """Like `run`, for several processes (on one or several machines) sharing one store:
    they divide the reading by entity type, one at a time plans and applies, and a worker
    that stops or dies is taken over."""
    _repeat(config, every, as_json, lease_wait, shared=True)
