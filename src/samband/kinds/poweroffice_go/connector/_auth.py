"""PowerOffice GO client-credentials tokens: one per process and key set, thread-safe.

``POST /OAuth/Token`` with ``Authorization: Basic base64(applicationKey:clientKey)``,
``Ocp-Apim-Subscription-Key`` and ``grant_type=client_credentials`` answers an access token
that lives 20 minutes; there is no refresh token, so a new one is asked for shortly before
the old one expires (``RENEW_EARLY`` seconds), or at once when the API answers 401.
Every connector of the process that uses the same keys shares the token.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson

from samband.connectors._http import Auth, HttpClient, RateLimiter, describe_problem
from samband.connectors.base import Stats
from samband.errors import AuthError

RENEW_EARLY = 60.0


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: str | None = None
    expires: float = 0.0  # monotonic


_SLOTS: dict[str, _Slot] = {}
_SLOTS_LOCK = threading.Lock()


def _slot(token_url: str, application_key: str, client_key: str, subscription_key: str) -> _Slot:
    # keyed by a digest: the keys themselves are not kept in a process-wide table
    digest = hashlib.sha256(
        "\0".join((token_url, application_key, client_key, subscription_key)).encode()
    ).hexdigest()
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(digest, _Slot())


def forget_tokens() -> None:
    """Drop every cached token (tests)."""
    with _SLOTS_LOCK:
        _SLOTS.clear()


class PowerOfficeAuth(Auth):
    """Bearer tokens for the API calls of one system."""

    def __init__(
        self,
        system_id: str,
        token_url: str,
        application_key: str,
        client_key: str,
        subscription_key: str,
        *,
        stats: Stats | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system_id = system_id
        parts = urlsplit(token_url)
        self._token_path = parts.path or "/OAuth/Token"
        self._basic = base64.b64encode(f"{application_key}:{client_key}".encode()).decode()
        self._subscription_key = subscription_key
        self._slot = _slot(token_url, application_key, client_key, subscription_key)
        self._clock = clock
        self._http = HttpClient(
            system_id,
            f"{parts.scheme}://{parts.netloc}",
            stats=stats,
            limiter=limiter,
            transport=transport,
            max_retries=4,
        )
        self.renewals = 0
        # the token this thread last sent: a 401 renews it only if no other thread has
        self._sent = threading.local()

    def close(self) -> None:
        self._http.close()

    def headers(self) -> dict[str, str]:
        token = self.token()
        self._sent.token = token
        return {"Authorization": f"Bearer {token}"}

    def token(self) -> str:
        slot = self._slot
        with slot.lock:
            if slot.token is None or self._clock() >= slot.expires - RENEW_EARLY:
                self._fetch(slot)
            assert slot.token is not None
            return slot.token

    def refresh(self) -> bool:
        slot = self._slot
        with slot.lock:
            if slot.token is None or slot.token == getattr(self._sent, "token", None):
                self._fetch(slot)
        return True

    def _fetch(self, slot: _Slot) -> None:
        for _ in range(3):  # an answer cut off on the way is asked for again
            response = self._request()
            if response.status_code != 200:
                break
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                continue
            if isinstance(body, dict) and body.get("access_token"):
                lifetime = float(body.get("expires_in") or 1200)
                slot.token = str(body["access_token"])
                slot.expires = self._clock() + lifetime
                self.renewals += 1
                return
            break
        what = (
            describe_problem(response)
            if response.status_code != 200
            else "no access_token in the answer"
        )
        raise AuthError(
            self.system_id,
            f"POST {self._token_path}: the token request was refused "
            f"({response.status_code} {what})",
            "check the application key, client key and subscription key of this system",
        )

    def _request(self) -> httpx.Response:
        return self._http.request(
            "POST",
            self._token_path,
            data={"grant_type": "client_credentials"},
            headers={
                "Authorization": f"Basic {self._basic}",
                "Ocp-Apim-Subscription-Key": self._subscription_key,
                "Accept": "application/json",
            },
            idempotent=True,
            ok=lambda r: r.status_code < 500 and r.status_code not in (408, 429),
        )
