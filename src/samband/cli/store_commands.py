"""``samband backup`` and ``samband restore``: a consistent copy of the embedded store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from samband.cli._app import ConfigOption, app, fail, out
from samband.errors import ConfigError, SambandError


@app.command()
def backup(
    config: ConfigOption,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The backup file (default: beside the store)."),
    ] = None,
) -> None:
    """Copy the store consistently, also while a run or `samband serve` writes to it."""
    from samband.config.loader import base_dir
    from samband.config.validate import load_valid
    from samband.store.backup import backup_store, store_file

    try:
        loaded = load_valid(config)
        folder = base_dir(loaded.config)
        if output is None:
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            store = store_file(loaded.config.store, folder)
            output = store.with_name(f"{store.stem}.backup-{stamp}{store.suffix}")
        written = backup_store(loaded.config.store, folder, output)
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    out.print(f"wrote {written}", highlight=False, markup=False)


@app.command()
def restore(
    config: ConfigOption,
    backup_file: Annotated[Path, typer.Argument(help="A file `samband backup` wrote.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the store without asking.")] = False,
) -> None:
    """Put a backup in place of the store (stop `samband serve` or `run` first)."""
    from samband.config.loader import base_dir
    from samband.config.validate import load_valid
    from samband.store.backup import restore_store, store_file

    try:
        loaded = load_valid(config)
        folder = base_dir(loaded.config)
        store = store_file(loaded.config.store, folder)
        if not yes and not typer.confirm(f"replace {store} with {backup_file}?"):
            raise typer.Exit(1)
        restore_store(loaded.config.store, folder, backup_file)
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    out.print(
        f"restored {store} from {backup_file}; the next run re-reads what changed since",
        highlight=False,
        markup=False,
    )
