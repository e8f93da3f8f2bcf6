"""The HTTP client every API connector uses: auth hooks, pacing, retries, clear errors.

* Transient failures (429, 5xx, connection resets, timeouts, truncated or non-JSON
  bodies, HTML maintenance pages) are retried with exponential backoff and jitter,
  honouring ``Retry-After`` (or what the connector's ``retry_after`` hook reads from the
  body or rate-limit headers).
* A client-side :class:`RateLimiter` paces calls so that a normal run never hits a limit.
* TLS verification is always on, except for sandboxes on the loopback address.
* Error messages name the system, the method and the path; never headers, bodies of
  requests, or query strings (which may carry secrets).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from samband import exactjson
from samband.connectors import _observe
from samband.connectors._trace import event_hooks
from samband.connectors.base import Stats
from samband.errors import (
    AuthError,
    ConnectorError,
    ContractError,
    InUse,
    NotFound,
    QuotaExhausted,
    RecordError,
    TransientError,
    UnreachableError,
)
from samband.plugin.settings import RateLimit
from samband.quota import QuotaSpent, QuotaUnavailable, cluster_database, connection_key

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (where TLS verification may be off).  Only
    literal loopback addresses count: a name such as ``127.0.0.1.example.com`` does not."""
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateLimiter:
    """At most ``calls`` per ``period`` seconds (sliding window), shared by threads."""

    def __init__(
        self,
        calls: int,
        period: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.calls, self.period = calls, period
        self._clock, self._sleep = clock, sleep
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._times and now - self._times[0] >= self.period:
                    self._times.popleft()
                if len(self._times) < self.calls:
                    self._times.append(now)
                    return
                wait = self.period - (now - self._times[0])
            self._sleep(max(wait, 0.001))

    def penalise(self, seconds: float) -> None:
        """Block every caller for ``seconds`` (after a 429)."""
        with self._lock:
            until = self._clock() + seconds
            self._times = deque([until - self.period] * self.calls)


_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(scope: str, key: str, calls: int, period: float) -> RateLimiter:
    """One limiter per (scope, key) in the process, e.g. per subscription key."""
    with _limiters_lock:
        limiter = _limiters.get((scope, key))
        if limiter is None:
            limiter = _limiters[(scope, key)] = RateLimiter(calls, period)
        return limiter


#: seconds of margin, at least, on the period of a limiter shared by the workers of a cluster
CLUSTER_MARGIN = 0.25


def limiter_for(
    scope: str, key: str, limit: RateLimit | None, *, margin: float = 0.0
) -> RateLimiter | None:
    """The limiter of a ``rate_limit`` setting (None: no pacing); ``margin`` seconds are
    added to the period (a server that counts arrivals sees jitter).  With a cluster quota
    database (``SAMBAND_QUOTA_DATABASE``) every worker of the connection shares it, with
    at least :data:`CLUSTER_MARGIN`; otherwise it is this process's."""
    if limit is None or not limit.paced:
        return None
    calls, period = max(int(limit.calls), 1), limit.per + margin
    database = cluster_database()
    if database is None:
        return shared_limiter(scope, key, calls, period)
    from samband.connectors._cluster import ClusterLimiter

    # between its slot and the server, a call of a cluster waits for another process to
    # be scheduled, a database round trip and the machine's load: on 2 loaded cores, 20
    # tenants at 10 a second with 0.1 s of margin met a 429 about one run in ten (11
    # arrivals in a second from calls slotted 1.1 s apart); the margin is seconds, not a
    # share, because the jitter is
    period = limit.per + max(margin, CLUSTER_MARGIN)

    bucket = connection_key(scope.split("/")[0], key)
    with _limiters_lock:
        limiter = _limiters.get(("cluster:" + scope, key))
        if not isinstance(limiter, ClusterLimiter) or limiter.database is not database:
            limiter = ClusterLimiter(database, bucket, calls, period)
            _limiters[("cluster:" + scope, key)] = limiter
        return limiter


@contextmanager
def conflict_is_in_use() -> Iterator[None]:
    """Around a DELETE: a 409 answer means the record is still referenced (InUse)."""
    try:
        yield
    except NotFound:
        raise
    except RecordError as exc:
        if exc.details.get("status") == 409:
            raise InUse(exc.reason, details=exc.details) from None
        raise


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(when.timestamp() - current, 0.0)


class Auth:
    """Adds credentials to requests; ``refresh`` is called once after a 401."""

    def headers(self) -> dict[str, str]:
        return {}

    def refresh(self) -> bool:
        """Get new credentials; return False when that cannot help."""
        return False


class HttpClient:
    """A small synchronous API client with retries and pacing."""

    def __init__(
        self,
        system_id: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        stats: Stats | None = None,
        max_retries: int = 6,
        backoff_base: float = 0.25,
        backoff_cap: float = 30.0,
        max_total_wait: float = 300.0,
        timeout: float = 30.0,
        retry_after: Callable[[httpx.Response], float | None] | None = None,
        describe_error: Callable[[httpx.Response], str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.system_id = system_id
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.limiter = limiter
        self.stats = stats or Stats()
        self.max_retries = max_retries
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.max_total_wait = max_total_wait
        self._retry_after = retry_after or retry_after_seconds
        self._describe_error = describe_error or describe_problem
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            verify=not is_loopback(self.base_url),
            transport=transport,
            event_hooks=event_hooks(),
        )

    def close(self) -> None:
        self._client.close()

    # -- the call -----------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Callable[[httpx.Response], bool] | None = None,
        idempotent: bool | None = None,
        refused_is_record_error: bool = True,
    ) -> httpx.Response:
        """Send one request, retrying what may pass.  Returns a response with a 2xx
        status (or one ``ok`` accepts); raises a SambandError otherwise."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        body = content
        send_headers = dict(headers or {})
        if json is not None:
            body = exactjson.dumps(json, default=_json_default)
            send_headers.setdefault("Content-Type", "application/json")
        attempt, waited, refreshed = 0, 0.0, False
        path = _path_only(url)
        while True:
            listeners = _observe.listeners
            # credentials first: a token fetched now is a call of its own, and the slot
            # this call takes must be the moment it is sent
            if self.auth is not None:
                send_headers.update(self.auth.headers())
            if self.limiter is not None:
                self._pace(method, path, listeners)
            self.stats.api_calls += 1
            response: httpx.Response | None = None
            throttled = False
            try:
                resp = self._send(
                    listeners,
                    method,
                    url,
                    params=params,
                    data=data,
                    content=body,
                    headers=send_headers,
                )
                # httpx binds the stream to its response, a reference cycle that keeps the
                # body (a whole page) until the cyclic collector runs: once read, unbind it
                resp.stream = httpx.ByteStream(resp.content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt >= 2:
                    raise UnreachableError(
                        self.system_id,
                        f"{method} {path}: cannot connect to {self.base_url} "
                        f"({exc.__class__.__name__})",
                        "check the system's base_url/url and that the service is running",
                    ) from None
                reason = f"cannot connect ({exc.__class__.__name__})"
            except httpx.TransportError as exc:
                # Reset mid-body, read timeout: a POST may have been applied; the engine's
                # create intents make a repeated POST safe to detect.
                reason = f"transport error ({exc.__class__.__name__})"
                if not idempotent and not isinstance(exc, httpx.ConnectTimeout):
                    raise TransientError(f"{self.system_id}: {method} {path}: {reason}") from None
            else:
                response = resp
                status = resp.status_code
                if ok is not None and ok(resp):
                    return resp
                if 200 <= status < 300 and ok is None:
                    if _looks_like_html(resp) and method.upper() != "HEAD":
                        reason = "an HTML page instead of JSON (maintenance?)"
                        if not idempotent:
                            raise TransientError(
                                f"{self.system_id}: {method} {path}: {reason}; not repeated "
                                "because the write may have been applied"
                            )
                    else:
                        return resp
                elif status == 401 and self.auth is not None and not refreshed:
                    refreshed = True
                    if self.auth.refresh():
                        continue
                    raise AuthError(
                        self.system_id, f"{method} {path}: 401 {self._describe_error(resp)}"
                    )
                elif status == 401:
                    raise AuthError(
                        self.system_id,
                        f"{method} {path}: 401 {self._describe_error(resp)}",
                        "check the credentials in the environment",
                    )
                elif status == 429:
                    self.stats.throttled += 1
                    reason = "429 too many requests"
                    # every caller of this limiter (every worker, with a cluster quota)
                    # waits: without Retry-After, for the backoff this client would take
                    delay = self._retry_after(resp)
                    if delay is None:
                        delay = min(self.backoff_cap, self.backoff_base * 2**attempt)
                    if self.limiter is not None:
                        self._penalise(delay, method, path)
                    throttled = True
                elif status >= 500 or status == 408:
                    reason = f"{status} {self._describe_error(resp)}"
                    # 503: the server could not handle the request (RFC 9110 §15.6.4), so a
                    # write is safe to repeat; after any other 5xx its outcome is unknown.
                    if not idempotent and status != 503:
                        # The server may have applied the write before failing: the engine
                        # looks the record up (create intents) instead of repeating it blind.
                        raise TransientError(
                            f"{self.system_id}: {method} {path}: {reason}; not repeated "
                            "because the write may have been applied"
                        )
                elif status == 404:
                    raise NotFound(f"{method} {path}: 404 {self._describe_error(resp)}")
                elif status == 403:
                    raise AuthError(
                        self.system_id,
                        f"{method} {path}: 403 {self._describe_error(resp)}",
                        "the credentials lack a privilege this call needs",
                    )
                else:
                    message = f"{method} {path}: {status} {self._describe_error(resp)}"
                    if refused_is_record_error:
                        raise RecordError(message, details={"status": status})
                    raise ContractError(self.system_id, message)
            attempt += 1
            self.stats.retries += 1
            if attempt > self.max_retries:
                raise TransientError(
                    f"{self.system_id}: {method} {path}: {reason} (gave up after {attempt} tries)"
                )
            delay = self._retry_after(response) if response is not None else None
            if delay is None:
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                delay *= 0.5 + random.random()
            if waited + delay > self.max_total_wait:
                raise TransientError(
                    f"{self.system_id}: {method} {path}: {reason} (waited {waited:.0f}s in all)"
                )
            waited += delay
            log.info(
                "%s: %s %s: %s; try %d again in %.1fs",
                self.system_id,
                method,
                path,
                reason,
                attempt + 1,
                delay,
            )
            if throttled and listeners:
                for listener in listeners:
                    listener.waited(self.system_id, delay, "429")
            self._sleep(delay)

    def _pace(self, method: str, path: str, listeners: tuple[_observe.Listener, ...] = ()) -> None:
        """The limiter's turn (its wait told to each listener); a quota the workers share
        that is spent or cannot be used is an error of this system."""
        assert self.limiter is not None
        try:
            if listeners:
                self._acquire_watched(listeners)
            else:
                self.limiter.acquire()
        except QuotaSpent as exc:
            raise QuotaExhausted(self.system_id, f"{method} {path}: {exc}", exc.resume_at) from None
        except QuotaUnavailable as exc:
            raise ConnectorError(self.system_id, f"{method} {path}: {exc}") from None

    def _penalise(self, seconds: float, method: str, path: str) -> None:
        assert self.limiter is not None
        try:
            self.limiter.penalise(seconds)
        except QuotaUnavailable as exc:
            raise ConnectorError(self.system_id, f"{method} {path}: {exc}") from None

    def _send(
        self, listeners: tuple[_observe.Listener, ...], method: str, url: str, **options: Any
    ) -> httpx.Response:
        """One request, its body read; each listener is told of its answer."""
        if not listeners:
            resp = self._client.request(method, url, **options)
            resp.read()
            return resp
        sent, status = time.perf_counter(), None
        try:
            resp = self._client.request(method, url, **options)
            resp.read()
            status = resp.status_code
            return resp
        finally:
            seconds = time.perf_counter() - sent
            for listener in listeners:
                listener.answered(self.system_id, status, seconds)

    def _acquire_watched(self, listeners: tuple[_observe.Listener, ...]) -> None:
        """The limiter's turn, its wait told to each listener."""
        assert self.limiter is not None
        began = time.perf_counter()
        self.limiter.acquire()
        seconds = time.perf_counter() - began
        if seconds >= 0.001:  # a turn taken at once is no wait
            for listener in listeners:
                listener.waited(self.system_id, seconds, "pacing")

    def get_json(self, url: str, *, attempts: int = 3, **kwargs: Any) -> Any:
        """GET and parse JSON; a cut-off or garbled body is read again (GET is safe)."""
        for attempt in range(attempts):
            response = self.request("GET", url, **kwargs)
            try:
                return self.json(response, "GET", url)
            except ContractError:
                if attempt + 1 >= attempts:
                    raise
                self.stats.retries += 1
        raise AssertionError("unreachable")

    def json(self, response: httpx.Response, method: str, url: str) -> Any:
        """Parse a JSON body, or raise ContractError naming the request."""
        if not response.content:
            return None
        try:
            return exactjson.loads(response.content, decimal=str)
        except orjson.JSONDecodeError:
            snippet = response.text[:80].replace("\n", " ")
            raise ContractError(
                self.system_id,
                f"{method} {_path_only(url)} answered {response.status_code} with a body that is "
                f"not JSON: {snippet!r}",
            ) from None


def describe_problem(response: httpx.Response) -> str:
    """Title and detail of an RFC 7807 body (either key case), or the start of the body."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        lower = {str(k).lower(): v for k, v in body.items()}
        parts = [str(lower[k]) for k in ("title", "detail") if lower.get(k)]
        if not parts:
            for key in ("message", "error_description", "error", "errordescription"):
                if lower.get(key):
                    value = lower[key]
                    if isinstance(value, dict):
                        value = value.get("message", value)
                        if isinstance(value, dict):
                            value = value.get("value", value)
                    parts.append(str(value))
                    break
        errors = lower.get("errors")
        if errors:
            parts.append(str(errors))
        if parts:
            return ": ".join(parts)
    text = response.text[:120].replace("\n", " ").strip()
    return text or response.reason_phrase


def _looks_like_html(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "")
    if "html" in ctype:
        return True
    return response.content[:15].lstrip().lower().startswith((b"<!doctype html", b"<html"))


def _path_only(url: str) -> str:
    return urlsplit(url).path or url


def _json_default(value: Any) -> Any:
    from samband.types import to_wire

    result = to_wire(value)
    if result is value:
        raise TypeError(f"cannot serialise {type(value).__name__}")
    return result


def dumps(value: Any) -> bytes:
    return exactjson.dumps(value, default=_json_default)
