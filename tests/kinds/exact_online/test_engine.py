"""End to end through the engine: Exact Online (sandbox) ⇄ a memory "PMS" (seed 004).

Accounts ↔ customers converge both ways; Departments and Divisions are read-only: they
flow out, edits on the other side never write them, and a dataflow that would have to
write them is refused by validation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.config.validate import check
from samband.engine.run import Engine
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.kinds.memory.connector import dataset
from samband.sandbox._base import Clock
from samband.secrets import TokenStore
from tests.support.exact import serve

_names = itertools.count()

CONFIG = """
store: sqlite:///{store}
systems:
  exact:
    kind: exact-online
    label: ExactOnline
    base_url: {url}
    division: {division}
    credentials:
      client_id: ${{EXACT_CLIENT_ID}}
      client_secret: ${{EXACT_CLIENT_SECRET}}
  pms:
    kind: memory
    label: CustomPMS
    dataset: {dataset}
    entity_types:
      Customer:
        id: id
        properties:
          name: {{type: string}}
          code: {{type: string}}
          email: {{type: string}}
          city: {{type: string}}
          kind: {{type: string}}
dataflows:
  - source: exact.Departments
    target: pms.Customer
    match: [[{{from: Code, to: code}}]]
    properties:
      - {{from: Description, to: name, type: string}}
      - {{from: Code, to: code, type: string}}
  - source: exact.Divisions
    target: pms.Customer
    match: [[{{from: Description, to: name}}]]
    properties:
      - {{from: Description, to: name, type: string}}
  - source: exact.Accounts
    target: pms.Customer
    match: [[{{from: Email, to: email, normalize: email}}]]
    properties:
      - {{from: Name, to: name, type: string}}
      - {{from: Code, to: code, type: string}}
      - {{from: Email, to: email, type: string}}
      - {{from: City, to: city, type: string}}
"""


@pytest.fixture(autouse=True)
def _token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    box = ExactOnlineSandbox(clock=Clock(), minutely_limit=100_000, daily_limit=100_000)
    box.seed(6, 11)
    server = serve(box)
    name = f"exact-engine-{next(_names)}"
    text = CONFIG.format(
        store=tmp_path / "state.db", url=server.url, division=box.division, dataset=name
    )
    config = parse_config(text).config
    issued = box.issue_tokens()
    now = box.clock.time()
    TokenStore("exact", tmp_path / "state").save(
        {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": now + 600,
            "requested_at": now,
        }
    )
    env = {"EXACT_CLIENT_ID": box.client_id, "EXACT_CLIENT_SECRET": box.client_secret}
    try:
        yield {"box": box, "config": config, "dir": tmp_path, "env": env, "pms": dataset(name)}
    finally:
        server.stop()


def run(world: dict[str, Any]) -> dict[str, Any]:
    engine = Engine(world["config"], environ=world["env"], state_dir=str(world["dir"] / "state"))
    try:
        report: dict[str, Any] = engine.sync().to_dict()
    finally:
        engine.close()
    assert report["status"] == "ok", report.get("messages")
    return report


def customers(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(world["pms"].records("Customer"))


def test_accounts_and_customers_converge(world: dict[str, Any]) -> None:
    box: ExactOnlineSandbox = world["box"]
    accounts = box.tables["crm/Accounts"]
    first = run(world)
    assert first["errors"] == 0, first
    by_email = {c.get("email"): c for c in customers(world).values() if c.get("email")}
    for account in accounts.values():
        customer = by_email[account["Email"]]
        assert customer["name"] == account["Name"]
        assert customer["code"] == account["Code"].strip()  # unpadded in the PMS
    names = {c.get("name") for c in customers(world).values()}
    assert {d["Description"] for d in box.tables["hrm/Departments"].values()} <= names
    assert {d["Description"] for d in box.tables["hrm/Divisions"].values()} <= names

    quiet = run(world)
    assert (quiet["created"], quiet["updated"], quiet["errors"]) == (0, 0, 0), quiet

    # an edit in the PMS flows to Exact (PUT of the changed field), one in Exact back
    account_id, account = next(iter(accounts.items()))
    customer_id = next(k for k, c in customers(world).items() if c.get("email") == account["Email"])
    world["pms"].edit("Customer", customer_id, {"city": "Amersfoort"})
    other_id, other = list(accounts.items())[1]
    box.clock.advance(30)
    box.edit("crm/Accounts", other_id, {"Name": "Hernoemd B.V."})
    edited = run(world)
    assert edited["updated"] >= 2 and edited["errors"] == 0, edited
    assert box.tables["crm/Accounts"][account_id]["City"] == "Amersfoort"
    renamed = [c for c in customers(world).values() if c.get("email") == other["Email"]]
    assert [c["name"] for c in renamed] == ["Hernoemd B.V."]

    # quiet again, and no account was created along the way
    count = len(accounts)
    quiet = run(world)
    assert (quiet["created"], quiet["updated"], quiet["errors"]) == (0, 0, 0), quiet
    assert len(box.tables["crm/Accounts"]) == count


def test_read_only_departments_are_never_written(world: dict[str, Any]) -> None:
    box: ExactOnlineSandbox = world["box"]
    run(world)
    department = next(iter(box.tables["hrm/Departments"].values()))
    before = dict(department)
    customer_id = next(
        k for k, c in customers(world).items() if c.get("code") == department["Code"]
    )
    world["pms"].edit("Customer", customer_id, {"name": "Anders genoemd"})
    report = run(world)
    assert report["errors"] == 0, report
    assert box.tables["hrm/Departments"][department["ID"]] == before
    assert "hrm/Departments" not in box.endpoint_errors  # no write was even tried


def test_validation_refuses_a_dataflow_that_writes_departments(world: dict[str, Any]) -> None:
    text = CONFIG.format(store="x.db", url="http://127.0.0.1:9", division=1, dataset="v")
    text += """  - source: pms.Customer
    target: exact.Departments
    properties:
      - {from: name, to: Description, type: string}
"""
    problems = check(parse_config(text))
    assert any("read-only" in p.message and "Departments" in p.message for p in problems)
