"""Exact Online's date-times as the server writes and reads them.

Exact keeps the wall-clock time of the Netherlands and writes it as ``/Date(ms)/``, the
milliseconds counted as if that wall-clock time were UTC.  Clients send that form or ISO
8601; ISO text without an offset is Dutch wall-clock time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_wire(moment: datetime) -> str:
    """A stored date-time → ``/Date(ms)/`` of its Dutch wall-clock time."""
    local = moment.astimezone(AMSTERDAM) if moment.tzinfo else moment.replace(tzinfo=AMSTERDAM)
    since_epoch = local.replace(tzinfo=UTC) - _EPOCH
    return f"/Date({since_epoch // timedelta(milliseconds=1)})/"


def from_client(text: str) -> datetime:
    """What a client sent (``/Date(ms)/`` or ISO 8601) → an aware datetime."""
    text = text.strip()
    if text.startswith("/Date(") and text.endswith(")/"):
        digits = text[len("/Date(") : -len(")/")]
        sign = "-" if digits.startswith("-") else ""
        digits = digits.lstrip("-")
        for cut in ("+", "-"):
            digits = digits.split(cut, 1)[0]
        if not digits.isdigit():
            raise ValueError(f"{text!r} is not a /Date(ms)/ value")
        wall = _EPOCH + timedelta(milliseconds=int(sign + digits))
        return wall.replace(tzinfo=AMSTERDAM)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=AMSTERDAM)
