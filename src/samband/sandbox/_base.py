"""What every sandbox shares: a movable clock, fault injection, and a server runner.

A sandbox is a Starlette app that emulates one external API on 127.0.0.1.  Tests run it
in-process (:class:`SandboxServer` starts uvicorn in a thread on a free port); users run
it with ``samband sandbox KIND --port N``.

Fault injection (:class:`Faults`) wraps the app as ASGI middleware and can be changed at
run time, in-process or through ``PUT /_sandbox/faults``:

* ``error_rate`` — share of calls answered 503 with a problem body
* ``throttle_rate`` / ``burst_429`` — 429s at random / the next N calls
* ``latency`` and ``latency_rate`` — extra seconds on a share of calls
* ``truncate_rate`` — bodies cut in half (invalid JSON)
* ``reset_rate`` — connection closed mid-body
* ``html_rate`` — an HTML maintenance page with status 200
* ``non_json_rate`` — a plain-text body with status 200
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samband import exactjson

ADMIN_PREFIX = "/_sandbox"


class ExactJSONResponse(JSONResponse):
    """A JSON answer whose decimals keep every digit (the vendors' APIs hold amounts as
    .NET decimals; a double would round them)."""

    def render(self, content: Any) -> bytes:
        return exactjson.dumps(content)


async def exact_json(request: Request) -> Any:
    """A request's JSON body with its decimals exact (raises ValueError when not JSON)."""
    return exactjson.loads(await request.body())


class Clock:
    """Wall-clock time that tests can move forward or speed up."""

    def __init__(self, speed: float = 1.0) -> None:
        self._offset = 0.0
        self._speed = speed
        self._origin_real = time.time()
        self._origin_virtual = self._origin_real
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            elapsed = time.time() - self._origin_real
            return self._origin_virtual + elapsed * self._speed + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def set_speed(self, speed: float) -> None:
        with self._lock:
            now_real = time.time()
            self._origin_virtual += (now_real - self._origin_real) * self._speed
            self._origin_real = now_real
            self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def sleep(self, virtual_seconds: float) -> None:
        """Sleep so that ``virtual_seconds`` pass on this clock."""
        time.sleep(max(virtual_seconds, 0.0) / max(self._speed, 1e-9))

    def delta(self, seconds: float) -> timedelta:
        return timedelta(seconds=seconds)


@dataclass
class Faults:
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    burst_429: int = 0
    latency: float = 0.0
    latency_rate: float = 0.0
    truncate_rate: float = 0.0
    reset_rate: float = 0.0
    html_rate: float = 0.0
    non_json_rate: float = 0.0
    seed: int | None = None
    # counters of what was injected
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def update(self, **settings: Any) -> None:
        for key, value in settings.items():
            if key in ("injected",) or not hasattr(self, key):
                raise ValueError(f"unknown fault setting {key!r}")
            current = getattr(self, key)
            kind = type(current) if current is not None else int
            setattr(self, key, kind(value) if value is not None else None)
        if "seed" in settings:
            self._random = random.Random(self.seed)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        return data

    def draw(self) -> str | None:
        """Decide the fault for one call (None: serve normally)."""
        with self._lock:
            if self.burst_429 > 0:
                self.burst_429 -= 1
                return self._count("429")
            r = self._random.random
            for name, rate in (
                ("503", self.error_rate),
                ("429", self.throttle_rate),
                ("truncate", self.truncate_rate),
                ("reset", self.reset_rate),
                ("html", self.html_rate),
                ("non_json", self.non_json_rate),
            ):
                if rate and r() < rate:
                    return self._count(name)
            if self.latency and (self.latency_rate == 0 or r() < self.latency_rate):
                return self._count("latency")
            return None

    def _count(self, name: str) -> str:
        self.injected[name] = self.injected.get(name, 0) + 1
        return name


class FaultMiddleware:
    """ASGI middleware applying :class:`Faults` to every non-admin HTTP call."""

    def __init__(self, app: ASGIApp, faults: Faults, problem: Any = None) -> None:
        self.app, self.faults = app, faults
        self.problem = problem or (
            lambda status, title: (
                {"type": "about:blank", "title": title, "status": status},
                "application/problem+json",
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        fault = self.faults.draw()
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault == "latency":
            await asyncio.sleep(self.faults.latency)
            await self.app(scope, receive, send)
            return
        if fault in ("503", "429"):
            status = int(fault)
            body, ctype = self.problem(
                status, "Service Unavailable" if status == 503 else "Too Many Requests"
            )
            headers = [(b"content-type", ctype.encode())]
            if status == 429:
                headers.append((b"retry-after", b"1"))
            await _send(send, status, json.dumps(body).encode(), headers)
            return
        if fault == "html":
            page = b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"
            await _send(send, 200, page, [(b"content-type", b"text/html")])
            return
        if fault == "non_json":
            await _send(send, 200, b"OK", [(b"content-type", b"application/json")])
            return
        # truncate / reset: run the app, then damage what it sends
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in captured if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if start is None:
            return
        if fault == "truncate":
            cut = body[: len(body) // 2]
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(cut)).encode()))
            await send(
                {"type": "http.response.start", "status": start["status"], "headers": headers}
            )
            await send({"type": "http.response.body", "body": cut})
            return
        # reset: announce the full length, send half, then stop (the client sees the
        # connection end mid-body)
        await send(start)
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise ConnectionResetError("sandbox fault injection: connection reset mid-body")


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def admin_routes(faults: Faults, clock: Clock, reset: Any = None) -> list[Route]:
    """``/_sandbox/faults`` (GET/PUT), ``/_sandbox/clock`` (GET/POST advance, speed)."""

    async def faults_endpoint(request: Request) -> Response:
        if request.method == "PUT":
            try:
                faults.update(**(await request.json()))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"title": str(exc)}, status_code=400)
        return JSONResponse(faults.public())

    async def clock_endpoint(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            if "advance" in body:
                clock.advance(float(body["advance"]))
            if "speed" in body:
                clock.set_speed(float(body["speed"]))
        return JSONResponse({"now": clock.now().isoformat(), "speed": clock.speed})

    routes = [
        Route(f"{ADMIN_PREFIX}/faults", faults_endpoint, methods=["GET", "PUT"]),
        Route(f"{ADMIN_PREFIX}/clock", clock_endpoint, methods=["GET", "POST"]),
    ]
    if reset is not None:

        async def reset_endpoint(request: Request) -> Response:
            reset()
            return JSONResponse({"reset": True})

        routes.append(Route(f"{ADMIN_PREFIX}/reset", reset_endpoint, methods=["POST"]))
    return routes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxServer:
    """Runs an ASGI app with uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, app: ASGIApp, port: int | None = None, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("sandboxes bind the loopback address only")
        self.app = app
        self.host = host
        self.port = port or 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # without it every small answer waits for the peer's delayed ACK (~40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        # Server.startup() expects what Server.serve() normally prepares.
        config.load()
        self._server.lifespan = config.lifespan_class(config)
        ready = threading.Event()

        def run() -> None:
            assert self._server is not None
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                assert self._server is not None
                await self._server.startup(sockets=[sock])
                ready.set()
                await self._server.main_loop()
                await self._server.shutdown(sockets=[sock])

            loop.run_until_complete(serve())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("sandbox did not start within 15 s")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    app: ASGIApp,
    port: int,
    host: str = "127.0.0.1",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run a sandbox in the foreground (``samband sandbox``) until Ctrl-C.  The port is
    bound first: a port in use raises ``OSError`` before anything is announced (the URL,
    to ``announce``)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("sandboxes bind the loopback address only")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    if announce is not None:
        announce(f"http://{host}:{sock.getsockname()[1]}")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


class Sandbox:
    """Base of every sandbox: routes of the emulated API + admin routes + faults.

    Subclasses set ``kind``, implement :meth:`routes` and :meth:`seed` (generated sample
    data), and keep their records on ``self``.  ``problem(status, title)`` gives the
    error body in the API's own shape (used by fault injection too).
    """

    kind: str = ""

    def __init__(self, *, clock: Clock | None = None, faults: Faults | None = None) -> None:
        self.clock = clock or Clock()
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        self.requests = 0
        self._app: ASGIApp | None = None

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def seed(self, count: int, rng_seed: int = 1) -> None:
        """Fill the sandbox with ``count`` generated records per entity type."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every record (admin route ``POST /_sandbox/reset``)."""

    def problem(self, status: int, title: str) -> tuple[dict[str, Any], str]:
        return {"type": "about:blank", "title": title, "status": status}, "application/problem+json"

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            starlette = Starlette(
                routes=admin_routes(self.faults, self.clock, self.reset) + self.routes()
            )
            self._app = FaultMiddleware(starlette, self.faults, self.problem)
        return self._app

    def serve(self, port: int | None = None) -> SandboxServer:
        """Start serving on 127.0.0.1 in a background thread; call ``.stop()`` when done."""
        return SandboxServer(self.app, port).start()
