"""Several worker processes share one PowerOffice GO subscription key: with the cluster
quota database they stay under the sandbox's strict limit together (0 answers 429), and a
429 one of them meets holds every one of them back for its Retry-After."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from samband.kinds.poweroffice_go.connector._auth import forget_tokens
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.quota import connection_key
from samband.quota.bucket import QuotaDatabase
from samband.sandbox._base import SandboxServer
from tests.support.hammer import hammer
from tests.support.poweroffice import KEYS
from tests.support.sandbox_tenants import Answers

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("quota-workers")]

WORKERS = 3
CALLS = 12  # each: 36 calls at 10 a second


@pytest.fixture
def box() -> PowerOfficeSandbox:
    return PowerOfficeSandbox(rate_limit=10)  # PowerOffice GO's own limit


@pytest.fixture
def arrivals(box: PowerOfficeSandbox) -> Iterator[tuple[Answers, SandboxServer]]:
    wrapped = Answers(box.app)
    server = SandboxServer(wrapped).start()
    yield wrapped, server
    server.stop()


def _run(quota_url: str | None, base_url: str, during: Any = None) -> list[tuple[int, int]]:
    context = multiprocessing.get_context("spawn")
    go = context.Manager().Event()
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        futures = [pool.submit(hammer, quota_url, base_url, CALLS, go) for _ in range(WORKERS)]
        go.set()
        if during is not None:
            during()
        return [future.result(timeout=300) for future in futures]


def _api(seen: list[tuple[float, int, str]]) -> list[tuple[float, int, str]]:
    return [hit for hit in seen if not hit[2].split(" ", 1)[1].startswith(("/OAuth", "/_sandbox"))]


def test_workers_sharing_the_quota_database_never_meet_a_429(
    box: PowerOfficeSandbox, arrivals: tuple[Answers, SandboxServer], postgres_url: str
) -> None:
    seen, server = arrivals
    results = _run(postgres_url, f"{server.url}/v2")
    assert [throttled for _, throttled in results] == [0] * WORKERS
    assert box.throttled == 0
    hits = sorted(t for t, status, _ in _api(seen.seen))
    assert len(hits) == WORKERS * CALLS
    # never more than 10 in any second, measured where the calls arrive
    assert max(sum(1 for t in hits[i:] if t - hits[i] < 1.0) for i in range(len(hits))) <= 10


def test_workers_pacing_themselves_alone_do_meet_429s(
    box: PowerOfficeSandbox, arrivals: tuple[Answers, SandboxServer]
) -> None:
    """The control: the same load without the quota database exceeds the limit, so the
    test above can fail."""
    _, server = arrivals
    forget_tokens()
    results = _run(None, f"{server.url}/v2")
    assert box.throttled > 0
    assert sum(throttled for _, throttled in results) == box.throttled


def test_one_429_holds_every_worker_back_for_its_retry_after(
    box: PowerOfficeSandbox, arrivals: tuple[Answers, SandboxServer], postgres_url: str
) -> None:
    seen, server = arrivals

    def inject_once_running() -> None:
        deadline = time.monotonic() + 120
        while len(_api(seen.seen)) < WORKERS * 3:
            assert time.monotonic() < deadline, "the workers never got going"
            time.sleep(0.01)
        box.faults.update(burst_429=1)  # the next call gets 429, Retry-After: 1

    results = _run(postgres_url, f"{server.url}/v2", inject_once_running)
    assert sum(throttled for _, throttled in results) == 1
    hits = seen.seen  # the 429 may fall on a token request: it counts as well
    (injected,) = [t for t, status, _ in hits if status == 429]
    # the worker that met it tells the database within a few milliseconds; from then on
    # no worker calls until Retry-After has passed
    held = [t - injected for t, status, _ in hits if 0.25 < t - injected < 0.95]
    assert held == []
    database = QuotaDatabase(postgres_url)
    try:
        key = connection_key("poweroffice-go", _digest(KEYS["subscription_key"]))
        state = database.state(key)
        assert state is not None and state.penalties == 1
    finally:
        database.close()


def _digest(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()[:16]
