"""Bad input, a catalogue: each case ends in one clear message and loses nothing.

Configs with mistakes are refused (exit 2, FILE:LINE:COLUMN); API answers of the wrong
shape stop the work on that system with a message naming the request; values that do not
convert, values the target refuses, references to records that do not exist, duplicates
that make a merge ambiguous and a record deleted while its create was in flight each end
in a quarantined record with its reason (``samband errors``) — never a crashed run — and
``samband retry`` runs a quarantined record again after the fix.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from samband.cli import app
from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import MemoryDataset, dataset, forget_dataset
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.store import Ref

CONFIG = """\
store: sqlite:///{dir}/state.db
defaults: {{max_parent_wait_runs: 1}}
systems:
  src:
    kind: memory
    dataset: {src}
    entity_types:
      Order: {{}}
      Item: {{}}
      Person: {{}}
      Company: {{}}
  crm:
    kind: rest
    base_url: {url}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Order: {{path: orders, external_ref: external_ref,
               properties: {{order_no: string, order_date: date, currency: string,
                            customer_id: integer}}}}
  mem:
    kind: memory
    dataset: {mem}
    entity_types:
      Thing:
        external_ref: ext
        properties: {{title: {{type: string, max_length: 50}}, qty: {{type: integer}}}}
      Org: {{external_ref: ext, properties: {{name: {{type: string}}, org_no: {{type: string}}}}}}
      Contact:
        external_ref: ext
        properties: {{name: {{type: string}}, org_id: {{type: string}}}}
dataflows:
  - id: orders
    source: src.Order
    target: crm.Order
    properties:
      - {{from: number, to: order_no, type: string}}
      - {{from: date, to: order_date, type: date}}
      - {{from: currency, to: currency, type: string}}
      - {{from: customer, to: customer_id, type: integer}}
  - id: things
    source: src.Item
    target: mem.Thing
    properties:
      - {{from: name, to: title, type: string}}
      - {{from: qty, to: qty, type: integer}}
  - id: orgs
    source: src.Company
    target: mem.Org
    match: [[{{from: org, to: org_no}}]]
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: org, to: org_no, type: string}}
  - id: people
    source: src.Person
    target: mem.Contact
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: company, to: org_id, type: reference, source_ref: Company, target_ref: Org}}
"""

runner = CliRunner()


class WrongShape:
    """ASGI wrapper: while ``on``, ``GET /orders`` answers JSON of the wrong shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.on = app, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on and scope["type"] == "http" and scope["path"] == "/orders":
            body = b'{"data": "not a list", "next": 7}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class World:
    def __init__(self, folder: Path, url: str, box: CustomCrmSandbox, shape: WrongShape):
        self.dir, self.box, self.shape = folder, box, shape
        self.names = {"src": f"src-{uuid.uuid4().hex[:6]}", "mem": f"mem-{uuid.uuid4().hex[:6]}"}
        self.path = folder / "samband.yaml"
        self.path.write_text(
            CONFIG.format(dir=folder, url=url, src=self.names["src"], mem=self.names["mem"])
        )
        self.src: MemoryDataset = dataset(self.names["src"])
        self.customer = box.insert("Customer", {"name": "Kunde AS"})["id"]
        self.mem: MemoryDataset = dataset(self.names["mem"])

    def sync(self) -> dict[str, Any]:
        config = parse_config(self.path.read_text(), str(self.path)).config
        engine = Engine(config, environ={"CRM_TOKEN": DEFAULT_TOKEN}, state_dir=str(self.dir))
        try:
            report: dict[str, Any] = engine.sync().to_dict()
        finally:
            engine.close()
        return report

    def cli(self, *args: str) -> Any:
        result = runner.invoke(app, [*args, "-c", str(self.path)])
        assert result.exit_code == 0, result.output
        return result

    def errors(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.cli("errors", "--json").stdout)
        return {row["ref"]: row for row in rows}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    box = CustomCrmSandbox()
    shape = WrongShape(box.app)
    box._app = shape
    server = box.serve()
    world = World(tmp_path, server.url, box, shape)
    try:
        yield world
    finally:
        server.stop()
        for name in world.names.values():
            forget_dataset(name)


def test_values_that_do_not_fit_are_quarantined_with_the_reason(world: World) -> None:
    src = world.src
    good = src.insert(
        "Order",
        {"number": "SO-1", "date": "2024-05-01", "currency": "NOK", "customer": world.customer},
    )
    bad_date = src.insert(
        "Order",
        {"number": "SO-2", "date": "31.12.2024x", "currency": "NOK", "customer": world.customer},
    )
    bad_currency = src.insert(
        "Order",
        {"number": "SO-3", "date": "2024-05-02", "currency": "kr", "customer": world.customer},
    )
    text_int = src.insert("Item", {"name": "Skrue", "qty": "mange"})
    too_long = src.insert("Item", {"name": "N" * 300, "qty": 3})
    fine_item = src.insert("Item", {"name": "Mutter", "qty": 4})

    report = world.sync()
    assert report["status"] == "ok", report
    assert report["created"] == 2 and report["errors"] == 4, report
    errors = world.errors()
    assert set(errors) == {
        f"src:Order:{bad_date}",
        f"src:Order:{bad_currency}",
        f"src:Item:{text_int}",
        f"src:Item:{too_long}",
    }, errors
    reasons = {ref: str(row.get("reason")) for ref, row in errors.items()}
    assert (
        "31.12.2024x" in reasons[f"src:Order:{bad_date}"]
        or "date" in reasons[f"src:Order:{bad_date}"].lower()
    ), reasons
    assert "currency" in reasons[f"src:Order:{bad_currency}"].lower(), reasons
    assert (
        "mange" in reasons[f"src:Item:{text_int}"] or "integer" in reasons[f"src:Item:{text_int}"]
    ), reasons
    assert "300" in reasons[f"src:Item:{too_long}"] and "50" in reasons[f"src:Item:{too_long}"]
    assert good and fine_item

    # nothing lost: fix the records, `samband retry`, and they go through
    src.edit("Order", bad_date, {"date": "2024-12-31"})
    src.edit("Order", bad_currency, {"currency": "EUR"})
    src.edit("Item", text_int, {"qty": 12})
    src.edit("Item", too_long, {"name": "N" * 50})
    result = world.cli("retry")
    assert "4 record(s) queued" in result.stdout
    again = world.sync()
    assert again["status"] == "ok" and again["created"] == 4 and again["errors"] == 0, again
    assert world.errors() == {}
    orders = {o["order_no"]: o for o in world.box.records("Order").values()}
    assert orders["SO-2"]["order_date"] == "2024-12-31" and orders["SO-3"]["currency"] == "EUR"
    assert sorted(t["qty"] for t in world.mem.records("Thing").values()) == [3, 4, 12]


def test_missing_references_and_ambiguous_merges(world: World) -> None:
    src, mem = world.src, world.mem
    src.insert("Person", {"name": "Kari", "company": "999"})  # no such company
    mem.insert("Org", {"name": "Fjord AS", "org_no": "923609016"})
    mem.insert("Org", {"name": "Fjord AS (kopi)", "org_no": "923609016"})
    src.insert("Company", {"name": "Fjord", "org": "923609016"})
    first = world.sync()
    assert first["status"] == "ok", first
    assert first["ambiguous"] == 1 and first["created"] == 0, first
    second = world.sync()  # max_parent_wait_runs: 1 → the orphan is quarantined now
    assert second["status"] == "ok", second
    errors = world.errors()
    reasons = {
        Ref.parse(ref).etype: f"{row['kind']}: {row['reason']}" for ref, row in errors.items()
    }
    assert set(reasons) == {"Company", "Person"}, errors
    assert "ambiguous" in reasons["Company"] and "Fjord" not in reasons["Company"], reasons
    assert "Company:999" in reasons["Person"], reasons
    assert len(mem.records("Org")) == 2 and not mem.records("Contact"), "nothing created"


def test_a_record_deleted_while_its_create_was_in_flight(world: World) -> None:
    src, mem = world.src, world.mem
    doomed = src.insert("Item", {"name": "Kortlevd", "qty": 1})
    src.insert("Item", {"name": "Varig", "qty": 2})

    def delete_source() -> None:
        src.remove("Item", doomed)  # deleted in its system while the create is sent

    mem.inject_failure("create", delete_source, "Thing")
    first = world.sync()
    assert first["status"] == "ok", first
    second = world.sync()
    assert second["status"] == "ok" and second["errors"] == 0, second
    things = list(mem.records("Thing").values())
    assert sorted(t["title"] for t in things) == ["Kortlevd", "Varig"], things  # no duplicate
    quiet = world.sync()
    assert quiet["created"] + quiet["updated"] + quiet["deleted"] == 0, quiet


def test_api_answers_of_the_wrong_shape_stop_that_system_clearly(world: World) -> None:
    world.src.insert(
        "Order",
        {"number": "SO-9", "date": "2024-05-01", "currency": "NOK", "customer": world.customer},
    )
    world.shape.on = True
    report = world.sync()
    assert report["status"] == "failed", report
    message = " ".join(report["messages"])
    assert "crm" in message and "/orders" in message, message
    world.shape.on = False
    report = world.sync()
    assert report["status"] == "ok" and report["created"] == 1, report


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("store: sqlite:///s.db\nsystems: [\n", "c.yaml:3:1"),
        ("store: sqlite:///s.db\nsystems:\n  a:\n    kind: nosuch\ndataflows: []\n", "c.yaml:4:"),
        (
            "store: sqlite:///s.db\nsystems:\n  a: {kind: memory}\n"
            "dataflows:\n  - {source: a.X, target: b.Y}\n",
            "c.yaml:5:",
        ),
        (
            "store: sqlite:///s.db\nsystems:\n  a: {kind: memory, entity_types: {X: {}}}\n"
            "  b: {kind: memory, entity_types: {Y: {}}}\n"
            "dataflows:\n  - source: a.X\n    target: b.Y\n    on_delete: vaporise\n",
            "c.yaml:8:",
        ),
        (
            "store: sqlite:///s.db\nsystems:\n  a: {kind: memory, entity_types: {X: {}}}\n"
            "  b: {kind: memory, entity_types: {Y: {}}}\n"
            "dataflows:\n  - source: a.X\n    target: b.Y\n"
            "    properties:\n      - {from: n, to: m, type: integr}\n",
            "c.yaml:9:",
        ),
        ("\t- not yaml at all\n", "c.yaml:1:"),
    ],
)
def test_configs_with_mistakes_are_refused_with_positions(
    text: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(text)
    for command in (["validate"], ["sync"]):
        result = runner.invoke(app, [*command, "-c", "c.yaml"])
        assert result.exit_code == 2, (command, result.output)
        assert where in result.output, (command, result.output)
        assert "Traceback" not in result.output
