"""Command-line options every `samband` command shares, also the commands a kind brings
(``samband sql …``): the config file, found without ``-c`` as `samband.config.locate`
says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samband.errors import ConfigError


def found_config() -> Path:
    """``$SAMBAND_CONFIG``, else ``./samband.yaml``; a usage error saying where it looked."""
    from samband.config.locate import find_config

    try:
        return find_config()
    except ConfigError as exc:
        problem = exc.problems[0]
        raise typer.BadParameter(f"{problem.message} ({problem.hint})") from None


ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="The config file (YAML); default: $SAMBAND_CONFIG, else ./samband.yaml.",
        default_factory=found_config,
        show_default=False,
    ),
]
