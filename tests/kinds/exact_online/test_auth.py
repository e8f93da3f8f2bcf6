"""The first login with an HTTPS redirect URI: Exact refuses plain-HTTP callbacks that are
not on this machine, so the user pastes back the address the browser was sent to (or its
code), or a script passes ``--code``.  Against the sandbox's authorize and token
endpoints, which refuse what Exact refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.config.model import Config
from samband.errors import AuthError
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock, SandboxServer
from samband.secrets import TokenStore
from tests.support.exact import serve

REDIRECT = "https://app.example.com/exact/callback"


@pytest.fixture(autouse=True)
def _token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())


@pytest.fixture
def box() -> ExactOnlineSandbox:
    return ExactOnlineSandbox(clock=Clock())


@pytest.fixture
def server(box: ExactOnlineSandbox) -> Iterator[SandboxServer]:
    running = serve(box)
    yield running
    running.stop()


def _config(server: SandboxServer, box: ExactOnlineSandbox, redirect: str = "") -> Config:
    line = f"\n    redirect_uri: {redirect}" if redirect else ""
    return parse_config(
        f"""
systems:
  exact:
    kind: exact-online
    base_url: {server.url}
    division: {box.division}{line}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
dataflows: []
"""
    ).config


def _browser(url: str) -> str:
    """What the browser does after the login: Exact redirects it to the redirect URI (a
    page Samband does not serve), and the user copies that address."""
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def _login(
    box: ExactOnlineSandbox,
    server: SandboxServer,
    state_dir: Path,
    paste: Callable[[str], str] | None,
    printed: list[str],
    **options: str,
) -> None:
    def read_line(prompt: str) -> str:
        assert paste is not None
        return paste(printed[-1].splitlines()[-1])

    ExactOnlineConnector.login(
        "exact",
        _config(server, box),
        port=0,
        open_browser=False,
        echo=printed.append,
        state_dir=str(state_dir),
        timeout=20,
        credentials={"client_id": box.client_id, "client_secret": box.client_secret},
        read_line=read_line,
        **options,  # type: ignore[arg-type]
    )


def _works(server: SandboxServer, state_dir: Path) -> bool:
    stored = TokenStore("exact", state_dir).load()
    assert stored is not None
    answer = httpx.get(
        f"{server.url}/api/v1/current/Me",
        headers={"Authorization": f"Bearer {stored['access_token']}"},
    )
    return answer.status_code == 200


def test_the_sandbox_authorize_page_refuses_a_plain_http_callback(
    box: ExactOnlineSandbox, server: SandboxServer
) -> None:
    params = {"client_id": box.client_id, "response_type": "code"}
    url = f"{server.url}/api/oauth2/auth"
    remote = httpx.get(url, params={**params, "redirect_uri": "http://app.example.com/cb"})
    assert remote.status_code == 400
    https = httpx.get(url, params={**params, "redirect_uri": REDIRECT})
    assert https.status_code == 302 and https.headers["location"].startswith(REDIRECT)
    loopback = httpx.get(url, params={**params, "redirect_uri": "http://127.0.0.1:9/cb"})
    assert loopback.status_code == 302


def test_login_with_an_https_redirect_and_the_pasted_address(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    printed: list[str] = []
    _login(box, server, tmp_path, _browser, printed, redirect_uri=REDIRECT)
    assert _works(server, tmp_path)
    stored = TokenStore("exact", tmp_path).load()
    assert stored is not None
    shown = "\n".join(printed)
    assert stored["access_token"] not in shown and stored["refresh_token"] not in shown
    assert box.client_secret not in shown
    assert httpx.URL(printed[-1].splitlines()[-1]).params["redirect_uri"] == REDIRECT


def test_login_with_only_the_pasted_code(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    def paste_code(url: str) -> str:
        location = _browser(url)
        return location.split("code=", 1)[1].split("&", 1)[0]  # as in the address bar

    _login(box, server, tmp_path, paste_code, [], redirect_uri=REDIRECT)
    assert _works(server, tmp_path)


def test_a_pasted_address_with_a_foreign_state_is_refused(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    def forged(url: str) -> str:
        location = httpx.URL(_browser(url))
        return str(location.copy_set_param("state", "not-the-one"))

    with pytest.raises(AuthError, match="state"):
        _login(box, server, tmp_path, forged, [], redirect_uri=REDIRECT)
    assert TokenStore("exact", tmp_path).load() is None


def test_a_script_passes_the_code_of_a_login_done_apart(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    location = _browser(
        str(
            httpx.URL(
                f"{server.url}/api/oauth2/auth",
                params={"client_id": box.client_id, "redirect_uri": REDIRECT},
            )
        )
    )
    _login(box, server, tmp_path, None, [], redirect_uri=REDIRECT, code=location)
    assert _works(server, tmp_path)


def test_a_plain_http_redirect_elsewhere_is_refused_before_any_call(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    with pytest.raises(AuthError, match="https"):
        _login(box, server, tmp_path, _browser, [], redirect_uri="http://app.example.com/cb")
    assert box.codes == {}


def test_samband_auth_pastes_on_stdin(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    """The command itself: ``samband auth exact-online … --redirect-uri https://…`` prints
    the URL, and the redirected address comes back on standard input."""
    config = tmp_path / "samband.yaml"
    config.write_text(
        f"""
systems:
  exact:
    kind: exact-online
    base_url: {server.url}
    division: {box.division}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
dataflows: []
""",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "EXACT_CLIENT_ID": box.client_id,
        "EXACT_CLIENT_SECRET": box.client_secret,
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "samband.cli", "auth", "exact-online", "exact"),
            *("-c", str(config), "--no-browser", "--redirect-uri", REDIRECT),
        ],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    printed = b""
    for line in proc.stdout:
        printed += line
        if line.startswith(b"http"):
            proc.stdin.write((_browser(line.decode().strip()) + "\n").encode())
            proc.stdin.flush()
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (printed + rest, err)
    stored = TokenStore("exact", tmp_path / ".samband").load()
    assert stored is not None
    for secret in (stored["access_token"], stored["refresh_token"], box.client_secret):
        assert secret.encode() not in printed + rest + err
