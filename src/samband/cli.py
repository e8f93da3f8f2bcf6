"""The ``samband`` command line.  Every command is a thin layer over the Python API."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from samband.errors import ConfigError, ConnectorError, RunLocked, SambandError, StoreError
from samband.plugin import KindDescriptor, all_kinds
from samband.plugin.descriptor import load_reference

app = typer.Typer(
    name="samband",
    help="Two-way sync of business records between the systems a company runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
docs_app = typer.Typer(help="Dataflow documents (QA checklists).", invoke_without_command=True)
app.add_typer(docs_app, name="docs")


def _kinds_help(which: Callable[[KindDescriptor], bool]) -> str:
    """The kinds a command takes, from the installed kinds' descriptors."""
    names = [n for n, k in all_kinds(include_test_only=False).items() if which(k)]
    return ", ".join(names) or "(none installed)"


def _mount_kind_commands() -> None:
    """``samband <kind> ...``: the commands a kind's descriptor brings (``sql``)."""
    for name, kind in all_kinds().items():
        if kind.commands:
            app.add_typer(load_reference(kind.commands), name=name)


_mount_kind_commands()

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The config file (YAML).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _fail(exc: BaseException, code: int = 1) -> typer.Exit:
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        return typer.Exit(2)
    err.print(f"error: {exc}", markup=False, highlight=False)
    return typer.Exit(code)


# -- validate ----------------------------------------------------------------------
@app.command()
def validate(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Check a config file; exit 0, or 2 with every problem as FILE:LINE:COLUMN."""
    from samband.config.validate import validate_file

    problems = validate_file(config)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        out.print_json(data=[p.__dict__ for p in problems])
    else:
        for problem in problems:
            (err if problem.severity == "error" else out).print(
                str(problem), markup=False, highlight=False
            )
        if not errors:
            warnings = len(problems)
            out.print(f"{config}: valid" + (f" ({warnings} warning(s))" if warnings else ""))
    raise typer.Exit(2 if errors else 0)


# -- docs --------------------------------------------------------------------------
@docs_app.callback()
def docs(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The config file.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="rst, html or both.")] = "rst",
    generated: Annotated[
        str | None,
        typer.Option("--generated", help='"YYYY-MM-DD HH:MM:SS" for reproducible output.'),
    ] = None,
) -> None:
    """Write one dataflow document per (source system, target system)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None or output is None:
        err.print("usage: samband docs -c FILE -o DIR [--format rst|html|both] [--generated TS]")
        raise typer.Exit(2)
    from samband.config.validate import load_valid
    from samband.docs import write_documents

    try:
        loaded = load_valid(config)
        paths = write_documents(loaded.config, output, fmt=fmt, generated=generated)
    except SambandError as exc:
        raise _fail(exc) from None
    for path in paths:
        out.print(str(path))


@docs_app.command("import")
def docs_import(
    files: Annotated[list[Path], typer.Argument(help="Documents (.rst) to read.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Config to write.")] = None,
) -> None:
    """Read dataflow documents and write one config with their systems and dataflows."""
    from samband.docs import import_documents

    try:
        text = import_documents([str(f) for f in files])
    except SambandError as exc:
        raise _fail(exc, 2) from None
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")


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
        raise _fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    try:
        progress = None if as_json or not sys.stderr.isatty() else RichProgress(err)
        report = engine.sync(
            dry_run=dry_run,
            force=force,
            progress=progress,
            confirm_deletions=confirm_deletions or (),
        )
    except SambandError as exc:
        raise _fail(exc) from None
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
            out.print(line, markup=False, highlight=False)
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
        raise _fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
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


# -- inspection --------------------------------------------------------------------
def _inspector(config: Path) -> Any:
    from samband.engine.inspect import Inspector

    try:
        return Inspector.from_file(config)
    except SambandError as exc:
        raise _fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None


def _rows(rows: list[dict[str, Any]], title: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    if not rows:
        out.print(f"{title}: none")
        return
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in rows[0]))
    out.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "" if value is None else str(value)


@app.command()
def status(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Last runs, cursors, and counts of links, conflicts and quarantined records."""
    inspector = _inspector(config)
    data = inspector.status()
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        return
    for key, value in data.items():
        if isinstance(value, list):
            _rows(value, key, False)
        else:
            out.print(f"{key}: {_cell(value)}")


def _ref(value: str) -> str:
    if value.count(":") < 2 or any(not part for part in value.split(":", 2)):
        raise typer.BadParameter(
            f"{value!r} is not a record ref; write SYSTEM:TYPE:ID, e.g. crm:Customer:1"
        )
    return value


def _refs(values: list[str] | None) -> list[str] | None:
    return [_ref(value) for value in values] if values else values


RefArgument = Annotated[str, typer.Argument(help="A record ref: system:type:id", callback=_ref)]


@app.command()
def links(
    ref: RefArgument,
    config: ConfigOption,
    as_json: JsonOption = False,
) -> None:
    """The link group of a record, with each member's mapped values."""
    _rows(_inspector(config).links(ref), f"link group of {ref}", as_json)


@app.command()
def conflicts(config: ConfigOption, as_json: JsonOption = False, limit: int = 100) -> None:
    """Conflicts, with both values and which side won."""
    _rows(_inspector(config).conflicts(limit), "conflicts", as_json)


@app.command()
def errors(config: ConfigOption, as_json: JsonOption = False, limit: int = 100) -> None:
    """Quarantined records (dead letters) with their reasons."""
    _rows(_inspector(config).errors(limit), "quarantined records", as_json)


@app.command()
def retry(
    config: ConfigOption,
    refs: Annotated[
        list[str] | None, typer.Argument(help="Refs to retry (default: all).", callback=_refs)
    ] = None,
) -> None:
    """Queue quarantined records for the next run."""
    count = _inspector(config).retry(refs or None)
    out.print(f"{count} record(s) queued; run `samband sync` to retry them")


@app.command()
def history(
    ref: RefArgument,
    config: ConfigOption,
    as_json: JsonOption = False,
) -> None:
    """Every write made to a record, with before and after values."""
    _rows(_inspector(config).history(ref), f"history of {ref}", as_json)


# -- sandboxes, auth, sql ------------------------------------------------------------
@app.command()
def sandbox(
    kind: Annotated[str, typer.Argument(help=_kinds_help(lambda k: k.sandbox is not None))],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8080,
    records: Annotated[int, typer.Option("--records", help="Generated records per type.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the generated data.")] = 1,
) -> None:
    """Run the local emulator of an external API (127.0.0.1 only) until Ctrl-C."""
    from samband.sandbox._base import serve_forever
    from samband.sandbox.registry import create_sandbox

    try:
        box = create_sandbox(kind)
    except KeyError as exc:
        err.print(f"error: {exc.args[0]}")
        raise typer.Exit(2) from None
    if records:
        box.seed(records, seed)
    out.print(f"{kind} sandbox on http://127.0.0.1:{port} (Ctrl-C to stop)")
    try:
        serve_forever(box.app, port)
    except OSError as exc:
        err.print(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from None


@app.command()
def auth(
    kind: Annotated[str, typer.Argument(help=_kinds_help(lambda k: k.login))],
    system: Annotated[str, typer.Argument(help="The system id in the config.")],
    config: ConfigOption,
    port: Annotated[
        int, typer.Option("--port", help="Port of the local redirect listener.")
    ] = 8765,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL.")] = False,
) -> None:
    """First OAuth2 login of a system; its tokens are stored encrypted, never in the config."""
    from samband.config.validate import load_valid
    from samband.plugin import UnknownKind, get_kind

    try:
        loaded = load_valid(config)
        if system not in loaded.config.systems:
            raise ConfigError([])
        system_config = loaded.config.systems[system]
        if system_config.kind != kind:
            err.print(f"error: system {system!r} is of kind {system_config.kind!r}, not {kind!r}")
            raise typer.Exit(2)
        try:
            descriptor = get_kind(kind)
        except UnknownKind:
            descriptor = None
        login = getattr(descriptor.connector_class(), "login", None) if descriptor else None
        if descriptor is None or not descriptor.login or login is None:
            err.print(f"error: kind {kind!r} has no interactive login")
            raise typer.Exit(2)
        login(
            system,
            loaded.config,
            port=port,
            open_browser=not no_browser,
            # soft_wrap: a login URL must stay on one line to be copied
            echo=lambda text: out.print(text, soft_wrap=True, highlight=False),
        )
    except ConfigError as exc:
        if not exc.problems:
            err.print(f"error: {config} has no system {system!r}")
            raise typer.Exit(2) from None
        raise _fail(exc) from None
    except SambandError as exc:
        raise _fail(exc) from None
    out.print(f"{system}: logged in; tokens stored encrypted")


# -- qa, demo ----------------------------------------------------------------------
@app.command()
def qa(
    config: ConfigOption,
    only: Annotated[str | None, typer.Option("--only", help="SOURCE-TARGET system ids.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Report folder.")] = None,
) -> None:
    """Execute the QA checklists against the configured systems."""
    from samband.qa import run_qa

    try:
        result = run_qa(
            config,
            only=only,
            output=output,
            # API messages may hold [brackets]: print them as they are
            echo=lambda line: out.print(line, markup=False, highlight=False),
        )
    except SambandError as exc:
        raise _fail(exc) from None
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where results go.")] = Path(
        "demo-output"
    ),
    records: Annotated[int, typer.Option("--records", help="Generated records per type.")] = 200,
) -> None:
    """Run the five seed dataflows end to end on local sandboxes."""
    from samband.demo import run_demo

    try:
        ok = run_demo(output, records=records, console=out)
    except SambandError as exc:
        raise _fail(exc) from None
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":
    main()
