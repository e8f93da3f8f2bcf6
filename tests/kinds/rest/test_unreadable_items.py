"""``kind: rest``: an item of a page that cannot be read (a lone surrogate escape) is
quarantined alone; the rest of the page syncs, run after run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from samband.config import parse_config
from samband.engine.run import Engine
from samband.kinds.memory.connector import dataset
from tests.support.json_api import Handler


def test_rest_an_item_with_a_lone_surrogate_is_quarantined_the_page_syncs(
    json_api: Callable[[Handler], str], tmp_path: Path
) -> None:
    """``"Caf\\ud83d"`` (an emoji cut in half) is valid JSON that orjson refuses: the
    page still parses, that one item is quarantined with the field and the reason, the
    others sync, and the next run is not stopped either."""
    items = [
        {"id": 1, "name": "Good", "updated_at": "2026-01-01T00:00:00Z"},
        {"id": 2, "name": "Caf\ud83d", "updated_at": "2026-01-01T00:00:00Z"},
        {"id": 3, "name": "Also good", "updated_at": "2026-01-01T00:00:00Z"},
    ]

    def answer(query: dict[str, str]) -> bytes:
        start, limit = int(query.get("since", "0")), int(query.get("limit", "100"))
        page = items[start : start + limit]
        end = start + len(page)
        body = {"items": page, "next": str(end), "has_more": end < len(items)}
        return json.dumps(body).encode()  # ensure_ascii: the surrogate as \\ud83d

    base_url = json_api(answer)
    config = f"""
store: "sqlite:///{tmp_path / "s.db"}"
systems:
  shop:
    kind: rest
    base_url: {base_url}
    auth: none
    entity_types: {{Customer: {{path: customers}}}}
  erp: {{kind: memory, entity_types: {{Account: {{external_ref: ext}}}}}}
dataflows:
  - source: shop.Customer
    target: erp.Account
    properties:
      - {{from: name, to: name, type: string}}
"""
    for run in range(2):
        with Engine(parse_config(config).config) as engine:
            report = engine.sync().to_dict()
            dead = engine.store().dead_letters()
        assert report["status"] != "failed", report["messages"]
        assert report["errors"] == (1 if run == 0 else 0)  # read again only when changed
        names = sorted(a["name"] for a in dataset("erp").records("Account").values())
        assert names == ["Also good", "Good"]
        assert [d["ref"] for d in dead] == ["shop:Customer:2"]
        assert "name contains an unpaired surrogate" in dead[0]["reason"]
