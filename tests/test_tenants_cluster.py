"""The proof of the queue: 20 tenants on the sandboxes, 3 ``samband worker --queue``
processes, workers killed (SIGKILL, one in the middle of a tenant's job each time) while
the tenants' records are edited.

Each tenant syncs its own CRM to its own client company in one PowerOffice GO sandbox,
served over HTTP from the test's process; every tenant has its own client key and all
share one subscription key, whose 10 requests a second the sandbox enforces (429 over
it).  The workers share that limit through the quota database.  Every tenant converges,
no customer is created twice in any client company, two runs of one tenant never overlap,
every job of a killed worker is run again, and the sandbox answered no call with 429."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from samband.quota import ENV as QUOTA_DATABASE
from tests.support.cluster import check, run_cluster
from tests.support.sandbox_tenants import PowerOfficeTenants

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("cluster")]


@pytest.fixture
def poweroffice() -> Iterator[PowerOfficeTenants]:
    tenants = PowerOfficeTenants()
    yield tenants
    tenants.close()


def test_twenty_tenants_three_workers_killed_at_random(
    postgres_url: str, tmp_path: Path, poweroffice: PowerOfficeTenants
) -> None:
    cluster = run_cluster(
        postgres_url,
        tmp_path,
        tenants=20,
        workers=3,
        kills=5,
        seconds=15,
        kind=poweroffice,
        records=6,
        pause=0.3,
        worker_env={QUOTA_DATABASE: postgres_url},
    )
    check(cluster, 20, 5)
    assert poweroffice.throttled() == 0, poweroffice.around_429s()
    assert poweroffice.box.throttled == 0
    # every tenant's customers went through the sandbox, over HTTP, and every call the
    # workers made took its slot from the bucket they share
    assert poweroffice.calls() > 20 * 6
    assert poweroffice.quota_grants(postgres_url) >= poweroffice.calls()
