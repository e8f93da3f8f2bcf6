"""``samband sandbox`` and ``samband auth``: local emulators and first logins."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from samband.cli._app import (
    ConfigOption,
    JsonOption,
    app,
    err,
    fail,
    kinds_help,
    out,
)
from samband.errors import ConfigError, SambandError


# -- sandboxes, auth, sql ------------------------------------------------------------
@app.command()
def sandbox(
    kind: Annotated[str, typer.Argument(help=kinds_help(lambda k: k.sandbox is not None))],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8080,
    records: Annotated[int, typer.Option("--records", help="Generated records per type.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the generated data.")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Run the local emulator of an external API (127.0.0.1 only) until Ctrl-C."""
    from samband.sandbox._base import serve_forever
    from samband.sandbox.registry import create_sandbox

    try:
        box = create_sandbox(kind)
    except KeyError as exc:
        err.print(f"error: {exc.args[0]}")
        raise typer.Exit(2) from None
    if records:
        box.seed(records, seed)
    try:
        serve_forever(box.app, port, announce=lambda url: _announce(kind, url, as_json))
    except OSError as exc:
        err.print(
            f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; stop what uses "
            "the port or choose another with --port"
        )
        raise typer.Exit(1) from None


def _announce(kind: str, url: str, as_json: bool) -> None:
    """Where the sandbox listens, once the port is bound."""
    if as_json:
        # one line a script can read before the server blocks
        port = int(url.rsplit(":", 1)[1])
        sys.stdout.write(json.dumps({"kind": kind, "url": url, "port": port}) + "\n")
        sys.stdout.flush()
    else:
        out.print(f"{kind} sandbox on {url} (Ctrl-C to stop)")


@app.command()
def auth(
    kind: Annotated[str, typer.Argument(help=kinds_help(lambda k: k.login))],
    system: Annotated[str, typer.Argument(help="The system id in the config.")],
    config: ConfigOption,
    port: Annotated[
        int, typer.Option("--port", help="Port of the local redirect listener.")
    ] = 8765,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL.")] = False,
    redirect_uri: Annotated[
        str | None,
        typer.Option(
            "--redirect-uri",
            help="The app's registered redirect URI; an https:// one means you paste back "
            "the address the browser was sent to (or its code).",
        ),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option(
            "--code",
            help="For scripts: the code (or redirected address) of a login done elsewhere.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """First OAuth2 login of a system; its tokens are stored encrypted, never in the config."""
    from samband.config.validate import load_valid
    from samband.plugin import UnknownKind, get_kind

    try:
        loaded = load_valid(config)
        if system not in loaded.config.systems:
            raise ConfigError([])
        system_config = loaded.config.systems[system]
        if system_config.kind != kind:
            err.print(f"error: system {system!r} is of kind {system_config.kind!r}, not {kind!r}")
            raise typer.Exit(2)
        try:
            descriptor = get_kind(kind)
        except UnknownKind:
            descriptor = None
        login = getattr(descriptor.connector_class(), "login", None) if descriptor else None
        if descriptor is None or not descriptor.login or login is None:
            err.print(f"error: kind {kind!r} has no interactive login")
            raise typer.Exit(2)
        from samband.connectors._oauth import manual_login_options

        login(
            system,
            loaded.config,
            port=port,
            open_browser=not no_browser,
            # soft_wrap: a login URL must stay on one line to be copied
            echo=lambda text: (err if as_json else out).print(
                text, soft_wrap=True, highlight=False
            ),
            **manual_login_options(login, system, kind, redirect_uri, code),
        )
    except ConfigError as exc:
        if not exc.problems:
            err.print(f"error: {config} has no system {system!r}")
            raise typer.Exit(2) from None
        raise fail(exc) from None
    except SambandError as exc:
        raise fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps({"system": system, "kind": kind, "logged_in": True}) + "\n")
        return
    out.print(f"{system}: logged in; tokens stored encrypted")
