"""Outgoing webhooks of the sandboxes: a sandbox hands a request to :class:`Deliverer`,
which POSTs it from a background thread (as the vendor's platform does, after the change
is committed), one at a time in order, and remembers the last outcomes."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)
TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class Deliverer:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        #: (url, status or error text) of the latest deliveries, newest last
        self.outcomes: deque[tuple[str, int | str]] = deque(maxlen=1000)
        self.sent = 0

    def send(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"{self.name}-webhooks", daemon=True
                )
                self._thread.start()
        self._queue.put(delivery)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued delivery was attempted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while True:
                delivery = self._queue.get()
                if delivery is None:
                    return
                outcome: int | str
                try:
                    answer = client.post(
                        delivery.url, content=delivery.body, headers=dict(delivery.headers)
                    )
                    outcome = answer.status_code
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                    log.info("%s: the webhook to %s failed: %s", self.name, delivery.url, exc)
                with self._idle:
                    self.outcomes.append((delivery.url, outcome))
                    self.sent += 1
                    self._pending -= 1
                    self._idle.notify_all()
