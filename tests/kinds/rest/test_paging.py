"""``kind: rest`` paging against APIs that do not page the way they were asked: one that
caps its page size below the one asked for, one that ignores the page parameter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from samband.kinds.memory.connector import dataset
from tests.support.engine import sync
from tests.support.json_api import Handler


def test_rest_a_page_shorter_than_asked_is_not_the_last_page(
    json_api: Callable[[Handler], str], tmp_path: Path
) -> None:
    """Asked for 25 a page, the API answers 20 (its own cap) and says nothing of more
    pages: the connector reads on until an empty page, so with a full read and propagated
    deletes no live record is deleted in the other system."""
    rows = [
        {"id": i, "name": f"Customer {i}", "updated_at": "2026-01-01T00:00:00Z"}
        for i in range(1, 31)
    ]
    cap = {"n": 1000}

    def answer(query: dict[str, str]) -> bytes:
        page, size = int(query.get("page", "1")), min(int(query["page_size"]), cap["n"])
        return json.dumps({"items": rows[(page - 1) * size : page * size]}).encode()

    base_url = json_api(answer)
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  shop:
    kind: rest
    base_url: {base_url}
    auth: none
    entity_types:
      Customer: {{path: customers, paging: page, page_size: 25, incremental: false,
                  deleted: null}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: shop.Customer
    target: erp.Account
    on_delete: propagate
    properties:
      - {{from: name, to: name, type: string}}
"""
    assert sync(config)["created"] == 30
    cap["n"] = 20
    report = sync(config)
    assert report["deleted"] == 0, report["messages"]
    assert len(dataset("erp").records("Account")) == 30


def test_rest_an_api_that_does_not_page_is_read_once(json_api: Callable[[Handler], str]) -> None:
    """An API that ignores the page parameter and answers everything every time: the
    second answer repeats the first (a short one), so the read ends there, each record
    read once (a full first page repeated is still refused: more cannot be reached)."""
    from samband.config.model import SystemConfig
    from samband.kinds.rest.connector import RestConnector

    rows = [{"id": i, "updated_at": "2026-01-01T00:00:00Z"} for i in range(5)]
    asked: list[dict[str, str]] = []

    def answer(query: dict[str, str]) -> bytes:
        asked.append(query)
        return json.dumps({"items": rows}).encode()

    base_url = json_api(answer)
    config = SystemConfig.model_validate(
        {
            "kind": "rest",
            "base_url": base_url,
            "auth": "none",
            "entity_types": {"Thing": {"path": "things", "paging": "page", "incremental": False}},
        }
    )
    connector = RestConnector("shop", config, {})
    try:
        ids = [r.id for page in connector.read("Thing", None) for r in page.records]
    finally:
        connector.close()
    assert ids == ["0", "1", "2", "3", "4"]
    assert [q.get("page") for q in asked] == ["1", "2"]
