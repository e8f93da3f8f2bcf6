"""Exact Online's limits: pacing from the rate-limit headers, and the 4xx breaker.

Exact allows an app 60 calls a minute and 5 000 a day per division, and says how much
is left in every answer (``X-RateLimit-Minutely-Remaining/-Reset``,
``X-RateLimit-Remaining/-Reset``; resets are epoch milliseconds).  :class:`ExactPacer`
spreads the calls that remain evenly over the time to the minutely reset, so a normal
run never receives a 429, and raises :class:`~samband.errors.QuotaExhausted` (with the
time the budget comes back) when the daily budget is spent.  With a cluster quota database
(``SAMBAND_QUOTA_DATABASE``) its ``cluster`` limiter also spaces the calls of every worker
of the app and division, and what one worker learns from a 429 or a spent daily budget
holds every other back.

Exact also blocks an app for an hour after more than 10 refused requests (400, 401, 403,
404) on one endpoint within an hour.  :class:`ErrorBreaker` stops calling an endpoint a
little before that and says why.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from samband.connectors._http import RateLimiter
from samband.errors import ConnectorError, QuotaExhausted


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class ExactPacer(RateLimiter):
    """A :class:`RateLimiter` driven by what Exact says is left (``clock`` in epoch seconds).

    ``margin`` is added to every wait for a reset, so a client clock slightly ahead of
    Exact's (the resets are Exact's epoch time) does not call before the window is over.
    """

    def __init__(
        self,
        system_id: str,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        margin: float = 0.5,
    ) -> None:
        super().__init__(1, 1.0, clock=clock, sleep=sleep)
        self.system_id = system_id
        self.margin = margin
        self.minute_remaining: int | None = None
        self.minute_reset = 0.0
        self.day_remaining: int | None = None
        self.day_reset = 0.0
        self.last_call = 0.0
        self.waited = 0.0
        self.cluster: RateLimiter | None = None
        self._state = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._state:
                now = self._clock()
                if self.day_remaining is not None and now >= self.day_reset:
                    self.day_remaining = None
                if self.day_remaining is not None and self.day_remaining <= 0:
                    raise self._spent(now)
                if self.minute_remaining is not None and now >= self.minute_reset:
                    self.minute_remaining = None  # a new window: the full budget
                wait = 0.0
                if self.minute_remaining is not None:
                    if self.minute_remaining <= 0:
                        wait = self.minute_reset - now + self.margin
                    else:
                        gap = (self.minute_reset - self.last_call) / self.minute_remaining
                        wait = self.last_call + gap - now
                if wait <= 0:
                    self.last_call = now
                    if self.minute_remaining is not None:
                        self.minute_remaining -= 1
                    if self.day_remaining is not None:
                        self.day_remaining -= 1
                    break
                self.waited += wait
            self._sleep(wait)
        if self.cluster is not None:
            self.cluster.acquire()

    def penalise(self, seconds: float) -> None:
        """This process already knows the reset from the 429's headers (:meth:`observe`);
        the other workers learn it through the cluster's limiter."""
        if self.cluster is not None:
            self.cluster.penalise(seconds)

    def _spent(self, now: float) -> QuotaExhausted:
        """The daily budget is spent: every worker waits for its reset (called holding
        ``_state``)."""
        if self.cluster is not None and self.day_reset > now:
            self.cluster.penalise(self.day_reset - now + self.margin)
        return self.quota_exhausted()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the remaining budget and resets from an answer's headers."""
        minute_left = _header_float(headers, "X-RateLimit-Minutely-Remaining")
        minute_reset = _header_float(headers, "X-RateLimit-Minutely-Reset")
        day_left = _header_float(headers, "X-RateLimit-Remaining")
        day_reset = _header_float(headers, "X-RateLimit-Reset")
        with self._state:
            if minute_left is not None and minute_reset is not None:
                self.minute_remaining = int(minute_left)
                self.minute_reset = minute_reset / 1000.0
            if day_left is not None and day_reset is not None:
                self.day_remaining = int(day_left)
                self.day_reset = day_reset / 1000.0

    def retry_after(self, headers: Mapping[str, str]) -> float:
        """Seconds to wait after a 429, from its headers; QuotaExhausted for the daily limit."""
        self.observe(headers)
        with self._state:
            now = self._clock()
            if (
                self.day_remaining is not None
                and self.day_remaining <= 0
                and (now < self.day_reset)
            ):
                raise self._spent(now)
            if self.minute_remaining is not None and self.minute_reset > now:
                return self.minute_reset - now + self.margin
        return 1.0

    def quota_exhausted(self) -> QuotaExhausted:
        resume = datetime.fromtimestamp(self.day_reset, UTC)
        return QuotaExhausted(
            self.system_id,
            "the daily Exact Online API budget of this app and division is spent",
            resume,
        )


class ErrorBreaker:
    """Counts refused requests per endpoint over the last hour; refuses to go on at ``limit``."""

    def __init__(
        self, system_id: str, *, clock: Callable[[], float], limit: int = 8, window: float = 3600
    ) -> None:
        self.system_id = system_id
        self.clock = clock
        self.limit, self.window = limit, window
        self._errors: dict[str, deque[tuple[float, str]]] = {}
        self._lock = threading.Lock()

    def _recent(self, endpoint: str) -> deque[tuple[float, str]]:
        errors = self._errors.setdefault(endpoint, deque())
        horizon = self.clock() - self.window
        while errors and errors[0][0] < horizon:
            errors.popleft()
        return errors

    def check(self, endpoint: str) -> None:
        with self._lock:
            errors = self._recent(endpoint)
            if len(errors) >= self.limit:
                until = datetime.fromtimestamp(errors[0][0] + self.window, UTC)
                raise ConnectorError(
                    self.system_id,
                    f"stopped calling {endpoint}: {len(errors)} requests were refused in the "
                    f"last hour (Exact Online blocks an app after 10 an hour); the last: "
                    f"{errors[-1][1]}",
                    f"fix the cause (see the quarantined records), then run again after "
                    f"{until.isoformat(timespec='minutes')}",
                )

    def record(self, endpoint: str, reason: str) -> None:
        with self._lock:
            self._recent(endpoint).append((self.clock(), reason))

    def count(self, endpoint: str) -> int:
        with self._lock:
            return len(self._recent(endpoint))
