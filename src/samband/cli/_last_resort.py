"""What ``samband`` does with an error no command expected: one line on stderr naming the
command, the exception and where to report it; the traceback goes to a file (its path is
in that line), never to the terminal."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path

from typer._click.exceptions import ClickException

from samband import logs, redact

REPORT_TO = "https://github.com/samband/samband/issues"
log = logging.getLogger("samband")


def command_of(argv: list[str], commands: set[str]) -> str:
    """``samband sync`` for ``samband -v sync -c x.yaml``."""
    word = next((a for a in argv if a in commands), None)
    return f"samband {word}" if word else "samband"


def unexpected(exc: BaseException, argv: list[str], commands: set[str]) -> int:
    """Report a defect in one line; exit code 1."""
    text = redact.scrub("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    where = _write_traceback(text)
    log.debug("traceback of the unexpected error:\n%s", text)
    kept = f"the traceback is in {where}" if where else "run again with -vv to see the traceback"
    message = redact.scrub(str(exc)).replace("\n", " ")[:300]
    sys.stderr.write(
        f"error: {command_of(argv, commands)} failed unexpectedly: {type(exc).__name__}: {message} "
        f"(a defect in samband; {kept}; please report it at {REPORT_TO})\n"
    )
    return 1


def usage_error(exc: ClickException) -> int:
    """A usage error in one line: what is wrong and where to read how to call."""
    context = getattr(exc, "ctx", None)
    path = context.command_path if context is not None else "samband"
    message = exc.format_message().replace("\n", " ")
    sys.stderr.write(f"error: {path}: {message} (see `{path} --help`)\n")
    return exc.exit_code


def _write_traceback(text: str) -> Path | None:
    folder = Path(os.environ.get("SAMBAND_CRASH_DIR") or tempfile.gettempdir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f"samband-crash-{logs.timestamp().replace(':', '')}-",
            suffix=".txt",
            dir=folder,
        )
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        return Path(name)
    except OSError:
        return None
