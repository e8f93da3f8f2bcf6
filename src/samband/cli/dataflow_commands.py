"""``samband dataflow list|pause|resume|share|full-sync``: the controls of a dataflow
(see :mod:`samband.engine.dataflow_actions`)."""

from __future__ import annotations

from typing import Annotated

import typer

from samband.cli._app import ConfigOption, JsonOption, app
from samband.cli.inspect_commands import _act, _inspector, _rows

dataflow_app = typer.Typer(
    help="A dataflow's controls: pause and resume, writes to a side (share), full sync.",
    no_args_is_help=True,
)
app.add_typer(dataflow_app, name="dataflow")

KeyArgument = Annotated[str, typer.Argument(help="The dataflow's key (`samband dataflow list`).")]
OnOption = Annotated[
    bool,
    typer.Option("--on/--off", help="Switch on or off."),
]


@dataflow_app.command("list")
def dataflow_list(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Every dataflow with its controls and the records it holds."""
    inspector = _inspector(config, as_json)
    try:
        rows = inspector.controls()
    finally:
        inspector.close()
    _rows(rows, "dataflows", as_json)


@dataflow_app.command("pause")
def dataflow_pause(key: KeyArgument, config: ConfigOption, as_json: JsonOption = False) -> None:
    """No run reads, plans or writes the dataflow until it is resumed; nothing is lost."""
    _act(config, as_json, lambda inspector: inspector.pause(key))


@dataflow_app.command("resume")
def dataflow_resume(key: KeyArgument, config: ConfigOption, as_json: JsonOption = False) -> None:
    """The next run syncs what changed while the dataflow was paused."""
    _act(config, as_json, lambda inspector: inspector.resume(key))


@dataflow_app.command("share")
def dataflow_share(
    key: KeyArgument,
    config: ConfigOption,
    on: OnOption,
    side: Annotated[
        str,
        typer.Option("--side", help="source or target: the side whose system is written."),
    ] = "target",
    as_json: JsonOption = False,
) -> None:
    """Writing to one side of the dataflow on or off.  Off, runs read that system but
    write nothing to it for this dataflow: the writes are held, and sent once on again."""
    _act(config, as_json, lambda inspector: inspector.share(key, side, on))


@dataflow_app.command("full-sync")
def dataflow_full_sync(
    key: KeyArgument, config: ConfigOption, on: OnOption, as_json: JsonOption = False
) -> None:
    """On: every source record without a counterpart gets one.  Off: only records that
    appear from now on are created; those that existed are linked if they match."""
    _act(config, as_json, lambda inspector: inspector.full_sync(key, on))
