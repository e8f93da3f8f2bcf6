"""``samband sql ...``: helpers for ``kind: sql`` systems, mounted by the CLI from the
kind's descriptor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from samband.errors import ConfigError, SambandError
from samband.plugin.options import ConfigOption

app = typer.Typer(help="Helpers for `kind: sql` systems.", no_args_is_help=True)


_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


@app.command("install-tracking")
def install_tracking(
    target: Annotated[str, typer.Argument(help="SYSTEM.TYPE")], config: ConfigOption
) -> None:
    """Install triggers that keep a change column or change log up to date."""
    _tracking(target, config, install=True)


@app.command("remove-tracking")
def remove_tracking(
    target: Annotated[str, typer.Argument(help="SYSTEM.TYPE")], config: ConfigOption
) -> None:
    """Remove what install-tracking installed."""
    _tracking(target, config, install=False)


def _tracking(target: str, config: Path, install: bool) -> None:
    from samband.config.validate import load_valid
    from samband.kinds.sql import connector

    if "." not in target:
        _err.print("error: give SYSTEM.TYPE, e.g. pms.Customer")
        raise typer.Exit(2)
    system, type_name = target.split(".", 1)
    try:
        loaded = load_valid(config)
        action = connector.install_tracking if install else connector.remove_tracking
        message = action(loaded.config, system, type_name)
    except ConfigError as exc:
        for problem in exc.problems:
            _err.print(str(problem), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except SambandError as exc:
        _err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    _out.print(message)
