"""CRMOffice's paging is assumed (nothing public describes it).  A real API that pages
another way looks to the connector like one that answers the first page only: a complete
read of Contacts then returns five of 23 records.  Without the full-scan guard the 18 it
misses are taken as deleted and the deletions propagate to the other system; with it they
are held, and the type is read in full again until the read is whole (or confirmed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.engine.inspect import Inspector
from samband.engine.run import Engine
from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox
from samband.kinds.memory.connector import dataset
from samband.store.store import Store
from tests.support.crmoffice import browser_login

ENV = {"CRMO_CLIENT_ID": "sandbox-client", "CRMO_CLIENT_SECRET": "sandbox-secret"}
CONTACTS = 23
PAGE = 5

CONFIG = """
store: sqlite:///{store}
systems:
  crmoffice:
    kind: crmoffice
    base_url: {crm}
    auth_url: {crm}
    rate_limit: 0
    credentials:
      client_id: ${{CRMO_CLIENT_ID}}
      client_secret: ${{CRMO_CLIENT_SECRET}}
    entity_types:
      Contacts: {{page_size: {page}{contacts}}}
  pms:
    kind: memory
    entity_types:
      Person: {{external_ref: ext}}
dataflows:
  - source: crmoffice.Contacts
    target: pms.Person
    on_delete: propagate
    max_delete_share: 1
    properties:
      - {{from: givenName, to: first_name, type: string}}
      - {{from: familyName, to: last_name, type: string}}
{more}{defaults}"""

# how a complete read of Contacts comes about: every run (no change feed used), or the
# first run after a property is added to the dataflow (its cursor no longer serves)
READS = {
    "full scan every run": (", incremental: false", False),
    "mapping changed": ("", True),
}


@pytest.fixture
def crm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    sandbox = CrmOfficeSandbox(rate_limit=None)
    sandbox.seed(CONTACTS)
    server = sandbox.serve()
    state = tmp_path / "state"
    try:
        yield {
            "sandbox": sandbox,
            "url": server.url,
            "store": tmp_path / "state.db",
            "state": state,
        }
    finally:
        server.stop()


def config_text(crm: dict[str, Any], contacts: str, *, more: bool, guard: bool) -> str:
    return CONFIG.format(
        store=crm["store"],
        crm=crm["url"],
        page=PAGE,
        contacts=contacts,
        more="      - {from: email, to: email, type: string}\n" if more else "",
        defaults="" if guard else "defaults: {min_full_scan_share: 0}\n",
    )


def sync(crm: dict[str, Any], text: str, **options: Any) -> dict[str, Any]:
    config = parse_config(text).config
    if not crm["state"].exists():
        browser_login(config, "crmoffice", crm["state"])
    with Engine(config, environ=ENV, state_dir=str(crm["state"])) as engine:
        report = engine.sync(**options).to_dict()
    assert report["status"] == "ok", report["messages"]
    assert report["errors"] == 0, report
    return report


def people() -> int:
    return len(dataset("pms").records("Person"))


def first_page_only_read(crm: dict[str, Any], how: str, *, guard: bool) -> dict[str, Any]:
    """Sync every contact, let the API answer the first page only, and run again."""
    contacts, more = READS[how]
    assert sync(crm, config_text(crm, contacts, more=False, guard=guard))["created"] == CONTACTS
    assert people() == CONTACTS
    crm["sandbox"].first_page_only = True
    return sync(crm, config_text(crm, contacts, more=more, guard=guard))


@pytest.mark.parametrize("how", READS)
def test_without_the_guard_a_first_page_only_read_deletes_in_the_other_system(
    crm: dict[str, Any], how: str
) -> None:
    report = first_page_only_read(crm, how, guard=False)
    assert report["collected"]["crmoffice.Contacts"]["read"] == PAGE
    assert report["deleted"] == CONTACTS - PAGE
    assert people() == PAGE  # what the guard is for


@pytest.mark.parametrize("how", READS)
def test_the_guard_holds_the_deletions_of_a_first_page_only_read(
    crm: dict[str, Any], how: str
) -> None:
    report = first_page_only_read(crm, how, guard=True)

    assert report["collected"]["crmoffice.Contacts"]["read"] == PAGE
    assert report["deleted"] == 0
    assert people() == CONTACTS
    (held,) = report["held_deletions"]
    assert (held["type"], held["read"], held["unseen"]) == (
        "crmoffice.Contacts",
        PAGE,
        CONTACTS - PAGE,
    )
    contacts, more = READS[how]
    text = config_text(crm, contacts, more=more, guard=True)
    with Inspector(parse_config(text).config) as inspector:
        assert [h["type"] for h in inspector.status()["held_deletions"]] == ["crmoffice.Contacts"]

    # held, the type is read in full again: still short, still held
    again = sync(crm, text)
    assert (again["deleted"], len(again["held_deletions"])) == (0, 1)
    # the API answers every page again: the read is whole, the hold ends
    crm["sandbox"].first_page_only = False
    whole = sync(crm, text)
    assert whole["collected"]["crmoffice.Contacts"]["read"] == CONTACTS
    assert (whole["deleted"], whole["held_deletions"]) == (0, [])
    assert people() == CONTACTS
    with Inspector(parse_config(text).config) as inspector:
        assert inspector.status()["held_deletions"] == []
    # and a type with a change feed reads the changes only again (from a cursor)
    state = Store(f"sqlite:///{crm['store']}")
    try:
        cursor = state.get_cursor("crmoffice", "Contacts")[0]
    finally:
        state.close()
    assert (cursor is not None) == (not contacts)
