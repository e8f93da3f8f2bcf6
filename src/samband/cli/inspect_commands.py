"""``samband status``, ``links``, ``conflicts``, ``errors``, ``retry``, ``history``:
what the store knows."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from samband.cli._app import (
    ConfigOption,
    JsonOption,
    app,
    out,
)
from samband.cli._json import fail_as
from samband.errors import SambandError
from samband.plugin.options import found_config


# -- inspection --------------------------------------------------------------------
def _inspector(config: Path, as_json: bool = False) -> Any:
    from samband.engine.inspect import Inspector

    try:
        inspector = Inspector.from_file(config)
    except SambandError as exc:
        raise _failed(exc, as_json) from None
    inspector.actor = _os_user()
    return inspector


def _os_user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return None


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


conflicts_app = typer.Typer(help="Conflicts, and resolving them.", invoke_without_command=True)
errors_app = typer.Typer(
    help="Quarantined records, and dismissing them.", invoke_without_command=True
)
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(errors_app, name="errors")
OptionalConfig = Annotated[
    Path | None, typer.Option("--config", "-c", help="The config file (YAML).")
]


def _need(config: Path | None) -> Path:
    """The group's -c, else the config found without it (the group's option cannot have
    that default: it would be looked for before a subcommand with its own -c)."""
    return config if config is not None else found_config()


@conflicts_app.callback()
def conflicts(
    ctx: typer.Context,
    config: OptionalConfig = None,
    as_json: JsonOption = False,
    limit: int = 100,
) -> None:
    """Conflicts, with their id, both values and which side won."""
    if ctx.invoked_subcommand is not None:
        return
    path = _need(config)
    _rows(_inspector(path).conflicts(limit), "conflicts", as_json)


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[int, typer.Argument(metavar="ID", help="The id `conflicts` shows.")],
    take: Annotated[
        str, typer.Option("--take", help="source or target: whose value both records get.")
    ],
    config: ConfigOption,
    as_json: JsonOption = False,
) -> None:
    """The next run writes the chosen side's value of the conflict to both records."""
    _act(config, as_json, lambda inspector: inspector.resolve(conflict_id, take))


@errors_app.callback()
def errors(
    ctx: typer.Context,
    config: OptionalConfig = None,
    as_json: JsonOption = False,
    limit: int = 100,
) -> None:
    """Quarantined records (dead letters) with their reasons."""
    if ctx.invoked_subcommand is not None:
        return
    path = _need(config)
    _rows(_inspector(path).errors(limit), "quarantined records", as_json)


@errors_app.command("dismiss")
def errors_dismiss(ref: RefArgument, config: ConfigOption, as_json: JsonOption = False) -> None:
    """Set a quarantined record aside for good: not listed nor retried (kept in history);
    planned again only when it changes."""
    _act(config, as_json, lambda inspector: inspector.dismiss(ref))


@app.command()
def unlink(ref: RefArgument, config: ConfigOption, as_json: JsonOption = False) -> None:
    """End every link of a record (a wrong match): no run links those pairs again, and the
    source waits for `samband link` or `samband retry`."""
    _act(config, as_json, lambda inspector: inspector.unlink(ref))


@app.command()
def link(
    first: RefArgument,
    second: RefArgument,
    config: ConfigOption,
    as_json: JsonOption = False,
) -> None:
    """Link two records as one (in every dataflow between their types); the next run
    brings their values together."""
    _act(config, as_json, lambda inspector: inspector.link(first, second))


def _entity_type(value: str) -> str:
    system, _, etype = value.partition(".")
    if not system or not etype:
        raise typer.BadParameter(f"{value!r} is not SYSTEM.TYPE, e.g. crm.Customer")
    return value


@app.command()
def resync(
    entity_type: Annotated[
        str, typer.Argument(metavar="SYSTEM.TYPE", help="e.g. crm.Customer", callback=_entity_type)
    ],
    config: ConfigOption,
    as_json: JsonOption = False,
) -> None:
    """The next run reads one entity type from the start (no duplicates: unchanged records
    are not changes)."""
    system, _, etype = entity_type.partition(".")
    _act(config, as_json, lambda inspector: inspector.resync(system, etype))


def _act(config: Path, as_json: bool, action: Callable[[Any], dict[str, Any]]) -> None:
    """Run an action; print what it did (or, with --json, that or the error as JSON)."""
    inspector = _inspector(config, as_json)
    try:
        done = action(inspector)
    except SambandError as exc:
        raise _failed(exc, as_json) from None
    finally:
        inspector.close()
    if as_json:
        sys.stdout.write(json.dumps(done, default=str) + "\n")
        return
    out.print(f"{done['action']}: {', '.join(done['refs'])}", markup=False, highlight=False)
    out.print(f"next: {done['next']}", markup=False, highlight=False)


def _failed(exc: SambandError, as_json: bool) -> typer.Exit:
    return fail_as(exc, as_json)


@app.command()
def retry(
    config: ConfigOption,
    refs: Annotated[
        list[str] | None, typer.Argument(help="Refs to retry (default: all).", callback=_refs)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Queue quarantined records for the next run."""
    count = _inspector(config, as_json).retry(refs or None)
    if as_json:
        sys.stdout.write(json.dumps({"queued": count, "refs": refs or None}) + "\n")
        return
    out.print(f"{count} record(s) queued; run `samband sync` to retry them")


def _history_ref(value: str) -> str:
    # dataflow:KEY: the changes of a dataflow's controls (samband dataflow ...)
    return value if value.startswith("dataflow:") and value[9:] else _ref(value)


HistoryRefArgument = Annotated[
    str,
    typer.Argument(
        help="A record ref: system:type:id (or dataflow:KEY: its controls' changes)",
        callback=_history_ref,
    ),
]


@app.command()
def history(
    ref: HistoryRefArgument,
    config: ConfigOption,
    as_json: JsonOption = False,
) -> None:
    """Every write made to a record, with before and after values."""
    _rows(_inspector(config).history(ref), f"history of {ref}", as_json)
