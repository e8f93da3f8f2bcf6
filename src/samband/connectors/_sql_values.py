"""What a column holds exactly, checked in Python before a value is sent.

A database that quietly rounds ``1.005`` into a ``NUMERIC(12,2)`` column, keeps a ``REAL``
to seven digits or drops the fractions of a second of a ``DATETIME`` gives the changed
value back on the next read, and the engine would take it for an edit and carry it back
over the source.  So every value a column would round, truncate or re-type is refused
here, with the column, its type and the value, and the record is quarantined with that
reason (the run goes on).

The declared type is the contract, also where the database is more lenient (SQLite keeps
any number in any column): what a column is declared to hold is what the users of the
database rely on.  Each column's check is built once, when the table is reflected; a
check is a few comparisons per value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Dialect

from samband.connectors._sql_schema import max_length
from samband.errors import ConversionError
from samband.types import DataType, coerce

#: ``check(value, given)``: why the column cannot hold ``value`` (``given`` coerced to the
#: column's data type) exactly, or None when it can.
Check = Callable[[Any, Any], str | None]

SQLITE_DIGITS = 15  # SQLite keeps a number as a binary double: 15 significant digits
SQLITE_DECIMAL_SCALE = 10  # SQLAlchemy reads a NUMERIC without scale back to 10 places
_SINGLE_DIGITS = 6  # MariaDB shows a FLOAT with 6 significant digits


def column_check(column: Column[Any], kind: DataType | None, dialect: Dialect) -> Check | None:
    """The check of what ``column`` holds exactly, or None when it holds every value of
    its data type."""
    label = f"{column.table.name}.{column.name}" if column.table is not None else column.name
    shown = type_text(column, dialect)
    if kind is DataType.STRING:
        return _text_check(label, shown, column)
    if kind is DataType.INTEGER:
        low, high = integer_range(column.type, dialect.name)
        return _range_check(label, shown, low, high)
    if kind is DataType.DECIMAL:
        return _decimal_check(label, shown, column.type, dialect)
    if kind is DataType.FLOAT:
        single = single_precision(column.type, dialect.name)
        return _float_check(label, shown, single, dialect.name)
    if kind is DataType.DATETIME:
        return _fraction_check(label, shown, second_digits(column.type, dialect.name))
    return None


def type_text(column: Column[Any], dialect: Dialect) -> str:
    try:
        return str(column.type.compile(dialect=dialect))
    except Exception:  # a reflected type the dialect cannot print
        return type(column.type).__name__


# -- text --------------------------------------------------------------------------------
def _text_check(label: str, shown: str, column: Column[Any]) -> Check:
    limit = max_length(column.type)

    def check(value: Any, _given: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if limit and len(value) > limit:
            return (
                f"{len(value)} characters; column {label} holds at most {limit} "
                f"({shown}): shorten it in its source system or widen the column"
            )
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (
                    f"holds {value[exc.start : exc.end]!r} at position {exc.start}, which is "
                    f"not a character (a lone surrogate); column {label} cannot store it: "
                    "correct the text in its source system"
                )
        return None

    return check


# -- integers ----------------------------------------------------------------------------
def integer_range(column_type: sqltypes.TypeEngine[Any], dialect: str) -> tuple[int, int]:
    """The smallest and largest integer a column of this type holds."""
    name = type(column_type).__name__.upper()
    if isinstance(column_type, sqltypes.SmallInteger) or name == "SMALLINT":
        bits = 16
    elif isinstance(column_type, sqltypes.BigInteger) or dialect == "sqlite":
        bits = 64  # SQLite's INTEGER is 64 bits, whatever it was declared as
    elif name == "TINYINT":
        bits = 8
    elif name == "MEDIUMINT":
        bits = 24
    elif dialect in ("postgresql", "mysql", "mariadb"):
        bits = 32
    else:
        bits = 64
    if getattr(column_type, "unsigned", False):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _range_check(label: str, shown: str, low: int, high: int) -> Check:
    def check(value: Any, _given: Any) -> str | None:
        if isinstance(value, int) and not low <= value <= high:
            return (
                f"{_short(value)} is out of the range of column {label} ({shown}: "
                f"{low} to {high}): correct it in its source system or widen the column"
            )
        return None

    return check


# -- decimals ----------------------------------------------------------------------------
def _decimal_check(
    label: str, shown: str, column_type: sqltypes.TypeEngine[Any], dialect: Dialect
) -> Check | None:
    precision = getattr(column_type, "precision", None)
    scale = getattr(column_type, "scale", None)
    if precision is not None and scale is None:
        scale = 0  # NUMERIC(p) is NUMERIC(p, 0)
    sqlite = dialect.name == "sqlite"
    if sqlite and scale is None:
        scale = SQLITE_DECIMAL_SCALE
    if precision is None and scale is None:
        return None  # PostgreSQL's NUMERIC without precision holds any decimal

    def check(value: Any, _given: Any) -> str | None:
        if not isinstance(value, Decimal):
            return None
        places = decimal_places(value)
        if scale is not None and places > scale:
            return (
                f"{value} has {places} decimal places; column {label} ({shown}) keeps "
                f"{scale} and the database would round it: round it in its source system "
                "or give the column a larger scale"
            )
        digits = whole_digits(value)
        if precision is not None and digits > precision - (scale or 0):
            return (
                f"{_short(value)} has {digits} digits before the decimal point; column "
                f"{label} ({shown}) holds at most {precision - (scale or 0)}: correct it "
                "in its source system or give the column a larger precision"
            )
        if sqlite and significant_digits(value) > SQLITE_DIGITS:
            return (
                f"{_short(value)} has {significant_digits(value)} significant digits; "
                f"SQLite keeps a number in column {label} ({shown}) as a binary double, "
                f"exact to {SQLITE_DIGITS}: store it in a TEXT column or round it in its "
                "source system"
            )
        return None

    return check


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def whole_digits(value: Decimal) -> int:
    """How many digits ``value`` has before the decimal point (0 for 0.5)."""
    return max(0, value.adjusted() + 1) if value else 0


def significant_digits(value: Decimal) -> int:
    return len(value.normalize().as_tuple().digits) if value else 1


# -- floating point ----------------------------------------------------------------------
def single_precision(column_type: sqltypes.TypeEngine[Any], dialect: str) -> bool:
    """Whether a float column keeps 4 bytes (PostgreSQL ``real``, MariaDB ``FLOAT``);
    SQLite keeps every float in 8."""
    precision = getattr(column_type, "precision", None)
    if dialect == "postgresql":
        return isinstance(column_type, sqltypes.REAL) or (precision is not None and precision <= 24)
    if dialect in ("mysql", "mariadb"):
        name = type(column_type).__name__.upper()
        return name == "FLOAT" and (precision is None or precision <= 24)
    return False


def stored_float(value: float, single: bool, dialect: str) -> Decimal:
    """The number a float column gives back for ``value``."""
    if not single:
        return Decimal(repr(value))
    try:
        packed = struct.pack("<f", value)
    except OverflowError:
        return Decimal("Infinity")
    as_single = struct.unpack("<f", packed)[0]
    if dialect in ("mysql", "mariadb"):
        return Decimal(f"{as_single:.{_SINGLE_DIGITS}g}")
    for digits in range(1, 10):  # the shortest text that reads back as the same single
        text = f"{as_single:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return Decimal(text)
    return Decimal(repr(as_single))


def _float_check(label: str, shown: str, single: bool, dialect: str) -> Check:
    def check(value: Any, given: Any) -> str | None:
        if not isinstance(value, float):
            return None
        try:
            wanted = coerce(given, DataType.DECIMAL)
        except ConversionError:
            return None
        stored = stored_float(value, single, dialect)
        if stored == wanted:
            return None
        kind = "a single-precision" if single else "a double-precision"
        return (
            f"{_short(wanted)} would be stored as {_short(stored)}: column {label} ({shown}) "
            f"is {kind} floating-point number: round it in its source system or make the "
            "column NUMERIC"
        )

    return check


# -- date-times --------------------------------------------------------------------------
def second_digits(column_type: sqltypes.TypeEngine[Any], dialect: str) -> int:
    """How many digits of a second a date-time column keeps."""
    if dialect in ("mysql", "mariadb"):
        return int(getattr(column_type, "fsp", None) or 0)
    precision = getattr(column_type, "precision", None)
    if dialect == "postgresql" and isinstance(precision, int):
        return min(precision, 6)
    return 6


def _fraction_check(label: str, shown: str, digits: int) -> Check | None:
    if digits >= 6:
        return None
    step = 10 ** (6 - digits)

    def check(value: Any, _given: Any) -> str | None:
        if isinstance(value, datetime) and value.microsecond % step:
            kept = "whole seconds" if digits == 0 else f"{digits} digits of a second"
            return (
                f"{value.isoformat()} has fractions of a second that column {label} "
                f"({shown}) does not keep ({kept}): the database would cut or round them; "
                "round the time in its source system or declare the column with more "
                "fractional digits (DATETIME(6) on MariaDB, timestamp(6) on PostgreSQL)"
            )
        return None

    return check


def _short(value: Any) -> str:
    text = f"{value:f}" if isinstance(value, Decimal) and value.is_finite() else str(value)
    return text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"
