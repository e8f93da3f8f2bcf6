"""The proof of the queue: 20 tenants, 3 ``samband worker --queue`` processes, workers
killed (SIGKILL, one in the middle of a tenant's job each time) while the tenants' records
are edited.  Every tenant converges, nothing is created twice, two runs of one tenant
never overlap, and every job of a killed worker is run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import check, run_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("cluster")]


def test_twenty_tenants_three_workers_killed_at_random(postgres_url: str, tmp_path: Path) -> None:
    cluster = run_cluster(postgres_url, tmp_path, tenants=20, workers=3, kills=5, seconds=15)
    check(cluster, 20, 5)
