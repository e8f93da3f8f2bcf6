"""``make chaos``: the queue's proof at scale — 200 tenants on the sandboxes, 3 workers,
50 workers killed (SIGKILL, each in the middle of a tenant's job) while the tenants'
records are edited.  As in the short version (tests/test_tenants_cluster.py, in ``make
test``), every tenant syncs its CRM to its own client company in one PowerOffice GO
sandbox, all sharing one subscription key and its 10 requests a second: the 200 tenants'
syncs are bound by that one limit, so they converge minutes after the edits stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from samband.quota import ENV as QUOTA_DATABASE
from tests.support.cluster import check, run_cluster
from tests.support.sandbox_tenants import PowerOfficeTenants

pytestmark = pytest.mark.postgres


@pytest.fixture
def poweroffice() -> Iterator[PowerOfficeTenants]:
    tenants = PowerOfficeTenants()
    yield tenants
    tenants.close()


def test_two_hundred_tenants_fifty_kills(
    chaos_long: bool, postgres_url: str, tmp_path: Path, poweroffice: PowerOfficeTenants
) -> None:
    if not chaos_long:
        pytest.skip("make chaos only (tests/test_tenants_cluster.py is its short version)")
    cluster = run_cluster(
        postgres_url,
        tmp_path,
        tenants=200,
        workers=3,
        kills=50,
        seconds=150,
        # 200 tenants × (a token, a read, 3 creates) is two minutes of the shared limit
        every="60s",
        kind=poweroffice,
        records=3,
        pause=0.5,
        converge_within=900,
        worker_env={QUOTA_DATABASE: postgres_url},
    )
    check(cluster, 200, 50)
    assert poweroffice.throttled() == 0, poweroffice.around_429s()
    assert poweroffice.quota_grants(postgres_url) >= poweroffice.calls()
    print(
        f"200 tenants, {len(cluster.killed)} kills, {poweroffice.calls()} API calls, "
        f"answers {dict(poweroffice.answers.statuses)}"
    )
