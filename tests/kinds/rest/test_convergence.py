"""The engine's convergence test (tests/engine/test_convergence.py) with ``kind: rest`` in
the place of the memory system ``erp``.

``erp`` is served by :class:`ContractApi`, a small open-schema implementation of the REST
contract (any collection, any fields), behind the sandbox fault injection (503s and 429s
that the connector must retry).  The world's own creates, edits and deletes go straight
into the API's state, like another program's; crashes are injected inside the
connector's calls, then a new engine takes over the same store.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from samband.config import parse_config
from samband.config.model import Config
from samband.kinds.rest.connector import RestConnector
from samband.sandbox._base import Clock, FaultMiddleware, Faults, SandboxServer

convergence = pytest.importorskip("tests.support.convergence")
machines = pytest.importorskip("tests.support.machines")

TOKEN = "convergence-token"
COLLECTIONS = {"orgs": "Org", "contacts": "Contact"}

ERP_REST = """
systems:
  crm:
    kind: memory
    entity_types: {{Company: {{external_ref: ext}}, Person: {{external_ref: ext}}, Dept: {{}}}}
  erp:
    kind: rest
    base_url: {url}
    auth: bearer
    credentials: {{token: "{token}"}}
    entity_types:
      Org:
        path: orgs
        external_ref: ext
        page_size: 3
        properties: {{title: string, org_no: string, tel: string, city: string, ext: string}}
      Contact:
        path: contacts
        page_size: 3
        properties:
          given: string
          mail: string
          org_id: {{type: reference, references: Org}}
  pms:
    kind: memory
    entity_types: {{Account: {{external_ref: ext}}, Client: {{external_ref: ext}}}}
"""


class ContractApi:
    """Any collection, any fields: the REST contract and nothing more."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock = Clock()
        self.reset()

    def reset(self) -> None:
        self.seq = 0
        self.next_id = itertools.count(1)
        self.rows: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in COLLECTIONS}

    # -- state (also the world's "other program") ------------------------------------
    def put(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        record.update(updated_at=self.clock.now().isoformat(), _seq=self.seq)
        self.rows[collection][record["id"]] = record
        return record

    def insert(self, collection: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            clean = {k: v for k, v in data.items() if k not in ("id", "updated_at", "deleted")}
            return self.put(collection, {**clean, "id": next(self.next_id), "deleted": False})

    def edit(self, collection: str, rid: int, changes: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            row = self.rows[collection].get(rid)
            if row is None or row["deleted"]:
                return None
            merged = dict(row)
            for key, value in changes.items():
                if key not in ("id", "updated_at", "deleted"):
                    merged[key] = value
            return self.put(collection, merged)

    def remove(self, collection: str, rid: int) -> bool:
        with self.lock:
            row = self.rows[collection].get(rid)
            if row is None or row["deleted"]:
                return False
            self.put(collection, {**row, "deleted": True})
            return True

    def live(self, collection: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {
                str(rid): _public(row)
                for rid, row in self.rows[collection].items()
                if not row["deleted"]
            }

    # -- HTTP ------------------------------------------------------------------------
    def app(self, faults: Faults) -> Any:
        return FaultMiddleware(
            Starlette(
                routes=[
                    Route("/{c}", self.collection, methods=["GET", "POST"]),
                    Route("/{c}/{rid:int}", self.item, methods=["GET", "PATCH", "DELETE"]),
                ]
            ),
            faults,
        )

    async def collection(self, request: Request) -> Response:
        name = request.path_params["c"]
        if request.headers.get("authorization") != f"Bearer {TOKEN}" or name not in COLLECTIONS:
            return _problem(401 if name in COLLECTIONS else 404)
        if request.method == "POST":
            return _json(self.insert(name, orjson.loads(await request.body())), 201)
        since = int(request.query_params.get("since", 0))
        limit = int(request.query_params.get("limit", 100))
        ext = request.query_params.get("ext")
        with self.lock:
            rows = sorted(
                (r for r in self.rows[name].values() if r["_seq"] > since),
                key=lambda r: r["_seq"],
            )
            if ext is not None:
                rows = [r for r in rows if r.get("ext") == ext and not r["deleted"]]
            page = rows[:limit]
            position = page[-1]["_seq"] if page else max(since, self.seq)
            body = {
                "items": [_public(r) for r in page],
                "next": str(position),
                "has_more": len(rows) > limit,
            }
        return _json(body)

    async def item(self, request: Request) -> Response:
        name, rid = request.path_params["c"], request.path_params["rid"]
        if request.headers.get("authorization") != f"Bearer {TOKEN}" or name not in COLLECTIONS:
            return _problem(401 if name in COLLECTIONS else 404)
        if request.method == "DELETE":
            return Response(status_code=204) if self.remove(name, rid) else _problem(404)
        if request.method == "PATCH":
            record = self.edit(name, rid, orjson.loads(await request.body()))
        else:
            with self.lock:
                row = self.rows[name].get(rid)
                record = row if row is not None and not row["deleted"] else None
        return _problem(404) if record is None else _json(_public(record))


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "_seq"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _problem(status: int) -> Response:
    body = {"type": "about:blank", "title": "refused", "status": status}
    return Response(orjson.dumps(body), status, media_type="application/problem+json")


class CrashingRest(convergence.CrashOnDemand, RestConnector):
    """The connector, crashing when the world asks (see tests/support/convergence.py)."""


class RestWorld(convergence.MemoryWorld):  # type: ignore[misc]
    """One API server serves every example; each world starts it afresh."""

    api: ContractApi
    faults: Faults
    server: SandboxServer

    def __init__(self) -> None:
        self.api.reset()
        self.faults.update(seed=5)  # the same faults in every example: reproducible
        self.failures: list[str] = []
        self._config: Config | None = None

    def config(self, store_url: str) -> Config:
        systems = ERP_REST.format(url=self.server.url, token=TOKEN)
        self._config = parse_config(f"store: {store_url}\n{systems}{convergence.FLOWS_YAML}").config
        return self._config

    def connectors(self) -> dict[str, Any]:
        assert self._config is not None
        self.failures.clear()
        connector = CrashingRest("erp", self._config.systems["erp"], {"token": TOKEN})
        connector.world = self
        connector.sleep = lambda seconds: None  # 429s say Retry-After: 1; don't wait in tests
        return {"erp": connector}

    def _collection(self, etype: str) -> str:
        return {name: path for path, name in COLLECTIONS.items()}[etype]

    def insert(self, system: str, etype: str, data: dict[str, Any]) -> str:
        if system != "erp":
            return str(super().insert(system, etype, data))
        return str(self.api.insert(self._collection(etype), dict(data))["id"])

    def edit(self, system: str, etype: str, rid: str, changes: dict[str, Any]) -> None:
        if system != "erp":
            super().edit(system, etype, rid, changes)
            return
        self.api.edit(self._collection(etype), int(rid), changes)

    def delete(self, system: str, etype: str, rid: str) -> None:
        if system != "erp":
            super().delete(system, etype, rid)
            return
        self.api.remove(self._collection(etype), int(rid))

    def records(self, system: str, etype: str) -> dict[str, dict[str, Any]]:
        if system != "erp":
            return dict(super().records(system, etype))
        return self.api.live(self._collection(etype))

    def crash_on(self, system: str, op: str) -> None:
        if system == "erp":
            self.failures.append(op)
        else:
            super().crash_on(system, op)


def test_convergence_with_rest_in_place_of_memory(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    from samband.kinds.memory import connector as memory
    from tests.support.convergence import DERANDOMIZE, PHASES

    counter = itertools.count()
    api = ContractApi()
    faults = Faults(error_rate=0.05, throttle_rate=0.03)
    server = SandboxServer(api.app(faults)).start()

    class World(RestWorld):
        pass

    World.api, World.faults, World.server = api, faults, server

    class PerExample(machines.SyncMachine):  # type: ignore[misc,name-defined]
        world_factory = World

        def __init__(self) -> None:
            self.store_url = f"sqlite:///{tmp_path / f'store-{next(counter)}.db'}"
            memory._DATASETS.clear()
            super().__init__()

    try:
        run_state_machine_as_test(
            PerExample,
            settings=settings(
                max_examples=12,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=PHASES,
                derandomize=DERANDOMIZE,
            ),
        )
    finally:
        server.stop()
    assert {"503", "429"} <= set(faults.injected)  # the connector retried through both
