"""What names a bucket and what goes wrong, without the database driver (imported only
when a quota database is configured)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import make_url

from samband.errors import SambandError

ENV = "SAMBAND_QUOTA_DATABASE"


class QuotaUnavailable(SambandError):
    """The quota database cannot be reached or used: calls stop rather than risk the quota."""


class QuotaSpent(SambandError):
    """The bucket is blocked for longer than the caller will wait (a daily budget spent)."""

    def __init__(self, key: str, seconds: float) -> None:
        self.key, self.seconds = key, seconds
        self.resume_at = datetime.now(UTC) + timedelta(seconds=seconds)
        super().__init__(
            f"the API quota shared by the workers is spent for {seconds:.0f} s more "
            f"(until {self.resume_at.isoformat(timespec='seconds')})"
        )


def connection_key(kind: str, *parts: str) -> str:
    """A bucket key for a connection: the kind and a digest of what identifies the API
    account (a subscription key, a client id and division), never the secret itself."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    return f"{kind}:{digest}"


def describe_url(url: str) -> str:
    """host:port/database of ``url``, without user or password."""
    try:
        parsed = make_url(url)
    except Exception:
        return "(an unreadable URL)"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.host or 'localhost'}{port}/{parsed.database or ''}"
