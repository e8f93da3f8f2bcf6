"""The service's HTTP face: the dashboard (server-rendered), the JSON API, ``/metrics``,
``/healthz`` and ``/readyz``.

The JSON API takes a bearer token when ``SAMBAND_API_TOKEN`` is set.  Until the dashboard
has its login, :func:`check_bind` refuses any address but loopback."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from samband.errors import SambandError
from samband.service.service import Service

TOKEN_ENV = "SAMBAND_API_TOKEN"
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_templates.filters["when"] = lambda ts: (
    datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"
)


def check_bind(host: str) -> str | None:
    """Why ``host`` may not be served on, or None."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (
        f"serving on {host} would show your records to the network without a login, and the "
        "login is not built yet: bind 127.0.0.1 (the default) and reach it through an SSH "
        "tunnel or a reverse proxy that authenticates"
    )


Handler = Callable[[Request], Awaitable[Response]]


def create_app(service: Service, *, manage_service: bool = True) -> Starlette:
    """The ASGI app.  With ``manage_service`` its lifespan starts and stops the scheduler."""

    def api(handler: Callable[[Request], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            refusal = _refuse_unauthorised(request)
            if refusal is not None:
                return refusal
            try:
                result = await run_in_threadpool(handler, request)
            except SambandError as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)
            except ValueError as exc:  # a malformed ref or parameter
                return JSONResponse({"error": str(exc)}, status_code=400)
            return result if isinstance(result, Response) else JSONResponse(_jsonable(result))

        return endpoint

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, reason = await run_in_threadpool(service.health)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "reason": reason},
            status_code=200 if ready else 503,
        )

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(service.metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def overview_page(request: Request) -> Response:
        try:
            data = await run_in_threadpool(service.overview)
        except SambandError as exc:
            data = {"error": str(exc)}
        html = _templates.get_template("overview.html").render(**data, config=service.config_path)
        return HTMLResponse(html)

    def run_now(request: Request) -> Any:
        service.run_now()
        return JSONResponse({"queued": True}, status_code=202)

    def limit(request: Request) -> int:
        try:
            return max(1, min(int(request.query_params.get("limit", "100")), 1000))
        except ValueError:
            return 100

    def ref(request: Request) -> str:
        return str(request.path_params["ref"])

    routes = [
        Route("/", overview_page),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/api/overview", api(lambda r: service.overview())),
        Route("/api/status", api(lambda r: service.read("status"))),
        Route("/api/conflicts", api(lambda r: service.read("conflicts", limit(r)))),
        Route("/api/errors", api(lambda r: service.read("errors", limit(r)))),
        Route("/api/records/{ref:path}", api(lambda r: service.read("links", ref(r)))),
        Route("/api/history/{ref:path}", api(lambda r: service.read("history", ref(r)))),
        Route("/api/run", api(run_now), methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_service:
            service.start()
        try:
            yield
        finally:
            if manage_service:
                await run_in_threadpool(service.stop)

    return Starlette(routes=routes, lifespan=lifespan)


def _refuse_unauthorised(request: Request) -> Response | None:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        return None
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode()):
        return None
    return JSONResponse(
        {"error": "this API needs the bearer token (header Authorization: Bearer TOKEN)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
