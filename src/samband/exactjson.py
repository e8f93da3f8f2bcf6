"""JSON that keeps every number exact.

orjson (fast, used everywhere) reads every non-integer as a double and refuses integers
past 64 bits.  Accounting values are decimals: ``12345678901234567.89`` read as a double
becomes ``12345678901234568``, and writing it back would change the amount without anyone
noticing.  Here decimals are written with their own digits, integers of any size as they
are, and a text holding a number a double cannot carry exactly is read with Python's
``json`` (the fast path stays orjson's: only a number of 16 or more digits takes it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

# 16 or more digits (points between them allowed): the shortest number a double may round.
# Digits and points become NUL (which JSON text cannot hold unescaped), so one ``in`` finds
# such a run several times faster than a regular expression.
_DIGITS = bytes.maketrans(b"0123456789.", b"\0" * 11)
_LONG_RUN = b"\0" * 16
_INT64 = (-(2**63), 2**64 - 1)


def loads(raw: bytes | str, *, decimal: Callable[[str], Any] = Decimal) -> Any:
    """Parse JSON; a non-integer number a double cannot hold exactly is given to
    ``decimal`` (``Decimal``, or ``str`` to keep record values JSON-plain), integers of any
    size are ints."""
    data = raw.encode() if isinstance(raw, str) else raw
    if _LONG_RUN not in data.translate(_DIGITS):
        return orjson.loads(data)

    def number(text: str) -> Any:
        value = float(text)
        if math.isfinite(value) and Decimal(repr(value)) == Decimal(text):
            return value
        return decimal(text)

    try:
        return json.loads(data, parse_float=number)
    except ValueError as exc:
        raise orjson.JSONDecodeError(str(exc), data.decode(errors="replace"), 0) from None


def loads_lenient(raw: bytes | str, *, decimal: Callable[[str], Any] = Decimal) -> Any:
    """:func:`loads`, and where orjson refuses a text that JSON allows — a lone UTF-16
    surrogate escape (``"\\ud83d"``, half an emoji cut by a JavaScript API) — Python's
    ``json`` reads it; such strings keep the surrogate (see :func:`unpaired_surrogate`),
    for the caller to refuse the one value rather than the whole text."""
    try:
        return loads(raw, decimal=decimal)
    except orjson.JSONDecodeError:
        data = raw.encode() if isinstance(raw, str) else raw
        if b"\\u" not in data:
            raise

    def number(text: str) -> Any:
        value = float(text)
        if math.isfinite(value) and Decimal(repr(value)) == Decimal(text):
            return value
        return decimal(text)

    def constant(text: str) -> Any:
        raise ValueError(f"{text} is not JSON")

    try:
        return json.loads(data, parse_float=number, parse_constant=constant)
    except ValueError as exc:
        raise orjson.JSONDecodeError(str(exc), data.decode(errors="replace"), 0) from None


def unpaired_surrogate(value: Any, path: str = "") -> tuple[str, str, int] | None:
    """The first string in ``value`` (nested too) that holds a lone surrogate: its dotted
    path, the surrogate and its position; None when every string is text."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return path, value[exc.start : exc.end], exc.start
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unpaired_surrogate(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unpaired_surrogate(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def dumps(value: Any, *, option: int = 0, default: Callable[[Any], Any] | None = None) -> bytes:
    """Serialise with decimals as their exact digits and integers of any size; ``default``
    is asked for any other type orjson does not know."""

    def encode(item: Any) -> Any:
        if isinstance(item, Decimal):
            return orjson.Fragment(decimal_text(item))
        if isinstance(item, datetime | date):
            return item.isoformat()
        if default is not None:
            return default(item)
        raise TypeError(f"cannot serialise {type(item).__name__}")

    try:
        return orjson.dumps(value, default=encode, option=option)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(big_ints(value, orjson.Fragment), default=encode, option=option)


def decimal_text(value: Decimal) -> str:
    """A finite decimal as a JSON number (its own digits)."""
    if not value.is_finite():
        raise TypeError(f"{value} is not a JSON number")
    return str(value)


def big_ints(value: Any, wrap: Callable[[str], Any]) -> Any:
    """``value`` with every integer past 64 bits given to ``wrap`` as its digits."""
    if type(value) is int:
        return value if _INT64[0] <= value <= _INT64[1] else wrap(str(value))
    if isinstance(value, dict):
        return {key: big_ints(item, wrap) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [big_ints(item, wrap) for item in value]
    return value
