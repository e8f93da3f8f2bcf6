"""Nested property paths (``MailAddress.City``) and the forward/inverse mapping of records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_MISSING = object()


def split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def get_path(record: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """The value at a dotted path, or ``default`` when any step is missing."""
    if "." not in path and type(record) is dict:
        return record.get(path, default)
    return get_steps(record, path.split("."), default)


def get_steps(record: Any, steps: Sequence[str], default: Any = None) -> Any:
    """:func:`get_path` of a path already split at its dots."""
    current = record
    for part in steps:
        if not isinstance(current, Mapping):
            return default
        current = current.get(part, _MISSING)
        if current is _MISSING:
            return default
    return current


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path, creating the intermediate objects."""
    parts = path.split(".")
    current = record
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = {}
            current[part] = child
        current = child
    current[parts[-1]] = value


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"A.B": 1, "C": 2}`` → ``{"A": {"B": 1}, "C": 2}``."""
    result: dict[str, Any] = {}
    for path, value in flat.items():
        set_path(result, path, value)
    return result


def project(record: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    """Only the given paths of a record, flat (``{"MailAddress.City": "Oslo"}``)."""
    return {path: get_path(record, path) for path in paths}
