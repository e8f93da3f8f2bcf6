"""The webhooks of a registry's tenants: ``POST /tenants/NAME/hooks/SYSTEM``.

A tenant's system pushes as a single config's does (:mod:`samband.service.push`): its kind
verifies the request with the tenant's own ``webhook_secret`` (from the tenant's
environment, ``.env`` or keyring service), then freshness and replay are checked.  What
passes queues a targeted run of the tenant's dataflows that read or write the pushed
types, which any ``samband worker`` takes; while one such run waits, another push of the
same dataflows adds nothing to the queue.  When the queue cannot take the job, the caller
is answered 503 and the event is not remembered, so the system's retry is taken.

A tenant's receivers are made from its config when its first request comes, and made
again when its ``samband.yaml`` or ``.env`` changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyio import from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from samband.config import Config
from samband.config.validate import load_valid
from samband.errors import SambandError
from samband.service.push import PushMetrics, Receivers
from samband.tenants import Registry

if TYPE_CHECKING:
    from procrastinate import App

log = logging.getLogger(__name__)

#: queues a targeted run: (tenant, dataflow keys) → whether a new job was queued
Defer = Callable[[str, list[str]], Coroutine[Any, Any, bool]]


class QueueDefer:
    """Queues tenants' pushed runs on the queue at ``url``; the connection is opened at
    the first push (a queue down when the service starts delays nothing else)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._app: App | None = None

    async def __call__(self, tenant: str, flows: list[str]) -> bool:
        from samband.queue.tasks import defer_targeted

        return await defer_targeted(await self._opened(), tenant, flows)

    async def _opened(self) -> App:
        from samband.queue.connect import connector
        from samband.queue.tasks import build_app

        if self._app is None:
            app = build_app(connector(self.url, min_size=1, max_size=2))
            await app.open_async()
            if self._app is None:
                self._app = app
            else:  # another push opened it meanwhile
                await app.close_async()
        return self._app

    async def close(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            await app.close_async()


class QueueUnavailable(Exception):
    """The queue did not take a pushed run; the system is asked to send it again."""


def dataflows_touching(config: Config, system: str, entity_types: tuple[str, ...]) -> list[str]:
    """The keys of the dataflows that read or write ``system``'s ``entity_types``."""
    refs = {f"{system}.{entity_type}" for entity_type in entity_types}
    return [flow.key for flow in config.dataflows if flow.source in refs or flow.target in refs]


@dataclass
class _Loaded:
    stamp: tuple[float, ...]
    receivers: Receivers


class TenantHooks:
    """The webhook endpoint of every tenant of ``registry``; a push queues its run by
    ``defer``."""

    def __init__(
        self,
        registry: Registry,
        defer: Defer,
        metrics: PushMetrics,
        *,
        process_environ: Mapping[str, str] | None = None,
    ) -> None:
        self.registry = registry
        self.defer = defer
        self.metrics = metrics
        self.process_environ = os.environ if process_environ is None else process_environ
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    async def close(self) -> None:
        close = getattr(self.defer, "close", None)
        if close is not None:
            await close()

    def routes(self) -> list[Route]:
        return [Route("/tenants/{tenant}/hooks/{system}", self.endpoint, methods=["POST"])]

    async def endpoint(self, request: Request) -> Response:
        tenant = str(request.path_params["tenant"])
        try:
            receivers = await run_in_threadpool(self.receivers_of, tenant)
        except SambandError as exc:
            # an unknown tenant, or one whose config does not load: said in the log, the
            # caller learns nothing of the registry
            log.warning("tenant %s: a pushed request was not taken: %s", tenant, exc)
            self.metrics.refused.labels("", "unknown_system").inc()
            return Response(status_code=404)
        try:
            return await receivers.endpoint(request)
        except QueueUnavailable as exc:
            log.warning("tenant %s: a pushed run could not be queued: %s", tenant, exc)
            return Response(status_code=503, headers={"Retry-After": "30"})

    def receivers_of(self, tenant: str) -> Receivers:
        """The tenant's receivers, made again when its config or ``.env`` changed."""
        found = self.registry.get(tenant)
        stamp = tuple(_mtime(path) for path in (found.config_path, found.directory / ".env"))
        with self._lock:
            loaded = self._loaded.get(tenant)
            if loaded is not None and loaded.stamp == stamp:
                return loaded.receivers
        environ = found.environ(self.process_environ)
        config = load_valid(found.config_path).config

        def on_push(system: str, types: tuple[str, ...], keys: tuple[str, ...], _: str) -> None:
            flows = dataflows_touching(config, system, types)
            if not flows:
                log.info(
                    "tenant %s: a pushed change of %s.%s concerns no dataflow",
                    tenant,
                    system,
                    types,
                )
                return
            try:
                queued: bool = from_thread.run(self.defer, tenant, flows)
            except Exception as exc:  # the queue's database: the system sends it again
                raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from None
            log.info(
                "tenant %s: %s pushed %s: %s",
                tenant,
                system,
                ", ".join(types),
                "run queued" if queued else "a waiting run covers it",
            )

        receivers = Receivers(config, environ, on_push, self.metrics)
        with self._lock:
            self._loaded[tenant] = _Loaded(stamp, receivers)
        return receivers


def _mtime(path: os.PathLike[str] | str) -> float:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except FileNotFoundError:
        return 0.0
