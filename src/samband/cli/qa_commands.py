"""``samband qa`` and ``samband demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from samband.cli._app import (
    ConfigOption,
    JsonOption,
    app,
    err,
    out,
)
from samband.cli._json import fail_as
from samband.errors import SambandError


# -- qa, demo ----------------------------------------------------------------------
@app.command()
def qa(
    config: ConfigOption,
    only: Annotated[str | None, typer.Option("--only", help="SOURCE-TARGET system ids.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Report folder.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Execute the QA checklists against the configured systems."""
    from dataclasses import asdict

    from samband.qa import run_qa

    # with --json the progress lines go to stderr: stdout is the one JSON document
    console = err if as_json else out
    try:
        result = run_qa(
            config,
            only=only,
            output=output,
            # API messages may hold [brackets]: print them as they are
            echo=lambda line: console.print(line, markup=False, highlight=False),
        )
    except SambandError as exc:
        raise fail_as(exc, as_json) from None
    if as_json:
        sys.stdout.write(json.dumps({"passed": result.passed, **asdict(result)}, default=str))
        sys.stdout.write("\n")
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
        # the demo's own lines are styled ([bold]…[/]); the shared console prints text as is
        styled = Console(soft_wrap=True, emoji=False, highlight=False, file=out.file)
        ok = run_demo(output, records=records, console=styled)
    except SambandError as exc:
        raise fail_as(exc, False) from None
    raise typer.Exit(0 if ok else 1)
