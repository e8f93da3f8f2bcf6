"""WebCRM's schema against the field's documents: every property they name is declared
(readable, and writable where WebCRM allows it) or its absence is explained, and what
the connector declares round-trips through the sandbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from samband.config.model import SystemConfig
from samband.connectors.base import EntityType
from samband.kinds.webcrm.connector import (
    FIELD_DOCUMENTS_ABSENT,
    FIELD_DOCUMENTS_READ_ONLY,
    WebCrmConnector,
)
from samband.kinds.webcrm.sandbox import WebCrmSandbox
from samband.mapping import get_path
from samband.types import DataType, coerce
from tests.support.field_documents import FieldProperty, field_properties
from tests.support.webcrm import connector, serve

DOCS = Path(__file__).resolve().parents[3] / "docs/systems/webcrm.md"


def schema() -> dict[str, EntityType]:
    return WebCrmConnector.describe(SystemConfig(kind="webcrm"))


def declared(types: dict[str, EntityType], entity_type: str, prop: str) -> bool:
    return entity_type in types and prop in types[entity_type].properties


@pytest.fixture
def rows() -> list[FieldProperty]:
    return field_properties("webcrm")


@pytest.fixture
def box() -> WebCrmSandbox:
    sandbox = WebCrmSandbox()
    sandbox.seed(3, rng_seed=5)
    return sandbox


@pytest.fixture
def crm(box: WebCrmSandbox) -> Iterator[WebCrmConnector]:
    server = serve(box)
    try:
        yield connector(server.url, box=box)
    finally:
        server.stop()


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
    # writable where the documents write them, unless the reason is given
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
    for entity_type, prop in FIELD_DOCUMENTS_ABSENT:
        assert not declared(types, entity_type, prop), f"{prop} is declared and explained"
    for key in {**FIELD_DOCUMENTS_ABSENT, **FIELD_DOCUMENTS_READ_ONLY}:
        assert key in named, f"{key} is explained but no document names it"
    section = DOCS.read_text(encoding="utf-8").split("## Faithful, and assumed", 1)[1]
    for _, prop in {**FIELD_DOCUMENTS_ABSENT, **FIELD_DOCUMENTS_READ_ONLY}:
        assert re.search(rf"`{re.escape(prop)}`", section), f"{prop} is not explained in {DOCS}"


# -- round trips through the sandbox -------------------------------------------------

# parents every seeded sandbox has: organisation, person, opportunity, user 1
PARENT_ID = "1"


def value_for(etype: EntityType, prop: str, round_no: int) -> Any:
    spec = etype.properties[prop]
    if spec.type is DataType.REFERENCE:
        return PARENT_ID
    if spec.type is DataType.INTEGER:
        return 2 + round_no
    if spec.type is DataType.DECIMAL:
        return Decimal("1234.5") + round_no
    text = f"{prop[:20]} æøå {round_no}"
    return text[: spec.max_length] if spec.max_length else text


def same(etype: EntityType, prop: str, got: Any, sent: Any) -> bool:
    dtype = etype.properties[prop].type
    return bool(coerce(get_path(got, prop), dtype) == coerce(sent, dtype))


def writable_rows(rows: list[FieldProperty], types: dict[str, EntityType]) -> dict[str, list[str]]:
    by_type: dict[str, list[str]] = {}
    for row in rows:
        etype = types.get(row.entity_type)
        if etype is None or etype.read_only or row.property not in etype.properties:
            continue
        if not etype.properties[row.property].read_only:
            by_type.setdefault(row.entity_type, []).append(row.property)
    return by_type


def test_the_documents_properties_round_trip_through_the_sandbox(
    rows: list[FieldProperty], crm: WebCrmConnector, box: WebCrmSandbox
) -> None:
    types = schema()
    by_type = writable_rows(rows, types)
    assert set(by_type) >= {"Organisations", "Persons", "Products", "Quotationline"}
    for entity_type, props in by_type.items():
        etype = types[entity_type]
        first = {prop: value_for(etype, prop, 0) for prop in props}
        created = crm.create(entity_type, first)
        for stage, sent in (("create", first), ("update", None)):
            if sent is None:
                sent = {prop: value_for(etype, prop, 1) for prop in props}
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


def test_read_only_properties_the_documents_read_are_served(
    crm: WebCrmConnector, box: WebCrmSandbox
) -> None:
    created = crm.create(
        "Organisations", {"OrganisationName": "Fjord AS", "OrganisationCountry": "Norway"}
    )
    data = created.data
    assert get_path(data, "OrganisationCountryData.CodeISO") == "NO"
    assert get_path(data, "OrganisationCountryData.Name") == "Norway"
    assert get_path(data, "OrganisationId") == int(created.id)
    crm.update("Organisations", created.id, {"OrganisationCountry": "Sweden"})
    back = crm.get("Organisations", created.id)
    assert back is not None and get_path(back.data, "OrganisationCountryData.CodeISO") == "SE"
    # the nested read-only object is never sent: a write of it changes nothing
    crm.update("Organisations", created.id, {"OrganisationCountryData.CodeISO": "DK"})
    again = crm.get("Organisations", created.id)
    assert again is not None and get_path(again.data, "OrganisationCountryData.CodeISO") == "SE"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("Products", "ProductName"),  # not in the swagger's ProductDto
        ("Users", "UserPhone"),  # the swagger has UserTelephone and UserMobilePhone
        ("Opportunities", "OpportunityResponsibleUserId"),  # OpportunityAssignedTo
        ("QuotationLines", "QuotationLineProductId"),
        ("Persons", "document_number"),
    ],
)
def test_the_sandbox_refuses_fields_webcrm_does_not_have(
    box: WebCrmSandbox, path: str, field: str
) -> None:
    import httpx

    from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN

    server = serve(box)
    try:
        with httpx.Client(base_url=server.url) as http:
            token = http.post("/Auth/ApiLogin", data={"authCode": SANDBOX_API_TOKEN}).json()
            headers = {"Authorization": f"Bearer {token['AccessToken']}"}
            answer = http.post(f"/{path}", json={field: "x"}, headers=headers)
    finally:
        server.stop()
    assert answer.status_code == 400
    assert field in answer.json()["Message"]


# -- through the engine --------------------------------------------------------------

ENGINE_CONFIG = """
store: sqlite:///{dir}/state.db
systems:
  webcrm:
    kind: webcrm
    label: WebCRM
    base_url: {url}
    rate_limit: 0
    credentials: {{api_token: "${{WEBCRM_API_TOKEN}}"}}
  book: {{kind: memory, entity_types: {{Customer: {{}}}}}}
dataflows:
  - source: webcrm.Organisations
    target: book.Customer
    properties:
      - {{from: OrganisationName, to: name, type: string}}
      - {{from: OrganisationDeliveryAddress, to: delivery.street, type: string}}
      - {{from: OrganisationDeliveryCity, to: delivery.city, type: string}}
      - {{from: OrganisationCompanyDescription, to: notes, type: string}}
      - {{from: OrganisationCountryData.CodeISO, to: country, type: string,
          direction: forward}}
"""


def test_the_engine_syncs_the_new_and_the_nested_properties_both_ways(
    box: WebCrmSandbox, tmp_path: Path
) -> None:
    from samband.config import parse_config
    from samband.engine.run import Engine
    from samband.kinds.memory.connector import dataset
    from samband.kinds.webcrm.sandbox import SANDBOX_API_TOKEN

    org = box.insert(
        "Organisations",
        {
            "OrganisationName": "Havbris AS",
            "OrganisationCountry": "Denmark",
            "OrganisationDeliveryAddress": "Kaia 2",
            "OrganisationDeliveryCity": "Ålesund",
            "OrganisationCompanyDescription": "Fisk",
        },
    )
    server = serve(box)
    try:
        config = parse_config(ENGINE_CONFIG.format(dir=tmp_path, url=server.url)).config

        def sync() -> None:
            engine = Engine(config, environ={"WEBCRM_API_TOKEN": SANDBOX_API_TOKEN})
            try:
                report = engine.sync().to_dict()
            finally:
                engine.close()
            assert report["status"] == "ok", report["messages"]

        sync()
        book = dataset("book")
        (customer_id, customer), *_ = [
            (key, record)
            for key, record in book.records("Customer").items()
            if record.get("name") == "Havbris AS"
        ]
        assert customer["delivery"] == {"street": "Kaia 2", "city": "Ålesund"}
        assert (customer["notes"], customer["country"]) == ("Fisk", "DK")
        book.edit("Customer", customer_id, {"delivery": {"street": "Kaia 2", "city": "Molde"}})
        sync()
        stored = box.records("Organisations")[org["OrganisationId"]]
        assert stored["OrganisationDeliveryCity"] == "Molde"
        assert stored["OrganisationCountryData"]["CodeISO"] == "DK"
    finally:
        server.stop()


def test_the_sandbox_has_exactly_the_fields_the_connector_declares() -> None:
    from samband.kinds.webcrm.sandbox import TABLES

    for name, etype in schema().items():
        declared_fields = {prop.split(".", 1)[0] for prop in etype.properties}
        assert declared_fields == set(TABLES[name].columns), name
