"""``samband status``, ``links``, ``conflicts``, ``errors``, ``retry``, ``history``:
what the store knows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from samband.cli._app import (
    ConfigOption,
    JsonOption,
    app,
    fail,
    out,
)
from samband.errors import ConfigError, SambandError


# -- inspection --------------------------------------------------------------------
def _inspector(config: Path) -> Any:
    from samband.engine.inspect import Inspector

    try:
        return Inspector.from_file(config)
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None


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
