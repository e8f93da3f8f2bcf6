"""Exact Online date values: ``/Date(ms)/`` on the wire, the vendor's clock is CET.

Exact stores date-times as the wall-clock time of the Netherlands (CET/CEST) and sends
them as ``/Date(ms)/`` where ``ms`` counts milliseconds as if that wall-clock time were
UTC.  ``2024-01-15 10:00`` Amsterdam time (09:00 UTC) arrives as
``/Date(1705312800000)/`` (10:00 "UTC").  Samband therefore decodes the number to a
naive wall-clock time, attaches Europe/Amsterdam, and hands the engine an ISO string with
the real offset (``2024-01-15T10:00:00+01:00``): as a ``datetime`` that is the right
instant, as a ``date`` it keeps its own calendar day.  Writes go the other way: an
instant is sent as Amsterdam wall-clock time without offset, a date as ``YYYY-MM-DD``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

VENDOR_TZ = ZoneInfo("Europe/Amsterdam")
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1)


def parse_ms_date(text: str) -> datetime | None:
    """``/Date(ms)/`` → aware datetime in the vendor's zone (None if not that format)."""
    match = _MS_DATE.match(text.strip())
    if not match:
        return None
    wall = _EPOCH + timedelta(milliseconds=int(match.group(1)))
    return wall.replace(tzinfo=VENDOR_TZ)


def format_ms_date(value: datetime) -> str:
    """Aware (or vendor-local naive) datetime → ``/Date(ms)/`` of its vendor wall-clock time."""
    wall = value.astimezone(VENDOR_TZ).replace(tzinfo=None) if value.tzinfo else value
    millis = (wall - _EPOCH) // timedelta(milliseconds=1)
    return f"/Date({millis})/"


def wire_to_iso(value: str) -> str:
    """A ``/Date(ms)/`` string → ISO 8601 with the vendor's offset; other text unchanged."""
    parsed = parse_ms_date(value)
    return parsed.isoformat() if parsed is not None else value


def to_vendor_wall(value: datetime | date) -> str:
    """A canonical value → what Exact expects in a body: local wall-clock time, no offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(VENDOR_TZ).replace(tzinfo=None).isoformat(timespec="seconds")
    return value.isoformat()


def parse_vendor_text(text: str) -> datetime:
    """A date-time a client sent (``/Date(ms)/``, ISO with or without offset) → aware
    datetime; text without an offset is vendor wall-clock time."""
    parsed = parse_ms_date(text)
    if parsed is not None:
        return parsed
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=VENDOR_TZ)
    return value
