"""Exact Online's rate limits: pacing from the headers, 429s, the daily budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.config.model import SystemConfig
from samband.connectors._http import RateLimiter
from samband.errors import QuotaExhausted
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.connector._limits import ExactPacer
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock, SandboxServer
from samband.secrets import TokenStore
from tests.support.exact import serve


@pytest.fixture(autouse=True)
def _token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())


def start(
    speed: float = 200.0, records: int = 30, **options: object
) -> tuple[ExactOnlineSandbox, SandboxServer]:
    """A sandbox whose clock runs ``speed`` times faster than real time."""
    box = ExactOnlineSandbox(clock=Clock(speed=speed), sync_page_size=5, **options)  # type: ignore[arg-type]
    box.seed(records, 5)
    return box, serve(box)


def connector_for(
    box: ExactOnlineSandbox, server: SandboxServer, state_dir: Path
) -> ExactOnlineConnector:
    issued = box.issue_tokens()
    now = box.clock.time()
    TokenStore("exact", state_dir).save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + 600,
            "requested_at": now,
        }
    )
    config = SystemConfig(kind="exact-online", base_url=server.url, division=box.division)
    return ExactOnlineConnector(
        "exact",
        config,
        {"client_id": box.client_id, "client_secret": box.client_secret},
        state_dir=str(state_dir),
        clock=box.clock,
    )


@pytest.fixture
def small_minutely() -> Iterator[tuple[ExactOnlineSandbox, SandboxServer]]:
    box, server = start(minutely_limit=5, records=100)
    yield box, server
    server.stop()


def test_a_naive_client_is_throttled_by_the_sandbox() -> None:
    box, server = start(speed=1.0, minutely_limit=5)
    try:
        token = box.issue_tokens()["access_token"]
        statuses = []
        for _ in range(8):
            answer = httpx.get(
                f"{server.url}/api/v1/current/Me", headers={"Authorization": f"Bearer {token}"}
            )
            statuses.append(answer.status_code)
    finally:
        server.stop()
    assert statuses.count(429) >= 1
    assert "X-RateLimit-Minutely-Reset" in answer.headers
    assert "X-RateLimit-Reset" not in answer.headers  # a minutely 429 has minutely headers only
    assert answer.json()["error"]["message"]["value"].startswith("API rate limit exceeded")


def test_paced_reads_never_receive_a_429(
    small_minutely: tuple[ExactOnlineSandbox, SandboxServer], tmp_path: Path
) -> None:
    box, server = small_minutely
    connector = connector_for(box, server, tmp_path)
    records = [r for page in connector.read("Accounts", None) for r in page.records]
    assert len({r.id for r in records}) == 100
    assert connector.stats.api_calls >= 3 * box.minutely_limit  # several minutes' worth
    assert box.throttled == 0
    assert connector.stats.throttled == 0
    assert connector.pacer.waited > 0


def test_a_429_waits_until_the_reset_it_names(
    small_minutely: tuple[ExactOnlineSandbox, SandboxServer], tmp_path: Path
) -> None:
    box, server = small_minutely
    connector = connector_for(box, server, tmp_path)
    assert connector.get("Accounts", next(iter(box.tables["crm/Accounts"]))) is not None
    with box.lock:  # another app of the same key used up the minute meanwhile
        box.minute_used = box.minutely_limit
    reset = box.minute_reset
    found = connector.get("Accounts", next(iter(box.tables["crm/Accounts"])))
    assert found is not None
    assert box.throttled == 1 and connector.stats.throttled == 1
    assert box.clock.time() >= reset


def test_daily_budget_spent_ends_with_quota_exhausted(tmp_path: Path) -> None:
    box, server = start(daily_limit=4)
    try:
        connector = connector_for(box, server, tmp_path)
        pages = []
        with pytest.raises(QuotaExhausted) as caught:
            for page in connector.read("Accounts", None):
                pages.append(page)
        assert len(pages) == 4  # every call the budget allowed, then a clean stop
        assert box.throttled == 0  # stopped before Exact had to refuse
        midnight = datetime.fromtimestamp(box.clock.time(), UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        ) + timedelta(days=1)
        assert caught.value.resume_at == midnight
        assert midnight.isoformat() in str(caught.value)

        # a fresh process that knows nothing yet learns it from the 429
        fresh = connector_for(box, server, tmp_path / "fresh")
        with pytest.raises(QuotaExhausted) as again:
            list(fresh.read("Accounts", None))
        assert again.value.resume_at == midnight
        assert box.throttled == 1
    finally:
        server.stop()


class _Cluster(RateLimiter):
    """Stands for the cluster's shared bucket: records what the pacer tells it."""

    def __init__(self) -> None:
        super().__init__(1, 1.0)
        self.acquired = 0
        self.penalties: list[float] = []

    def acquire(self) -> None:
        self.acquired += 1

    def penalise(self, seconds: float) -> None:
        self.penalties.append(seconds)


def test_with_a_cluster_what_one_worker_learns_holds_every_worker_back() -> None:
    now = [1_000_000.0]
    pacer = ExactPacer("exact", clock=lambda: now[0], sleep=lambda s: None)
    cluster = pacer.cluster = _Cluster()
    pacer.acquire()
    assert cluster.acquired == 1  # every call also takes a slot of the shared bucket
    pacer.penalise(12.0)  # a 429 of this worker (its minute spent)
    assert cluster.penalties == [12.0]
    # the daily budget is spent: this worker stops, and every other waits for the reset
    reset_ms = (now[0] + 3600) * 1000
    pacer.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)})
    with pytest.raises(QuotaExhausted):
        pacer.acquire()
    assert cluster.penalties[-1] == pytest.approx(3600 + pacer.margin)
    assert cluster.acquired == 1
