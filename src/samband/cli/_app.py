"""The ``samband`` application, its consoles and the options and error handling every
command shares."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from samband import logs
from samband.config.env import use_scope
from samband.errors import ConfigError
from samband.plugin import KindDescriptor, all_kinds
from samband.plugin.descriptor import load_reference
from samband.plugin.options import ConfigOption as ConfigOption  # shared by every command
from samband.plugin.options import SambandGroup

EXIT_CODES = """Exit codes: 0 ok · 1 failed · 2 config or usage error · 3 done, but records
were quarantined (with --strict) · 130 interrupted (what was committed is kept)."""

app = typer.Typer(
    name="samband",
    cls=SambandGroup,
    help="Two-way sync of business records between the systems a company runs.",
    epilog=EXIT_CODES,
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


def _console(stderr: bool = False) -> Console:
    """A console that prints text as it is: refs and values are never read as Rich markup
    (``[bold]``) or emoji codes (``:smile:``), and a table printed to a file or a pipe is
    as wide as it needs to be, not cut to 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return Console(
        stderr=stderr,
        soft_wrap=True,
        markup=False,
        emoji=False,
        highlight=False,
        width=None if terminal else PIPE_WIDTH,
    )


PIPE_WIDTH = 10_000
out = _console()
err = _console(stderr=True)


@app.callback()
def _global_options(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="More diagnostics on stderr: -v what a run does, -vv also every HTTP request "
            "and answer (credentials masked).",
        ),
    ] = 0,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning or error (instead of -v).",
            callback=lambda value: _one_of(value, logs.LEVELS, "--log-level"),
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="text, or json: one object per line (samband serve: json by default).",
            callback=lambda value: _one_of(value, logs.FORMATS, "--log-format"),
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=lambda value: _print_version(value),
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    logs.configure(logs.level_for(verbose, log_level), log_format or "text")
    logs.chosen.update(format=log_format is not None, level=bool(verbose or log_level))
    use_scope(None)  # a --tenant of the command sets its own (one tenant per process)


def _one_of(value: str | None, choices: tuple[str, ...], option: str) -> str | None:
    if value is not None and value.lower() not in choices:
        raise typer.BadParameter(f"{value!r}: use one of {', '.join(choices)}", param_hint=option)
    return value.lower() if value else value


def _print_version(value: bool) -> None:
    if value:
        out.print(f"samband {samband_version()}")
        raise typer.Exit()


def samband_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("samband")
    except PackageNotFoundError:
        return "unknown"


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def fail(exc: BaseException, code: int = 1) -> typer.Exit:
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        return typer.Exit(2)
    err.print(f"error: {exc}", markup=False, highlight=False)
    return typer.Exit(code)
