"""No silent change of a value: exact decimals, integers past 64 bits, ids with leading
zeros, Unicode variants of one key, and a filter over a value it cannot compare (issue 17:
4, 6, 10, 14, 15)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from samband import exactjson
from samband.config import parse_config
from samband.engine.model import normalize
from samband.engine.run import Engine
from samband.errors import ConversionError
from samband.kinds.memory.connector import dataset, forget_dataset
from samband.kinds.rest.sandbox import DEFAULT_TOKEN, CustomCrmSandbox
from samband.sandbox._base import SandboxServer
from samband.store import schema
from samband.types import DataType, coerce, to_wire

BIG = "12345678901234567.89"

SYSTEMS = """
systems:
  crm:
    kind: memory
    entity_types:
      Company: {}
      Contact: {}
  erp:
    kind: memory
    entity_types:
      Account: {external_ref: ext}
      Person: {external_ref: ext}
"""


def engine_for(store_url: str, flows: str) -> Engine:
    return Engine(parse_config(f"store: {store_url}\n{SYSTEMS}{flows}").config)


# -- decimals ------------------------------------------------------------------------------
def test_exact_json_keeps_long_decimals_and_big_integers() -> None:
    raw = exactjson.dumps({"price": Decimal(BIG), "count": 2**70, "small": Decimal("2.5")})
    assert raw == b'{"price":12345678901234567.89,"count":1180591620717411303424,"small":2.5}'
    back = exactjson.loads(raw)
    assert back == {"price": Decimal(BIG), "count": 2**70, "small": 2.5}
    assert isinstance(back["small"], float)  # ordinary numbers stay floats (fast path)
    assert exactjson.loads(raw, decimal=str)["price"] == BIG


def test_to_wire_never_rounds_a_decimal() -> None:
    assert to_wire(Decimal("950.5")) == 950.5
    assert to_wire(Decimal(BIG)) == Decimal(BIG)
    with pytest.raises(ConversionError, match="float"):
        coerce(Decimal(BIG), DataType.FLOAT)
    with pytest.raises(ConversionError, match="float"):
        coerce(2**60 + 1, DataType.FLOAT)
    assert coerce("0.1", DataType.FLOAT) == 0.1


FLOWS_AMOUNT = """
dataflows:
  - source: crm.Company
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
      - {from: amount, to: amount, type: decimal}
"""


def test_a_long_decimal_reaches_a_memory_target_exactly(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Acme", "amount": BIG})
    with engine_for(store_url, FLOWS_AMOUNT) as engine:
        engine.sync()
        assert Decimal(str(erp.records("Account")["1"]["amount"])) == Decimal(BIG)
        assert engine.sync().writes == 0
        assert crm.records("Company")["1"]["amount"] == BIG


REST = """
store: {store}
systems:
  crm:
    kind: rest
    base_url: {url}
    auth: bearer
    credentials: {{token: "${{CRM_TOKEN}}"}}
    entity_types:
      Product:
        path: products
        external_ref: external_ref
        properties: {{code: string, name: string, unit_price: decimal}}
  erp:
    kind: memory
    dataset: {dataset}
    entity_types:
      Item: {{external_ref: ext}}
dataflows:
  - source: erp.Item
    target: crm.Product
    properties:
      - {{from: Code, to: code, type: string}}
      - {{from: Title, to: name, type: string}}
      - {{from: Price, to: unit_price, type: decimal}}
"""


@pytest.fixture
def rest_world(tmp_path: Path) -> Iterator[tuple[CustomCrmSandbox, Any, Engine]]:
    box = CustomCrmSandbox()
    server: SandboxServer = box.serve()
    name = f"erp-{uuid.uuid4().hex[:8]}"
    text = REST.format(store=f"sqlite:///{tmp_path / 'state.db'}", url=server.url, dataset=name)
    engine = Engine(parse_config(text).config, environ={"CRM_TOKEN": DEFAULT_TOKEN})
    try:
        yield box, dataset(name), engine
    finally:
        engine.close()
        server.stop()
        forget_dataset(name)


def test_a_long_decimal_travels_exactly_through_a_json_api(
    rest_world: tuple[CustomCrmSandbox, Any, Engine],
) -> None:
    box, erp, engine = rest_world
    erp.insert("Item", {"Code": "P-1", "Title": "Hour", "Price": BIG})
    assert engine.sync().to_dict()["created"] == 1
    (product,) = box.records("Product").values()
    assert Decimal(str(product["unit_price"])) == Decimal(BIG)
    assert engine.sync().writes == 0
    assert erp.records("Item")["1"]["Price"] == BIG  # nothing rounded flowed back
    # and an edit in the API keeps its digits on the way back
    box.edit("Product", product["id"], {"unit_price": Decimal("98765432109876543.21")})
    engine.sync()
    assert Decimal(str(erp.records("Item")["1"]["Price"])) == Decimal("98765432109876543.21")


# -- integers past 64 bits -----------------------------------------------------------------
FLOWS_COUNT = """
dataflows:
  - source: crm.Company
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
      - {from: count, to: count, type: integer}
"""


def test_an_integer_past_64_bits_costs_at_most_its_record(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Huge", "count": 2**70})
    crm.insert("Company", {"name": "Small", "count": 3})
    with engine_for(store_url, FLOWS_COUNT) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        names = {a["name"]: a for a in erp.records("Account").values()}
        assert names["Small"]["count"] == 3
        assert int(names["Huge"]["count"]) == 2**70  # exact, or the record is quarantined
        assert engine.sync().writes == 0


# -- ids keep their spelling ---------------------------------------------------------------
FLOWS_REFERENCES = """
dataflows:
  - source: crm.Company
    target: erp.Account
    properties: [{from: name, to: name, type: string}]
  - source: crm.Contact
    target: erp.Person
    properties:
      - {from: name, to: name, type: string}
      - {from: company_id, to: account_id, type: reference, source_ref: Company,
         target_ref: Account}
"""


def test_reference_ids_keep_their_leading_zeros(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.put("Company", "007", {"id": "007", "name": "Bond AS"})
    crm.put("Company", "008", {"id": "008", "name": "Otto AS"})
    crm.put("Contact", "c1", {"id": "c1", "name": "Kari", "company_id": "007"})
    with engine_for(store_url, FLOWS_REFERENCES) as engine:
        engine.sync()
        accounts = {a["name"]: rid for rid, a in erp.records("Account").items()}
        (person_id,) = erp.records("Person")
        # the contact is moved in the ERP to Otto AS, whose CRM id is "008"
        erp.edit("Person", person_id, {"account_id": int(accounts["Otto AS"])})
        engine.sync()
        assert crm.records("Contact")["c1"]["company_id"] == "008"
        assert engine.sync().writes == 0


def test_memory_ids_keep_their_spelling() -> None:
    crm = dataset("crm")
    rid = crm.insert("Company", {"id": "008", "name": "Otto AS"})
    assert rid == "008" and crm.records("Company")["008"]["id"] == "008"


# -- Unicode variants of one merge key ------------------------------------------------------
def test_merge_keys_are_unicode_normalised() -> None:
    assert normalize("Mu\u0308ller AS", "trim") == normalize("Müller AS", "trim")
    assert normalize("912\u200b345\u200c678", "orgno") == "912345678"
    assert normalize("\ufeff912345678", "orgno") == "912345678"
    assert normalize("９１２３４５６７８", "orgno") == "912345678"
    assert normalize("٩١٢٣٤٥٦٧٨", "digits") == "912345678"
    assert normalize("ＰＯＳＴ@ｆｊｏｒｄ.no", "email") == "post@fjord.no"
    assert normalize("+47\u00a022\u00a033 44 55", "phone") == normalize("22334455", "phone")
    assert normalize("(+47) 22 33 44 55", "phone") == normalize("+47 22 33 44 55", "phone")
    assert normalize("McDonald\u2019s", "trim") == normalize("McDonald's", "trim")
    assert normalize("Sør\u2010Fron", "trim") == normalize("Sør-Fron", "trim")
    assert normalize("post@bodø.no", "email") == normalize("post@xn--bod-2na.no", "email")


FLOWS_MATCH = """
dataflows:
  - source: crm.Company
    target: erp.Account
    match: [[{from: org, to: org}], [{from: name, to: name}]]
    properties:
      - {from: name, to: name, type: string}
      - {from: org, to: org, type: string}
"""


@pytest.mark.parametrize(
    ("crm_value", "erp_value"),
    [
        ({"name": "Müller AS"}, {"name": "Mu\u0308ller AS"}),  # NFC vs NFD
        ({"org": "912345678"}, {"org": "912\u200b345678"}),  # a zero-width space
        ({"name": "Acme\u200b AS"}, {"name": "Acme\u00a0AS"}),  # zero-width, no-break space
        ({"org": "９１２３４５６７８"}, {"org": "912345678"}),  # full-width digits
    ],
)
def test_unicode_variants_link_instead_of_duplicating(
    store_url: str, crm_value: dict[str, str], erp_value: dict[str, str]
) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "A", "org": "1", **crm_value})
    erp.insert("Account", {"name": "B", "org": "2", **erp_value})
    with engine_for(store_url, FLOWS_MATCH) as engine:
        report = engine.sync()
        assert (report.to_dict()["linked"], report.to_dict()["created"]) == (1, 0)
        assert len(erp.records("Account")) == 1


# -- a filter over a value it cannot compare ------------------------------------------------
FLOWS_FILTER = """
dataflows:
  - source: crm.Company
    target: erp.Account
    filter: {text: "only companies with more than 10 employees", where: {employees: {gt: 10}}}
    properties: [{from: name, to: name, type: string}]
"""


def test_a_filter_over_a_value_it_cannot_compare_costs_only_that_record(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Vague", "employees": "ca. 20"})
    crm.insert("Company", {"name": "Big", "employees": 25})
    crm.insert("Company", {"name": "Small", "employees": "3"})
    with engine_for(store_url, FLOWS_FILTER) as engine:
        report = engine.sync()
        assert report.status == "ok", report.messages
        assert [a["name"] for a in erp.records("Account").values()] == ["Big"]
        (letter,) = engine.store().dead_letters()
        assert letter["ref"] == "crm:Company:1"
        assert "ca. 20" in letter["reason"] and "employees" in letter["reason"]
        runs = engine.store().table_rows(schema.runs)
        assert [run["status"] for run in runs] == ["ok"]


def test_not_a_number_from_a_source_is_refused_not_cleared(store_url: str) -> None:
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Acme", "amount": "5.5"})
    with engine_for(store_url, FLOWS_AMOUNT) as engine:
        engine.sync()
        for bad in (float("nan"), float("inf")):
            crm.edit("Company", "1", {"amount": bad})
            report = engine.sync()
            assert report.status == "ok", report.messages
            assert erp.records("Account")["1"]["amount"] == 5.5  # not wiped to null
            (letter,) = engine.store().dead_letters()
            assert "finite" in letter["reason"]


def test_a_value_flowing_back_that_the_source_type_would_change_is_refused(
    store_url: str,
) -> None:
    """The source holds an integer; "008" entered in the target would come back as "8"."""
    systems = SYSTEMS.replace(
        "      Company: {}\n", "      Company: {properties: {number: {type: integer}}}\n"
    )
    flows = """
dataflows:
  - source: crm.Company
    target: erp.Account
    properties:
      - {from: name, to: name, type: string}
      - {from: number, to: number, type: string}
"""
    crm, erp = dataset("crm"), dataset("erp")
    crm.insert("Company", {"name": "Acme", "number": 8})
    config = parse_config(f"store: {store_url}\n{systems}{flows}").config
    with Engine(config) as engine:
        engine.sync()
        erp.edit("Account", "1", {"number": "008"})
        engine.sync()
        assert crm.records("Company")["1"]["number"] == 8
        assert erp.records("Account")["1"]["number"] == "008"  # not changed behind its back
        (letter,) = engine.store().dead_letters()
        assert "008" in letter["reason"] and "changes it" in letter["reason"]
