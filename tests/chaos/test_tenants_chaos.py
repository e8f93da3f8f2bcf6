"""``make chaos``: the queue's proof at scale — 200 tenants, 3 workers, 50 workers killed
(SIGKILL, each in the middle of a tenant's job) while the tenants' records are edited.
The short version is tests/test_tenants_cluster.py (in ``make test``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import check, run_cluster

pytestmark = pytest.mark.postgres


def test_two_hundred_tenants_fifty_kills(
    chaos_long: bool, postgres_url: str, tmp_path: Path
) -> None:
    if not chaos_long:
        pytest.skip("make chaos only (tests/test_tenants_cluster.py is its short version)")
    cluster = run_cluster(
        postgres_url, tmp_path, tenants=200, workers=3, kills=50, seconds=150, every="10s"
    )
    check(cluster, 200, 50)
