"""Durations as people write them in configs and on the command line: ``250ms``, ``30s``,
``5m``, ``1h``, ``7d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_interval(text: str, default_unit: str = "s") -> float:
    """Seconds in ``text``; a bare number is in ``default_unit``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not an interval (use e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2) or default_unit]


def format_seconds(seconds: float) -> str:
    """``90`` as ``1m 30s``, ``7200`` as ``2h``: the largest units, at most two."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts[:2])
