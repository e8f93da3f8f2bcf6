"""One store serves one config: a second config that shares no dataflow with the store's
is refused with the reason, before it reads or writes anything (the adversary's f2); the
same config edited (a dataflow added, removed or renamed) is not."""

from __future__ import annotations

import pytest

from samband.config import parse_config
from samband.engine.run import Engine
from samband.errors import StoreError
from samband.kinds.memory.connector import dataset

SYSTEMS = """
systems:
  crm: {kind: memory, entity_types: {Customer: {}}}
  erp: {kind: memory, entity_types: {Account: {external_ref: ext}}}
  shop: {kind: memory, entity_types: {Client: {external_ref: ext}}}
dataflows:
"""


def flow(target: str, extra: str = "") -> str:
    return f"""  - source: crm.Customer
    target: {target}
{extra}    properties:
      - {{from: name, to: name, type: string}}
"""


def sync(store: str, flows: str, **options: bool) -> dict[str, object]:
    with Engine(parse_config(f"store: {store}\n{SYSTEMS}{flows}").config) as engine:
        return engine.sync(**options).to_dict()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_second_config_on_one_store_is_refused(store: str, dry_run: bool) -> None:
    crm = dataset("crm")
    crm.insert("Customer", {"name": "Acme"})
    assert sync(store, flow("erp.Account"))["created"] == 1
    with pytest.raises(StoreError, match="this store belongs to another config") as caught:
        sync(store, flow("shop.Client"), dry_run=dry_run)
    assert "crm.Customer->erp.Account" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert dataset("shop").records("Client") == {}
    # the first config goes on as before: it missed nothing
    crm.insert("Customer", {"name": "Beta"})
    assert sync(store, flow("erp.Account"))["created"] == 1


def test_the_same_config_edited_is_not_refused(store: str) -> None:
    dataset("crm").insert("Customer", {"name": "Acme"})
    assert sync(store, flow("erp.Account"))["created"] == 1
    # a dataflow added, then the first given an id, then the first removed
    both = flow("erp.Account") + flow("shop.Client")
    assert sync(store, both)["created"] == 1
    renamed = flow("erp.Account", "    id: accounts\n") + flow("shop.Client")
    assert sync(store, renamed)["status"] == "ok"
    assert sync(store, flow("shop.Client"))["status"] == "ok"
