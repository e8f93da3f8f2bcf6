"""Pushed changes: the webhook receivers (``POST /hooks/SYSTEM``) and the PostgreSQL
listeners of ``samband serve``.

A system can push when its kind declares :class:`~samband.plugin.push.PushHooks` and,
for webhooks, its config names a ``webhook_secret`` credential.  A request is verified by
the kind (its signature over the raw body, compared in constant time), then checked here
for freshness and replay: an event seen before (same digest) within the window, or one
the system dates outside it, is refused.  What passes calls ``on_push(system, entity
types, keys, source)``, which schedules a run; polling stays the reconciliation.

A refused request gets 401 (signature) or 400 (anything else) with no reason; the
reason goes to the log and the ``samband_pushes_refused_total`` counter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from samband import redact
from samband.config import Config
from samband.config.env import resolve_all
from samband.errors import SambandError
from samband.plugin.push import PushedChange, PushHooks, Refused
from samband.plugin.registry import get_kind

log = logging.getLogger(__name__)

#: a pushed event older than this (by its own date), or seen before within it, is refused
WINDOW_SECONDS = 15 * 60.0
#: the clock of a pushing system may run this far ahead of ours
SKEW_SECONDS = 5 * 60.0
#: at most this many event digests are remembered (the oldest go first)
MAX_SEEN = 100_000
MAX_BODY = 256 * 1024
#: waits between reconnects of a lost listener: doubling from the first to the last
RECONNECT = (0.5, 30.0)

OnPush = Callable[[str, tuple[str, ...], tuple[str, ...], str], object]


class ReplayGuard:
    """The digests of accepted events, each kept for the window, at most ``limit``."""

    def __init__(self, window: float = WINDOW_SECONDS, limit: int = MAX_SEEN) -> None:
        self.window, self.limit = window, limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, digest: str, now: float) -> bool:
        """True (and remembered) when ``digest`` was not seen within the window."""
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if at > now - self.window and len(self._seen) < self.limit:
                    break
                del self._seen[oldest]
            if digest in self._seen:
                return False
            self._seen[digest] = now
            return True

    def forget(self, digest: str) -> None:
        """An event that was not acted on: its sender's retry is taken."""
        with self._lock:
            self._seen.pop(digest, None)


@dataclass(frozen=True)
class Receiver:
    system: str
    hooks: PushHooks
    secret: str


class PushMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "samband_pushes_received",
            "Pushed changes accepted, by system and source (webhook, listen).",
            ["system", "source"],
            registry=registry,
        )
        self.refused = Counter(
            "samband_pushes_refused",
            "Pushed requests refused, by system and reason.",
            ["system", "reason"],
            registry=registry,
        )
        self.reconnects = Counter(
            "samband_push_listener_reconnects",
            "Times a lost database listener connection was opened again, by system.",
            ["system"],
            registry=registry,
        )


def receivers(config: Config, environ: Mapping[str, str]) -> dict[str, Receiver]:
    """The systems that take webhooks: their kind receives, and a secret is configured."""
    found: dict[str, Receiver] = {}
    for system_id, system in config.systems.items():
        try:
            hooks = get_kind(system.kind).push_hooks()
        except KeyError:
            continue
        if hooks is None or hooks.receive is None:
            continue
        if hooks.secret_credential not in system.credentials:
            continue
        try:
            credentials = resolve_all(
                {hooks.secret_credential: system.credentials[hooks.secret_credential]},
                environ,
                system=system_id,
            )
        except SambandError as exc:
            log.warning("%s: webhooks are off: %s", system_id, exc)
            continue
        secret = credentials[hooks.secret_credential]
        redact.remember([secret])
        if secret:
            found[system_id] = Receiver(system_id, hooks, secret)
    return found


class Receivers:
    """The webhook endpoints of the systems that can push."""

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        on_push: OnPush,
        metrics: PushMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.by_system = receivers(config, environ)
        self.on_push = on_push
        self.metrics = metrics
        self.guard = ReplayGuard()
        self.clock = clock

    def routes(self) -> list[Route]:
        return [Route("/hooks/{system}", self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> Response:
        system = str(request.path_params["system"])
        receiver = self.by_system.get(system)
        if receiver is None:
            # no per-name label: the caller chooses the name
            self.metrics.refused.labels("", "unknown_system").inc()
            return Response(status_code=404)
        try:
            body = await _body(request)
        except _TooLarge:
            return self._refuse(system, Refused("too_large", f"more than {MAX_BODY} bytes"))
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            change = await run_in_threadpool(self.accept, receiver, body, request.headers)
        except Refused as refusal:
            return self._refuse(system, refusal)
        if change is None:
            log.info("%s: a validation request of the webhook was answered", system)
        return JSONResponse({"accepted": change is not None})

    def accept(
        self, receiver: Receiver, body: bytes, headers: Mapping[str, str]
    ) -> PushedChange | None:
        """Verify, check freshness and replay, and act; raises :class:`Refused`."""
        assert receiver.hooks.receive is not None
        change = receiver.hooks.receive(body, headers, receiver.secret)
        if change is None:
            return None
        now = self.clock()
        if change.occurred_at is not None and not (
            now - WINDOW_SECONDS <= change.occurred_at <= now + SKEW_SECONDS
        ):
            raise Refused("stale", f"the event is dated {change.occurred_at:.0f}, now {now:.0f}")
        if not self.guard.first_time(change.digest, now):
            raise Refused("replayed", "the same event was received before")
        try:
            self.on_push(receiver.system, change.entity_types, change.keys, "webhook")
        except Exception:
            self.guard.forget(change.digest)
            raise
        self.metrics.received.labels(receiver.system, "webhook").inc()
        return change

    def _refuse(self, system: str, refusal: Refused) -> Response:
        self.metrics.refused.labels(system, refusal.reason).inc()
        log.warning("%s: a pushed request was refused (%s): %s", system, refusal.reason, refusal)
        status = 401 if refusal.reason in ("unsigned", "bad_signature") else 400
        return Response(status_code=status)


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Listeners:
    """One thread per system whose kind listens (PostgreSQL ``LISTEN``), reconnecting
    with a doubling wait when the connection is lost; after a reconnect every listened
    type is reported changed, as notifications may have been missed meanwhile."""

    def __init__(
        self, config: Config, environ: Mapping[str, str], on_push: OnPush, metrics: PushMetrics
    ) -> None:
        self.config, self.environ = config, environ
        self.on_push, self.metrics = on_push, metrics
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connections: dict[str, int] = {}  # system → times it started listening
        self._connected = threading.Condition()

    def start(self, systems: list[str]) -> None:
        for system_id in systems:
            system = self.config.systems[system_id]
            try:
                hooks = get_kind(system.kind).push_hooks()
            except KeyError:
                continue
            if hooks is None or hooks.listen is None:
                continue
            thread = threading.Thread(
                target=self._run,
                args=(system_id, hooks),
                name=f"samband-listen:{system_id}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def wait_connected(self, system_id: str, times: int, timeout: float) -> bool:
        with self._connected:
            return self._connected.wait_for(
                lambda: self.connections.get(system_id, 0) >= times, timeout
            )

    def _run(self, system_id: str, hooks: PushHooks) -> None:
        assert hooks.listen is not None
        system = self.config.systems[system_id]
        types = list(system.entity_types)
        wait = RECONNECT[0]

        def on_change(entity_types: list[str]) -> None:
            self.metrics.received.labels(system_id, "listen").inc()
            self.on_push(system_id, tuple(entity_types), (), "listen")

        def connected() -> None:
            nonlocal wait
            wait = RECONNECT[0]
            with self._connected:
                again = self.connections.get(system_id, 0) > 0
                self.connections[system_id] = self.connections.get(system_id, 0) + 1
                self._connected.notify_all()
            if again:
                self.metrics.reconnects.labels(system_id).inc()
                log.info("%s: listening again; looking for changes made meanwhile", system_id)
                self.on_push(system_id, tuple(types), (), "listen")

        while not self._stop.is_set():
            try:
                hooks.listen(system_id, system, self.environ, on_change, self._stop, connected)
            except SambandError as exc:  # the config: no reconnect mends it; runs say it too
                log.warning("%s: not listening for changes: %s", system_id, exc)
                return
            except Exception as exc:  # any loss of the connection: reconnect
                log.warning(
                    "%s: the change listener lost its connection (%s); again in %.1f s",
                    system_id,
                    type(exc).__name__,
                    wait,
                )
                self._stop.wait(wait)
                wait = min(wait * 2, RECONNECT[1])
                continue
            return  # stopped, or nothing to listen to
