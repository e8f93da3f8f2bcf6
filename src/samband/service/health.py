"""The systems' health on the overview: what the store's latest runs say of each system
(:meth:`samband.engine.inspect.Inspector.systems`), plus what the service saw of their
API calls in its last run: a system whose calls were answered 429 is ``rate limited``
(slowed down, still working) even when the run went on.

Read once per finished run (the overview is rendered far more often than runs end)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

#: the states a person has to act on (a banner on the overview)
ATTENTION = ("authentication failed", "unreachable", "failing", "rate limited")


class SystemHealth:
    """A listener of the connectors' calls (see :mod:`samband.connectors._observe`)
    and the cache of the systems' health."""

    def __init__(self, read: Callable[[], list[dict[str, Any]]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._throttled: Counter[str] = Counter()  # 429 answers in the run in progress
        self._last_throttled: Counter[str] = Counter()  # … in the last run
        self._rows: list[dict[str, Any]] | None = None

    def answered(self, system: str, status: int | None, seconds: float) -> None:
        if status == 429:
            with self._lock:
                self._throttled[system] += 1

    def waited(self, system: str, seconds: float, reason: str) -> None:
        pass

    def run_finished(self) -> None:
        with self._lock:
            self._last_throttled, self._throttled = self._throttled, Counter()
            self._rows = None

    def rows(self) -> list[dict[str, Any]]:
        """Each system: ``health``, ``message``, ``last_read`` and ``attention``."""
        with self._lock:
            rows = self._rows
            throttled = dict(self._last_throttled)
        if rows is None:
            rows = self._read()
            with self._lock:
                self._rows = rows
        result = []
        for row in rows:
            row = dict(row)
            answers = throttled.get(row["system"], 0)
            if row["health"] == "connected" and answers:
                row["health"] = "rate limited"
                row["message"] = (
                    f"{answers} call(s) answered 429 in the last run and were retried "
                    "after the wait the system asked for"
                )
                row["attention"] = False  # slowed down, not stopped
            else:
                row["attention"] = row["health"] in ATTENTION
            result.append(row)
        return result
