"""The engine tests' memory systems and ``engine_for`` (the ``store`` fixture is in
tests/engine/conftest.py)."""

from __future__ import annotations

from typing import Any

from samband.config import parse_config
from samband.engine.run import Engine

SYSTEMS = """
systems:
  crm:
    kind: memory
    priority: 1
    entity_types:
      Customer: {external_ref: ext}
      Contact: {}
      Region: {read_only: true}
  erp:
    kind: memory
    entity_types:
      Account:
        external_ref: ext
        archive: {property: archived, value: true}
        properties:
          name: {type: string, max_length: 20}
          org: {type: string}
          email: {type: string}
          amount: {type: decimal}
          archived: {type: boolean}
          region: {type: string}
      Person: {}
      NoRef: {}
"""


def engine_for(store: str, flows: str, **options: Any) -> Engine:
    config = parse_config(f"store: {store}\n{SYSTEMS}{flows}").config
    return Engine(config, **options)


ACCOUNTS = """
dataflows:
  - source: crm.Customer
    target: erp.Account
    match: [[{from: org, to: org}], [{from: email, to: email}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
      - {from: email, to: email, type: string}
      - {from: amount, to: amount, type: decimal}
"""


def sync(text: str) -> dict[str, Any]:
    """One run of the config ``text`` (YAML) on a new engine: its report as a dict."""
    with Engine(parse_config(text).config) as engine:
        return engine.sync().to_dict()
