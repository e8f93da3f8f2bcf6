"""Who watches the API calls of the connectors: ``samband serve`` counts them for
``/metrics`` and the systems' health.  :class:`~samband.connectors._http.HttpClient`
tells each listener of every answer (or transport failure) and of every wait a rate
limit imposed.  With no listener (the CLI, the tests, the benchmarks) a call costs one
test of an empty tuple."""

from __future__ import annotations

from typing import Protocol


class Listener(Protocol):
    def answered(self, system: str, status: int | None, seconds: float) -> None:
        """One request of ``system`` answered ``status`` (None: no answer, a transport
        failure) after ``seconds``."""

    def waited(self, system: str, seconds: float, reason: str) -> None:
        """``system``'s calls waited ``seconds`` for a rate limit: ``reason`` is
        ``pacing`` (the client-side limiter) or ``429`` (the server said so)."""


listeners: tuple[Listener, ...] = ()


def listen(listener: Listener) -> None:
    global listeners
    listeners = (*listeners, listener)


def stop_listening(listener: Listener) -> None:
    global listeners
    listeners = tuple(known for known in listeners if known is not listener)
