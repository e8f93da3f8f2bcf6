"""Pacing shared by every worker of a connection: a :class:`RateLimiter` whose slots come
from the cluster's quota database (:mod:`samband.quota`) instead of this process's memory."""

from __future__ import annotations

import time
from collections.abc import Callable

from samband.connectors._http import RateLimiter
from samband.quota.bucket import QuotaDatabase


class ClusterLimiter(RateLimiter):
    """``calls`` per ``period`` seconds for every process of the cluster, spaced evenly.

    Raises :class:`~samband.quota.QuotaUnavailable` when the database cannot be used and
    :class:`~samband.quota.QuotaSpent` when another worker learnt that the API's budget is
    spent for longer than ``max_wait``; the HTTP client turns both into errors that name
    the system.
    """

    def __init__(
        self,
        database: QuotaDatabase,
        key: str,
        calls: int,
        period: float,
        *,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(calls, period, sleep=sleep)
        self.database, self.key = database, key
        self.interval = period / max(calls, 1)
        self.max_wait = max_wait

    def acquire(self) -> None:
        while True:
            wait = self.database.acquire(self.key, self.interval, max_wait=self.max_wait)
            if wait <= 0:
                return
            self._sleep(wait)
            # a 429 seen by another worker while this one slept voids the slot it held
            if self.database.blocked_for(self.key) <= 0:
                return

    def penalise(self, seconds: float) -> None:
        """Every worker of this connection waits ``seconds`` (after a 429)."""
        self.database.penalise(self.key, seconds)
