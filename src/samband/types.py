"""Data types of mapped properties and round-trip-safe coercion.

Every value the engine compares is first brought to its *canonical* form for the
target's data type: ``str``, ``int``, ``Decimal`` (normalised), ``float``, ``bool``,
``datetime.date``, timezone-aware ``datetime`` in UTC, or ``str`` ids for references.
Coercion refuses anything that would lose information (``"12.5"`` into an integer,
``"yes please"`` into a boolean) with a :class:`ConversionError` that says why.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson

from samband.errors import ConversionError
from samband.exactjson import big_ints


class DataType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    REFERENCE = "reference"


_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EMPTY_DATES = ("0001-01-01",)


def coerce(value: Any, data_type: DataType | str | None) -> Any:
    """Return ``value`` in the canonical form of ``data_type`` (``None`` stays ``None``)."""
    if data_type is None:
        return _plain(value)
    if value is None:
        return None
    kind = data_type if type(data_type) is DataType else DataType(data_type)
    if kind is DataType.STRING and type(value) is str:
        return value
    if isinstance(value, str) and kind is not DataType.STRING and value.strip() == "":
        return None
    return _COERCERS[kind](value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, datetime):
        return _to_datetime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise ConversionError(f"cannot convert {type(value).__name__} {value!r} to string")


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ConversionError(f"{value!r} is not a whole number")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError(f"{value} is not a finite number")
        if value == value.to_integral_value():
            return int(value)
        raise ConversionError(f"{value} is not a whole number")
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ConversionError(f"{value!r} is not a number") from None
        return _to_integer(number)
    raise ConversionError(f"cannot convert {type(value).__name__} {value!r} to integer")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ConversionError(f"{value!r} is a boolean, not a number")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ConversionError(f"{value!r} is not a finite number")
            number = Decimal(repr(value))
        elif isinstance(value, int | Decimal):
            number = Decimal(value)
        elif isinstance(value, str):
            number = Decimal(value.strip().replace(" ", ""))
        else:
            raise ConversionError(f"cannot convert {type(value).__name__} {value!r} to decimal")
    except InvalidOperation:
        raise ConversionError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ConversionError(f"{value!r} is not a finite number")
    # normalize() rounds to the context's precision (28 digits); give it as many as it needs.
    normalised = number.normalize(Context(prec=max(len(number.as_tuple().digits), 1)))
    # normalize() turns 100 into 1E+2; keep a plain exponent for whole numbers.  Decimal(int)
    # is exact at any size (quantize would overflow the context's 28 digits).
    if normalised == normalised.to_integral_value():
        return Decimal(int(normalised))
    return normalised


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ConversionError(f"{value!r} is a boolean, not a number")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ConversionError(f"{value} is not a finite number")
    if isinstance(value, float):
        result = value
    elif isinstance(value, int | Decimal | str):
        exact = _to_decimal(value)
        result = float(exact)
        if not math.isfinite(result):
            shown = str(value) if len(str(value)) <= 30 else f"{str(value)[:20]}…"
            raise ConversionError(f"{shown} is too large for a float")
        if Decimal(result) != exact and Decimal(repr(result)) != exact:
            raise ConversionError(
                f"{value} has more digits than a float holds ({result!r}); it would be "
                "rounded: map it as a decimal or a string"
            )
    else:
        raise ConversionError(f"cannot convert {type(value).__name__} {value!r} to float")
    if not math.isfinite(result):
        raise ConversionError(f"{value!r} is not a finite number")
    return result


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ConversionError(f"{value!r} is not a boolean (use true/false)")


def _parse_ms_date(text: str) -> datetime | None:
    match = _MS_DATE.match(text.strip())
    if not match:
        return None
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        parsed = _parse_ms_date(text)
        if parsed is not None:
            return parsed
        if text.startswith(_EMPTY_DATES):
            raise ConversionError(f"{value!r} is the empty date")
        try:
            result = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConversionError(f"{value!r} is not an ISO 8601 date-time") from None
    else:
        raise ConversionError(f"cannot convert {type(value).__name__} {value!r} to datetime")
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    try:
        return result.astimezone(UTC)
    except OverflowError:
        raise ConversionError(f"{value!r} is out of the range of dates in UTC") from None


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise ConversionError(f"{value.isoformat()} has a time of day; a date would lose it")
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        parsed = _parse_ms_date(text)
        if parsed is not None:
            return _to_date(parsed)
        try:
            return (
                date.fromisoformat(text[:10])
                if len(text) == 10
                else _to_date(_datetime_keep_local(text))
            )
        except ConversionError:
            raise
        except ValueError:
            raise ConversionError(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
    raise ConversionError(f"cannot convert {type(value).__name__} {value!r} to date")


def _datetime_keep_local(text: str) -> datetime:
    """A date-time string seen as a date keeps its own calendar day (no UTC shift)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=None)


def _to_reference(value: Any) -> str:
    if isinstance(value, bool):
        raise ConversionError(f"{value!r} is not a record id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int | str):
        text = str(value).strip()
        if text:
            return text
    raise ConversionError(f"{value!r} is not a record id")


def id_value(text: str) -> int | str:
    """A record id as a system most likely types it: a number when it is written as one
    (``"8"`` → 8), else the text as it is (``"008"`` stays ``"008"``, so the reference
    still points at that record)."""
    if (
        text.isascii()
        and text.isdigit()
        and (text == "0" or text[0] != "0")
        and len(text) < 19  # a 64-bit id; a longer one is text
    ):
        return int(text)
    return text


_COERCERS = {
    DataType.STRING: _to_string,
    DataType.INTEGER: _to_integer,
    DataType.DECIMAL: _to_decimal,
    DataType.FLOAT: _to_float,
    DataType.BOOLEAN: _to_boolean,
    DataType.DATE: _to_date,
    DataType.DATETIME: _to_datetime,
    DataType.REFERENCE: _to_reference,
}


_JSON_NATIVE = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    """Canonical value → JSON-safe value, so bases and snapshots survive a store round trip."""
    if type(value) in _JSON_NATIVE:
        return value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def from_json(value: Any) -> Any:
    """Inverse of :func:`to_json`."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$decimal":
            return Decimal(inner)
        if key == "$datetime":
            return datetime.fromisoformat(inner)
        if key == "$date":
            return date.fromisoformat(inner)
    return value


def to_wire(value: Any) -> Any:
    """Canonical value → plain JSON value for an API body (dates as ISO strings).  A
    decimal becomes an int or a float only when that holds it exactly; otherwise it stays
    a Decimal, which :mod:`samband.exactjson` writes with its own digits."""
    if type(value) in _JSON_NATIVE:
        return value
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# Which conversions between declared types never lose information.  Used by
# `samband validate` to warn about mappings that cannot round-trip.
_LOSSLESS: dict[DataType, set[DataType]] = {
    DataType.STRING: {DataType.STRING},
    DataType.INTEGER: {DataType.INTEGER, DataType.DECIMAL, DataType.STRING, DataType.REFERENCE},
    DataType.DECIMAL: {DataType.DECIMAL, DataType.STRING},
    DataType.FLOAT: {DataType.FLOAT, DataType.DECIMAL, DataType.STRING},
    DataType.BOOLEAN: {DataType.BOOLEAN, DataType.STRING, DataType.INTEGER},
    DataType.DATE: {DataType.DATE, DataType.DATETIME, DataType.STRING},
    DataType.DATETIME: {DataType.DATETIME, DataType.STRING},
    DataType.REFERENCE: {DataType.REFERENCE, DataType.STRING},
}


def round_trips(source: DataType, target: DataType) -> bool:
    """True when every ``source`` value survives ``source → target → source``."""
    return target in _LOSSLESS[source]


def infer_type(value: Any) -> DataType | None:
    """The data type a sample value suggests (used for reflected schemas)."""
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.INTEGER
    if isinstance(value, float):
        return DataType.FLOAT
    if isinstance(value, Decimal):
        return DataType.DECIMAL
    if isinstance(value, datetime):
        return DataType.DATETIME
    if isinstance(value, date):
        return DataType.DATE
    if isinstance(value, str):
        return DataType.STRING
    return None


CET = timezone(timedelta(hours=1), "CET")


def same_stored_value(now: Any, was: Any) -> bool:
    """Whether a value read now is the one a snapshot holds (``was``: a JSON value): ``now``
    is compared as a JSON round trip gives it back, numbers by value.  Used before an
    update, to tell an edit made since the read from the value that was read."""
    try:
        raw = orjson.dumps(now, default=str)
    except TypeError:  # an integer past 64 bits: the snapshot keeps its digits
        raw = orjson.dumps(big_ints(now, str), default=str)
    now = orjson.loads(raw)
    # numbers by value, exactly (12345678901234567 is not 12345678901234568.0)
    return bool(now == was)


def utc_moment(value: Any) -> datetime | None:
    """ISO 8601 text (``Z``, an offset, or none: UTC) as an aware UTC datetime; text that
    is not a date-time, and anything else, gives None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
