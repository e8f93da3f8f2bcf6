"""Samband's diagnostics: Python ``logging`` on the ``samband`` logger, to stderr.

``-v`` shows what a run does (info), ``-vv`` also every HTTP request and answer (debug,
``samband.http``); ``--log-level`` names the level outright.  ``--log-format json`` writes
one JSON object per line (``samband serve`` does by default, at info level: see
:func:`for_service`), with the fields of a record's ``extra={"fields": {...}}`` as keys
of their own.  Every line passes :func:`samband.redact.scrub`, so a credential that
slipped into a message is masked there too.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from samband import redact

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_HANDLER_NAME = "samband-cli"
#: what the command line named outright (``--log-format``, ``-v``/``--log-level``)
chosen: dict[str, bool] = {"format": False, "level": False}


def level_for(verbose: int, log_level: str | None) -> int:
    """The level ``-v`` counts (0 warning, 1 info, 2+ debug) or ``--log-level`` names."""
    if log_level:
        return int(logging.getLevelName(log_level.upper()))
    return (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG


class _Redacting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact.scrub(record.getMessage())
        record.args = None
        return True


class TextFormatter(logging.Formatter):
    """``LEVEL message`` on a terminal; with ``timestamps`` (a file, a pipe, a journal)
    ``2026-01-31T12:00:00Z LEVEL logger: message``."""

    def __init__(self, timestamps: bool) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + redact.scrub(self.formatException(record.exc_info))
        if self.timestamps:
            return f"{timestamp(record.created)} {record.levelname} {record.name}: {text}"
        return f"{record.levelname.lower()}: {text}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in data:
                    data[key] = redact.scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            data["traceback"] = redact.scrub(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def timestamp(seconds: float | None = None) -> str:
    when = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is logged (a test runner may
    swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure(
    level: int = logging.WARNING, fmt: str = "text", stream: TextIO | None = None
) -> None:
    """Send the ``samband`` logger's records at ``level`` and above to ``stream`` (stderr),
    replacing what an earlier call set up."""
    logger = logging.getLogger("samband")
    for old in list(logger.handlers):
        if old.get_name() == _HANDLER_NAME:
            logger.removeHandler(old)
    handler: logging.StreamHandler = (  # type: ignore[type-arg]
        logging.StreamHandler(stream) if stream is not None else _StandardError()
    )
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_Redacting())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(timestamps=not _is_terminal(stream or sys.stderr)))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def for_service() -> None:
    """``samband serve``'s logging: JSON lines at info level (runs begun and finished, the
    requests served, errors), unless the command line chose a format or a level; the web
    server's own messages go the same way."""
    logger = logging.getLogger("samband")
    level = logger.level if chosen["level"] else logging.INFO
    current = next((h for h in logger.handlers if h.get_name() == _HANDLER_NAME), None)
    as_text = current is not None and not isinstance(current.formatter, JsonFormatter)
    configure(level, "text" if chosen["format"] and as_text else "json")
    handler = next(h for h in logger.handlers if h.get_name() == _HANDLER_NAME)
    for name in ("uvicorn", "uvicorn.error"):
        adopted = logging.getLogger(name)
        adopted.handlers = [handler]
        adopted.setLevel(logging.WARNING)
        adopted.propagate = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
