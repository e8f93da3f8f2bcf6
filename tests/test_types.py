"""Data types: coercion of every (value kind, type) pair, round trips, refusals."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samband.errors import ConversionError
from samband.types import (
    DataType,
    coerce,
    from_json,
    infer_type,
    round_trips,
    to_json,
    to_wire,
)

S, N, D, F, B = (
    DataType.STRING,
    DataType.INTEGER,
    DataType.DECIMAL,
    DataType.FLOAT,
    DataType.BOOLEAN,
)
DA, DT, R = DataType.DATE, DataType.DATETIME, DataType.REFERENCE
OSLO = timezone(timedelta(hours=2))
X = ConversionError  # "refused"

# One representative of each value kind, and what each data type makes of it.
VALUES: dict[str, Any] = {
    "str-int": "42",
    "str-decimal": "12.50",
    "str-word": "yes please",
    "str-bool": "True",
    "str-date": "2024-03-01",
    "str-datetime": "2024-03-01T10:30:00+02:00",
    "int": 7,
    "bool": True,
    "float": 2.5,
    "float-whole": 3.0,
    "decimal": Decimal("1.230"),
    "date": date(2024, 3, 1),
    "datetime": datetime(2024, 3, 1, 8, 30, tzinfo=UTC),
    "datetime-naive-midnight": datetime(2024, 3, 1),
    "ms-date": "/Date(1709251200000)/",
}
EXPECTED: dict[str, dict[DataType, Any]] = {
    "str-int": {S: "42", N: 42, D: Decimal("42"), F: 42.0, B: X, DA: X, DT: X, R: "42"},
    "str-decimal": {
        S: "12.50",
        N: X,
        D: Decimal("12.5"),
        F: 12.5,
        B: X,
        DA: X,
        DT: X,
        R: "12.50",
    },
    "str-word": {S: "yes please", N: X, D: X, F: X, B: X, DA: X, DT: X, R: "yes please"},
    "str-bool": {S: "True", N: X, D: X, F: X, B: True, DA: X, DT: X, R: "True"},
    "str-date": {
        S: "2024-03-01",
        N: X,
        D: X,
        F: X,
        B: X,
        DA: date(2024, 3, 1),
        DT: datetime(2024, 3, 1, tzinfo=UTC),
        R: "2024-03-01",
    },
    "str-datetime": {
        S: "2024-03-01T10:30:00+02:00",
        N: X,
        D: X,
        F: X,
        B: X,
        DA: X,
        DT: datetime(2024, 3, 1, 8, 30, tzinfo=UTC),
        R: "2024-03-01T10:30:00+02:00",
    },
    "int": {S: "7", N: 7, D: Decimal(7), F: 7.0, B: X, DA: X, DT: X, R: "7"},
    "bool": {S: "true", N: 1, D: X, F: X, B: True, DA: X, DT: X, R: X},
    "float": {S: "2.5", N: X, D: Decimal("2.5"), F: 2.5, B: X, DA: X, DT: X, R: X},
    "float-whole": {S: "3", N: 3, D: Decimal(3), F: 3.0, B: X, DA: X, DT: X, R: "3"},
    "decimal": {S: "1.230", N: X, D: Decimal("1.23"), F: 1.23, B: X, DA: X, DT: X, R: X},
    "date": {
        S: "2024-03-01",
        N: X,
        D: X,
        F: X,
        B: X,
        DA: date(2024, 3, 1),
        DT: datetime(2024, 3, 1, tzinfo=UTC),
        R: X,
    },
    "datetime": {
        S: "2024-03-01T08:30:00+00:00",
        N: X,
        D: X,
        F: X,
        B: X,
        DA: X,
        DT: datetime(2024, 3, 1, 8, 30, tzinfo=UTC),
        R: X,
    },
    "datetime-naive-midnight": {
        S: "2024-03-01T00:00:00+00:00",
        N: X,
        D: X,
        F: X,
        B: X,
        DA: date(2024, 3, 1),
        DT: datetime(2024, 3, 1, tzinfo=UTC),
        R: X,
    },
    "ms-date": {
        S: "/Date(1709251200000)/",
        N: X,
        D: X,
        F: X,
        B: X,
        DA: date(2024, 3, 1),
        DT: datetime(2024, 3, 1, tzinfo=UTC),
        R: "/Date(1709251200000)/",
    },
}
PAIRS = [(kind, t) for kind in VALUES for t in DataType]


def test_the_table_covers_every_pair() -> None:
    assert all(set(row) == set(DataType) for row in EXPECTED.values())
    assert set(EXPECTED) == set(VALUES)


@pytest.mark.parametrize(("kind", "data_type"), PAIRS, ids=[f"{k}->{t}" for k, t in PAIRS])
def test_coercion_of_every_pair(kind: str, data_type: DataType) -> None:
    value, expected = VALUES[kind], EXPECTED[kind][data_type]
    if expected is X:
        with pytest.raises(ConversionError) as caught:
            coerce(value, data_type)
        assert str(caught.value)  # a message that says why
        return
    result = coerce(value, data_type)
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(result, datetime):
        assert result.utcoffset() == timedelta(0)
    assert coerce(result, data_type) == result  # canonical values are fixed points


def test_none_and_blank() -> None:
    for data_type in DataType:
        assert coerce(None, data_type) is None
        if data_type is not S:
            assert coerce("  ", data_type) is None
    assert coerce("", S) == ""
    assert coerce(4.0, None) == 4 and coerce("x", None) == "x"


@pytest.mark.parametrize(
    ("value", "data_type", "message"),
    [
        ("12.5", N, "not a whole number"),
        (1.5, N, "not a whole number"),
        (float("nan"), N, "not a whole number"),
        ("inf", N, "not a finite number"),
        ("abc", N, "not a number"),
        (True, D, "boolean"),
        ("NaN", D, "not a finite number"),
        (float("inf"), F, "not a finite number"),
        (10**400, F, "too large for a float"),
        ("yes please", B, "not a boolean"),
        (2, B, "not a boolean"),
        ("2024-03-01T10:00:00", DA, "time of day"),
        (datetime(2024, 3, 1, 10, tzinfo=UTC), DA, "time of day"),
        ("March 1st", DA, "not an ISO 8601 date"),
        ("0001-01-01T00:00:00", DT, "empty date"),
        ("9999-12-31T23:00:00-05:00", DT, "out of the range"),
        ("soon", DT, "not an ISO 8601 date-time"),
        (False, R, "not a record id"),
        ("   ", S, None),
        (["a"], S, "cannot convert list"),
        ({"a": 1}, N, "cannot convert dict"),
        (1.5, R, "not a record id"),
    ],
)
def test_refusals_say_why(value: Any, data_type: DataType, message: str | None) -> None:
    if message is None:
        assert coerce(value, data_type) == value
        return
    with pytest.raises(ConversionError, match=message):
        coerce(value, data_type)


def test_values_that_need_care() -> None:
    assert coerce(Decimal("100"), D) == Decimal("100") and str(coerce(Decimal("1E+2"), D)) == "100"
    assert str(coerce(Decimal("1E+30"), D)) == "1" + "0" * 30
    assert coerce(1e300, D) == Decimal(10**300)  # the shortest repr, not the binary value
    assert coerce(" 1 000.50 ", D) == Decimal("1000.5")
    assert coerce("1e3", N) == 1000
    assert coerce(Decimal("5"), R) == "5" and coerce(12.0, R) == "12"
    assert coerce("2024-03-01T00:00:00-05:00", DA) == date(2024, 3, 1)  # its own calendar day
    assert coerce(datetime(2024, 3, 1, 1, 0, tzinfo=OSLO), DT) == datetime(
        2024, 2, 29, 23, 0, tzinfo=UTC
    )
    assert coerce("2024-03-01T08:30:00Z", DT) == datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    assert coerce(" off ", B) is False and coerce(0, B) is False


# -- properties -------------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.from_regex(r"-?\d{1,30}(\.\d{1,10})?([eE][+-]?\d{1,3})?", fullmatch=True),
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
)


@settings(max_examples=300, deadline=None)
@given(value=ANY_VALUE, data_type=st.sampled_from(list(DataType)))
def test_coercion_is_idempotent_or_refuses(value: Any, data_type: DataType) -> None:
    """coerce(coerce(v, t), t) == coerce(v, t); anything else is a ConversionError."""
    try:
        once = coerce(value, data_type)
    except ConversionError:
        return
    assert coerce(once, data_type) == once
    if isinstance(once, float):
        assert math.isfinite(once)


CANONICAL = {
    S: st.text(),
    N: st.integers(),
    D: st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: coerce(d, D)),
    F: st.floats(allow_nan=False, allow_infinity=False),
    B: st.booleans(),
    DA: st.dates(),
    DT: st.datetimes(timezones=st.just(UTC)),
    R: st.text(min_size=1).map(str.strip).filter(bool),
}


@settings(max_examples=200, deadline=None)
@given(data=st.data(), data_type=st.sampled_from(list(DataType)))
def test_json_round_trip(data: st.DataObject, data_type: DataType) -> None:
    value = data.draw(CANONICAL[data_type])
    assert from_json(to_json(value)) == value
    assert type(from_json(to_json(value))) is type(value)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    pair=st.sampled_from([(s, t) for s in DataType for t in DataType if round_trips(s, t)]),
)
def test_pairs_declared_lossless_round_trip(data: st.DataObject, pair: tuple) -> None:
    source, target = pair
    value = data.draw(CANONICAL[source])
    there = coerce(value, target)
    assert coerce(there, source) == value


WITNESSES = {
    S: ["abc", " padded ", "1.50", "2024-01-01"],
    N: [2, 2**60 + 1, -5],
    D: [Decimal("1.5"), Decimal("12345678901234567.1")],
    F: [1.5, 0.1],
    B: [True, False],
    DA: [date(2024, 1, 2)],
    DT: [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)],
    R: ["abc", "12"],
}


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in DataType for t in DataType if not round_trips(s, t)],
)
def test_pairs_declared_lossy_have_a_witness(source: DataType, target: DataType) -> None:
    """Each pair `samband validate` warns about really loses a value somewhere."""

    def survives(value: Any) -> bool:
        try:
            return coerce(coerce(value, target), source) == value
        except ConversionError:
            return False

    assert not all(survives(v) for v in WITNESSES[source])


def test_round_trips_table_basics() -> None:
    for data_type in DataType:
        assert round_trips(data_type, data_type)
        assert round_trips(data_type, S)  # everything can be written as text and read back
    assert not round_trips(S, N) and not round_trips(D, N) and not round_trips(DT, DA)


def test_to_wire_and_infer_type() -> None:
    assert to_wire(Decimal("2")) == 2 and to_wire(Decimal("2.5")) == 2.5
    assert to_wire(date(2024, 1, 2)) == "2024-01-02"
    assert to_wire(datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00+00:00"
    assert [
        infer_type(v)
        for v in (True, 1, 1.5, Decimal(1), datetime.now(UTC), date.today(), "x", None)
    ] == [B, N, F, D, DT, DA, S, None]
