"""``samband docs`` and ``samband docs import``: the dataflow documents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from samband.cli._app import (
    JsonOption,
    docs_app,
    err,
    fail,
    out,
)
from samband.cli._json import fail_as
from samband.errors import SambandError


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
    as_json: JsonOption = False,
) -> None:
    """Write one dataflow document per (source system, target system)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None or output is None:
        err.print("usage: samband docs -c FILE -o DIR [--format rst|html|both] [--generated TS]")
        raise typer.Exit(2)
    from samband.docs import load_for_documents, write_documents

    try:
        paths = write_documents(load_for_documents(config), output, fmt=fmt, generated=generated)
    except SambandError as exc:
        raise fail_as(exc, as_json) from None
    if as_json:
        sys.stdout.write(json.dumps({"files": [str(path) for path in paths]}) + "\n")
        return
    for path in paths:
        out.print(str(path))


@docs_app.command("import")
def docs_import(
    files: Annotated[list[Path], typer.Argument(help="Documents (.rst) to read.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Config to write.")] = None,
) -> None:
    """Read dataflow documents and write one config with their systems and dataflows."""
    from samband.docs import import_documents
    from samband.docs.importer import check_output

    try:
        if output is not None:
            check_output(output)
        text = import_documents([str(f) for f in files])
        if output is not None:
            try:
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise SambandError(f"cannot write {output}: {exc.strerror or exc}") from None
    except SambandError as exc:
        raise fail(exc, 2) from None
    if output is None:
        sys.stdout.write(text)
    else:
        out.print(f"wrote {output}")
