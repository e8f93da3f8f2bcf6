"""The run in progress as the dashboard sees it: :class:`LiveProgress` is the engine's
:class:`~samband.engine.run.Progress` (phase, records done of a total) kept as a small
state that any number of readers poll, and :func:`event_stream` turns it into
server-sent events (``text/event-stream``) for ``/runs/live`` and ``/api/runs/live``.

The engine calls ``advance`` once per page or chunk, from the scheduler's thread; a
reader takes a copy under a lock.  Nothing is sent to a client between changes except a
comment line every :data:`KEEPALIVE` seconds (proxies close silent connections)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

POLL = 0.25  # how often a stream looks for a change (seconds)
KEEPALIVE = 15.0
RETRY_MS = 3000  # how soon a browser reconnects after the stream ends
MAX_STREAM = 30 * 60.0  # a stream ends after this long; the browser reconnects


class LiveProgress:
    """The progress of the run in progress (or ``idle``), safe to read from any thread."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.streams = 0  # the event streams open now (changed on the event loop only)
        self._version = 0
        self._state: dict[str, Any] = {"state": "idle"}
        self._last_run: dict[str, Any] | None = None
        self._phase_start = 0.0
        self._done = 0
        self._total: int | None = None

    # -- written by the scheduler and the engine --------------------------------------
    def begin(self) -> None:
        now = self._clock()
        with self._lock:
            self._state = {"state": "running", "started": now, "phase": "starting"}
            self._phase_start, self._done, self._total = now, 0, None
            self._version += 1

    def phase(self, name: str, total: int | None = None) -> None:
        if self._state["state"] != "running":
            self.begin()
        with self._lock:
            self._phase_start, self._done, self._total = self._clock(), 0, total
            self._state = {**self._state, "phase": name}
            self._version += 1

    def advance(self, count: int = 1) -> None:
        with self._lock:
            if self._total is not None:
                # a record synced again in a later round is not more work done
                count = max(min(count, self._total - self._done), 0)
            self._done += count
            self._version += 1

    def done(self) -> None:
        """The engine's end of a run (its counts follow in :meth:`finish`)."""

    def finish(self, status: str, message: str | None = None) -> None:
        with self._lock:
            self._last_run = {"status": status, "message": message, "at": self._clock()}
            self._state = {"state": "idle"}
            self._version += 1

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- read by the streams and pages ------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> dict[str, Any]:
        """What a reader sees: state, phase, records done (of a total, when known), the
        rate in records per second and the seconds left (when a total is known)."""
        with self._lock:
            state = dict(self._state)
            if state["state"] == "running":
                elapsed = max(self._clock() - self._phase_start, 1e-9)
                rate = self._done / elapsed if self._done else 0.0
                state.update(done=self._done, total=self._total, rate=round(rate, 1))
                state["seconds_left"] = (
                    round((self._total - self._done) / rate, 1)
                    if self._total is not None and rate > 0
                    else None
                )
                state["elapsed"] = round(self._clock() - state["started"], 1)
            state["last_run"] = self._last_run
            state["version"] = self._version
            return state


def event(data: dict[str, Any], name: str = "progress") -> bytes:
    """One server-sent event: its name and its data as one JSON line."""
    return f"event: {name}\ndata: {json.dumps(data, sort_keys=True)}\n\n".encode()


async def event_stream(
    live: LiveProgress,
    *,
    poll: float = POLL,
    keepalive: float = KEEPALIVE,
    max_seconds: float = MAX_STREAM,
) -> AsyncIterator[bytes]:
    """The events of one client: the state at once, then each change, until the server
    stops or ``max_seconds`` pass (the browser then reconnects).  A client that goes
    away ends its stream at once: Starlette cancels it on the disconnect."""
    live.streams += 1
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        seen = -1
        started = quiet_since = time.monotonic()
        while True:
            version = live.version
            if version != seen:
                seen = version
                quiet_since = time.monotonic()
                yield event(live.snapshot())
            elif time.monotonic() - quiet_since >= keepalive:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            if live.closed or time.monotonic() - started >= max_seconds:
                return
            await asyncio.sleep(poll)
    finally:
        live.streams -= 1
