"""The tenants page of ``samband serve --tenants-dir DIR [--queue URL]``: every tenant of
the registry with its interval, whether its config validates (each problem with its file
and line) and, with the queue, its latest runs and its jobs waiting or running.

Nothing a tenant keeps secret is shown: every value of its environment (its ``.env`` and
``SAMBAND_TENANT_<NAME>__*`` variables), a URL's password and anything shaped like a
credential are masked in every text the page shows."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from samband import redact
from samband.config.validate import validate_file
from samband.durations import format_seconds
from samband.errors import SambandError
from samband.service.masking import mask_secrets
from samband.tenants import Registry, Tenant

RUNS_SHOWN = 5  # the latest runs shown per tenant


def tenants_overview(
    registry: str | os.PathLike[str] | None = None,
    queue_url: str | None = None,
    *,
    runs: int = RUNS_SHOWN,
) -> dict[str, Any]:
    """Every tenant of ``registry`` (default: ``$SAMBAND_TENANTS``, else ``./tenants``),
    and with ``queue_url`` what the queue says of each.  A queue that cannot be read is
    said in ``queue_error``; the tenants are listed all the same."""
    folder = Registry(registry)
    tenants = folder.tenants()
    activity = None
    queue_error = None
    if queue_url:
        from samband.queue.activity import read_activity

        try:
            activity = read_activity(queue_url, [t.name for t in tenants], runs_per_tenant=runs)
        except SambandError as exc:
            queue_error = redact.scrub(mask_secrets(str(exc)))
    rows = []
    for tenant in tenants:
        row = describe(tenant)
        if activity is not None:
            secrets = _secrets(tenant)
            row["runs"] = [
                {**run, "message": _mask(run["message"], secrets) if run["message"] else None}
                for run in activity.runs.get(tenant.name, [])
            ]
            row["jobs"] = activity.jobs.get(tenant.name, [])
        rows.append(row)
    return {
        "registry": str(folder.root),
        "queue": bool(queue_url),
        "queue_error": queue_error,
        "tenants": rows,
    }


def describe(tenant: Tenant) -> dict[str, Any]:
    """A tenant as the registry has it: its interval, and its config's problems."""
    secrets_by_name = _environ(tenant)
    secrets = [value for value in secrets_by_name.values() if value]
    problems: list[str] = []
    every = None
    turn = None
    try:
        every = tenant.every()
        turn = tenant.turn()
    except SambandError as exc:
        problems.append(str(exc))
    try:
        tenant.environ()
    except SambandError as exc:  # its .env: the line is said, never the value
        problems.append(str(exc))
    errors, warned = _validated(tenant.config_path)
    problems.extend(errors)
    # a ${VAR} the process does not set is no warning when the tenant's environment does
    warnings = sum(1 for name in warned if name is None or name not in secrets_by_name)
    return {
        "name": tenant.name,
        "every": format_seconds(every) if every is not None else None,
        "every_seconds": every,
        "turn": format_seconds(turn) if turn else None,  # its own; else the worker's
        "valid": not problems,
        "problems": [_mask(text, secrets) for text in problems],
        "warnings": warnings,
    }


def _validated(path: Path) -> tuple[list[str], tuple[str | None, ...]]:
    try:
        stat = path.stat()
    except OSError as exc:
        return [f"{path}: {exc.strerror or exc}"], ()
    return _validate(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _validate(path: str, mtime_ns: int, size: int) -> tuple[list[str], tuple[str | None, ...]]:
    """The config's errors (``FILE:LINE:COLUMN: …``) and its warnings (the variable an
    unset-``${VAR}`` warning names, else None); kept until the file changes, so a page of
    a thousand tenants does not validate a thousand configs each time it is shown."""
    problems = validate_file(path)
    errors = [str(p) for p in problems if p.severity == "error"]
    warned = tuple(
        match[1] if (match := _UNSET.fullmatch(p.message)) else None
        for p in problems
        if p.severity != "error"
    )
    return errors, warned


# validation looks ${VAR} up in the process's environment, not in the tenant's
_UNSET = re.compile(r"the environment variable (\w+) is not set")


def _environ(tenant: Tenant) -> dict[str, str]:
    try:
        return dict(tenant.environ())
    except SambandError:
        return {}


def _secrets(tenant: Tenant) -> list[str]:
    return [value for value in _environ(tenant).values() if value]


def _mask(text: str, secrets: Iterable[str]) -> str:
    return redact.scrub(mask_secrets(text, secrets))
