"""The service's state: the config, its scheduler, the metrics, and read access to the
store for the pages and the API."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from samband.config import Config
from samband.config.validate import load_valid
from samband.docs import render_documents
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.errors import SambandError
from samband.service.masking import mask_secrets
from samband.service.metrics import Metrics
from samband.service.notify import Event, Notifier
from samband.service.scheduler import RunOutcome, Scheduler


class Service:
    """A config served: ``start()`` begins the schedule, ``stop()`` ends the run in progress
    at its next step and waits for it."""

    def __init__(
        self,
        config_path: str | Path,
        every: float,
        *,
        store_url: str | None = None,
        notifier: Notifier | None = None,
    ):
        self.config_path = Path(config_path)
        self.notifier = notifier or Notifier()
        self._quarantined: int | None = None
        self._documents: dict[str, str] | None = None
        self.config: Config = load_valid(self.config_path).config
        self.store_url = store_url
        self._inspector: Inspector | None = None
        self._inspector_lock = threading.Lock()
        self.metrics = Metrics(self._store_gauges)
        self.scheduler = Scheduler(self._engine, every, on_finished=self._finished)
        self.metrics.running.set_function(lambda: 1 if self.scheduler.state.running_since else 0)

    def _engine(self) -> Engine:
        return Engine(self.config, store_url=self.store_url)

    def _finished(self, outcome: RunOutcome) -> None:
        self.metrics.observe(outcome, time.time())
        if self.notifier.enabled:
            for event in self._events(outcome):
                self.notifier.send(event)

    def _events(self, outcome: RunOutcome) -> list[Event]:
        def event(kind: str, message: str) -> Event:
            return Event(kind, str(self.config_path), message, outcome.finished_at, outcome.report)

        events = []
        if outcome.breaker:
            events.append(event("breaker_tripped", outcome.message or "the breaker tripped"))
        elif outcome.status not in ("ok", "stopped", "paused", "yielded", "dry-run", "collected"):
            events.append(event("run_failed", outcome.message or f"the run {outcome.status}"))
        quarantined = self._store_gauges().get("quarantined")
        if quarantined is not None:
            before, self._quarantined = self._quarantined, quarantined
            if quarantined > (before or 0):
                new = quarantined - (before or 0)
                events.append(
                    event(
                        "records_quarantined",
                        f"{new} more record(s) in quarantine ({quarantined} in all): see "
                        "samband errors",
                    )
                )
        return events

    def start(self) -> None:
        self.scheduler.start()

    def stop(self, timeout: float | None = None) -> None:
        self.scheduler.stop(timeout)
        with self._inspector_lock:
            if self._inspector is not None:
                self._inspector.close()
                self._inspector = None

    def run_now(self) -> None:
        self.scheduler.run_now()

    def read(self, what: str, *args: Any) -> Any:
        """``Inspector.<what>(*args)`` on the service's own store connection; one reader at
        a time (the pages and the API are served from a thread pool)."""
        with self._inspector_lock:
            inspector = self._opened()
            # each read ends its transaction: a PostgreSQL connection left idle in one
            # holds back vacuum for as long as the service runs
            with inspector.store.tx():
                return getattr(inspector, what)(*args)

    def act(self, actor: str | None, what: str, *args: Any) -> Any:
        """An action of the Inspector (retry, dismiss, resolve, …) recorded as ``actor``'s."""
        with self._inspector_lock:
            inspector = self._opened()
            inspector.actor = actor
            try:
                return getattr(inspector, what)(*args)
            finally:
                inspector.actor = None

    def _opened(self) -> Inspector:
        """The service's inspector, opened at first use (call with the lock held)."""
        if self._inspector is None:
            self._inspector = Inspector(self.config, store_url=self.store_url)
        return self._inspector

    def _store_gauges(self) -> dict[str, Any]:
        try:
            status: dict[str, Any] = self.read("status")
        except SambandError:
            return {}
        return status

    def documents(self) -> dict[str, str]:
        """File name → HTML page of every dataflow document of the config (as `samband
        docs --format html` writes them), rendered once per process."""
        if self._documents is None:
            self._documents = render_documents(self.config, "html")
        return self._documents

    def config_text(self) -> str:
        """The config file as written, with any literal secret masked."""
        return mask_secrets(self.config_path.read_text(encoding="utf-8"))

    def health(self) -> tuple[bool, str]:
        """Ready: the store answers and the last run did not fail."""
        try:
            self.read("status")
        except SambandError as exc:
            return False, f"the store does not answer: {exc}"
        last = self.scheduler.state.last
        if last is not None and last.status not in ("ok", "stopped", "paused", "yielded"):
            return False, f"the last run {last.status}: {last.message or 'see samband status'}"
        return True, "ok"

    def overview(self) -> dict[str, Any]:
        state = self.scheduler.state
        status: dict[str, Any] = self.read("status")
        links = {row["dataflow"]: row["links"] for row in status.get("links", [])}
        return {
            "systems": [
                {"id": system_id, "kind": system.kind}
                for system_id, system in self.config.systems.items()
            ],
            "dataflows": [
                {
                    "key": flow.key,
                    "source": flow.source,
                    "target": flow.target,
                    "links": links.get(flow.key, 0),
                }
                for flow in self.config.dataflows
            ],
            "runs": status.get("runs", []),
            "quarantined": status.get("quarantined", 0),
            "conflicts": status.get("conflicts", 0),
            "running_since": state.running_since,
            "next_run_at": state.next_run_at,
            "last": state.last.__dict__ if state.last else None,
            "failures_in_a_row": state.failures_in_a_row,
        }
