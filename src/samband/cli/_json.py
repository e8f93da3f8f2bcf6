"""The JSON a command prints for a failure when asked for ``--json`` (documented in
docs/cli.md, "JSON output"): the message, the exit code, and for a tripped circuit
breaker what it counted and how to go on."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from samband.cli._app import fail
from samband.errors import CircuitBreakerTripped, ConfigError


def error_json(exc: BaseException, code: int) -> dict[str, Any]:
    data: dict[str, Any] = {"status": "failed", "exit_code": code, "error": str(exc)}
    if isinstance(exc, ConfigError):
        data["error"] = "; ".join(str(problem) for problem in exc.problems) or str(exc)
        data["problems"] = [str(problem) for problem in exc.problems]
    if isinstance(exc, CircuitBreakerTripped):
        data["status"] = "refused"
        data["circuit_breaker"] = exc.details
    return data


def fail_as(exc: BaseException, as_json: bool, code: int | None = None) -> typer.Exit:
    """:func:`fail` (the message on stderr); with ``as_json`` the failure as JSON on
    stdout too (one line), for scripts."""
    code = code if code is not None else 2 if isinstance(exc, ConfigError) else 1
    if as_json:
        sys.stdout.write(json.dumps(error_json(exc, code), default=str) + "\n")
        sys.stdout.flush()
    return fail(exc, code)
