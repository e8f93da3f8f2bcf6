"""OAuth2 authorization code with rotating refresh tokens, shared by the API connectors.

APIs such as Exact Online and CRMOffice hand out a *new* refresh token with every
refresh and make the old one useless as soon as the new one is used.  A crash between
receiving the answer and storing it would lock the user out, so :class:`OAuthTokens`
writes the new pair to the encrypted :class:`~samband.secrets.TokenStore` (atomic,
fsynced, mode 0600) *before* it hands the new access token to anybody.

Some APIs also refuse a token request made too soon after the previous one (Exact: not
within 570 s); ``min_interval`` makes the stored access token be reused while it is
valid instead.  Tokens never appear in log lines or error messages.
"""

from __future__ import annotations

import html
import os
import re
import secrets as pysecrets
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx

from samband.connectors._http import Auth, is_loopback
from samband.connectors._trace import event_hooks
from samband.errors import AuthError, UnreachableError
from samband.secrets import TokenStore

if TYPE_CHECKING:
    from samband.plugin.settings import KindSettings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _login_hint(kind: str | None) -> str:
    return f"run `samband auth {kind or '<kind>'} -c FILE SYSTEM` to log in again"


class OAuthTokens:
    """The access and refresh token of one system, refreshed when needed, thread-safe.

    Stored fields: ``access_token``, ``refresh_token``, ``expires_at`` (epoch seconds on
    ``clock``) and ``requested_at`` (when the last token request was sent).
    """

    def __init__(
        self,
        system_id: str,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        store: TokenStore,
        http: httpx.Client | None = None,
        min_interval: float = 0.0,
        refresh_skew: float = 60.0,
        clock: Callable[[], float] = time.time,
        scope: str | None = None,
        expires_in_default: float = 600.0,
        kind: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system_id = system_id
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.store = store
        self._own_http = http is None
        self.http = http or httpx.Client(
            timeout=30.0, verify=not is_loopback(token_url), event_hooks=event_hooks()
        )
        self.min_interval = min_interval
        self.refresh_skew = refresh_skew
        self.clock = clock
        self.scope = scope
        self.expires_in_default = expires_in_default
        self.kind = kind
        self._sleep = sleep
        self._lock = threading.RLock()
        self._tokens: dict[str, Any] | None = None
        #: token requests sent by this object (for tests and statistics)
        self.requests = 0

    # -- public -------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid access token; refreshes (and persists) when it is expired or near expiry."""
        with self._lock:
            tokens = self._current()
            now = self.clock()
            expires_at = float(tokens.get("expires_at") or 0)
            if tokens.get("access_token") and now < expires_at - self.refresh_skew:
                return str(tokens["access_token"])
            wait = self._too_soon(tokens, now)
            if wait > 0:
                if tokens.get("access_token") and now < expires_at:
                    # still valid: the API would refuse a new one now
                    return str(tokens["access_token"])
                self._sleep(wait)
            self._refresh(tokens)
            assert self._tokens is not None
            return str(self._tokens["access_token"])

    def force_refresh(self) -> bool:
        """Get a new access token after a 401.  False when that cannot help (the API
        would refuse a request this soon, or there is no refresh token)."""
        with self._lock:
            try:
                tokens = self._current()
            except AuthError:
                return False
            stored = self.store.load() or {}
            if stored.get("access_token") and stored.get("access_token") != tokens.get(
                "access_token"
            ):
                # another process refreshed meanwhile: use its token
                self._tokens = stored
                return True
            if self._too_soon(tokens, self.clock()) > 0:
                return False
            try:
                self._refresh(tokens)
            except AuthError:
                return False
            return True

    def exchange_code(self, code: str, redirect_uri: str) -> None:
        """First login: trade an authorization code for tokens and store them."""
        with self._lock:
            data = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
            self._request(data, previous=None)

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # -- internals ----------------------------------------------------------------
    def _current(self) -> dict[str, Any]:
        if self._tokens is None:
            self._tokens = self.store.load()
        if not self._tokens or not self._tokens.get("refresh_token"):
            raise AuthError(
                self.system_id, "no stored OAuth tokens for this system", _login_hint(self.kind)
            )
        return self._tokens

    def _too_soon(self, tokens: dict[str, Any], now: float) -> float:
        if not self.min_interval:
            return 0.0
        last = float(tokens.get("requested_at") or 0)
        return max(0.0, last + self.min_interval - now)

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Serialise refreshes across processes sharing the token file (workers)."""
        if fcntl is None:  # pragma: no cover - not on Windows
            yield
            return
        self.store.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.store.folder / f".{self.store.path.name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _refresh(self, tokens: dict[str, Any]) -> None:
        with self._process_lock():
            self._refresh_locked(tokens)

    def _refresh_locked(self, tokens: dict[str, Any]) -> None:
        # Another process sharing the store may have rotated the token already; its
        # refresh token is the only one that still works.
        stored = self.store.load()
        if stored and stored.get("refresh_token") != tokens.get("refresh_token"):
            self._tokens = tokens = stored
            expires_at = float(stored.get("expires_at") or 0)
            if stored.get("access_token") and self.clock() < expires_at - self.refresh_skew:
                return
        data = {
            "grant_type": "refresh_token",
            "refresh_token": str(tokens["refresh_token"]),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        self._request(data, previous=tokens)

    def _request(self, data: dict[str, str], previous: dict[str, Any] | None) -> None:
        if self.scope:
            data["scope"] = self.scope
        requested_at = self.clock()
        self.requests += 1
        try:
            response = self.http.post(
                self.token_url, data=data, headers={"Accept": "application/json"}
            )
        except httpx.TransportError as exc:
            raise UnreachableError(
                self.system_id,
                f"POST {urlsplit(self.token_url).path}: cannot get a token "
                f"({exc.__class__.__name__})",
                "check the network and the system's base_url, then try again",
            ) from None
        path = urlsplit(self.token_url).path
        if response.status_code != 200:
            reason = _oauth_error(response)
            if data["grant_type"] == "refresh_token" and previous is not None:
                # remember the refused request so the next one respects min_interval
                previous["requested_at"] = requested_at
            raise AuthError(
                self.system_id,
                f"POST {path}: the token request was refused ({response.status_code} {reason})",
                _login_hint(self.kind)
                if data["grant_type"] == "authorization_code" or "invalid_grant" in reason
                else "check client_id/client_secret; if it persists, " + _login_hint(self.kind),
            )
        try:
            body = response.json()
            access = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                self.system_id, f"POST {path}: the token answer has no access_token"
            ) from None
        refresh = body.get("refresh_token") or (previous or {}).get("refresh_token")
        if not refresh:
            raise AuthError(self.system_id, f"POST {path}: the token answer has no refresh_token")
        try:
            expires_in = float(body.get("expires_in") or self.expires_in_default)
        except (TypeError, ValueError):
            expires_in = self.expires_in_default
        tokens = {
            "access_token": access,
            "refresh_token": str(refresh),
            "expires_at": requested_at + expires_in,
            "requested_at": requested_at,
            "token_type": str(body.get("token_type") or "bearer"),
        }
        # Durable before anybody uses the new access token: the old refresh token is
        # dead once the new one is used.
        self.store.save(tokens)
        self._tokens = tokens


def _oauth_error(response: httpx.Response) -> str:
    """``error``/``error_description`` of an OAuth error answer (never echoing tokens)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "error_description") if body.get(k)]
        if parts:
            return ": ".join(parts)
    return response.reason_phrase


class OAuthAuth(Auth):
    """Adapter for :class:`~samband.connectors._http.HttpClient`: Bearer header, refresh on 401."""

    def __init__(self, tokens: OAuthTokens) -> None:
        self.tokens = tokens

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.access_token()}"}

    def refresh(self) -> bool:
        return self.tokens.force_refresh()


# -- first login ------------------------------------------------------------------
class _CallbackServer(HTTPServer):
    result: dict[str, str]
    expected_path: str


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != self.server.expected_path.rstrip("/"):
            self.send_response(404)
            self.end_headers()
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.result = query
        ok = "code" in query
        message = (
            "Samband received the authorization. You can close this window."
            if ok
            else f"The login did not succeed: {query.get('error', 'no code in the answer')}"
        )
        body = f"<html><body><p>{html.escape(message)}</p></body></html>".encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the query string holds the authorization code."""


def interactive_login(
    system_id: str,
    *,
    authorize_url: str,
    params: dict[str, str],
    port: int,
    open_browser: bool,
    echo: Callable[[str], None],
    timeout: float = 300,
) -> tuple[str, str]:
    """Run a one-shot redirect listener on 127.0.0.1:``port``, print the URL to open,
    and return ``(code, redirect_uri)`` once the browser comes back.

    ``params`` are added to the authorization URL (``client_id``, ...).  A
    ``redirect_uri`` in ``params`` (it must be registered with the API) decides the
    path of the listener; otherwise it is ``http://127.0.0.1:PORT/callback``.  ``port``
    0 picks a free port.
    """
    params = dict(params)
    wanted = params.pop("redirect_uri", None)
    path = (urlsplit(wanted).path or "/") if wanted else "/callback"
    try:
        server = _CallbackServer(("127.0.0.1", port), _CallbackHandler)
    except OSError as exc:
        raise AuthError(
            system_id,
            f"cannot listen on 127.0.0.1:{port} for the login redirect ({exc.strerror})",
            "choose another port with --port",
        ) from None
    server.result = {}
    server.expected_path = path
    server.timeout = 0.5
    actual_port = server.server_address[1]
    if wanted:
        split = urlsplit(wanted)
        redirect_uri = (
            wanted
            if split.port
            else wanted.replace(split.netloc, f"{split.hostname}:{actual_port}", 1)
        )
    else:
        redirect_uri = f"http://127.0.0.1:{actual_port}{path}"
    state = pysecrets.token_urlsafe(16)
    query = {**params, "redirect_uri": redirect_uri, "response_type": "code", "state": state}
    url = f"{authorize_url}{'&' if '?' in authorize_url else '?'}{urlencode(query)}"
    echo(f"Open this URL in a browser and log in:\n{url}")
    if open_browser:
        try:
            webbrowser.open(url)
        except Exception:
            pass
    deadline = time.monotonic() + timeout
    try:
        while not server.result and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    result = server.result
    if not result:
        raise AuthError(system_id, f"no login within {timeout:.0f} s", "run `samband auth` again")
    if result.get("state") != state:
        raise AuthError(
            system_id,
            "the login answer does not carry the state Samband sent (a stale or forged redirect)",
            "run `samband auth` again",
        )
    if "code" not in result:
        reason = result.get("error_description") or result.get("error") or "no code"
        raise AuthError(system_id, f"the login was refused: {reason}", "run `samband auth` again")
    return result["code"], redirect_uri


def state_folder(base_dir: str | None) -> str:
    """Where a system keeps its tokens unless told otherwise: ``.samband`` beside the
    config file (or in the working folder)."""
    return os.path.join(str(base_dir or os.getcwd()), ".samband")


def login_context(
    system_id: str,
    config: Any,
    settings_model: type[KindSettings],
    environ: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
) -> tuple[Any, dict[str, str]]:
    """A system's typed settings and credentials for a first login outside a run:
    ``${VAR}`` resolved, ``base_dir`` the config's folder; ``credentials`` given by the
    caller are used as they are."""
    from samband.config.env import resolve_all, resolve_settings
    from samband.config.loader import base_dir

    system = config.systems[system_id]
    raw = resolve_settings(system.settings(), environ, system=system_id)
    raw.setdefault("base_dir", base_dir(config))
    if credentials is None:
        credentials = resolve_all(system.credentials, environ, system=system_id)
    return settings_model.model_validate(raw), dict(credentials)


def exchange_once(tokens: OAuthTokens, code: str, redirect_uri: str) -> None:
    """Trade an authorization code for the first token pair (stored), then let go."""
    try:
        tokens.exchange_code(code, redirect_uri)
    finally:
        tokens.close()


def check_redirect_uri(system_id: str, redirect_uri: str) -> bool:
    """Whether ``redirect_uri`` is answered by Samband's own listener (plain HTTP on this
    machine) rather than pasted back by hand (HTTPS).  Anything else is refused: APIs
    such as Exact Online refuse a plain HTTP callback that is not on loopback."""
    split = urlsplit(redirect_uri)
    if split.scheme == "https" and split.hostname:
        return False
    if split.scheme == "http" and is_loopback(redirect_uri):
        return True
    raise AuthError(
        system_id,
        f"the redirect URI {redirect_uri!r} is neither https:// nor http:// on this machine",
        "register an https:// redirect URI with the app and pass it with --redirect-uri "
        "(you paste the address it sends you to), or use http://127.0.0.1:PORT/callback",
    )


def code_from_answer(system_id: str, answer: str, redirect_uri: str, state: str | None) -> str:
    """The authorization code in what the user pasted: the code itself, or the whole
    address the login sent the browser to (its ``state`` must be the one sent, when
    Samband started the login: ``state`` not None)."""
    answer = answer.strip()
    if not answer:
        raise AuthError(system_id, "no code was given", "run `samband auth` again")
    if not ("://" in answer or answer.startswith("?") or re.search(r"\b(code|error)=", answer)):
        # the bare code, copied by the user who started the login (maybe %-encoded, as
        # it stood in the address bar)
        return unquote(answer)
    split = urlsplit(answer if "://" in answer or answer.startswith("?") else "?" + answer)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    if "://" in answer:
        expected = urlsplit(redirect_uri)
        if (split.scheme, split.netloc, split.path.rstrip("/")) != (
            expected.scheme,
            expected.netloc,
            expected.path.rstrip("/"),
        ):
            raise AuthError(
                system_id,
                "the pasted address is not the redirect URI the login was sent to",
                f"paste the address that starts with {redirect_uri}",
            )
    if "code" not in query:
        reason = query.get("error_description") or query.get("error") or "no code in it"
        raise AuthError(system_id, f"the login was refused: {reason}", "run `samband auth` again")
    if state is not None and query.get("state") != state:
        raise AuthError(
            system_id,
            "the pasted address does not carry the state Samband sent (a stale or forged "
            "login answer)",
            "run `samband auth` again and paste the address of that login",
        )
    return query["code"]


def pasted_login(
    system_id: str,
    *,
    authorize_url: str,
    params: dict[str, str],
    redirect_uri: str,
    open_browser: bool,
    echo: Callable[[str], None],
    read_line: Callable[[str], str],
) -> str:
    """Print the authorization URL for an HTTPS redirect URI Samband cannot listen on,
    and return the code from what the user pastes back (the address or the code)."""
    state = pysecrets.token_urlsafe(16)
    query = {**params, "redirect_uri": redirect_uri, "response_type": "code", "state": state}
    url = f"{authorize_url}{'&' if '?' in authorize_url else '?'}{urlencode(query)}"
    echo(
        "Open this URL in a browser and log in; the browser then goes to "
        f"{redirect_uri}?code=…\n{url}"
    )
    if open_browser:
        try:
            webbrowser.open(url)
        except Exception:
            pass
    answer = read_line("Paste the address the browser went to (or only its code)")
    return code_from_answer(system_id, answer, redirect_uri, state)


def browser_login(
    system_id: str,
    *,
    authorize_url: str,
    params: dict[str, str],
    tokens: Callable[[], OAuthTokens],
    port: int,
    open_browser: bool,
    echo: Callable[[str], None],
    timeout: float,
    redirect_uri: str | None = None,
    code: str | None = None,
    read_line: Callable[[str], str] | None = None,
) -> None:
    """``samband auth``: authorize in a browser, trade the code, store the tokens.

    A plain-HTTP loopback redirect URI (or none) is answered by a one-shot listener; an
    HTTPS ``redirect_uri`` is registered elsewhere, so the user pastes back the address
    the browser was sent to (``read_line``), or a script passes the ``code`` it got."""
    redirect_uri = redirect_uri or params.get("redirect_uri")
    params = {k: v for k, v in params.items() if k != "redirect_uri"}
    if code is not None:
        if not redirect_uri:
            raise AuthError(
                system_id,
                "--code needs the redirect URI the code was issued for",
                "pass it with --redirect-uri",
            )
        check_redirect_uri(system_id, redirect_uri)
        # the login was started elsewhere: there is no state of ours to compare
        exchange_once(tokens(), code_from_answer(system_id, code, redirect_uri, None), redirect_uri)
        return
    if redirect_uri and not check_redirect_uri(system_id, redirect_uri):
        if read_line is None:
            raise AuthError(
                system_id,
                "an https:// redirect URI needs the code pasted back",
                "run `samband auth` in a terminal, or pass the code with --code",
            )
        got = pasted_login(
            system_id,
            authorize_url=authorize_url,
            params=params,
            redirect_uri=redirect_uri,
            open_browser=open_browser,
            echo=echo,
            read_line=read_line,
        )
        exchange_once(tokens(), got, redirect_uri)
        return
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    got, used_uri = interactive_login(
        system_id,
        authorize_url=authorize_url,
        params=params,
        port=port,
        open_browser=open_browser,
        echo=echo,
        timeout=timeout,
    )
    exchange_once(tokens(), got, used_uri)


def manual_login_options(
    login: Callable[..., None],
    system_id: str,
    kind: str,
    redirect_uri: str | None,
    code: str | None,
) -> dict[str, Any]:
    """The keyword arguments of ``samband auth``'s ``--redirect-uri``/``--code`` for a
    kind's ``login`` (with a hidden prompt for the pasted answer), refused for a kind
    whose login has no such options."""
    import inspect

    accepted = set(inspect.signature(login).parameters)
    wanted: dict[str, Any] = {"redirect_uri": redirect_uri, "code": code}
    given = sorted(k for k, v in wanted.items() if v is not None)
    missing = [k for k in given if k not in accepted]
    if missing:
        flags = ", ".join("--" + k.replace("_", "-") for k in missing)
        raise AuthError(
            system_id, f"the {kind} login does not take {flags}", "leave the option out"
        )
    options = {k: v for k, v in wanted.items() if v is not None}
    if "read_line" in accepted:
        options["read_line"] = _read_hidden
    return options


def _read_hidden(prompt: str) -> str:
    """One line from the terminal, not echoed (a login answer holds a one-time code);
    from a pipe (a script) as it comes."""
    import sys

    import click

    return str(click.prompt(prompt, hide_input=sys.stdin.isatty(), err=True))
