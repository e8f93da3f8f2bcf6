"""The service's scheduler: one run of the config at a time, each dataflow on its own
interval (``every`` in the config, else the service's), or at once on request (all
dataflows, or some: :meth:`Scheduler.run_now`); a stop request ends the run in progress at
its next step.  When every dataflow is due, one run runs them all; else one run runs the
ones due (``Engine.sync(dataflows=...)``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from samband import redact
from samband.engine.run import Engine, Progress, RunReport
from samband.errors import CircuitBreakerTripped, SambandError
from samband.store.rows import now_iso

log = logging.getLogger(__name__)
MAX_BACKOFF = 30 * 60.0
#: the statuses of a run that did not fail (the others are told, logged as errors, backed off)
NOT_FAILED = ("ok", "stopped", "paused", "yielded", "dry-run", "collected")


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
    dataflows: list[str] | None = None  # the dataflows asked for (None: all)
    reason: str | None = None  # why it ran: "schedule", "run now", a push, ...


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
        intervals: dict[str, float] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self._factory = engine_factory
        self._progress = progress
        self.every = every
        #: seconds between runs of each dataflow (the config's keys, in order)
        self.intervals: dict[str, float] = dict(intervals or {})
        self._due: dict[str, float] = {}  # dataflow → when it is due (time.time())
        # runs asked for and not begun: the dataflows (None: all) and why
        self._asked: set[str] | None = set()
        self._reasons: list[str] = []
        self._asking = threading.Lock()
        #: held by a run, and by anything else that must not overlap one (a preview)
        self.run_lock = threading.Lock()
        self._on_finished = on_finished or (lambda outcome: None)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Condition()
        self.state = SchedulerState()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="samband-scheduler", daemon=True)
        self._thread.start()

    def run_now(self, dataflows: list[str] | None = None, reason: str | None = None) -> None:
        """Run at once: every dataflow, or ``dataflows`` (with those they depend on).  Asks
        made while a run is in progress are merged into the next run."""
        with self._asking:
            if dataflows is None:
                self._asked = None
            elif self._asked is not None:
                self._asked.update(dataflows)
            self._reasons.append(reason or "run now")
        self._wake.set()

    def due_at(self, dataflow: str) -> float | None:
        """When ``dataflow`` runs next (time.time()); None before the first run."""
        return self._due.get(dataflow)

    @property
    def requested(self) -> bool:
        """A run was asked for and has not started yet."""
        return self._wake.is_set()

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
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return self._thread is None or not self._thread.is_alive()

    def _loop(self) -> None:
        engine: Engine | None = None
        try:
            while not self._stop.is_set():
                self._wake.clear()
                chosen = self._take_due()
                if chosen is not None:
                    if engine is None:
                        engine = self._open(self._factory)
                    if engine is not None:
                        self._run(engine, *chosen)
                    self._schedule(None if engine is None else chosen[0])
                wait = self._until_due()
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

    def _take_due(self) -> tuple[list[str] | None, str] | None:
        """The dataflows to run now (None: all) and why; None: none is due."""
        now = time.time()
        with self._asking:
            asked, self._asked = self._asked, set()
            reasons, self._reasons = self._reasons, []
        keys = list(self.intervals)
        due = [key for key in keys if self._due.get(key, 0.0) <= now]
        if asked is None or (keys and len(due) == len(keys)) or (not keys and not self._due):
            return None, ", ".join(dict.fromkeys(reasons)) or "schedule"
        if not keys and self._due.get("", 0.0) <= now:
            return None, ", ".join(dict.fromkeys(reasons)) or "schedule"
        chosen = [key for key in keys if key in asked or key in due]
        chosen += sorted(asked - set(keys))  # an unknown key: the run says so
        if not chosen:
            return None
        reason = ", ".join(dict.fromkeys(reasons)) if asked else "schedule"
        return chosen, reason

    def _schedule(self, ran: list[str] | None) -> None:
        """The next due time of the dataflows just run (after failures, later)."""
        now = time.time()
        factor = self._backoff()
        for key in self.intervals if ran is None else ran:
            if key in self.intervals:
                self._due[key] = now + self.intervals[key] * factor
        if not self.intervals:
            self._due[""] = now + self._next_wait()

    def _until_due(self) -> float:
        with self._asking:
            if self._asked is None or self._asked:
                return 0.0
        if not self._due:
            return self._next_wait()
        return max(0.0, min(self._due.values()) - time.time())

    def _backoff(self) -> float:
        failures = self.state.failures_in_a_row
        return self._next_wait() / self.every if failures else 1.0

    def _run(self, engine: Engine, dataflows: list[str] | None = None, reason: str = "") -> None:
        with self.run_lock:
            self._run_locked(engine, dataflows, reason)

    def _run_locked(self, engine: Engine, dataflows: list[str] | None, reason: str) -> None:
        started_at, started = now_iso(), time.monotonic()
        self.state.running_since = started_at
        log.info("run begun", extra={"fields": {"event": "run_begun", "started": started_at}})
        try:
            report: RunReport = engine.sync(
                should_stop=self._stop.is_set, progress=self._progress, dataflows=dataflows
            )
        except CircuitBreakerTripped as exc:
            self._finish(started_at, started, "failed", None, str(exc), True, dataflows, reason)
            return
        except SambandError as exc:
            self._finish(started_at, started, "failed", None, str(exc), False, dataflows, reason)
            return
        finally:
            self.state.running_since = None
        message = "; ".join(report.messages) or None
        self._finish(
            started_at, started, report.status, report.to_dict(), message, False, dataflows, reason
        )

    def _finish(
        self,
        started_at: str,
        started: float,
        status: str,
        report: dict[str, Any] | None,
        message: str | None,
        breaker: bool = False,
        dataflows: list[str] | None = None,
        reason: str | None = None,
    ) -> None:
        # what a page, the API, /readyz and a notification show: no credential in it
        outcome = RunOutcome(
            started_at,
            now_iso(),
            status,
            time.monotonic() - started,
            redact.scrub_tree(report) if report is not None else None,
            redact.scrub(message) if message is not None else None,
            breaker,
            dataflows,
            reason,
        )
        _log_finished(outcome)
        state = self.state
        state.last = outcome
        state.history = [outcome, *state.history[:49]]
        if status in NOT_FAILED:
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


def _log_finished(outcome: RunOutcome) -> None:
    report = outcome.report or {}
    fields = {
        "event": "run_finished",
        "status": outcome.status,
        "seconds": round(outcome.seconds, 3),
        "run": report.get("run_id"),
        **{key: report.get(key, 0) for key in ("created", "updated", "deleted", "conflicts")},
        "errors": report.get("errors", 0),
        "api_calls": report.get("api_calls", 0),
        "reason": outcome.message,
    }
    failed = outcome.status not in NOT_FAILED
    log.log(
        logging.ERROR if failed else logging.INFO,
        "run finished: %s%s",
        outcome.status,
        f": {outcome.message}" if outcome.message else "",
        extra={"fields": fields},
    )
