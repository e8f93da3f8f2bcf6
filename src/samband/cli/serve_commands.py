"""``samband serve``: the scheduler, the dashboard, the JSON API and ``/metrics`` in one
long-running process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from samband.cli._app import ConfigOption, app, err, fail, out
from samband.errors import ConfigError, SambandError

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@app.command()
def serve(
    config: ConfigOption,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8080,
    every: Annotated[str, typer.Option("--every", help="Interval, e.g. 30s, 5m, 1h.")] = "60s",
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Mark the session cookie Secure (HTTPS only); default: on, off loopback.",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The https address the systems reach this service at: once listening, "
            "subscribe their webhooks to PUBLIC_URL/hooks/SYSTEM (Exact Online).",
        ),
    ] = None,
    qa_report: Annotated[
        Path | None,
        typer.Option(
            "--qa-report",
            help="The folder of `samband qa`'s report, shown on the documents page; "
            "default: qa-report beside the config.",
        ),
    ] = None,
    tenants_dir: Annotated[
        Path | None,
        typer.Option(
            "--tenants-dir",
            help="A tenants registry (a folder of TENANT/samband.yaml) to list on the tenants "
            "page (/tenants, /api/tenants); default: $SAMBAND_TENANTS when set, else none.",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            envvar="SAMBAND_QUEUE",
            help="With a tenants registry: the queue (postgresql://USER@HOST:PORT/DB) whose "
            "tenant runs and waiting jobs the tenants page shows (default: $SAMBAND_QUEUE).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the schedule and serve the dashboard, the JSON API, /metrics, /healthz and
    /readyz until SIGTERM or Ctrl-C (which end the run in progress at its next step)."""
    from samband import logs, redact
    from samband.durations import parse_interval
    from samband.service import Service, create_app
    from samband.service.access import Access
    from samband.service.notify import Notifier
    from samband.service.web import check_bind, is_loopback

    try:
        access = Access()
        notifier = Notifier.from_environment(os.environ)
    except ConfigError as exc:
        raise fail(exc) from None
    logs.for_service()
    smtp = notifier.smtp
    # the service's own secrets are masked in every line, like the systems' credentials
    redact.remember(
        [
            access.api_token,
            access.session_secret,
            notifier.webhook_secret,
            smtp.password if smtp else None,
            _password(queue),
        ]
    )
    refusal = check_bind(host, access)
    if refusal:
        err.print(f"error: {refusal}", markup=False, highlight=False)
        raise typer.Exit(2)
    if public_url and not public_url.startswith(("https://", "http://")):
        raise typer.BadParameter("an http(s) address", param_hint="--public-url")
    try:
        interval = parse_interval(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from None
    try:
        service = Service(
            config,
            interval,
            notifier=notifier,
            qa_report=qa_report,
            tenants_dir=_tenants_dir(tenants_dir),
            queue_url=queue,
        )
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    secure = not is_loopback(host) if secure_cookies is None else secure_cookies
    app_ = create_app(service, access, secure_cookies=secure, loopback_hosts=True)
    announce = f"serving {config} on http://{host}:{port} (Ctrl-C to stop)"
    try:
        sock = _bound(host, port)
    except OSError as exc:
        err.print(
            f"error: cannot listen on {host}:{port}: {exc.strerror or exc}; choose "
            "another --port or stop what uses it",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None

    def listening() -> None:
        out.print(announce, highlight=False)
        if public_url:
            threading.Thread(
                target=_subscribe, args=(service, public_url), name="subscribe", daemon=True
            ).start()

    server = _server(app_, host, port, listening, service.live.close)
    server.run(sockets=[sock])


def _tenants_dir(given: Path | None) -> Path | None:
    from samband.tenants import registry_dir
    from samband.tenants.registry import ENV_VAR

    return registry_dir(given) if given or os.environ.get(ENV_VAR, "").strip() else None


def _password(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def _subscribe(service: Any, public_url: str) -> None:
    """Subscribe the webhooks once the receivers answer (the vendor calls them first)."""
    try:
        for line in service.subscribe(public_url):
            out.print(line, highlight=False, markup=False)
    except SambandError as exc:
        err.print(
            f"warning: the webhooks were not subscribed: {exc}; the schedule still polls",
            markup=False,
            highlight=False,
        )


@app.command("hash-password")
def hash_password(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Print the argon2 hash of a password, for a line NAME ROLE HASH of SAMBAND_USERS_FILE."""
    import getpass
    import sys

    from samband.service.access import hash_password as argon2_hash

    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            err.print("error: the two passwords differ; nothing was printed")
            raise typer.Exit(1)
    if len(password) < 12:
        err.print("error: use at least 12 characters")
        raise typer.Exit(1)
    out.print(argon2_hash(password), highlight=False, markup=False)


def _bound(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``: a port in use is an error before anything runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # the protocol named: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it a response sent in two writes waits ~40 ms for the client's ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _server(
    app: Any,
    host: str,
    port: int,
    listening: Callable[[], None],
    stopping: Callable[[], None] = lambda: None,
) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its shutdown, so the process would end "killed";
        a stop is how a service ends, so it exits 0.  ``listening`` is called once the
        socket accepts connections (what a script or a test can wait for); ``stopping``
        when a stop is asked (it ends the live event streams, which would otherwise keep
        the server waiting for their connections to close)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                listening()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    # log_config None: uvicorn's messages go through samband's handler (logs.for_service)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", log_config=None, access_log=False
    )
    return Server(config)
