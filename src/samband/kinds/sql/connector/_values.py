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

**The round-trip rule.**  The engine hands a connector each value in the canonical form
of the mapping's ``type:`` and later compares what it reads back, brought to that same
type, with what it wrote (``engine.plan._same``: equal values of one type, numbers by
value, an empty text and no value alike).  A value is accepted only when the column gives
it back *equal under that comparison*:

    given  --coerce to the column's type-->  value  --what the database keeps and the
    connector reads (driver, SQLAlchemy, ``_sql_schema.from_db``)-->  read
    accepted  <=>  coerce(read, type of given) == given

The type of ``given`` is the mapping's type (``str`` for ``type: string``, ``int``,
``Decimal``, ``float``, ``bool``, ``date``, ``datetime``).  So a text goes into a number,
boolean or date column only when it is spelled as the column gives it back: ``"8"`` into
INTEGER (not ``"008"``, ``" 8"``, ``"+8"``, ``"8.0"``), ``"true"``/``"false"`` into
BOOLEAN (not ``"yes"``, ``"1"``, ``"TRUE"``), ``"2026-01-05"`` into DATE (not
``"2026-1-5"`` or ``"20260105"``), ``"1.50"`` into NUMERIC(10,2) (not ``"1.5"``: it
comes back as ``"1.50"``).  Values mapped with the column's own kind of type round-trip
whenever the kind's own check (range, digits, fractions of a second) passes, except
where the database hands back other digits (SQLite reads a NUMERIC back through a binary
double, formatted to the column's scale).  What the column gives back is modelled here,
in Python, per dialect (see :func:`read_back`); ``tests/test_sql_values.py`` holds it
against what each database really gives back.

Fixed-width ``CHAR(n)`` columns: PostgreSQL pads a value with spaces to ``n`` and MariaDB
removes trailing spaces, so the connector reads a CHAR column without its padding (SQLite
keeps what it was given) and a value that ends in spaces is refused on every database:
its spaces would be lost.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Dialect

from samband.errors import ConversionError
from samband.kinds.sql.connector._schema import (
    from_db,
    is_padded,
    max_bytes,
    max_length,
    to_db_datetime,
)
from samband.types import DataType, coerce, infer_type

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
    exact = _kind_check(column, kind, dialect, label, shown)
    if kind is None:
        return exact  # the value goes to the driver as it is
    # a value of the column's own kind that its kind's check passed comes back the same,
    # except a decimal in SQLite (kept as a binary double, read back formatted)
    own_kind = not (kind is DataType.DECIMAL and dialect.name == "sqlite")
    back = read_back(column, kind, dialect)
    round_trip = _round_trip_check(label, shown, kind, back, own_kind)
    if exact is None:
        return round_trip

    def check(value: Any, given: Any) -> str | None:
        return exact(value, given) or round_trip(value, given)

    return check


def _kind_check(
    column: Column[Any], kind: DataType | None, dialect: Dialect, label: str, shown: str
) -> Check | None:
    """What a column of ``kind`` cannot hold of that kind (too long, out of range, too
    many digits or fractions of a second)."""
    if kind is DataType.STRING:
        return _text_check(label, shown, column, dialect)
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
def _text_check(label: str, shown: str, column: Column[Any], dialect: Dialect) -> Check:
    limit = max_length(column.type)
    fixed = is_padded(column.type)
    byte_limit = max_bytes(column.type, dialect.name)
    # a value of this many characters or fewer fits whatever their encoding (4 bytes each)
    surely_fits = byte_limit // 4 if byte_limit else 0

    def check(value: Any, _given: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if limit and len(value) > limit:
            return (
                f"{len(value)} characters; column {label} holds at most {limit} "
                f"({shown}): shorten it in its source system or widen the column"
            )
        if byte_limit and len(value) > surely_fits:
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > byte_limit:
                return (
                    f"{size} bytes ({len(value)} characters); column {label} holds at most "
                    f"{byte_limit} bytes ({shown}): shorten it in its source system or make "
                    "the column a larger TEXT type"
                )
        if fixed and value.endswith(" "):
            return (
                f"{_short(value)!r} ends in spaces, which column {label} ({shown}) does not "
                "keep: a fixed-width CHAR column pads its values with spaces (PostgreSQL) or "
                "removes them (MariaDB), so they are not part of its value; remove them in "
                "its source system or make the column VARCHAR"
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


# -- round trip -------------------------------------------------------------------------
def read_back(column: Column[Any], kind: DataType, dialect: Dialect) -> Callable[[Any], Any]:
    """``read_back(value)``: the value a record of the connector carries after ``value``
    (of the column's data type, accepted by its kind's check) was written to ``column``
    and read again: what the database keeps, as the driver and SQLAlchemy give it back,
    through :func:`samband.kinds.sql.connector._schema.from_db` (a CHAR column's padding is
    not part of it: values with trailing spaces are refused before)."""
    if kind is DataType.DECIMAL:
        stored = stored_decimal(column.type, dialect.name)
        return lambda value: from_db(stored(value), kind)
    if kind is DataType.FLOAT:
        single = single_precision(column.type, dialect.name)
        return lambda value: float(stored_float(value, single, dialect.name))
    if kind is DataType.DATETIME:
        return lambda value: from_db(to_db_datetime(column, value), kind)
    return lambda value: from_db(value, kind)


def stored_decimal(column_type: sqltypes.TypeEngine[Any], dialect: str) -> Callable[[Any], Any]:
    """What a decimal column gives back for a decimal its check accepted: PostgreSQL and
    MariaDB give it with the column's scale (``1.5`` in ``NUMERIC(10,2)`` is ``1.50``), a
    PostgreSQL ``NUMERIC`` without scale as it was sent; SQLite keeps a binary double, which
    SQLAlchemy reads back formatted to the scale (10 places without one)."""
    scale = getattr(column_type, "scale", None)
    if dialect == "sqlite":
        places = scale if scale is not None else SQLITE_DECIMAL_SCALE
        return lambda value: Decimal(f"{float(value):.{places}f}")
    if scale is None and getattr(column_type, "precision", None) is not None:
        scale = 0
    if scale is None:
        return lambda value: value
    step = Decimal(1).scaleb(-scale)

    def stored(value: Any) -> Any:
        if not isinstance(value, Decimal):
            return value
        try:
            return value.quantize(step, context=Context(prec=whole_digits(value) + scale + 1))
        except InvalidOperation:  # more places than the scale: refused by the kind's check
            return value

    return stored


def _round_trip_check(
    label: str, shown: str, kind: DataType, back: Callable[[Any], Any], own_kind: bool
) -> Check:
    """Refuse a value the column would give back as another value of the mapping's type
    (the rule in the module's docstring).  ``own_kind``: values of the column's own data
    type come back the same (once its kind's check passed) and are not looked at again."""

    def check(value: Any, given: Any) -> str | None:
        wanted = infer_type(given)
        if wanted is None or (own_kind and wanted is kind):
            return None
        read = back(value)
        try:
            again = coerce(read, wanted)
        except ConversionError:
            again = read
        if same_value(again, given):
            return None
        if wanted is kind or (wanted is DataType.FLOAT and kind is DataType.DECIMAL):
            advice = (
                "correct it in its source system or give the column a type that holds it exactly"
            )
        else:
            column = (
                "a text column (VARCHAR)" if wanted is DataType.STRING else f"a {wanted} column"
            )
            advice = (
                f"write it as {_shown(again)} in its source system, map the property with "
                f"type: {kind} (so that values are compared as {kind} values), or store it "
                f"in {column}"
            )
        return (
            f"{_shown(given)} ({wanted}) would be stored in column {label} ({shown}) and "
            f"read back as {_shown(again)}, which the next sync would take for an edit and "
            f"carry back over the source: {advice}"
        )

    return check


def same_value(a: Any, b: Any) -> bool:
    """Whether the engine takes two values of a mapping's type for the same (as
    ``samband.engine.plan._same`` compares them)."""
    if a is None or b is None or a == "" or b == "":
        return a in (None, "") and b in (None, "")
    if type(a) is type(b) and a == b:
        return True
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(_short(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _short(value)


def _short(value: Any) -> str:
    text = f"{value:f}" if isinstance(value, Decimal) and value.is_finite() else str(value)
    return text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"
