"""The service's scheduler: one run of the config at a time, on an interval, or at once on
request; a stop request ends the run in progress at its next step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from samband.engine.run import Engine, RunReport
from samband.errors import CircuitBreakerTripped, SambandError
from samband.store.rows import now_iso

MAX_BACKOFF = 30 * 60.0


@dataclass
class RunOutcome:
    """What the service remembers of a finished run (the store keeps the full record)."""

    started_at: str
    finished_at: str
    status: str
    seconds: float
    report: dict[str, Any] | None = None
    message: str | None = None
    breaker: bool = False  # stopped by the circuit breaker


@dataclass
class SchedulerState:
    running_since: str | None = None
    next_run_at: float | None = None
    last: RunOutcome | None = None
    last_ok_at: float | None = None
    failures_in_a_row: int = 0
    runs: int = 0
    history: list[RunOutcome] = field(default_factory=list)


class Scheduler:
    """Runs ``engine.sync()`` every ``every`` seconds in a thread of its own; after failed
    runs the wait doubles, up to :data:`MAX_BACKOFF`, so an unreachable system is not
    hammered."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        every: float,
        on_finished: Callable[[RunOutcome], None] | None = None,
    ) -> None:
        self._factory = engine_factory
        self.every = every
        self._on_finished = on_finished or (lambda outcome: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Condition()
        self.state = SchedulerState()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="samband-scheduler", daemon=True)
        self._thread.start()

    def run_now(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_runs(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` runs have finished since the start; False on timeout."""
        with self._finished:
            return self._finished.wait_for(lambda: self.state.runs >= count, timeout)

    @property
    def stopped(self) -> bool:
        return self._thread is None or not self._thread.is_alive()

    def _loop(self) -> None:
        engine: Engine | None = None
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if engine is None:
                    engine = self._open(self._factory)
                if engine is not None:
                    self._run(engine)
                wait = self._next_wait()
                self.state.next_run_at = time.time() + wait
                self._wake.wait(wait)
        finally:
            if engine is not None:
                engine.close()

    def _open(self, factory: Callable[[], Engine]) -> Engine | None:
        try:
            return factory()
        except SambandError as exc:
            self._finish(now_iso(), time.monotonic(), "failed", None, str(exc))
            return None

    def _run(self, engine: Engine) -> None:
        started_at, started = now_iso(), time.monotonic()
        self.state.running_since = started_at
        try:
            report: RunReport = engine.sync(should_stop=self._stop.is_set)
        except CircuitBreakerTripped as exc:
            self._finish(started_at, started, "failed", None, str(exc), breaker=True)
            return
        except SambandError as exc:
            self._finish(started_at, started, "failed", None, str(exc))
            return
        finally:
            self.state.running_since = None
        message = "; ".join(report.messages) or None
        self._finish(started_at, started, report.status, report.to_dict(), message)

    def _finish(
        self,
        started_at: str,
        started: float,
        status: str,
        report: dict[str, Any] | None,
        message: str | None,
        *,
        breaker: bool = False,
    ) -> None:
        outcome = RunOutcome(
            started_at, now_iso(), status, time.monotonic() - started, report, message, breaker
        )
        state = self.state
        state.last = outcome
        state.history = [outcome, *state.history[:49]]
        if status in ("ok", "stopped", "paused", "yielded"):
            state.failures_in_a_row = 0
            if status == "ok":
                state.last_ok_at = time.time()
        else:
            state.failures_in_a_row += 1
        self._on_finished(outcome)
        with self._finished:
            state.runs += 1
            self._finished.notify_all()

    def _next_wait(self) -> float:
        failures = self.state.failures_in_a_row
        if not failures:
            return self.every
        return min(self.every * 2 ** min(failures, 16), max(MAX_BACKOFF, self.every))
