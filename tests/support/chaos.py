"""The chaos world: the five seed dataflows on sandboxes, a SQL PMS and a memory system.

Sandboxes run in the test process (``box.serve()`` on loopback); the syncs that the
tests kill run in subprocesses that connect to them over loopback.  The test edits
records behind the engine's back through connectors built from the same config (as a
user editing through the API would), and reads every system the same way, so the
checks see exactly the record shapes the engine sees.

Dataflows (one per seed document, with the seed's systems):

* ``S000`` PowerOffice GO Customers → custom PMS (``kind: sql``, SQLite) customer
* ``S001`` PowerOffice GO Customers → WebCRM Organisations
* ``S002`` custom CRM (``kind: rest``) Product → PowerOffice GO Product
* ``S003`` CRMOffice Activities → PowerOffice GO Projectactivity
* ``S004`` Exact Online Accounts → a memory "PMS" (``kind: memory`` with a JSON file)
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.config.model import Config
from samband.connectors.base import Connector
from samband.engine.run import Engine
from samband.kinds.crmoffice.connector import CrmOfficeConnector
from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.kinds.memory.connector import forget_dataset
from samband.kinds.poweroffice_go.sandbox import PowerOfficeSandbox
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.kinds.sql.demo import create_pms_schema
from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN, WebCrmSandbox
from samband.mapping import get_path
from samband.sandbox._base import SandboxServer
from samband.secrets import TokenStore
from samband.store import Ref, Store
from tests.support.convergence import check_agreement, check_edits, check_no_duplicates

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")

CONFIG = """
store: sqlite:///{dir}/state.db
defaults: {{overlap_seconds: 5}}
systems:
  po:
    kind: poweroffice-go
    label: PowerOffice GO
    base_url: {po}/v2
    rate_limit: 0
    credentials:
      application_key: ${{PO_APP}}
      client_key: ${{PO_CLIENT}}
      subscription_key: ${{PO_SUB}}
  pms:
    kind: sql
    label: Custom PMS
    url: sqlite:///{dir}/pms.db
    entity_types:
      Customer: {{table: customer, id: id, updated: updated_at, external_ref: external_ref}}
  webcrm:
    kind: webcrm
    label: WebCRM
    base_url: {webcrm}
    rate_limit: 0
    credentials: {{api_token: "${{WEBCRM_API_TOKEN}}"}}
    entity_types:
      Organisations: {{external_ref: OrganisationExtraCustom1}}
  crm:
    kind: rest
    label: Custom CRM
    base_url: {crm}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Product:
        path: products
        external_ref: external_ref
        properties: {{code: string, name: string, unit_price: decimal}}
  crmoffice:
    kind: crmoffice
    label: CRMOffice
    base_url: {crmo}
    auth_url: {crmo}
    rate_limit: 0
    credentials:
      client_id: ${{CRMO_CLIENT_ID}}
      client_secret: ${{CRMO_CLIENT_SECRET}}
  exact:
    kind: exact-online
    label: Exact Online
    base_url: {exact}
    division: {division}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
  epms:
    kind: memory
    label: Memory PMS
    path: {dir}/epms.json
    entity_types:
      Customer:
        external_ref: ext
        properties: {{name: string, email: string, city: string, ext: string}}
dataflows:
  - id: S000
    source: po.Customers
    target: pms.Customer
    match: [[{{from: OrganizationNumber, to: org_no, normalize: digits}}]]
    properties:
      - {{from: Name, to: name, type: string}}
      - {{from: OrganizationNumber, to: org_no, type: string}}
      - {{from: PhoneNumber, to: phone, type: string}}
  - id: S001
    source: po.Customers
    target: webcrm.Organisations
    match: [[{{from: Name, to: OrganisationName, normalize: casefold}}]]
    properties:
      - {{from: Name, to: OrganisationName, type: string}}
      - {{from: PhoneNumber, to: OrganisationTelephone, type: string}}
  - id: S002
    source: crm.Product
    target: po.Product
    match: [[{{from: code, to: Code}}]]
    properties:
      - {{from: code, to: Code, type: string}}
      - {{from: name, to: Name, type: string}}
  - id: S003
    source: crmoffice.Activities
    target: po.Projectactivity
    properties:
      - {{from: subject, to: Name, type: string}}
  - id: S004
    source: exact.Accounts
    target: epms.Customer
    match: [[{{from: Email, to: email, normalize: email}}]]
    properties:
      - {{from: Name, to: name, type: string}}
      - {{from: Email, to: email, type: string}}
      - {{from: City, to: city, type: string}}
"""

# What the driver edits, per (system, type): (path, how a value is drawn)
EDITABLE: dict[tuple[str, str], list[str]] = {
    ("po", "Customers"): ["Name", "PhoneNumber"],
    ("pms", "Customer"): ["name", "phone"],
    ("webcrm", "Organisations"): ["OrganisationName", "OrganisationTelephone"],
    ("crm", "Product"): ["name"],
    ("po", "Product"): ["Name"],
    ("crmoffice", "Activities"): ["subject"],
    ("po", "Projectactivity"): ["Name"],
    ("exact", "Accounts"): ["Name", "City"],
    ("epms", "Customer"): ["name", "city"],
}
PHONE_PATHS = {"PhoneNumber", "phone", "OrganisationTelephone"}

# Targets with neither an external-reference field nor merge criteria: a create cut off
# by a crash is found again by its values only, so the driver does not edit such a record
# before it is linked (a user editing it in that moment would get a second one).
UNKEYED = {("po", "Projectactivity")}

STAMPED: dict[tuple[str, str], str] = {
    ("pms", "Customer"): "external_ref",
    ("webcrm", "Organisations"): "OrganisationExtraCustom1",
    ("epms", "Customer"): "ext",
}


@dataclass
class Edit:
    system: str
    etype: str
    rid: str
    path: str
    value: Any


@dataclass
class ChaosWorld:
    """Sandboxes, files, config and the environment a sync subprocess needs."""

    dir: Path
    boxes: dict[str, Any] = field(default_factory=dict)
    servers: list[SandboxServer] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    _engine: Engine | None = None
    edits: list[Edit] = field(default_factory=list)
    inserted: int = 0

    @classmethod
    def start(cls, folder: Path, records: int = 3, seed: int = 1) -> ChaosWorld:
        world = cls(folder)
        try:
            world._start(records, seed)
        except BaseException:
            world.stop()
            raise
        return world

    def _start(
        self, records: int, seed: int, before_serve: Callable[[], None] | None = None
    ) -> None:
        po = PowerOfficeSandbox(rate_limit=100_000)
        po.seed(records, seed, only=("Customers",))
        webcrm = WebCrmSandbox()
        crm = CustomCrmSandbox()
        for n in range(records):
            crm.insert("Product", {"code": f"P-{seed}-{n}", "name": f"Vare {n}", "unit_price": 10})
        crmo = CrmOfficeSandbox(rate_limit=None)
        crmo.seed(records, seed)
        exact = ExactOnlineSandbox(minutely_limit=100_000, daily_limit=100_000)
        exact.seed(records, seed)
        self.boxes = {"po": po, "webcrm": webcrm, "crm": crm, "crmoffice": crmo, "exact": exact}
        if before_serve is not None:
            before_serve()
        urls = {}
        for name, box in self.boxes.items():
            server = box.serve()
            self.servers.append(server)
            urls[name] = server.url
        create_pms_schema(f"sqlite:///{self.dir}/pms.db")
        text = CONFIG.format(
            dir=self.dir,
            po=urls["po"],
            webcrm=urls["webcrm"],
            crm=urls["crm"],
            crmo=urls["crmoffice"],
            exact=urls["exact"],
            division=exact.division,
        )
        self.config_path = self.dir / "samband.yaml"
        self.config_path.write_text(text, encoding="utf-8")
        self.env = {
            "PO_APP": "sandbox-application-key",
            "PO_CLIENT": "sandbox-client-key",
            "PO_SUB": "sandbox-subscription-key",
            "WEBCRM_API_TOKEN": SANDBOX_API_TOKEN,
            "CRM_TOKEN": DEFAULT_TOKEN,
            "CRMO_CLIENT_ID": "sandbox-client",
            "CRMO_CLIENT_SECRET": "sandbox-secret",
            "EXACT_CLIENT_ID": exact.client_id,
            "EXACT_CLIENT_SECRET": exact.client_secret,
            "SAMBAND_TOKEN_KEY": Fernet.generate_key().decode(),
        }
        state = self.state_dir
        os.environ["SAMBAND_TOKEN_KEY"] = self.env["SAMBAND_TOKEN_KEY"]
        CrmOfficeConnector.sandbox_login(
            "crmoffice", self.config, state_dir=str(state), environ=self.env
        )
        issued = exact.issue_tokens()
        now = exact.clock.time()
        TokenStore("exact", state).save(
            {
                "access_token": issued["access_token"],
                "refresh_token": issued["refresh_token"],
                "expires_at": now + 600,
                "requested_at": now,
            }
        )
        (self.dir / "epms.json").write_text("{}", encoding="utf-8")

    @property
    def state_dir(self) -> Path:
        return self.dir / ".samband"

    @property
    def config(self) -> Config:
        assert self.config_path is not None
        return parse_config(self.config_path.read_text(), str(self.config_path)).config

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        for server in self.servers:
            server.stop()
        self.servers.clear()

    # -- the engine's view of every system, for edits and checks -------------------------
    def connector(self, system: str) -> Connector:
        """A fresh connector (the memory system is re-read from its file each time)."""
        if self._engine is None or system == "epms":
            if self._engine is not None:
                self._engine.close()
            # memory datasets are cached per process: read the file the syncs wrote
            forget_dataset("epms")
            self._engine = Engine(self.config, environ=self.env, state_dir=str(self.state_dir))
        return self._engine.connector(system)

    def records(self, system: str, etype: str) -> dict[str, dict[str, Any]]:
        connector = self.connector(system)
        found: dict[str, dict[str, Any]] = {}
        for page in connector.read(etype, None):
            for record in page.records:
                if record.deleted:
                    found.pop(record.id, None)
                else:
                    # WebCRM answers "" for an empty field; the engine takes it as empty
                    found[record.id] = {k: (None if v == "" else v) for k, v in record.data.items()}
        return found

    def edit_randomly(self, rng: random.Random, count: int) -> None:
        """``count`` edits through the APIs (and the files), each remembered."""
        for _ in range(count):
            system, etype = rng.choice(sorted(EDITABLE))
            rows = self.records(system, etype)
            if not rows:
                continue
            candidates = sorted(rows)
            if (system, etype) in UNKEYED:
                candidates = [r for r in candidates if Ref.text(system, etype, r) in self.linked()]
                if not candidates:
                    continue
            rid = rng.choice(candidates)
            path = rng.choice(EDITABLE[(system, etype)])
            # an earlier edit whose value already reached this place was synced; the user
            # may overwrite it (and an unsynced earlier edit of this same place is gone)
            current = str(get_path(rows[rid], path))
            self.edits = [
                e
                for e in self.edits
                if str(e.value) != current
                and (e.system, e.etype, e.rid, e.path) != (system, etype, rid, path)
            ]
            value = (
                f"+47 {rng.randint(20000000, 99999999)}"
                if path in PHONE_PATHS
                else f"{path[:4]} {rng.randint(0, 10**6)}"
            )
            self.connector(system).update(etype, rid, {path: value})
            self.edits.append(Edit(system, etype, rid, path, value))

    def linked(self) -> set[str]:
        """Every ref the store links (read between runs)."""
        store = self.store()
        try:
            return {r for link in store.all_links() for r in (link.source_ref, link.target_ref)}
        finally:
            store.close()

    def insert_randomly(self, rng: random.Random, count: int) -> None:
        """``count`` new source records (so that later runs create, and can be killed
        inside a create)."""
        for _ in range(count):
            n = rng.randint(0, 10**9)
            choices: list[tuple[str, str, dict[str, Any]]] = [
                ("po", "Customers", {"Name": f"Kunde {n} AS", "OrganizationNumber": None}),
                ("crm", "Product", {"code": f"C-{n}", "name": f"Vare {n}"}),
                ("crmoffice", "Activities", {"subject": f"Møte {n}"}),
                (
                    "exact",
                    "Accounts",
                    {"Name": f"Klant {n} B.V.", "Email": f"k{n}@example.nl", "City": "Ede"},
                ),
            ]
            system, etype, values = rng.choice(choices)
            self.connector(system).create(etype, values, None)
            self.inserted += 1

    # -- runs ---------------------------------------------------------------------------
    def sync_process(self, kill_at: str | None = None) -> subprocess.Popen[bytes]:
        """``samband sync --json`` in a subprocess (optionally with a crash point)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMBAND_KILL")}
        env.update(self.env)
        if kill_at:
            env["SAMBAND_KILL_AT"] = kill_at
        assert self.config_path is not None
        return subprocess.Popen(
            [PYTHON, "-m", "samband.cli", "sync", "--json", "-c", str(self.config_path)],
            env=env,
            cwd=str(self.dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def store(self) -> Store:
        return Store(f"sqlite:///{self.dir}/state.db")


def run_to_end(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


SOURCES = {  # dataflow → (source, target); every target type starts empty
    "S000": (("po", "Customers"), ("pms", "Customer")),
    "S001": (("po", "Customers"), ("webcrm", "Organisations")),
    "S002": (("crm", "Product"), ("po", "Product")),
    "S003": (("crmoffice", "Activities"), ("po", "Projectactivity")),
    "S004": (("exact", "Accounts"), ("epms", "Customer")),
}


def check_world(world: ChaosWorld, config: Config) -> dict[str, int]:
    store = world.store()
    try:
        problems = check_no_duplicates(store, config)
        problems += check_agreement(world, store, config)  # type: ignore[arg-type]
        problems += check_edits(world, store, world.edits)  # type: ignore[arg-type]
        counts: dict[str, int] = {}
        for flow, (source, target) in SOURCES.items():
            sources = world.records(*source)
            targets = world.records(*target)
            # every target record was created for one source record: no duplicate, none lost
            if len(targets) != len(sources):
                problems.append(
                    f"{flow}: {len(sources)} {source} but {len(targets)} {target} records: "
                    + repr(sorted(_brief(r) for r in targets.values()))
                )
            counts[flow] = len(store.all_links(flow))
            if counts[flow] != len(sources):
                problems.append(f"{flow}: {counts[flow]} links for {len(sources)} sources")
        counts["conflicts"] = len(store.conflicts_rows())
        counts["dead letters"] = len(store.dead_letters())
    finally:
        store.close()
    assert not problems, "\n".join(problems)
    return counts


def _brief(record: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(record.items()) if v not in (None, ""))[:160]
