"""Every page and JSON endpoint of ``samband serve`` does work bounded by what it shows,
not by the size of the store: a page that read every link (or counted them on every
request) would do ten times the work with ten times the links.

The work is the store's own measure of it, SQLite's virtual-machine steps (a progress
handler), not time: it does not depend on the machine's load.  The routes are the ones
the app registers, so a page added later is checked too.  The speed itself is a figure of
``make bench`` (``bench/serve_bench.py``: 1 000 000 links, real HTTP)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from bench.serve_bench import fill, fill_path, get_routes, make_world, samples

from samband.sandbox._base import SandboxServer
from samband.service import Service, create_app

SMALL, LARGE = 2_000, 20_000
STEP = 100  # VM instructions per call of the progress handler


def _work_per_route(folder: Path, links: int) -> dict[str, int]:
    """Per GET route: the SQLite steps of one request, after a first one (which may count
    what is then kept until the store changes)."""
    folder.mkdir()
    url = f"sqlite:///{folder / 'state.db'}"
    config = make_world(folder, url)
    fill(url, links, runs=200, conflicts=300, quarantined=300)
    values = samples(config, url, links)
    service = Service(config, every=86_400)
    work: dict[str, int] = {}
    with (
        SandboxServer(create_app(service, manage_service=False)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        for template in get_routes(config):
            path = fill_path(template, values)
            assert path is not None, f"no sample value for a parameter of {template}"
            _get(client, path)
            assert service._inspector is not None
            sqlite = service._inspector.store.db.conn.connection.driver_connection
            steps = _Steps()
            sqlite.set_progress_handler(steps, STEP)  # type: ignore[union-attr]
            try:
                _get(client, path)
            finally:
                sqlite.set_progress_handler(None, STEP)  # type: ignore[union-attr]
            work[template] = steps.count
    service.stop()
    return work


class _Steps:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return 0  # go on


def _get(client: httpx.Client, path: str) -> None:
    with client.stream("GET", path) as response:
        assert response.status_code < 500, f"GET {path}: {response.status_code}"
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()


@pytest.mark.xdist_group("serve-pages")
def test_no_page_does_work_that_grows_with_the_links(tmp_path: Path) -> None:
    small = _work_per_route(tmp_path / "small", SMALL)
    large = _work_per_route(tmp_path / "large", LARGE)
    assert small.keys() == large.keys() and "/" in small
    # a page reading every link does ~10x the work; a bounded one about the same (an index
    # one level deeper, a few more steps)
    grown = {
        route: (small[route], large[route])
        for route in small
        if large[route] > 2 * small[route] + 50
    }
    assert not grown, f"work (x{STEP} SQLite steps) grows with the links: {grown}"


def test_the_quarantine_export_holds_every_record_across_its_pages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = make_world(tmp_path, url)
    fill(url, 10, runs=1, conflicts=0, quarantined=4_500)  # pages of 2 000
    service = Service(config, every=86_400)
    with SandboxServer(create_app(service, manage_service=False)) as server:
        exported = httpx.get(f"{server.url}/errors.csv", timeout=60)
    service.stop()
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 4_500 and len({row["ref"] for row in rows}) == 4_500
    assert rows[0]["reason"].startswith("erp rejected the record")
