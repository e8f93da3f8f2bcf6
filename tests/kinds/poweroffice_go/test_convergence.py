"""The engine's convergence test (tests/engine/test_convergence.py) with PowerOffice GO
(its sandbox, over HTTP) in the place of the memory system ``erp``.

``erp.Org`` is PowerOffice GO ``Customers`` and ``erp.Contact`` is ``Contactperson``; the
dataflows are the harness's with PowerOffice GO's property names.  The world's own
creates, edits and deletes go straight into the sandbox's state (a PowerOffice GO user),
and the records it lists carry the harness's names beside PowerOffice GO's, so the
harness's checks apply unchanged.  Both types are read with ``full_scan: true``: the API
reports no deletions, and the harness deletes.  Crashes are injected inside the
connector's calls; then a new engine takes over the same store.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from samband.config import parse_config
from samband.config.model import Config
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.connector._auth import forget_tokens
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.sandbox._base import SandboxServer
from tests.support.poweroffice import KEYS, serve

convergence = pytest.importorskip("tests.support.convergence")
machines = pytest.importorskip("tests.support.machines")

SYSTEMS = """
systems:
  crm:
    kind: memory
    entity_types: {{Company: {{external_ref: ext}}, Person: {{external_ref: ext}}, Dept: {{}}}}
  erp:
    kind: poweroffice-go
    base_url: {url}/v2
    page_size: 4
    rate_limit: 1000
    entity_types:
      Customers: {{full_scan: true}}
      Contactperson: {{full_scan: true}}
  pms:
    kind: memory
    entity_types: {{Account: {{external_ref: ext}}, Client: {{external_ref: ext}}}}
"""

FLOWS = """
dataflows:
  - id: F1
    source: crm.Company
    target: erp.Customers
    match: [[{from: org, to: OrganizationNumber}]]
    properties:
      - {from: name, to: Name, type: string}
      - {from: org, to: OrganizationNumber, type: string}
      - {from: phone, to: PhoneNumber, type: string}
      - {from: address.city, to: MailAddress.City, type: string}
  - id: F2
    source: crm.Dept
    target: erp.Customers
    match: [[{from: code, to: OrganizationNumber, normalize: trim}]]
    properties:
      - {from: label, to: Name, type: string}
      - {from: code, to: OrganizationNumber, type: string}
  - id: F3
    source: crm.Person
    target: erp.Contactperson
    match: [[{from: email, to: EmailAddress}]]
    properties:
      - {from: first, to: FirstName, type: string}
      - {from: email, to: LastName, type: string, direction: forward}
      - {from: email, to: EmailAddress, type: string}
      - {from: company_id, to: ContactId, type: reference, source_ref: Company,
         target_ref: Customers}
  - id: F4
    source: erp.Customers
    target: pms.Account
    match: [[{from: OrganizationNumber, to: org_no}]]
    properties:
      - {from: Name, to: name, type: string}
      - {from: OrganizationNumber, to: org_no, type: string}
  - id: F5
    source: crm.Company
    target: pms.Client
    properties:
      - {from: name, to: name, type: string}
"""

# the harness's names → PowerOffice GO's, per harness type
NAMES = {
    "Org": {
        "title": "Name",
        "org_no": "OrganizationNumber",
        "tel": "PhoneNumber",
        "city": "MailAddress.City",
        "ext": "ExternalImportReference",
    },
    "Contact": {"given": "FirstName", "mail": "EmailAddress", "org_id": "ContactId"},
}
COLLECTION = {"Org": "Customers", "Contact": "ContactPersons"}
TYPE = {"Org": "Customers", "Contact": "Contactperson"}


class CrashingPowerOffice(convergence.CrashOnDemand, PowerOfficeConnector):
    """The connector, crashing when the world asks (see tests/support/convergence.py)."""


def _harness_type(etype: str) -> str:
    return {"Customers": "Org", "Contactperson": "Contact"}.get(etype, etype)


class PowerOfficeWorld(convergence.MemoryWorld):  # type: ignore[misc]
    """One sandbox serves every example; each world empties it first."""

    box: PowerOfficeSandbox
    server: SandboxServer

    def __init__(self) -> None:
        self.box.reset()
        self.box.faults.update(seed=5)
        forget_tokens()
        self.failures: list[str] = []
        self._config: Config | None = None

    def config(self, store_url: str) -> Config:
        systems = SYSTEMS.format(url=self.server.url)
        self._config = parse_config(f"store: {store_url}\n{systems}{FLOWS}").config
        return self._config

    def connectors(self) -> dict[str, Any]:
        assert self._config is not None
        self.failures.clear()
        connector = CrashingPowerOffice("erp", self._config.systems["erp"], KEYS)
        connector.world = self
        connector.http.backoff_base = connector.http.backoff_cap = 0.01
        return {"erp": connector}

    # -- the harness's view of PowerOffice GO -----------------------------------------
    def _translate(self, etype: str, data: dict[str, Any]) -> dict[str, Any]:
        names = NAMES[_harness_type(etype)]
        values: dict[str, Any] = {}
        for key, value in data.items():
            target = names.get(key, key)
            if target == "ContactId" and value is not None:
                value = int(value)
            if "." in target:
                head, tail = target.split(".", 1)
                values.setdefault(head, {})[tail] = value
            else:
                values[target] = value
        return values

    def insert(self, system: str, etype: str, data: dict[str, Any]) -> str:
        if system != "erp":
            return str(super().insert(system, etype, data))
        kind = _harness_type(etype)
        values = self._translate(etype, data)
        if kind == "Contact":
            values.setdefault("LastName", values.get("EmailAddress"))
        return str(self.box.insert(COLLECTION[kind], values)["Id"])

    def edit(self, system: str, etype: str, rid: str, changes: dict[str, Any]) -> None:
        if system != "erp":
            super().edit(system, etype, rid, changes)
            return
        kind = _harness_type(etype)
        names = NAMES[kind]
        flat = {names.get(k, k): v for k, v in changes.items()}
        self.box.clock.advance(0.001)
        if int(rid) in self.box.records(COLLECTION[kind]):
            self.box.edit(COLLECTION[kind], int(rid), flat)

    def delete(self, system: str, etype: str, rid: str) -> None:
        if system != "erp":
            super().delete(system, etype, rid)
            return
        collection = COLLECTION[_harness_type(etype)]
        if int(rid) in self.box.records(collection):
            self.box.remove(collection, int(rid))

    def records(self, system: str, etype: str) -> dict[str, dict[str, Any]]:
        if system != "erp":
            return dict(super().records(system, etype))
        kind = _harness_type(etype)
        names = NAMES[kind]
        result: dict[str, dict[str, Any]] = {}
        for rid, record in list(self.box.records(COLLECTION[kind]).items()):
            view = dict(record)
            for alias, name in names.items():
                value: Any = record
                for part in name.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                view[alias] = value
            if kind == "Contact" and view.get("ContactId") is not None:
                view["ContactId"] = str(view["ContactId"])
            result[str(rid)] = view
        return result

    def crash_on(self, system: str, op: str) -> None:
        if system == "erp":
            self.failures.append(op)
        else:
            super().crash_on(system, op)


def test_convergence_with_poweroffice_in_place_of_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    from samband.kinds.memory import connector as memory
    from tests.support.convergence import DERANDOMIZE, PHASES

    # the records the engine creates in erp are Customers here, not Org
    monkeypatch.setattr(
        machines,
        "STAMPED",
        {("erp", "Customers"): "ext", ("pms", "Account"): "ext", ("pms", "Client"): "ext"},
    )
    counter = itertools.count()
    box = PowerOfficeSandbox(rate_limit=1000)
    server = serve(box)

    class World(PowerOfficeWorld):
        pass

    World.box, World.server = box, server

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
                max_examples=int(os.environ.get("PO_CONVERGENCE_EXAMPLES", "12")),
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=PHASES,
                derandomize=DERANDOMIZE,
            ),
        )
    finally:
        server.stop()
