"""The ``samband`` command line.  Every command is a thin layer over the Python API;
each module below registers one group of commands on the shared application."""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

# typer carries its own click: its usage errors are these classes
from typer._click import exceptions as click

from samband.cli._app import app
from samband.cli._last_resort import unexpected, usage_error

__all__ = ["app", "main"]

# importing a module registers its commands; this order is the order of `samband --help`
for _module in (
    "config",
    "check",
    "docs",
    "run",
    "tenants",
    "serve",
    "inspect",
    "dataflow",
    "observe",
    "store",
    "setup",
    "qa",
):
    import_module(f"samband.cli.{_module}_commands")


def main() -> None:
    """The ``samband`` program: every failure ends in one line and an exit code (see
    ``EXIT_CODES``), never a traceback."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    argv = sys.argv[1:]
    try:
        code = app(args=argv, prog_name="samband", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        code = 0
    except click.ClickException as exc:
        code = usage_error(exc)
    except typer.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, EOFError):
            sys.stderr.write(
                "\nerror: the command asked a question and got no answer (standard input "
                "ended); answer it on a terminal, or use the option that answers it\n"
            )
            code = 1
        else:
            sys.stderr.write("\ninterrupted\n")
            code = 130
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # the reader went away (`samband status | head -1`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except Exception as exc:
        code = unexpected(exc, argv, _command_names())
    sys.exit(code if isinstance(code, int) else 0)


def _command_names() -> set[str]:
    try:
        return set(getattr(typer.main.get_command(app), "commands", {}))
    except Exception:
        return set()
