"""``samband check`` (can every system be reached and read?) and ``samband init`` (a
starter config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samband.cli._app import ConfigOption, JsonOption, app, err, fail, kinds_help, out
from samband.errors import ConfigError, SambandError


# -- check -------------------------------------------------------------------------
@app.command()
def check(
    config: ConfigOption,
    systems: Annotated[
        list[str] | None, typer.Argument(help="System ids to check (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Connect to each system, log in, read one record of every entity type in use and
    look up the mapped fields; exit 0 when all are ok, 1 when one failed, 2 for a config
    error."""
    from samband.check import check_config

    try:
        report = check_config(config, systems or None)
    except ConfigError as exc:
        raise fail(exc) from None
    except SambandError as exc:
        raise fail(exc) from None
    if as_json:
        out.print_json(data=report.as_dict())
    else:
        for system in report.systems:
            mark = "ok" if system.status == "ok" else "FAILED"
            line = f"{system.system} ({system.kind}): {mark}"
            if system.status != "ok" and system.message:
                line += f": {system.message}"
            (out if system.status == "ok" else err).print(line, markup=False, highlight=False)
            if system.hint:
                err.print(f"  what to do: {system.hint}", markup=False, highlight=False)
            for found in system.types:
                text = f"  {system.system}.{found.entity_type}: {found.status}"
                if found.message:
                    text += f" ({found.message})" if found.status == "ok" else f": {found.message}"
                (out if found.status != "failed" else err).print(
                    text, markup=False, highlight=False
                )
                if found.hint and found.status == "failed":
                    err.print(f"    what to do: {found.hint}", markup=False, highlight=False)
    raise typer.Exit(0 if report.ok else 1)


# -- init --------------------------------------------------------------------------
@app.command()
def init(
    kinds: Annotated[list[str], typer.Argument(help=kinds_help(lambda k: k.starter is not None))],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")] = Path(
        "samband.yaml"
    ),
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Wire it to the local sandboxes (and create a local SQLite database).",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter config for the kinds named (e.g. `samband init poweroffice-go sql`),
    with comments and ${VAR} credentials."""
    from samband.config.starter import write_starter

    try:
        written = write_starter(output, kinds, sandbox=sandbox, force=force)
    except SambandError as exc:
        raise fail(exc, 2) from None
    out.print(f"wrote {written.path}", markup=False, highlight=False)
    config = "" if written.path == Path("samband.yaml") else f" -c {written.path}"
    steps = [f"samband validate{config}"]
    for kind, port in written.sandboxes:
        steps.append(f"samband sandbox {kind} --port {port} --records 20   # in its own terminal")
    for kind, _ in written.sandboxes:
        if kind in ("crmoffice", "exact-online"):
            system = "crmoffice" if kind == "crmoffice" else "exact"
            steps.append(f"samband auth {kind} {system}{config}")
    steps += [f"samband check{config}", f"samband sync --dry-run{config}"]
    out.print("next:", markup=False, highlight=False)
    for step in steps:
        out.print(f"  {step}", markup=False, highlight=False)
