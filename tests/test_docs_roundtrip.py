"""Import, then generate: any document in the field's format comes back byte for byte
(apart from the Generated line and the Introduction), also when it names systems Samband
has no connector for and properties a connector cannot write; and what a config says
beyond that format becomes a note after the section's table."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from samband.cli import app
from samband.config import parse_config
from samband.config.validate import validate_file
from samband.docs import import_documents, render_documents
from tests.support.field_format import (
    FieldDocument,
    FieldSection,
    comparable,
    field_documents,
    field_properties,
    write,
)

STAMP = "2024-09-11 07:44:14"
STRING = '"string"'
runner = CliRunner()


def round_trip(text: str, folder: Path) -> tuple[str, str]:
    """(the imported config, the document generated from it) through the CLI."""
    document = folder / "doc.rst"
    document.write_text(text, encoding="utf-8")
    config, out = folder / "imported.yaml", folder / "out"
    result = runner.invoke(app, ["docs", "import", str(document), "-o", str(config)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["docs", "-c", str(config), "-o", str(out), "--generated", STAMP])
    assert result.exit_code == 0, result.output
    (generated,) = out.iterdir()
    return config.read_text(encoding="utf-8"), generated.read_text(encoding="utf-8")


@pytest.mark.parametrize("seed", [f"00{n}" for n in range(5)])
def test_every_seed_comes_back(seed: str, shared_dir: Path, tmp_path: Path) -> None:
    (path,) = (shared_dir / "seeds").glob(f"{seed}_*.txt")
    text = path.read_text(encoding="utf-8")
    _, again = round_trip(text, tmp_path)
    assert comparable(again) == comparable(text)


def test_unknown_systems_are_todos_that_validate_warns_about(
    shared_dir: Path, tmp_path: Path
) -> None:
    text = (shared_dir / "seeds" / "002_1a65df464bebb572.txt").read_text(encoding="utf-8")
    config_text, _ = round_trip(text, tmp_path)
    config = tmp_path / "imported.yaml"
    problems = validate_file(config)
    assert [p for p in problems if p.severity == "error"] == []
    (todo,) = [p for p in problems if "has no kind yet" in p.message]
    assert todo.severity == "warning"
    assert config_text.split("\n")[todo.line - 1].strip().startswith("kind: todo")
    assert "set its kind" in (todo.hint or "")
    # a run refuses, naming the dataflows, before it touches anything; no traceback
    result = runner.invoke(app, ["sync", "-c", str(config)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.count("cannot run: system 'customcrm' has no kind yet") == 4
    assert f"{config}:" in result.output
    assert not (tmp_path / "samband.db").exists()


# -- documents of our own, from the field's property names -------------------------------


def cases() -> dict[str, FieldDocument]:
    odd = ['a "quoted" name', "#hash", "key: value", "- dash", "*star*", "{brace}",
           "back\\slash", "Ørsted æøå", "100%", "${HOME}", "it's", "yes", "null", "1.5",
           "`code`", "x|y", "[list]", "&anchor", "!tag", "@at", "?q", ",comma", "",
           "OrganizationNumber (Dependant on having NO in MailAddress.CountryCode)",
           "phone_numbers.number (Dependant on having wd:Q4830453 in phone_numbers.name)",
           ]  # fmt: skip
    po, tx = "PowerOffice GO", "Tripletex"
    return {
        "unsorted rows": FieldDocument("WebCRM", tx, [FieldSection(
            "WebCRM Organisations", "Tripletex Customer", tx, rows=[
                ("OrganisationName", "name", STRING), ("OrganisationCity", "city", STRING),
                ("organisationId", "id", '"integer"')])]),
        "odd properties": FieldDocument(po, "HubSpot", [FieldSection(
            "PowerOffice GO Customers", "HubSpot Contact", "HubSpot",
            rows=sorted((o, o, STRING) for o in odd),
            merge=[(o, o) for o in odd if o])]),
        "same types twice": FieldDocument("Exact", "Visma", [
            FieldSection("Exact Accounts", "Visma Customer", "Visma",
                         rows=[("Name", "name", STRING)]),
            FieldSection("Exact Accounts", "Visma Customer", "Visma", "links",
                         rows=[("Code", "no", '"integer"')])]),
        "one system": FieldDocument("ExactOnline", "ExactOnline", [
            FieldSection("ExactOnline Employees", "ExactOnline Contacts", "ExactOnline",
                         rows=[("FirstName", "FirstName", STRING)]),
            FieldSection("ExactOnline Contacts", "ExactOnline Employees", "ExactOnline",
                         rows=[("Phone", "Phone", STRING)])]),
        "unknown on both sides": FieldDocument("Visma.net", "2", [FieldSection(
            "Visma.net Customers (human data)", "2 Kunde", "2", "filter",
            'When "x: y" # z, it  will be synchronized with a Foo',
            rows=[("a", "b", c) for c in (STRING, '"decimal"', '"date"', '"datetime"',
                                          '"reference"', '"boolean"', '"float"', "N/A")])]),
        "labels in sections": FieldDocument(po, tx, [
            FieldSection("PowerOffice GO Customers", "TTX Customer", tx, rows=[("a", "b", STRING)]),
            FieldSection("Kunder", "Tripletex Kunde", "TTX", rows=[("a", "b", STRING)])]),
        "creation rule of an unknown system": FieldDocument("HubSpot", tx, [FieldSection(
            "HubSpot Deal", "Tripletex Order", tx, rule=("HubSpot", ["Company", "Contact"], po))]),
        "long and many": FieldDocument(po, "Businesscentral", [
            FieldSection(f"PowerOffice GO T{i}", f"Businesscentral U{i}", "Businesscentral",
                         rows=sorted((f"Prop{n:03d}", f"prop{n}", STRING) for n in range(i * 20)))
            for i in range(12)]),
        "type names ending in a dot": FieldDocument("Tripletex", "Visma", [FieldSection(
            "Tripletex Kunde AS.", "Visma Customer Inc.", "Visma", rows=[("a", "b", STRING)])]),
        "very long system names": FieldDocument("Ø" * 200, "X" * 300, [FieldSection(
            "Ø" * 200 + " Kunde", "X" * 300 + " Customer", "X" * 300,
            rows=[("a", "b", STRING)])]),
        "read-only properties": FieldDocument("HubSpot", po, [FieldSection(
            "HubSpot Company", "PowerOffice GO Customers", po,
            rows=[("created", "CustomerCreatedDateTimeOffset", '"datetime"'),
                  ("name", "Name", STRING)])]),
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(cases()))
def test_documents_of_our_own_come_back(name: str, tmp_path: Path) -> None:
    text = write(cases()[name])
    _, again = round_trip(text, tmp_path)
    assert comparable(again) == comparable(text)


def test_a_read_only_property_is_imported_the_way_that_works(tmp_path: Path) -> None:
    config_text, _ = round_trip(write(cases()["read-only properties"]), tmp_path)
    flow = yaml.safe_load(config_text)["dataflows"][0]
    assert flow["properties"] == [
        {"from": "created", "to": "CustomerCreatedDateTimeOffset", "type": "datetime",
         "direction": "backward"},
        {"from": "name", "to": "Name", "type": "string"},
    ]  # fmt: skip
    problems = validate_file(tmp_path / "imported.yaml")
    assert not [p for p in problems if "read-only" in p.message]


def test_unsorted_rows_keep_their_order(tmp_path: Path) -> None:
    config_text, _ = round_trip(write(cases()["unsorted rows"]), tmp_path)
    assert yaml.safe_load(config_text)["dataflows"][0]["document_order"] == "config"
    (tmp_path / "x").mkdir()
    sorted_text, _ = round_trip(write(cases()["one system"]), tmp_path / "x")
    assert "document_order" not in sorted_text


@pytest.mark.parametrize(
    "kind", ["sql, url: 'sqlite:///a.db', entity_types: {C: {table: c}}", "todo"]
)
def test_docs_refuses_a_label_on_several_lines_as_validate_does(kind: str, tmp_path: Path) -> None:
    """A title over two lines is a document no import reads back."""
    config = tmp_path / "samband.yaml"
    config.write_text(
        "systems:\n"
        f'  a: {{kind: {kind}, label: "Foo\\nBar"}}\n'
        "  crm: {kind: webcrm}\n"
        "dataflows:\n"
        "  - {source: a.C, target: crm.Organisations}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["docs", "-c", str(config), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "spans several lines" in result.output
    assert not (tmp_path / "out").exists()
    assert any("spans several lines" in p.message for p in validate_file(config))


def test_documents_need_no_system_no_variable_and_create_no_file(tmp_path: Path) -> None:
    config = tmp_path / "samband.yaml"
    config.write_text(
        "systems:\n"
        "  pms: {kind: sql, url: 'sqlite:///pms.db', entity_types: {C: {table: c}}}\n"
        "  far: {kind: sql, url: 'postgresql://u:${NOT_SET_ANYWHERE}@10.255.255.1/db',"
        " entity_types: {C: {table: c}}}\n"
        "  crm: {kind: webcrm, credentials: {api_token: '${NOT_SET_ANYWHERE}'}}\n"
        "dataflows:\n"
        "  - {source: pms.C, target: crm.Organisations}\n"
        "  - {source: far.C, target: crm.Organisations}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["docs", "-c", str(config), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["far-crm.rst", "pms-crm.rst"]
    assert not (tmp_path / "pms.db").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_field_like_documents_come_back(data, tmp_path_factory: pytest.TempPathFactory) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import SHARED

    tsv = SHARED / "reference" / "field-properties.tsv"
    if not tsv.is_file():
        pytest.skip(f"{tsv} is missing")
    doc = data.draw(field_documents(field_properties(tsv)))
    text = write(doc)
    folder = tmp_path_factory.mktemp("doc")
    path = folder / "doc.rst"
    path.write_text(text, encoding="utf-8")
    documents = render_documents(parse_config(import_documents([str(path)])).config, "rst", STAMP)
    assert [comparable(t) for t in documents.values()] == [comparable(text)]


WORD = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="._-()&:#'\"/"),
    min_size=1,
    max_size=10,
)
LABEL = st.one_of(st.just(""), st.lists(WORD, min_size=1, max_size=3).map(" ".join))
CELL = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12).map(
    str.strip  # a property name ending in blanks is read without them (editor noise)
)
ROWS = st.lists(st.tuples(CELL, CELL, st.sampled_from([STRING, "N/A", '"integer"'])), max_size=5)
OPENING = st.sampled_from(["every", "links", "filter", "filter+links"])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    a=LABEL,
    b=LABEL,
    sections=st.lists(st.tuples(WORD, WORD, ROWS, OPENING, st.booleans()), min_size=1, max_size=4),
)
# characters YAML refuses even quoted (a noncharacter, a C1 control) or reads as a break
@example(
    a="Hub", b="Erp", sections=[("Co", "Ac", [("x\ufffe", "y\x85\x80", STRING)], "every", False)]
)
def test_documents_with_any_names_come_back(
    a: str, b: str, sections: list[tuple[str, str, list[tuple[str, str, str]], str, bool]]
) -> None:
    doc = FieldDocument(a, b, [
        FieldSection(f"{a.split(' ')[0] if short else a} {t}", f"{b} {u}", b, opening,
                     "When it is so" if opening.startswith("filter") else "", rows=sorted(rows))
        for t, u, rows, opening, short in sections
    ])  # fmt: skip
    text = write(doc)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.rst"
        path.write_text(text, encoding="utf-8")
        imported = import_documents([str(path)])
    documents = render_documents(parse_config(imported).config, "rst", STAMP)
    assert [comparable(t) for t in documents.values()] == [comparable(text)]


# -- notes: what the config says beyond the field's format ------------------------------

NOTED = """\
systems:
  hub: {kind: todo, label: HubSpot}
  po: {kind: poweroffice-go, label: PowerOffice GO}
dataflows:
  - source: hub.Company
    target: po.Customers
    on_delete: archive
    priority: po
    properties:
      - {from: name, to: Name, type: string, direction: forward}
      - {from: mail, to: EmailAddress, direction: backward}
      - {from: phone, to: PhoneNumber}
      - {from: created, to: CustomerCreatedDateTimeOffset, direction: backward}
"""


def test_notes_state_what_the_format_cannot_and_come_back(tmp_path: Path) -> None:
    (text,) = render_documents(parse_config(NOTED).config, "rst", STAMP).values()
    notes = [line for line in text.split("\n") if line.startswith("Note: ")]
    assert notes == [
        "Note: mail is synchronized only from a PowerOffice GO Customers (EmailAddress) to a "
        "HubSpot Company; an edit of it in a HubSpot Company is reverted.",
        "Note: Name is synchronized only from a HubSpot Company (name) to a PowerOffice GO "
        "Customers; an edit of it in a PowerOffice GO Customers is reverted.",
        "Note: when a HubSpot Company is deleted, the linked PowerOffice GO Customers is "
        "archived, unless it was edited since the last synchronization.",
        "Note: when a property was changed in both systems at the same moment, the value of "
        "the PowerOffice GO Customers is kept.",
    ]  # the read-only CustomerCreatedDateTimeOffset has no note: no other way works
    assert text.index("Note: ") > text.index("   * - phone")
    config_text, again = round_trip(text, tmp_path)
    assert again == text
    flow = yaml.safe_load(config_text)["dataflows"][0]
    assert (flow["on_delete"], flow["priority"]) == (
        "archive",
        "powerofficego" if False else flow["priority"],
    )
    assert flow["on_delete"] == "archive"
    assert flow["priority"] == "poweroffice-go"


def test_no_note_without_a_config_that_says_more() -> None:
    plain = NOTED.replace("    on_delete: archive\n", "").replace("    priority: po\n", "")
    plain = plain.replace(", direction: forward", "").replace(
        "EmailAddress, direction: backward", "EmailAddress"
    )
    (text,) = render_documents(parse_config(plain).config, "rst", STAMP).values()
    assert "Note:" not in text
    source_priority = plain.replace(
        "    target: po.Customers\n", "    target: po.Customers\n    priority: hub\n"
    )
    (text,) = render_documents(parse_config(source_priority).config, "rst", STAMP).values()
    assert "Note:" not in text


def test_validate_warns_about_each_todo_the_import_left(shared_dir: Path, tmp_path: Path) -> None:
    (seed,) = (shared_dir / "seeds").glob("003_*.txt")  # CRMOffice: a tenant to fill in
    config_text, _ = round_trip(seed.read_text(encoding="utf-8"), tmp_path)
    problems = validate_file(tmp_path / "imported.yaml")
    assert [p for p in problems if p.severity == "error"] == []
    (todo,) = [p for p in problems if "TODO" in p.message]  # beside unset ${VAR}s
    assert todo.severity == "warning"
    assert todo.message == "TODO left by `samband docs import`: your tenant's address"
    assert "auth_url: https://TENANT" in config_text.split("\n")[todo.line - 1]
    filled = config_text.replace("  # TODO: your tenant's address", "")
    (tmp_path / "imported.yaml").write_text(filled, encoding="utf-8")
    left = validate_file(tmp_path / "imported.yaml")
    assert [p for p in left if "TODO" in p.message or p.severity == "error"] == []


def test_an_engine_built_in_code_refuses_a_todo_system(tmp_path: Path) -> None:
    from samband.engine.run import Engine
    from samband.errors import ConnectorError

    config = parse_config(
        "systems:\n  crm: {kind: todo}\n  mem: {kind: memory}\n"
        "dataflows:\n  - {source: crm.Customer, target: mem.Customer}\n"
        f"store: sqlite:///{tmp_path / 'state.db'}\n"
    ).config
    with Engine(config) as engine, pytest.raises(ConnectorError, match="has no kind yet"):
        engine.sync()
