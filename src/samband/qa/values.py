"""Test values: one per property, typical of its data type, recognisable and unique per run.

A string reads ``QA-<run id>-<property>``; e-mail addresses, phone numbers, organisation
numbers, postal codes, countries and currencies get values of their own shape (APIs
validate them).  Numbers, dates and date-times are derived from a hash of the run id,
the property and the *variant* (``c`` when created, ``t`` for the edit made in the
target, ``s`` for the edit made in the source), so every edit is a real change.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from samband.connectors.base import Property
from samband.errors import ConversionError
from samband.types import DataType, coerce


def _number(run_id: str, path: str, variant: str, digits: int) -> int:
    raw = hashlib.sha256(f"{run_id}\x1f{path}\x1f{variant}".encode()).hexdigest()
    low = 10 ** (digits - 1)
    return low + int(raw, 16) % (9 * low)


_ORGNO = (
    r"organi[sz]ation_?(no|nr|number)|org_?(no|nr|num)|vat|company_?(no|number)"
    r"|registration_?(no|number)|kvk|chamber"
)


def _kind_of_name(path: str, normalizer: str | None) -> str | None:
    name = path.rsplit(".", 1)[-1].lower()
    if normalizer == "email" or "mail" in name:
        return "email"
    if normalizer == "phone" or re.search(r"phone|mobile|fax|^tel", name):
        return "phone"
    if (
        normalizer in ("orgno", "digits")
        or name in ("org", "orgno", "orgnr")
        or re.search(_ORGNO, name)
    ):
        return "orgno"
    if re.search(r"zip|post(al)?_?code|postnr", name):
        return "zip"
    if re.search(r"country", name):
        return "country"
    if re.search(r"currency", name):
        return "currency"
    if re.search(r"url|website|homepage|www", name):
        return "url"
    return None


def _string(
    run_id: str, path: str, variant: str, normalizer: str | None, max_length: int | None
) -> str:
    kind = _kind_of_name(path, normalizer)
    if kind == "email":
        text = f"qa-{run_id}-{_number(run_id, path, variant, 4)}@example.com".lower()
    elif kind == "phone":
        text = f"+47 9{_number(run_id, path, variant, 7)}"
    elif kind == "orgno":
        text = str(_number(run_id, path, variant, 9))
    elif kind == "zip":
        text = str(_number(run_id, path, variant, 4))
    elif kind == "country":
        text = {"c": "NO", "t": "SE", "s": "DK"}.get(variant, "NO")
    elif kind == "currency":
        text = {"c": "NOK", "t": "SEK", "s": "EUR"}.get(variant, "NOK")
    elif kind == "url":
        text = f"https://qa-{run_id}-{variant}.example.com/".lower()
    else:
        name = re.sub(r"[^A-Za-z0-9]+", "", path.rsplit(".", 1)[-1]) or "value"
        suffix = "" if variant == "c" else f"-{variant}"
        text = f"QA-{run_id}-{name}{suffix}"
    if max_length is not None and len(text) > max_length:
        # keep the run id and the variant (what makes the value unique)
        short = f"Q{run_id}{variant}"
        text = short[-max_length:] if len(short) > max_length else short
    return text


def value_for(
    path: str,
    data_type: DataType | None,
    run_id: str,
    variant: str,
    *,
    prop: Property | None = None,
    normalizer: str | None = None,
) -> Any:
    """A canonical value of ``data_type`` for the property at ``path``."""
    kind = data_type or DataType.STRING
    if kind is DataType.STRING:
        return _string(run_id, path, variant, normalizer, prop.max_length if prop else None)
    if kind is DataType.INTEGER:
        return _number(run_id, path, variant, 5)
    if kind is DataType.DECIMAL:
        return Decimal(f"{_number(run_id, path, variant, 4)}.25")
    if kind is DataType.FLOAT:
        return _number(run_id, path, variant, 4) + 0.5
    if kind is DataType.BOOLEAN:
        return variant != "t"  # created True, edited in the target False, in the source True
    if kind is DataType.DATE:
        return date(2026, 1, 1) + timedelta(days=_number(run_id, path, variant, 3) % 365)
    if kind is DataType.DATETIME:
        seconds = _number(run_id, path, variant, 7) % (365 * 86400)
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    raise ValueError(f"no test value for a {kind.value}")


def source_value_for(
    path: str,
    source_type: DataType | None,
    mapped_type: DataType | None,
    run_id: str,
    variant: str,
    *,
    prop: Property | None = None,
    normalizer: str | None = None,
) -> Any:
    """A value for a source property: typical of the source's own type, as real data is.

    A source that stores text for a typed mapping (an amount kept as a string) gets a
    value of the mapped type written as text, so that a correct mapping can pass; a
    source with a type of its own gets a value of that type, so that a lossy mapping
    (a decimal into an integer) is caught.
    """
    if source_type is None or source_type is DataType.REFERENCE:
        return value_for(path, mapped_type, run_id, variant, prop=prop, normalizer=normalizer)
    if source_type is DataType.STRING and mapped_type not in (None, DataType.STRING):
        value = value_for(path, mapped_type, run_id, variant, prop=prop, normalizer=normalizer)
        try:
            return coerce(value, DataType.STRING)
        except ConversionError:
            pass
    return value_for(path, source_type, run_id, variant, prop=prop, normalizer=normalizer)
