"""``samband serve``: the scheduler, the dashboard, the JSON API and ``/metrics`` in one
long-running process."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from samband.cli._app import ConfigOption, app, err, fail, out
from samband.errors import ConfigError, SambandError

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@app.command()
def serve(
    config: ConfigOption,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    every: Annotated[str, typer.Option("--every", help="Interval, e.g. 30s, 5m, 1h.")] = "60s",
) -> None:
    """Run the schedule and serve the dashboard, the JSON API, /metrics, /healthz and
    /readyz until SIGTERM or Ctrl-C (which end the run in progress at its next step)."""
    from samband.durations import parse_interval
    from samband.service import Service, create_app
    from samband.service.web import check_bind

    refusal = check_bind(host)
    if refusal:
        err.print(f"error: {refusal}", markup=False, highlight=False)
        raise typer.Exit(2)
    try:
        interval = parse_interval(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from None
    try:
        service = Service(config, interval)
    except SambandError as exc:
        raise fail(exc, 2 if isinstance(exc, ConfigError) else 1) from None
    out.print(f"serving {config} on http://{host}:{port} (Ctrl-C to stop)", highlight=False)
    server = _server(create_app(service), host, port)
    server.run()
    if not server.started:
        err.print(f"error: cannot listen on {host}:{port} (is the port in use?)")
        raise typer.Exit(1)


def _server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its shutdown, so the process would end "killed";
        a stop is how a service ends, so it exits 0."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
