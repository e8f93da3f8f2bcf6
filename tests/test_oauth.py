"""The shared OAuth2 module against the Exact Online sandbox's token endpoint (real HTTP)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.connectors._oauth import OAuthTokens, interactive_login
from samband.errors import AuthError
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock, SandboxServer
from samband.secrets import TokenStore
from tests.support.exact import serve


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


def _tokens(
    box: ExactOnlineSandbox, server: SandboxServer, store: TokenStore, **options: object
) -> OAuthTokens:
    return OAuthTokens(
        "exact",
        token_url=f"{server.url}/api/oauth2/token",
        client_id=box.client_id,
        client_secret=box.client_secret,
        store=store,
        clock=box.clock.time,
        kind="exact-online",
        **options,  # type: ignore[arg-type]
    )


def _seed_store(box: ExactOnlineSandbox, store: TokenStore) -> dict[str, str]:
    issued = box.issue_tokens()
    now = box.clock.time()
    store.save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + float(issued["expires_in"]),
            "requested_at": now,
        }
    )
    return issued


def _api_ok(server: SandboxServer, token: str) -> bool:
    answer = httpx.get(
        f"{server.url}/api/v1/current/Me", headers={"Authorization": f"Bearer {token}"}
    )
    return answer.status_code == 200


def test_rotation_is_stored_before_the_new_token_is_used(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    store = TokenStore("exact", tmp_path)
    first = _seed_store(box, store)
    tokens = _tokens(box, server, store, min_interval=570.0, refresh_skew=30.0)
    box.clock.advance(600)
    new_access = tokens.access_token()
    # "crash" now: the object is gone, only the file remains
    del tokens
    stored = TokenStore("exact", tmp_path).load()
    assert stored is not None
    assert stored["access_token"] == new_access
    assert stored["refresh_token"] != first["refresh_token"]
    assert stored["refresh_token"] in box.refresh_tokens
    assert _api_ok(server, new_access)
    # a restarted process refreshes with the stored (new) token; the old one then dies
    box.clock.advance(600)
    restarted = _tokens(box, server, TokenStore("exact", tmp_path), min_interval=570.0)
    third = restarted.access_token()
    assert third not in (first["access_token"], new_access)
    assert _api_ok(server, third)
    refused = httpx.post(
        f"{server.url}/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": box.client_id,
            "client_secret": box.client_secret,
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_the_570_second_rule_is_respected(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    store = TokenStore("exact", tmp_path)
    first = _seed_store(box, store)
    tokens = _tokens(box, server, store, min_interval=570.0, refresh_skew=60.0)
    box.clock.advance(545)  # within the refresh skew, but before 570 s
    assert tokens.access_token() == first["access_token"]
    assert tokens.force_refresh() is False  # a 401 now cannot be helped by asking again
    assert box.token_requests == 0
    box.clock.advance(30)  # 575 s after the last token
    fresh = tokens.access_token()
    assert fresh != first["access_token"]
    assert box.token_requests == 1
    assert tokens.access_token() == fresh  # reused, no new request
    assert box.token_requests == 1


def test_the_sandbox_refuses_a_refresh_within_570_seconds(
    box: ExactOnlineSandbox, server: SandboxServer
) -> None:
    issued = box.issue_tokens()
    box.clock.advance(100)
    answer = httpx.post(
        f"{server.url}/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": box.client_id,
            "client_secret": box.client_secret,
        },
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "access_denied",
        "error_description": "Rate limit exceeded: access_token not expired",
    }


def test_missing_or_dead_refresh_token_tells_the_user_to_log_in(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    store = TokenStore("exact", tmp_path)
    with pytest.raises(AuthError, match=r"samband auth exact-online -c FILE SYSTEM"):
        _tokens(box, server, store).access_token()
    store.save({"access_token": "x", "refresh_token": "sbx-rt-secret-value", "expires_at": 0.0})
    with pytest.raises(AuthError) as caught:
        _tokens(box, server, store).access_token()
    message = str(caught.value)
    assert "invalid_grant" in message and "samband auth exact-online" in message
    assert "sbx-rt-secret-value" not in message


def test_expires_in_as_a_string_is_understood(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    store = TokenStore("exact", tmp_path)
    _seed_store(box, store)
    box.clock.advance(600)
    tokens = _tokens(box, server, store, min_interval=570.0)
    tokens.access_token()
    stored = store.load()
    assert stored is not None
    assert stored["expires_at"] == pytest.approx(stored["requested_at"] + 600.0)


def test_login_through_the_sandbox_auth_page(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    loaded = parse_config(
        f"""
systems:
  exact:
    kind: exact-online
    label: Exact Online
    base_url: {server.url}
    division: {box.division}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
dataflows: []
"""
    )
    browser_answers: list[int] = []

    def browser(url: str) -> None:
        # what the user's browser does: open the URL, follow the redirect to the listener
        answer = httpx.get(url, follow_redirects=True)
        browser_answers.append(answer.status_code)

    def echo(text: str) -> None:
        url = text.splitlines()[-1]
        threading.Thread(target=browser, args=(url,), daemon=True).start()

    ExactOnlineConnector.login(
        "exact",
        loaded.config,
        port=0,
        open_browser=False,
        echo=echo,
        state_dir=str(tmp_path),
        timeout=20,
        credentials={"client_id": box.client_id, "client_secret": box.client_secret},
    )
    stored = TokenStore("exact", tmp_path).load()
    assert stored is not None and stored["refresh_token"] in box.refresh_tokens
    assert _api_ok(server, stored["access_token"])
    assert browser_answers == [200]


def test_login_refuses_a_redirect_with_a_foreign_state(tmp_path: Path) -> None:
    def echo(text: str) -> None:
        url = text.splitlines()[-1]
        redirect = httpx.URL(url).params["redirect_uri"]

        def forged() -> None:
            httpx.get(redirect, params={"code": "stolen", "state": "not-the-one"})

        threading.Thread(target=forged, daemon=True).start()

    with pytest.raises(AuthError, match="state"):
        interactive_login(
            "exact",
            authorize_url="http://127.0.0.1:9/api/oauth2/auth",
            params={"client_id": "c"},
            port=0,
            open_browser=False,
            echo=echo,
            timeout=20,
        )


def test_two_workers_sharing_the_token_file_refresh_once(
    box: ExactOnlineSandbox, server: SandboxServer, tmp_path: Path
) -> None:
    _seed_store(box, TokenStore("exact", tmp_path))
    first = _tokens(box, server, TokenStore("exact", tmp_path), min_interval=570.0)
    second = _tokens(box, server, TokenStore("exact", tmp_path), min_interval=570.0)
    first.access_token()
    second.access_token()  # both have read the same pair
    box.clock.advance(600)
    results: list[str] = []
    workers = [
        threading.Thread(target=lambda t=t: results.append(t.access_token()))  # type: ignore[misc]
        for t in (first, second)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert box.token_requests == 1  # the second adopted the first one's new pair
    assert results[0] == results[1] and _api_ok(server, results[0])
