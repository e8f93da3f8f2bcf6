"""``samband records find`` and ``samband systems``: a record and its link group found by
ref, id or value; the health of each system as the latest runs tell it."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from samband.cli._app import ConfigOption, JsonOption, app, out
from samband.cli.inspect_commands import _cell, _rows

records_app = typer.Typer(help="Records across systems: find them.", no_args_is_help=True)
app.add_typer(records_app, name="records")


@records_app.command("find")
def find(
    text: Annotated[
        str,
        typer.Argument(help="A ref (system:type:id), an id, or the start of a value."),
    ],
    config: ConfigOption,
    limit: Annotated[int, typer.Option("--limit", help="At most this many groups (1-50).")] = 10,
    as_json: JsonOption = False,
) -> None:
    """The link groups of the records TEXT names or holds (a name, an e-mail, an org
    number; case and spacing aside), each with its members' values, the mapped properties
    side by side, and the writes made to it."""
    from samband.cli.inspect_commands import _inspector

    try:
        found = _inspector(config, as_json).find(text, limit)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="TEXT") from None
    if as_json:
        sys.stdout.write(json.dumps(found, default=str, ensure_ascii=False) + "\n")
        return
    if not found["groups"]:
        out.print(f"no record holds or is named {text!r}", markup=False, highlight=False)
        return
    for group in found["groups"]:
        _group(group)
    if found["truncated"]:
        out.print(f"more records match: narrow the search or use --limit (now {limit})")


def _group(group: dict[str, Any]) -> None:
    out.print(f"\n[bold]{group['found']}[/bold]", highlight=False)
    for link in group["links"]:
        table = Table(title=f"{link['dataflow']}: {link['source']} ↔ {link['target']}")
        for column in ("property", link["source"], link["target"], "agreed"):
            table.add_column(column)
        for prop in link["properties"]:
            table.add_row(
                f"{prop['source_property']} → {prop['target_property']}",
                _cell(prop["source_value"]),
                _cell(prop["target_value"]),
                _cell(prop["agreed"]),
            )
        out.print(table)
    if not group["links"]:
        _rows(group["members"], "not linked", False)
    _rows(group["history"], "writes", False)


@app.command()
def systems(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Each system's health as the latest runs tell it (connected, authentication failed,
    rate limited, unreachable, failing, unknown) and when it was last read."""
    from samband.cli.inspect_commands import _inspector

    _rows(_inspector(config, as_json).systems(), "systems", as_json)
