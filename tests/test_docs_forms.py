"""Every statement form a section can hold, in the issue's exact wording, and its round trip:
import(generate(config)) generates the same document again."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samband.config import parse_config
from samband.config.model import Config
from samband.docs import import_documents, render_documents
from samband.docs.html import rst_warnings

STAMP = "2025-01-02 03:04:05"

SYSTEMS = """
systems:
  hub:
    kind: memory
    label: HubSpot
  trip:
    kind: memory
    label: Tripletex
  blank:
    kind: memory
    label: ""
"""


def config(flows: str, systems: str = SYSTEMS) -> Config:
    return parse_config(systems + "dataflows:\n" + flows).config


def render(cfg: Config) -> dict[str, str]:
    return render_documents(cfg, "rst", STAMP)


def the_document(cfg: Config) -> str:
    documents = render(cfg)
    assert len(documents) == 1
    return next(iter(documents.values()))


def round_trip(cfg: Config, tmp_path: Path) -> str:
    """Generate, import the documents, generate again: every document must come back."""
    documents = render(cfg)
    paths = []
    for name, text in documents.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    yaml_text = import_documents(paths)
    again = render(parse_config(yaml_text).config)
    assert sorted(again.values()) == sorted(documents.values()), yaml_text
    return yaml_text


def assert_clean_rst(text: str) -> None:
    assert rst_warnings(text) == []


def section(text: str, title: str) -> str:
    """The body of the section titled ``title``, up to the next section."""
    lines = text.split("\n")
    start = lines.index(title) + 2
    end = start
    while end < len(lines) and not (
        end + 1 < len(lines) and lines[end + 1] and set(lines[end + 1]) == {"-"}
    ):
        end += 1
    return "\n".join(lines[start:end])


PROPS = """    properties:
      - {from: name, to: name, type: string}
"""


def test_every_is_the_default(tmp_path: Path) -> None:
    cfg = config("  - source: hub.Contact\n    target: trip.Contact\n" + PROPS)
    text = the_document(cfg)
    assert section(text, "HubSpot Contact to Tripletex Contact").startswith(
        "Every HubSpot Contact will be synchronized with a Tripletex Contact.\n\n"
        "Once a link between a HubSpot Contact and a Tripletex Contact is established, it will "
        "keep in sync between the two systems, regardless of where it is edited.\n\n"
        "The following properties are synchronized between a HubSpot Contact and a Tripletex "
        "Contact:\n\n"
    )
    assert_clean_rst(text)
    round_trip(cfg, tmp_path)


def test_create_false_links_only(tmp_path: Path) -> None:
    cfg = config("  - source: hub.Contact\n    target: trip.Contact\n    create: false\n" + PROPS)
    body = section(the_document(cfg), "HubSpot Contact to Tripletex Contact")
    assert body.startswith(
        "Before any synchronization can take place, a link between a HubSpot Contact and a "
        "Tripletex Contact must be established.\n\nOnce a link between"
    )
    assert "Every" not in body
    yaml_text = round_trip(cfg, tmp_path)
    assert "create: false" in yaml_text


@pytest.mark.parametrize(
    ("connected", "words"),
    [
        (["Deal"], "a HubSpot Deal"),
        (["Deal", "Quote"], "a HubSpot Deal, or Quote"),
        (["Deal", "Quote", "Lineitem"], "a HubSpot Deal, Quote, or Lineitem"),
    ],
)
@pytest.mark.parametrize("into", ["trip", "trip.Company"])
def test_creation_rule(connected: list[str], words: str, into: str, tmp_path: Path) -> None:
    flows = (
        "  - source: hub.Contact\n    target: trip.Customer\n"
        f"    create_when: {{connected_to: {connected}, synchronized_into: {into}}}\n" + PROPS
    )
    cfg = config(flows)
    text = the_document(cfg)
    body = section(text, "HubSpot Contact to Tripletex Customer")
    assert body.startswith(
        "Before any synchronization can take place, a link between a HubSpot Contact and a "
        "Tripletex Customer must be established.\n\n"
        "A new Tripletex Customer will be created from a HubSpot Contact if it is connected to "
        f"{words} that is synchronized into Tripletex.\n\nOnce a link"
    )
    assert_clean_rst(text)
    yaml_text = round_trip(cfg, tmp_path)
    assert "create_when:" in yaml_text and "create: false" not in yaml_text


def test_filter_text_with_two_spaces(tmp_path: Path) -> None:
    flows = (
        "  - source: hub.Deal\n    target: trip.Order\n"
        "    filter: {text: 'When a HubSpot Deal has a 100% probability of being sold',"
        " where: {probability: 100}}\n" + PROPS
    )
    cfg = config(flows)
    body = section(the_document(cfg), "HubSpot Deal to Tripletex Order")
    assert body.startswith(
        "When a HubSpot Deal has a 100% probability of being sold, it  will be synchronized "
        "with a Tripletex Order.\n\nOnce a link"
    )
    yaml_text = round_trip(cfg, tmp_path)
    assert 'text: "When a HubSpot Deal has a 100% probability of being sold"' in yaml_text


def test_filter_with_links_only_and_with_a_creation_rule(tmp_path: Path) -> None:
    flows = (
        "  - source: hub.Deal\n    target: trip.Order\n    create: false\n"
        "    filter: {text: When a deal is won}\n"
        "  - source: hub.Deal\n    target: trip.Project\n"
        "    filter: {text: When a deal is won}\n"
        "    create_when: {connected_to: [Company], synchronized_into: trip}\n"
    )
    cfg = config(flows)
    text = the_document(cfg)
    assert section(text, "HubSpot Deal to Tripletex Order").startswith(
        "When a deal is won, it  will be synchronized with a Tripletex Order.\n\n"
        "Before any synchronization can take place, a link between a HubSpot Deal and a "
        "Tripletex Order must be established.\n\nOnce a link"
    )
    assert section(text, "HubSpot Deal to Tripletex Project").startswith(
        "When a deal is won, it  will be synchronized with a Tripletex Project.\n\n"
        "A new Tripletex Project will be created from a HubSpot Deal if it is connected to a "
        "HubSpot Company that is synchronized into Tripletex.\n\nOnce a link"
    )
    round_trip(cfg, tmp_path)


MERGE_TABLE = (
    "A HubSpot Contact will merge with a Tripletex Contact if one of the following property "
    "combinations match:\n\n"
    ".. list-table::\n   :header-rows: 1\n\n"
    "   * - HubSpot Contact Property\n     - Tripletex Contact Property\n"
    "   * - properties.email\n     - email\n"
    "   * - properties.firstname + properties.lastname\n     - firstName + lastName\n\n"
    "Once a link between a HubSpot Contact and a Tripletex Contact is established"
)
MATCH = """    match:
      - [{from: properties.email, to: email, normalize: email}]
      - [{from: properties.firstname, to: firstName}, {from: properties.lastname, to: lastName}]
"""


def test_merge_criteria_after_every(tmp_path: Path) -> None:
    cfg = config("  - source: hub.Contact\n    target: trip.Contact\n" + MATCH + PROPS)
    text = the_document(cfg)
    body = section(text, "HubSpot Contact to Tripletex Contact")
    assert body.startswith(
        "Every HubSpot Contact will be synchronized with a Tripletex Contact.\n\n"
        "If a matching Tripletex Contact already exists, the HubSpot Contact will be merged "
        "with the existing one.\n"
        "If no matching Tripletex Contact is found, a new Tripletex Contact will be created.\n\n"
        + MERGE_TABLE
    )
    assert_clean_rst(text)
    yaml_text = round_trip(cfg, tmp_path)
    assert "{from: properties.firstname, to: firstName}, {from: properties.lastname" in yaml_text


def test_merge_criteria_without_creation_have_no_extra_lines(tmp_path: Path) -> None:
    cfg = config(
        "  - source: hub.Contact\n    target: trip.Contact\n    create: false\n" + MATCH + PROPS
    )
    body = section(the_document(cfg), "HubSpot Contact to Tripletex Contact")
    assert body.startswith(
        "Before any synchronization can take place, a link between a HubSpot Contact and a "
        "Tripletex Contact must be established.\n\n" + MERGE_TABLE
    )
    assert "If a matching" not in body
    round_trip(cfg, tmp_path)


def test_merge_criteria_with_a_filter(tmp_path: Path) -> None:
    cfg = config(
        "  - source: hub.Contact\n    target: trip.Contact\n"
        "    filter: {text: When a contact is a customer}\n" + MATCH
    )
    body = section(the_document(cfg), "HubSpot Contact to Tripletex Contact")
    assert body.startswith(
        "When a contact is a customer, it  will be synchronized with a Tripletex Contact.\n\n"
        "If a matching Tripletex Contact already exists"
    )
    round_trip(cfg, tmp_path)


def test_rows_sorted_by_code_point_with_na_and_nested_paths(tmp_path: Path) -> None:
    flows = """  - source: hub.Company
    target: trip.Customer
    properties:
      - {from: properties.name, to: name, type: string}
      - {from: Zip, to: postalAddress.postalCode}
      - {from: address.city, to: postalAddress.city, type: string}
      - {from: address.city, to: physicalAddress.city, type: string}
      - {from: amount, to: balance, type: decimal}
      - {from: active, to: isInactive, type: boolean}
      - {from: owner, to: accountManager.id, type: reference}
      - {from: closedate, to: invoiceDate, type: date}
      - {from: updated, to: changed, type: datetime}
      - {from: size, to: employees, type: integer}
      - {from: ratio, to: share, type: float}
"""
    cfg = config(flows)
    text = the_document(cfg)
    rows = text.split("Tripletex Data Type\n")[1].strip("\n").split("\n")
    triples = [tuple(line[7:] for line in rows[i : i + 3]) for i in range(0, len(rows), 3)]
    assert triples == [
        ("Zip", "postalAddress.postalCode", "N/A"),
        ("active", "isInactive", '"boolean"'),
        ("address.city", "physicalAddress.city", '"string"'),
        ("address.city", "postalAddress.city", '"string"'),
        ("amount", "balance", '"decimal"'),
        ("closedate", "invoiceDate", '"date"'),
        ("owner", "accountManager.id", '"reference"'),
        ("properties.name", "name", '"string"'),
        ("ratio", "share", '"float"'),
        ("size", "employees", '"integer"'),
        ("updated", "changed", '"datetime"'),
    ]
    assert_clean_rst(text)
    round_trip(cfg, tmp_path)


def test_labels_per_dataflow_and_empty_labels(tmp_path: Path) -> None:
    flows = """  - source: hub.Company
    target: blank.Organisations
    source_label: HubSpot Firm
    properties:
      - {from: name, to: OrganisationName, type: string}
  - source: hub.Contact
    target: blank.Persons
    source_system_label: Hub
    target_system_label: WebCRM
  - source: hub.Deal
    target: blank.Opportunities
    target_label: Sales Opportunity
"""
    cfg = config(flows)
    text = the_document(cfg)
    lines = text.split("\n")
    assert lines[:3] == ["=" * 20, "HubSpot to  Dataflow", "=" * 20]
    assert "HubSpot Firm to  Organisations\n------------------------------\n" in text
    assert "   * - HubSpot Firm Property\n     -  Organisations Property\n     -  Data Type" in text
    assert "Hub Contact to WebCRM Persons\n" in text
    assert "     - WebCRM Persons Property\n     - WebCRM Data Type" in text
    assert "Every HubSpot Deal will be synchronized with a Sales Opportunity." in text
    assert "     - Sales Opportunity Property\n     -  Data Type" in text
    yaml_text = round_trip(cfg, tmp_path)
    assert 'label: ""' in yaml_text


def test_target_label_names_the_system_part_of_the_header() -> None:
    """As in the issue's example: target_label "Custom Customer" alone gives "Custom Data Type"."""
    systems = (
        "systems:\n  po: {kind: memory, label: Powerofficego}\n"
        "  pms: {kind: memory, label: Custom PMS}\n"
    )
    cfg = config(
        "  - {source: po.Customers, target: pms.Customer, target_label: Custom Customer}\n",
        systems,
    )
    text = the_document(cfg)
    assert "     - Custom Customer Property\n     - Custom Data Type\n" in text
    assert text.split("\n")[1] == "Powerofficego to Custom PMS Dataflow"


def test_several_documents_and_systems_round_trip(tmp_path: Path) -> None:
    flows = (
        "  - {source: hub.Contact, target: trip.Contact}\n"
        "  - {source: trip.Contact, target: hub.Contact, create: false}\n"
        "  - {source: hub.Company, target: blank.Organisations}\n"
        "  - {source: hub.Deal, target: trip.Order}\n"
    )
    cfg = config(flows)
    documents = render(cfg)
    assert list(documents) == ["hub-trip.rst", "trip-hub.rst", "hub-blank.rst"]
    assert documents["hub-trip.rst"].count("\n-----") == 3  # Introduction + two sections
    yaml_text = round_trip(cfg, tmp_path)
    imported = parse_config(yaml_text).config
    assert [f.key for f in imported.dataflows] == [
        "hubspot.Contact->tripletex.Contact",
        "hubspot.Deal->tripletex.Order",
        "tripletex.Contact->hubspot.Contact",
        "hubspot.Company->webcrm.Organisations",
    ]


def test_markup_characters_render_to_html_without_warnings(tmp_path: Path) -> None:
    flows = """  - source: hub.Contact
    target: trip.Contact
    filter: {text: "When *every* field_ is |set|"}
    properties:
      - {from: name_, to: "`first`", type: string}
"""
    cfg = config(flows)
    html = render_documents(cfg, "html", STAMP)["hub-trip.html"]
    assert "When *every* field_ is |set|, it  will be synchronized" in html
    assert "<td><p>name_</p></td>" in html and "<td><p>`first`</p></td>" in html
    assert 'class="system-message' not in html
    round_trip(cfg, tmp_path)


def test_labels_holding_to_and_an_empty_source_label(tmp_path: Path) -> None:
    systems = (
        "systems:\n  go: {kind: memory, label: Go to Market}\n"
        "  back: {kind: memory, label: Back to Front}\n  nobody: {kind: memory, label: ''}\n"
    )
    flows = (
        "  - source: go.Lead\n    target: back.Ticket\n"
        + PROPS
        + "  - source: nobody.Customers\n    target: go.Lead\n"
    )
    cfg = config(flows, systems)
    documents = render(cfg)
    assert documents["go-back.rst"].split("\n")[1] == "Go to Market to Back to Front Dataflow"
    assert documents["nobody-go.rst"].split("\n")[1] == " to Go to Market Dataflow"
    assert " Customers to Go to Market Lead\n" in documents["nobody-go.rst"]
    yaml_text = round_trip(cfg, tmp_path)
    assert "source: go-to-market.Lead" in yaml_text and "target: back-to-front.Ticket" in yaml_text
    html = render_documents(cfg, "html", STAMP)
    assert all('class="system-message' not in text for text in html.values())


def test_editor_noise_is_ignored(tmp_path: Path) -> None:
    cfg = config("  - source: hub.Contact\n    target: trip.Contact\n" + PROPS)
    text = the_document(cfg)
    noisy = "\ufeff" + text.replace("\n", "  \r\n")
    path = tmp_path / "noisy.rst"
    path.write_bytes(noisy.encode("utf-8"))
    again = render(parse_config(import_documents([str(path)])).config)
    assert list(again.values()) == [text]


# -- any config: generate, import, generate again ---------------------------------------

WORD = st.from_regex(r"[A-Z][a-z]{0,6}[0-9]?", fullmatch=True)
LABEL = st.one_of(st.just(""), st.lists(WORD, min_size=1, max_size=3).map(" ".join))
PATH = st.lists(st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True), min_size=1,
                max_size=3).map(".".join)  # fmt: skip
DATA_TYPE = st.sampled_from(["string", "integer", "decimal", "float", "boolean", "date",
                             "datetime", "reference", None])  # fmt: skip


TYPE_NAME = st.lists(WORD, min_size=1, max_size=2).map(" ".join)


@st.composite
def flows(draw: st.DrawFn, systems: list[str]) -> dict:
    flow: dict = {
        "source": f"{draw(st.sampled_from(systems))}.{draw(TYPE_NAME)}",
        "target": f"{draw(st.sampled_from(systems))}.{draw(WORD)}",
    }
    for key in ("source_label", "target_label", "source_system_label", "target_system_label"):
        if draw(st.integers(0, 5)) == 0:
            flow[key] = draw(LABEL)
    if draw(st.booleans()):
        flow["create"] = False
    if draw(st.integers(0, 3)) == 0:
        flow["create_when"] = {
            "connected_to": draw(st.lists(WORD, min_size=1, max_size=4)),
            "synchronized_into": draw(st.sampled_from(systems)),
        }
    if draw(st.integers(0, 3)) == 0:
        flow["filter"] = {
            "text": "When " + draw(st.lists(WORD, min_size=1, max_size=5).map(" ".join))
        }
    flow["match"] = draw(
        st.lists(
            st.lists(
                st.builds(lambda a, b: {"from": a, "to": b}, PATH, PATH), min_size=1, max_size=2
            ),
            max_size=2,
        )
    )
    flow["properties"] = [
        {"from": a, "to": b, **({"type": t} if t else {})}
        for a, b, t in draw(st.lists(st.tuples(PATH, PATH, DATA_TYPE), max_size=4))
    ]
    return flow


@st.composite
def configs(draw: st.DrawFn) -> str:
    ids = draw(st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=3,
                        unique=True))  # fmt: skip
    # Documents name systems by their labels: distinct systems need distinct labels.
    labels = draw(st.lists(LABEL, min_size=len(ids), max_size=len(ids), unique=True))
    systems = {
        sid: {"kind": "memory", "label": label} for sid, label in zip(ids, labels, strict=True)
    }
    data = {"systems": systems, "dataflows": draw(st.lists(flows(ids), min_size=1, max_size=4))}
    return yaml.safe_dump(data, sort_keys=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=configs())
def test_any_config_round_trips(text: str) -> None:
    cfg = parse_config(text).config
    documents = render(cfg)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, body in documents.items():
            path = Path(folder) / name
            path.write_text(body, encoding="utf-8")
            paths.append(str(path))
        imported = import_documents(paths)
    again = render(parse_config(imported).config)
    assert sorted(again.values()) == sorted(documents.values()), imported
