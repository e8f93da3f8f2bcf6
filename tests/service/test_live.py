"""The run in progress as server-sent events: a real HTTP client reads ``/runs/live``
while a run is held mid-read, sees its phase and counts, and the stream follows the run
to its end; clients that hang up mid-run leave nothing behind; the access rules are the
pages' and the API's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from samband.service import Service, create_app
from samband.service.access import Access
from samband.service.live import LiveProgress
from tests.support.docs_examples import DOCS, block_after
from tests.support.server import served_over_http
from tests.support.service import USERS, VIEWER_PASSWORD, TestClient
from tests.support.service import customers as _customers
from tests.support.service import login as _login
from tests.support.service import world as _world


class _Gate:
    """Holds the run at its first page read until the test opens the gate."""

    def __init__(self, live: LiveProgress) -> None:
        self.reached = threading.Event()
        self.open = threading.Event()
        self._advance = live.advance

        def advance(count: int = 1) -> None:
            self._advance(count)
            self.reached.set()
            assert self.open.wait(60), "the test never let the run go on"

        live.advance = advance  # type: ignore[method-assign]


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The ``progress`` events of a stream, as they arrive."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == "progress":
            yield json.loads(line[6:])


def _until(events: Iterator[dict[str, Any]], wanted: Callable[[dict[str, Any]], bool]) -> Any:
    for event in events:
        if wanted(event):
            return event
    raise AssertionError("the stream ended before the event came")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)  # paces the look at a counter the server's loop changes


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Service, _Gate, str]]:
    names = [f"Customer {i}" for i in range(25)]
    service = Service(_world(tmp_path, crm=_customers(*names)), every=3600)
    gate = _Gate(service.live)
    with served_over_http(create_app(service)) as url:
        try:
            yield service, gate, url
        finally:
            gate.open.set()


def test_a_client_reads_the_run_in_progress_and_its_end(
    held: tuple[Service, _Gate, str],
) -> None:
    service, gate, url = held
    assert gate.reached.wait(60), "the first run did not start reading"
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        client.stream("GET", "/api/runs/live") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        running = next(events)
        assert running["state"] == "running" and running["phase"] == "read"
        assert running["done"] == 25 and running["total"] is None
        assert running["rate"] > 0
        gate.open.set()
        finished = _until(events, lambda e: e["state"] == "idle")
        assert finished["last_run"]["status"] == "ok"
    assert service.scheduler.state.runs == 1
    _wait(lambda: service.live.streams == 0, "the stream is still open after the client left")


def test_clients_that_hang_up_mid_run_leave_no_stream_behind(
    held: tuple[Service, _Gate, str],
) -> None:
    service, gate, url = held
    assert gate.reached.wait(60)
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(20)]
    streams = [client.stream("GET", "/runs/live") for client in clients]
    # an event iterator let go closes its connection: each is kept while its client reads
    readers = []
    try:
        for stream in streams:
            readers.append(_events(stream.__enter__()))
            assert next(readers[-1])["state"] == "running"
        _wait(lambda: service.live.streams == 20, "not every client has its stream")
        for stream, client in zip(streams[:15], clients[:15], strict=True):
            stream.__exit__(None, None, None)
            client.close()
        _wait(lambda: service.live.streams == 5, "a stream outlived its client")
        gate.open.set()
        for reader in readers[15:]:
            # the rest still follow the run to its end
            assert _until(reader, lambda e: e["state"] == "idle")["last_run"]["status"] == "ok"
    finally:
        gate.open.set()
        for stream, client in zip(streams[15:], clients[15:], strict=True):
            stream.__exit__(None, None, None)
            client.close()
    _wait(lambda: service.live.streams == 0, "a stream outlived its client")
    assert service.scheduler.wait_runs(1, timeout=60)


def test_the_stream_ends_when_the_server_stops(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    with served_over_http(create_app(service)) as url:
        assert service.scheduler.wait_runs(1, timeout=60)
        with (
            httpx.Client(base_url=url, timeout=30) as client,
            client.stream("GET", "/runs/live") as response,
        ):
            events = _events(response)
            assert next(events)["state"] == "idle"
            service.live.close()
            assert list(events) == []  # the stream ended


def test_the_live_stream_needs_a_session_or_the_token(tmp_path: Path) -> None:
    service = Service(_world(tmp_path), every=3600)
    access = Access({"SAMBAND_USERS": USERS, "SAMBAND_API_TOKEN": "live-token-123"})
    client = TestClient(create_app(service, access, manage_service=False))
    page = client.get("/runs/live", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/api/runs/live").status_code == 401
    service.live.close()  # each stream below sends the state once and ends
    with_token = client.get("/api/runs/live", headers={"Authorization": "Bearer live-token-123"})
    assert with_token.status_code == 200 and '"state": "idle"' in with_token.text
    _login(client, "vic", VIEWER_PASSWORD)
    assert client.get("/runs/live").status_code == 200
    assert client.get("/api/runs/live").status_code == 200
    runs = client.get("/runs")
    assert 'id="live"' in runs.text and "/runs/live" in runs.text


def test_the_follow_example_of_the_service_page_reads_a_run(
    held: tuple[Service, _Gate, str],
) -> None:
    service, gate, url = held
    example = block_after(DOCS / "service.md", "## The run in progress", "python")
    names: dict[str, Any] = {}
    exec(compile(example.code, example.where, "exec"), names)
    assert gate.reached.wait(60)
    threading.Timer(0.5, gate.open.set).start()  # lets the run go on while it is followed
    assert names["follow"](url, "no token needed on loopback") == {
        "status": "ok",
        "message": None,
        "at": service.live.snapshot()["last_run"]["at"],
    }


def test_progress_counts_never_pass_the_total_and_give_the_time_left() -> None:
    now = [100.0]
    live = LiveProgress(clock=lambda: now[0])
    live.phase("sync", 100)
    now[0] += 10
    live.advance(40)
    state = live.snapshot()
    assert (state["done"], state["total"], state["rate"], state["seconds_left"]) == (
        40,
        100,
        4.0,
        15.0,
    )
    live.advance(500)  # a record synced again in a later round is not more work
    assert live.snapshot()["done"] == 100
    live.finish("ok")
    assert live.snapshot()["state"] == "idle" and live.snapshot()["last_run"]["status"] == "ok"
