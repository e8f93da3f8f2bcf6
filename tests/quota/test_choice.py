"""Which pacing a connector gets: the cluster's bucket when SAMBAND_QUOTA_DATABASE is set,
this process's limiter otherwise — and without it, no database driver is even loaded."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from samband.connectors._http import RateLimiter, limiter_for
from samband.plugin.settings import RateLimit
from samband.quota import ENV, reset_cluster_database


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    reset_cluster_database()
    yield
    reset_cluster_database()


def test_without_a_quota_database_each_process_paces_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    limiter = limiter_for("webcrm", "digest-a", RateLimit(calls=250, per=60))
    assert type(limiter) is RateLimiter
    assert limiter_for("webcrm", "digest-a", RateLimit(calls=0, per=60)) is None


def test_with_a_quota_database_the_bucket_is_the_accounts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from samband.connectors._cluster import ClusterLimiter

    # nothing connects until the first call
    monkeypatch.setenv(ENV, "postgresql://samband@127.0.0.1:9/quota")
    limiter = limiter_for("poweroffice-go/10/1s", "digest-a", RateLimit(calls=10), margin=0.1)
    assert isinstance(limiter, ClusterLimiter)
    assert limiter.key.startswith("poweroffice-go:") and "digest-a" not in limiter.key
    # a quarter second of margin in a cluster, where calls jitter more than the 0.1 s
    # a single process leaves
    assert limiter.interval == pytest.approx(0.125)
    assert limiter_for("poweroffice-go/10/1s", "digest-a", RateLimit(calls=10), margin=0.1) is (
        limiter
    )
    other = limiter_for("poweroffice-go/10/1s", "digest-b", RateLimit(calls=10), margin=0.1)
    assert isinstance(other, ClusterLimiter) and other.key != limiter.key


def test_the_database_driver_is_loaded_only_for_a_quota_database() -> None:
    code = (
        "import sys, samband.connectors._http, samband.kinds.exact_online.connector; "
        "sys.exit('psycopg' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
