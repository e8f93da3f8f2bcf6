"""Faults: the five seed dataflows through sandboxes that misbehave.

5 % 5xx, bursts of 429, latency spikes, connections reset mid-body, bodies cut short or
not JSON, an HTML maintenance page with status 200 — on every sandbox at once — and a
token endpoint (PowerOffice GO's) that fails for a minute of sandbox time.  Every run
ends with a report or one clear error (never a traceback), API calls stay within a small
multiple of a fault-free run, and once the faults stop one run converges everything
with no duplicate, and the next writes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from samband.engine.run import Engine
from samband.errors import SambandError
from samband.sandbox._base import Clock
from tests.support.chaos import ChaosWorld, check_world

FAULTS = {
    "error_rate": 0.05,
    "reset_rate": 0.02,
    "truncate_rate": 0.02,
    "non_json_rate": 0.02,
    "html_rate": 0.01,
    "latency_rate": 0.02,
}


class TokenOutage:
    """ASGI wrapper: the token endpoint answers 503 until ``until`` on the sandbox clock."""

    def __init__(self, app: ASGIApp, clock: Clock, path: str, seconds: float) -> None:
        self.app, self.clock, self.path = app, clock, path
        self.until = clock.time() + seconds
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else None
        if path == self.path and self.clock.time() < self.until:
            self.refused += 1
            body = b'{"title": "Service Unavailable", "status": 503}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ChaosWorld]:
    world = ChaosWorld.start(tmp_path)
    try:
        yield world
    finally:
        world.stop()


def sync(world: ChaosWorld) -> dict[str, Any]:
    """One run in-process; a run that fails must say why in one clear message."""
    engine = Engine(world.config, environ=world.env, state_dir=str(world.state_dir))
    try:
        report: dict[str, Any] = engine.sync().to_dict()
    except SambandError as exc:  # a clear error is an acceptable end of a run
        return {"status": "error", "messages": [str(exc)], "api_calls": 0}
    finally:
        engine.close()
    if report["status"] != "ok":
        assert report["messages"], report
        for message in report["messages"]:
            assert "Traceback" not in message, message
    return report


def test_runs_through_faults_converge(world: ChaosWorld, chaos_long: bool) -> None:
    rng = random.Random(7)
    world.insert_randomly(rng, 4)
    baseline = sync(world)  # fault-free: what a run costs
    assert baseline["status"] == "ok", baseline
    latency = 2.0 if chaos_long else 0.5
    for box in world.boxes.values():
        box.faults.update(seed=rng.randint(0, 10**6), latency=latency, **FAULTS)
    statuses: list[str] = []
    rounds = 12 if chaos_long else 3
    for n in range(rounds):
        _edit_without_faults(world, rng)
        for box in world.boxes.values():
            box.faults.update(burst_429=2 if n % 2 == 0 else 0)
        report = sync(world)
        statuses.append(report["status"])
        # retries stay within limits: a small multiple of a fault-free run
        assert report["api_calls"] <= 4 * baseline["api_calls"] + 60, report
    injected: dict[str, int] = {}
    for box in world.boxes.values():
        for name, count in box.faults.injected.items():
            injected[name] = injected.get(name, 0) + count
        box.faults.update(**{k: 0 for k in FAULTS}, latency=0, burst_429=0)
    assert injected.get("503") and injected.get("429"), injected

    first, quiet = sync(world), sync(world)
    assert first["status"] == "ok" and quiet["status"] == "ok", (first, quiet)
    assert quiet["created"] + quiet["updated"] + quiet["deleted"] == 0, quiet
    counts = check_world(world, world.config)
    print(f"\nfaults: injected {injected}; runs under faults {statuses}; links {counts}")


def _edit_without_faults(world: ChaosWorld, rng: random.Random) -> None:
    saved = {name: box.faults.public() for name, box in world.boxes.items()}
    for box in world.boxes.values():
        box.faults.update(**{k: 0 for k in FAULTS}, latency=0, burst_429=0)
    world.insert_randomly(rng, 2)
    world.edit_randomly(rng, 3)
    for name, box in world.boxes.items():
        settings = {k: saved[name][k] for k in (*FAULTS, "latency", "burst_429")}
        box.faults.update(**settings)


def test_token_endpoint_down_for_a_minute(tmp_path: Path) -> None:
    world = ChaosWorld(tmp_path)
    outage: list[TokenOutage] = []

    def start() -> None:
        po = world.boxes["po"]
        wrapped = TokenOutage(po.app, po.clock, "/OAuth/Token", 60)
        po._app = wrapped
        outage.append(wrapped)

    try:
        world._start(3, 5, before_serve=start)
        down = sync(world)
        assert down["status"] != "ok", down
        message = " ".join(down["messages"])
        assert "po" in message and "Token" in message, message
        assert "sandbox-client-key" not in message and "sandbox-application-key" not in message
        assert outage[0].refused >= 1
        world.boxes["po"].clock.advance(61)  # the minute is over
        up = sync(world)
        assert up["status"] == "ok", up
        check_world(world, world.config)
    finally:
        world.stop()
