"""The service's state: the config, its scheduler, the metrics, and read access to the
store for the pages and the API."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from samband.config import Config
from samband.config.validate import load_valid
from samband.connectors import _observe
from samband.docs import render_documents
from samband.durations import parse_interval
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.errors import SambandError, StoreError
from samband.service.health import SystemHealth
from samband.service.live import LiveProgress
from samband.service.masking import mask_secrets
from samband.service.metrics import Metrics
from samband.service.notify import Event, Notifier
from samband.service.push import Listeners, PushMetrics, Receivers
from samband.service.scheduler import NOT_FAILED, RunOutcome, Scheduler
from samband.service.tenant_hooks import QueueDefer, TenantHooks
from samband.store._database import db_message
from samband.tenants import Registry

log = logging.getLogger(__name__)


def intervals(config: Config, every: float) -> dict[str, float]:
    """Seconds between the runs of each dataflow: its ``every``, else the service's."""
    return {
        flow.key: parse_interval(flow.every) if flow.every else every for flow in config.dataflows
    }


#: pushed changes start a run at most once in this many seconds (a steady stream of
#: webhooks would otherwise be one run after another, each spending API calls)
PUSH_GAP = 1.0


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
        environ: Mapping[str, str] | None = None,
        push_gap: float = PUSH_GAP,
        qa_report: str | Path | None = None,
        tenants_dir: str | Path | None = None,
        queue_url: str | None = None,
    ):
        self.config_path = Path(config_path)
        #: the tenants registry the tenants page lists (None: no page), and the queue whose
        #: runs and jobs it shows (see :mod:`samband.service.tenants`)
        self.tenants_dir = Path(tenants_dir) if tenants_dir is not None else None
        self.queue_url = queue_url
        #: where `samband qa` writes its report (its default: ``qa-report`` beside the config)
        self.qa_folder = (
            Path(qa_report) if qa_report is not None else self.config_path.parent / "qa-report"
        )
        self.notifier = notifier or Notifier()
        self._quarantined: int | None = None
        self._documents: dict[str, str] | None = None
        self.config: Config = load_valid(self.config_path).config
        self.store_url = store_url
        self._inspector: Inspector | None = None
        self._inspector_lock = threading.Lock()
        self._counts = _Counts()
        self.metrics = Metrics(self._store_gauges)
        self.systems = SystemHealth(lambda: self.read("systems"))
        # notified and not over yet: systems whose credentials are refused, the failure
        self._auth_failing: set[str] = set()
        self._failure_told: str | None = None
        self.live = LiveProgress()
        self.scheduler = Scheduler(
            self._engine,
            every,
            on_finished=self._finished,
            intervals=intervals(self.config, every),
            progress=self.live,
        )
        self.metrics.running.set_function(lambda: 1 if self.scheduler.state.running_since else 0)
        self.environ = os.environ if environ is None else environ
        self.push_metrics = PushMetrics(self.metrics.registry)
        self.receivers = Receivers(self.config, self.environ, self.pushed, self.push_metrics)
        self.listeners = Listeners(self.config, self.environ, self.pushed, self.push_metrics)
        #: with a registry and a queue: the tenants' webhooks queue their pushed runs
        self.tenant_hooks: TenantHooks | None = None
        if self.tenants_dir is not None and queue_url is not None:
            self.tenant_hooks = TenantHooks(
                Registry(self.tenants_dir),
                QueueDefer(queue_url),
                self.push_metrics,
                process_environ=self.environ,
            )
        self.pushes = 0  # pushed changes that asked for a run
        self.push_gap = push_gap
        self._push_lock = threading.Lock()
        self._last_push_run = float("-inf")
        self._push_timer: threading.Timer | None = None
        self._push_waiting: dict[str, str] = {}  # dataflow → why, for the delayed run

    def _engine(self) -> Engine:
        return Engine(self.config, store_url=self.store_url, environ=self.environ)

    def _finished(self, outcome: RunOutcome) -> None:
        self.live.finish(outcome.status, outcome.message)
        self.systems.run_finished()
        with self._inspector_lock:
            self._counts.forget()  # the run changed them
        self._store_gauges()  # count them again here, in the schedule's thread, not in a page
        self.metrics.observe(outcome, time.time())
        self._index_search()
        if self.notifier.enabled:
            for event in self._events(outcome):
                self.notifier.send(event)

    def _index_search(self) -> None:
        """The search terms of what the run wrote, a batch at a time: the pages are
        served between batches."""
        try:
            while self.read("index_search", 1) and not self.scheduler.stopping:
                pass
        except SambandError as exc:
            log.warning("the records search index was not brought up to date: %s", exc)

    def _events(self, outcome: RunOutcome) -> list[Event]:
        def event(kind: str, message: str) -> Event:
            return Event(kind, str(self.config_path), message, outcome.finished_at, outcome.report)

        events = self._auth_events(event)
        # a failure is told when it begins (or its reason changes), not at every run
        # that repeats it; an authentication failure is told by its own event
        failed = outcome.status not in NOT_FAILED
        if outcome.breaker or failed:
            kind = "breaker_tripped" if outcome.breaker else "run_failed"
            reason = outcome.message or (
                "the breaker tripped" if outcome.breaker else f"the run {outcome.status}"
            )
            if reason != self._failure_told and not (kind == "run_failed" and events):
                events.append(event(kind, reason))
            self._failure_told = reason
        elif outcome.status == "ok" and self._failure_told is not None:
            self._failure_told = None
            events.append(event("run_recovered", "a run succeeded again after failures"))
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

    def _auth_events(self, event: Callable[[str, str], Event]) -> list[Event]:
        """One event per system whose credentials became refused; told once, until a
        run reads the system again."""
        events: list[Event] = []
        try:
            systems = self.systems.rows()
        except SambandError:
            return events
        for row in systems:
            system = row["system"]
            if row["health"] == "authentication failed":
                if system not in self._auth_failing:
                    self._auth_failing.add(system)
                    events.append(event("auth_failed", row["message"] or f"{system} refused"))
            elif row["health"] != "unknown":
                self._auth_failing.discard(system)
        return events

    def start(self) -> None:
        _observe.listen(self.metrics)
        _observe.listen(self.systems)
        self.scheduler.start()
        self.listeners.start(self._systems_in_use())

    def stop(self, timeout: float | None = None) -> None:
        self.live.close()
        with self._push_lock:
            if self._push_timer is not None:
                self._push_timer.cancel()
        self.listeners.stop(timeout)
        self.scheduler.stop(timeout)
        _observe.stop_listening(self.metrics)
        _observe.stop_listening(self.systems)
        with self._inspector_lock:
            if self._inspector is not None:
                self._inspector.close()
                self._inspector = None

    def run_now(self, dataflows: list[str] | None = None, reason: str | None = None) -> None:
        """Run at once: every dataflow, or ``dataflows`` (keys; with the dataflows they
        depend on) — for a person's "run now", or code that knows what changed (a push).
        One run of the config at a time: asked during a run, it runs after it."""
        if dataflows is not None:
            self.dataflow_keys(dataflows)
        self.scheduler.run_now(dataflows, reason)

    def dataflow_keys(self, keys: list[str]) -> list[str]:
        """``keys``, each checked to be a dataflow of the config (ValueError if not)."""
        known = [flow.key for flow in self.config.dataflows]
        for key in keys:
            if key not in known:
                raise ValueError(f"there is no dataflow {key!r}; the dataflows: {', '.join(known)}")
        return keys

    # -- pushed changes ------------------------------------------------------------------
    def pushed(
        self,
        system: str,
        entity_types: tuple[str, ...] | list[str],
        keys: tuple[str, ...] | list[str] = (),
        source: str = "webhook",
    ) -> list[str]:
        """A system said records of ``entity_types`` changed (``keys``: which, when it
        says): the dataflows reading those types are run.  Returns their keys."""
        refs = {f"{system}.{entity_type}" for entity_type in entity_types}
        flows = [f.key for f in self.config.dataflows if f.source in refs or f.target in refs]
        if not flows:
            log.info("%s: a pushed change of %s concerns no dataflow", system, sorted(refs))
            return []
        if self.scheduler.state.failures_in_a_row:
            # the failing system is not asked again before its backoff is over
            log.info("%s: a pushed change waits for the next scheduled run", system)
            return flows
        self.pushes += 1
        self._gate(flows, f"{source} from {system}: {', '.join(sorted(refs))}")
        return flows

    def _gate(self, flows: list[str], reason: str) -> None:
        """At once, unless a pushed run started less than :attr:`push_gap` ago: then once
        the gap is over, for everything pushed meanwhile."""
        with self._push_lock:
            for flow in flows:
                self._push_waiting.setdefault(flow, reason)
            if self._push_timer is not None:
                return  # the delayed run takes this one too
            wait = self._last_push_run + self.push_gap - time.monotonic()
            if wait > 0:
                self._push_timer = threading.Timer(wait, self._gate_open)
                self._push_timer.daemon = True
                self._push_timer.start()
                return
        self._gate_open()

    def _gate_open(self) -> None:
        with self._push_lock:
            self._push_timer = None
            waiting, self._push_waiting = self._push_waiting, {}
            self._last_push_run = time.monotonic()
        if waiting:
            self._request_run(list(waiting), "; ".join(sorted(set(waiting.values()))))

    def _request_run(self, dataflows: list[str], reason: str) -> None:
        """Where a pushed change asks for a run.  The scheduler coalesces requests: any
        number of them before a run starts is one run, and those that arrive during a run
        are one more run after it (which reads what the run in progress may have missed)."""
        log.debug("run requested for %s: %s", dataflows, reason)
        self.run_now(dataflows, reason)

    def subscribe(self, public_url: str) -> list[str]:
        """Ask every system that takes webhooks (and can subscribe) to send its changes to
        ``public_url/hooks/SYSTEM``; the receiver must already be reachable there."""
        done: list[str] = []
        in_use = self._types_in_use()
        with Engine(self.config, store_url=self.store_url, environ=self.environ) as engine:
            for system_id, receiver in self.receivers.by_system.items():
                if receiver.hooks.subscribe is None or system_id not in in_use:
                    continue
                callback = f"{public_url.rstrip('/')}/hooks/{system_id}"
                done += receiver.hooks.subscribe(
                    engine.connector(system_id), callback, sorted(in_use[system_id])
                )
        return done

    def _types_in_use(self) -> dict[str, set[str]]:
        types: dict[str, set[str]] = {}
        for flow in self.config.dataflows:
            for ref in (flow.source, flow.target):
                system, _, entity_type = ref.partition(".")
                types.setdefault(system, set()).add(entity_type)
        return types

    def _systems_in_use(self) -> list[str]:
        return list(self._types_in_use())

    def read(self, what: str, *args: Any) -> Any:
        """``Inspector.<what>(*args)`` on the service's own store connection; one reader at
        a time (the pages and the API are served from a thread pool)."""
        with self._inspector_lock, self._store_answers():
            inspector = self._opened()
            # each read ends its transaction: a PostgreSQL connection left idle in one
            # holds back vacuum for as long as the service runs
            with inspector.store.tx():
                if what == "status":
                    return inspector.status(self._counts.get(inspector))
                if what == "dataflow":  # its links as the overview counts them
                    key, *rest = args
                    runs = rest[0] if rest else 60
                    links = self._counts.get(inspector)["links"].get(key)
                    return inspector.dataflow(key, runs, links)
                return getattr(inspector, what)(*args)

    def act(self, actor: str | None, what: str, *args: Any) -> Any:
        """An action of the Inspector (retry, dismiss, resolve, …) recorded as ``actor``'s."""
        with self._inspector_lock, self._store_answers():
            inspector = self._opened()
            inspector.actor = actor
            try:
                return getattr(inspector, what)(*args)
            finally:
                inspector.actor = None
                self._counts.forget()

    @contextlib.contextmanager
    def _store_answers(self) -> Iterator[None]:
        """A store that fails mid-way (locked by another program, its server gone) is a
        :class:`StoreError` the pages show; the connection is opened afresh next time
        (call with the lock held)."""
        try:
            yield
        except SQLAlchemyError as exc:
            inspector, self._inspector = self._inspector, None
            if inspector is not None:
                with contextlib.suppress(Exception):
                    inspector.close()
            raise StoreError(f"the store did not answer ({db_message(exc)}); try again") from None

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

    def qa_reports(self) -> list[dict[str, Any]]:
        """The latest `samband qa` report: one HTML page per document (``qa-*.html`` in
        :attr:`qa_folder`), newest first, each with when it was written."""
        if not self.qa_folder.is_dir():
            return []
        pages = [path for path in self.qa_folder.glob("qa-*.html") if path.is_file()]
        pages.sort(key=lambda path: path.stat().st_mtime, reverse=True)
        return [
            {
                "name": path.name,
                "written": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(
                    timespec="seconds"
                ),
            }
            for path in pages
        ]

    def qa_report(self, name: str) -> str | None:
        """The HTML of one page of the QA report, or None: only a name the folder lists
        (no path from outside is ever opened)."""
        if name not in {row["name"] for row in self.qa_reports()}:
            return None
        return (self.qa_folder / name).read_text(encoding="utf-8")

    def tenants(self) -> dict[str, Any]:
        """Every tenant of the registry served (``tenants_dir``): its interval, whether its
        config validates and, with ``queue_url``, its latest runs and queued jobs."""
        from samband.engine.actions import NoSuch
        from samband.service.tenants import tenants_overview

        if self.tenants_dir is None:
            raise NoSuch(
                "no tenants registry is served: start `samband serve --tenants-dir DIR` "
                "(and --queue URL for the tenants' runs)"
            )
        return tenants_overview(self.tenants_dir, self.queue_url)

    def config_text(self) -> str:
        """The config file as written, with any literal secret masked."""
        literals = [
            str(value)
            for system in self.config.systems.values()
            for value in system.credentials.values()
        ]
        return mask_secrets(self.config_path.read_text(encoding="utf-8"), literals)

    def health(self) -> tuple[bool, str]:
        """Ready: the store answers and the last run did not fail."""
        try:
            self.read("ping")
        except SambandError as exc:
            return False, f"the store does not answer: {exc}"
        last = self.scheduler.state.last
        if last is not None and last.status not in NOT_FAILED:
            return False, f"the last run {last.status}: {last.message or 'see samband status'}"
        return True, "ok"

    def failed_last(self, dataflow: str) -> bool:
        """Whether the last run this process made of ``dataflow`` failed."""
        for outcome in self.scheduler.state.history:
            ran = (outcome.report or {}).get("ran")
            if ran is not None and dataflow not in ran:
                continue
            if ran is None and outcome.dataflows is not None and dataflow not in outcome.dataflows:
                continue
            return outcome.status not in NOT_FAILED
        return False

    def overview(self) -> dict[str, Any]:
        state = self.scheduler.state
        status: dict[str, Any] = self.read("status")
        links = {row["dataflow"]: row["links"] for row in status.get("links", [])}
        controls = {row["dataflow"]: row for row in self.read("controls")}
        queued = {row["type"] for row in status.get("queued", []) if row.get("records")}
        systems = self.systems.rows()
        return {
            "systems": systems,
            "attention": [row for row in systems if row["attention"]],
            "dataflows": [
                {
                    "key": flow.key,
                    "source": flow.source,
                    "target": flow.target,
                    "links": links.get(flow.key, 0),
                    "controls": _controls_text(controls[flow.key]) if flow.key in controls else "",
                    "state": dataflow_state(
                        controls.get(flow.key),
                        {flow.source, flow.target} & queued,
                        self.failed_last(flow.key),
                    ),
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


def dataflow_state(control: dict[str, Any] | None, queued: set[str], failed_last: bool) -> str:
    """paused, failing (records quarantined, or the last run of it failed), pending
    (records queued or held for it), or in sync."""
    control = control or {}
    if control.get("paused"):
        return "paused"
    if control.get("quarantined") or failed_last:
        return "failing"
    if control.get("held") or control.get("missed") or queued:
        return "pending"
    return "in sync"


def _controls_text(row: dict[str, Any]) -> str:
    """A dataflow's controls that differ from the defaults, in a few words."""
    words = []
    if row["paused"]:
        words.append("paused")
    for side in ("source", "target"):
        if not row[f"write_{side}"]:
            words.append(f"writes to {side} held")
    if not row["full_sync"]:
        words.append("only new records")
    return ", ".join(words)


class _Counts:
    """The counts of the overview, /metrics and /api/status (links per dataflow,
    conflicts, quarantined records), kept between changes of the store.  Counting a
    million links takes a pass over an index; the store's change mark (a few index
    lookups) says when to count again, at most every :attr:`FRESH` seconds while it
    keeps changing (a run in progress).  Call with the service's inspector lock held."""

    FRESH = 5.0

    def __init__(self) -> None:
        self._mark: tuple[Any, ...] | None = None
        self._counts: dict[str, Any] | None = None
        self._at = 0.0

    def get(self, inspector: Inspector) -> dict[str, Any]:
        mark = inspector.change_mark()
        if self._counts is None or (
            mark != self._mark and time.monotonic() - self._at >= self.FRESH
        ):
            self._counts = inspector.counts()
            self._mark, self._at = mark, time.monotonic()
        return self._counts

    def forget(self) -> None:
        """An action of this service changed the store: count again at the next read."""
        self._counts = None
