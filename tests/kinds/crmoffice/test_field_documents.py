"""CRMOffice's schema against the field's documents (for CRMOffice the only public
evidence of its property names): every property they name is declared — readable, and
writable where they write it — or its absence is explained; the nested paths they use
(``visitAddress.postCode``, ``company.id``, ``address.country``) round-trip through the
sandbox, which refuses properties CRMOffice does not have."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from samband.config import parse_config
from samband.config.model import Config, SystemConfig
from samband.connectors._http import RateLimiter
from samband.connectors.base import EntityType
from samband.kinds.crmoffice.connector import (
    FIELD_DOCUMENTS_ABSENT,
    FIELD_DOCUMENTS_READ_ONLY,
    CrmOfficeConnector,
)
from samband.kinds.crmoffice.sandbox import CrmOfficeSandbox
from samband.mapping import get_path
from samband.sandbox._base import SandboxServer
from samband.types import DataType, coerce
from tests.support.crmoffice import browser_login
from tests.support.field_documents import FieldProperty, field_properties

DOCS = Path(__file__).resolve().parents[3] / "docs/systems/crmoffice.md"
CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


def schema() -> dict[str, EntityType]:
    return CrmOfficeConnector.describe(SystemConfig(kind="crmoffice"))


def declared(types: dict[str, EntityType], entity_type: str, prop: str) -> bool:
    return entity_type in types and prop in types[entity_type].properties


@pytest.fixture
def rows() -> list[FieldProperty]:
    return field_properties("crmoffice")


@pytest.fixture
def box() -> CrmOfficeSandbox:
    sandbox = CrmOfficeSandbox()
    sandbox.seed(3, 7)
    return sandbox


@pytest.fixture
def server(box: CrmOfficeSandbox) -> Iterator[SandboxServer]:
    running = box.serve()
    yield running
    running.stop()


@pytest.fixture
def crm(
    server: SandboxServer,
    box: CrmOfficeSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CrmOfficeConnector]:
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    config: Config = parse_config(
        f"""
systems:
  crm:
    kind: crmoffice
    label: CRMOffice
    base_url: {server.url}
    auth_url: {server.url}
    credentials: {{client_id: sandbox-client, client_secret: sandbox-secret}}
"""
    ).config
    browser_login(config, "crm", tmp_path)
    connector = CrmOfficeConnector(
        "crm",
        config.systems["crm"],
        CLIENT,
        state_dir=str(tmp_path),
        clock=box.clock.time,
        sleep=box.clock.advance,
        limiter=RateLimiter(250, 60.0, clock=box.clock.time, sleep=box.clock.advance),
    )
    yield connector
    connector.close()


def test_every_property_the_documents_name_is_declared_or_explained(
    rows: list[FieldProperty],
) -> None:
    types = schema()
    missing = [
        f"{row.entity_type}.{row.property}"
        for row in rows
        if (row.entity_type, row.property) not in FIELD_DOCUMENTS_ABSENT
        and not declared(types, row.entity_type, row.property)
    ]
    assert missing == [], "declare them, or explain in FIELD_DOCUMENTS_ABSENT"
    not_writable = [
        f"{row.entity_type}.{row.property}"
        for row in rows
        if row.is_target
        and (row.entity_type, row.property) not in FIELD_DOCUMENTS_ABSENT
        and (row.entity_type, row.property) not in FIELD_DOCUMENTS_READ_ONLY
        and (
            types[row.entity_type].read_only
            or types[row.entity_type].properties[row.property].read_only
        )
    ]
    assert not_writable == [], "make them writable, or explain in FIELD_DOCUMENTS_READ_ONLY"


def test_the_explanations_are_not_stale_and_are_in_the_docs(rows: list[FieldProperty]) -> None:
    types, named = schema(), {(row.entity_type, row.property) for row in rows}
    explained = {**FIELD_DOCUMENTS_ABSENT, **FIELD_DOCUMENTS_READ_ONLY}
    for entity_type, prop in FIELD_DOCUMENTS_ABSENT:
        assert not declared(types, entity_type, prop), f"{prop} is declared and explained"
    for key in explained:
        assert key in named, f"{key} is explained but no document names it"
    section = DOCS.read_text(encoding="utf-8").split("## Faithful, and assumed", 1)[1]
    for entity_type, prop in explained:
        assert re.search(rf"{entity_type}[^.]*`{re.escape(prop)}`", section), (
            f"{entity_type}.{prop} is not explained in {DOCS}"
        )


# -- round trips through the sandbox -------------------------------------------------

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def value_for(etype: EntityType, prop: str, round_no: int, parents: dict[str, str]) -> Any:
    spec = etype.properties[prop]
    if spec.type is DataType.REFERENCE:
        return parents[spec.references or ""]
    if spec.type is DataType.DATETIME:
        hours = 2 if prop == "endsAt" else 0
        return START + timedelta(days=round_no, hours=hours)
    if prop.endswith(".country"):
        return ("NO", "SE")[round_no]
    text = f"{prop.rsplit('.', 1)[-1][:12]} æøå {round_no}"
    return text[: spec.max_length] if spec.max_length else text


def same(etype: EntityType, prop: str, data: Any, sent: Any) -> bool:
    dtype = etype.properties[prop].type
    return bool(coerce(get_path(data, prop), dtype) == coerce(sent, dtype))


def test_the_documents_properties_round_trip_through_the_sandbox(
    rows: list[FieldProperty], crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    types = schema()
    parents = {
        "Companies": str(box.records("companies")[0]["id"]),
        "Users": str(box.records("users")[0]["id"]),
    }
    by_type: dict[str, list[str]] = {}
    for row in rows:
        prop = types[row.entity_type].properties[row.property]
        if not prop.read_only:
            by_type.setdefault(row.entity_type, []).append(row.property)
    assert set(by_type) == {"Activities", "Companies", "Contacts"}
    required = {"Companies": {"name": "Fjordkraft AS"}, "Contacts": {"familyName": "Nordmann"}}
    for entity_type, props in by_type.items():
        etype = types[entity_type]
        first = {p: value_for(etype, p, 0, parents) for p in props}
        created = crm.create(entity_type, {**required.get(entity_type, {}), **first})
        second = {p: value_for(etype, p, 1, parents) for p in props}
        for stage, sent in (("create", first), ("update", second)):
            if stage == "update":
                crm.update(entity_type, created.id, sent)
            back = crm.get(entity_type, created.id)
            assert back is not None
            listed = {
                record.id: record for page in crm.read(entity_type, None) for record in page.records
            }[created.id]
            for prop, value in sent.items():
                for how, record in (("get", back), ("read", listed)):
                    assert same(etype, prop, record.data, value), (
                        f"{entity_type}.{prop} after {stage}, by {how}: "
                        f"{get_path(record.data, prop)!r} != {value!r}"
                    )
        stored = box.record(entity_type.lower(), int(created.id))
        assert stored is not None
        # nested paths are nested objects on the wire, not dotted keys
        assert not any("." in key for key in stored)


def test_an_update_of_one_nested_property_keeps_its_siblings(
    crm: CrmOfficeConnector, box: CrmOfficeSandbox
) -> None:
    created = crm.create(
        "Companies",
        {
            "name": "Vik AS",
            "visitAddress.streetAddress": "Storgata 1",
            "visitAddress.postCode": "0155",
            "visitAddress.postalArea": "Oslo",
            "visitAddress.country": "NO",
        },
    )
    crm.update("Companies", created.id, {"visitAddress.postalArea": "OSLO"})
    stored = box.record("companies", int(created.id))
    assert stored is not None
    assert stored["visitAddress"] == {
        "streetAddress": "Storgata 1",
        "postCode": "0155",
        "postalArea": "OSLO",
        "country": "NO",
    }


@pytest.mark.parametrize(
    ("collection", "body", "field"),
    [
        ("companies", {"name": "X AS", "organisationNumber": "123456789"}, "organisationNumber"),
        (
            "companies",
            {"name": "X AS", "visitAddress": {"street": "Gata 1"}},
            "visitAddress.street",
        ),
        ("contacts", {"familyName": "Berg", "firstName": "Kari"}, "firstName"),
        ("activities", {"subject": "Møte", "address": {"city": "Bergen"}}, "address.city"),
    ],
)
def test_the_sandbox_refuses_properties_crmoffice_does_not_have(
    crm: CrmOfficeConnector,
    server: SandboxServer,
    collection: str,
    body: dict[str, Any],
    field: str,
) -> None:
    headers = crm.http.auth.headers() if crm.http.auth is not None else {}
    answer = httpx.post(f"{server.url}/{collection}", json=body, headers=headers)
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


def test_the_sandbox_accepts_every_property_the_connector_declares() -> None:
    from samband.kinds.crmoffice.sandbox import FIELDS

    for name, etype in schema().items():
        if name == "Users":  # not writable through the API
            continue
        known = FIELDS[name.lower()]
        for prop in etype.properties:
            head, _, key = prop.partition(".")
            assert head in known, f"{name}.{prop}"
            keys = known[head]
            assert (keys is None) == (not key), f"{name}.{prop}"
            assert keys is None or key in keys, f"{name}.{prop}"
        # and nothing the connector does not declare
        for head, keys in known.items():
            paths = [head] if keys is None else [f"{head}.{key}" for key in keys]
            assert all(path in etype.properties for path in paths), f"{name}.{head}"
