"""``samband validate``: check a config file."""

from __future__ import annotations

import typer

from samband.cli._app import (
    ConfigOption,
    JsonOption,
    app,
    err,
    out,
)


# -- validate ----------------------------------------------------------------------
@app.command()
def validate(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Check a config file; exit 0, or 2 with every problem as FILE:LINE:COLUMN."""
    from samband.config.validate import validate_file

    problems = validate_file(config)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        out.print_json(data=[p.__dict__ for p in problems])
    else:
        for problem in problems:
            (err if problem.severity == "error" else out).print(
                str(problem), markup=False, highlight=False
            )
        if not errors:
            warnings = len(problems)
            out.print(f"{config}: valid" + (f" ({warnings} warning(s))" if warnings else ""))
    raise typer.Exit(2 if errors else 0)
