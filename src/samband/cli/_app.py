"""The ``samband`` application, its consoles and the options and error handling every
command shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from samband.errors import ConfigError
from samband.plugin import KindDescriptor, all_kinds
from samband.plugin.descriptor import load_reference

app = typer.Typer(
    name="samband",
    help="Two-way sync of business records between the systems a company runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
docs_app = typer.Typer(help="Dataflow documents (QA checklists).", invoke_without_command=True)
app.add_typer(docs_app, name="docs")


def kinds_help(which: Callable[[KindDescriptor], bool]) -> str:
    """The kinds a command takes, from the installed kinds' descriptors."""
    names = [n for n, k in all_kinds(include_test_only=False).items() if which(k)]
    return ", ".join(names) or "(none installed)"


def _mount_kind_commands() -> None:
    """``samband <kind> ...``: the commands a kind's descriptor brings (``sql``)."""
    for name, kind in all_kinds().items():
        if kind.commands:
            app.add_typer(load_reference(kind.commands), name=name)


_mount_kind_commands()

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _default_config() -> Path:
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
        default_factory=_default_config,
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def fail(exc: BaseException, code: int = 1) -> typer.Exit:
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        return typer.Exit(2)
    err.print(f"error: {exc}", markup=False, highlight=False)
    return typer.Exit(code)
