"""`samband docs import`: documents in the field's format back into one config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from samband.cli import app
from samband.config import parse_config
from samband.docs import import_documents, render_documents
from samband.errors import DocumentError

STAMP = "2024-09-11 07:44:14"
SEEDS = [
    "000_24f8df1caa7db65f",
    "001_4b2b41b73c3e2920",
    "002_1a65df464bebb572",
    "003_9f3185b9bedf750b",
    "004_bffe6b17f40518a5",
]


def without_generated_and_intro(text: str) -> list[str]:
    lines = text.split("\n")
    end = lines.index("", 9)
    return [*lines[:4], *lines[5:9], *lines[end:]]


@pytest.mark.parametrize("seed", SEEDS)
def test_each_seed_imports_and_generates_back(seed: str, shared_dir: Path) -> None:
    path = shared_dir / "seeds" / f"{seed}.txt"
    yaml_text = import_documents([str(path)])
    documents = render_documents(parse_config(yaml_text).config, "rst", STAMP)
    assert len(documents) == 1
    again = next(iter(documents.values()))
    assert without_generated_and_intro(again) == without_generated_and_intro(
        path.read_text(encoding="utf-8")
    )


def test_all_seeds_in_one_config(shared_dir: Path) -> None:
    paths = [str(shared_dir / "seeds" / f"{seed}.txt") for seed in SEEDS]
    yaml_text = import_documents(paths)
    data = yaml.safe_load(yaml_text)
    kinds = {sid: (s["kind"], s["label"]) for sid, s in data["systems"].items()}
    assert kinds == {
        "powerofficego": ("poweroffice-go", "Powerofficego"),
        "custom-pms": ("todo", "Custom PMS"),
        "webcrm": ("webcrm", ""),
        "customcrm": ("todo", "Customcrm"),
        "crmoffice": ("crmoffice", "CRMOffice"),
        "poweroffice-go": ("poweroffice-go", "PowerOffice GO"),
        "exactonline": ("exact-online", "ExactOnline"),
        "custompms": ("todo", "CustomPMS"),
    }
    assert "kind: todo  # TODO" in yaml_text
    po = data["systems"]["powerofficego"]
    assert po["credentials"]["application_key"] == "${POWEROFFICEGO_APPLICATION_KEY}"
    assert data["systems"]["custom-pms"]["entity_types"] == {"Customer": {}, "Project": {}}
    flows = data["dataflows"]
    assert len(flows) == 3 + 4 + 4 + 3 + 3
    assert flows[0] == {
        "source": "powerofficego.Departments",
        "target": "custom-pms.Customer",
        "target_system_label": "Custom",
    }
    assert {"source": "exactonline.Departments", "target": "custompms.Customer",
            "source_system_label": "Exact"} in flows  # fmt: skip
    assert {
        "source": "crmoffice.Contacts",
        "target": "poweroffice-go.Contactperson",
        "properties": [
            {"from": "directPhone", "to": "phoneNumber", "type": "string"},
            {"from": "familyName", "to": "lastName", "type": "string"},
            {"from": "givenName", "to": "firstName", "type": "string"},
        ],
    } in flows
    # One config generates all five documents again.
    documents = render_documents(parse_config(yaml_text).config, "rst", STAMP)
    assert len(documents) == 5
    for seed, text in zip(SEEDS, documents.values(), strict=True):
        seed_text = (shared_dir / "seeds" / f"{seed}.txt").read_text(encoding="utf-8")
        assert without_generated_and_intro(text) == without_generated_and_intro(seed_text)


GOOD = """\
==================
Alpha to Beta Dataflow
==================

Generated: 2024-01-01 00:00:00

Introduction
------------

Anything at all.

Alpha Thing to Beta Item
------------------------
Every Alpha Thing will be synchronized with a Beta Item.

Once a link between a Alpha Thing and a Beta Item is established, it will keep in sync \
between the two systems, regardless of where it is edited.

The following properties are synchronized between a Alpha Thing and a Beta Item:

.. list-table::
   :header-rows: 1

   * - Alpha Thing Property
     - Beta Item Property
     - Beta Data Type
   * - name
     - title
     - "string"
   * - size
     - weight
     - N/A

"""


def test_a_good_handwritten_document(tmp_path: Path) -> None:
    path = tmp_path / "good.rst"
    path.write_text(GOOD, encoding="utf-8")
    data = yaml.safe_load(import_documents([str(path)]))
    assert data["dataflows"] == [
        {
            "source": "alpha.Thing",
            "target": "beta.Item",
            "properties": [
                {"from": "name", "to": "title", "type": "string"},
                {"from": "size", "to": "weight"},
            ],
        }
    ]
    assert data["systems"]["alpha"]["kind"] == "todo"


BAD = [
    ("", 1, "not a dataflow document"),
    ("hello\nworld\n", 1, "not a dataflow document"),
    (GOOD.replace("==================\n\nGenerated", "=====\n\nGenerated"), 3, "underline"),
    (GOOD.replace("Alpha to Beta Dataflow", "Alpha to Beta Flow"), 2, "Dataflow"),
    (GOOD.replace("Alpha to Beta Dataflow", "Alpha and Beta Dataflow"), 2, "<source> to"),
    (GOOD.replace("Generated: 2024-01-01 00:00:00\n\n", ""), 5, "Generated"),
    (GOOD.replace("Introduction\n---", "Preface\n-------"[:-3] + "\n---"), 7, "Introduction"),
    (GOOD.replace("Alpha Thing to Beta Item\n", "Alpha Thing to Beta Items\n"), 12, "title"),
    (GOOD.replace('"string"', '"money"'), 28, "unknown data type '\"money\"'"),
    (GOOD.replace("     - N/A\n", ""), 29, "2 cells; expected 3"),
    (GOOD.replace("     - title\n", "    - title\n"), 27, "unexpected line in a table"),
    (GOOD.replace("Every Alpha Thing", "Each Alpha Thing"), 14, "expected 'Every Alpha"),
    (
        GOOD.replace("\nOnce a link", "\nSomething else entirely.\n\nOnce a link"),
        16,
        "unexpected 'Something else entirely.'",
    ),
    (GOOD.replace("Once a link between a Alpha", "Once linked, a Alpha"), 16, "Once a link"),
    (GOOD.replace(":header-rows: 1", ":widths: auto"), 21, "unsupported table option"),
    (GOOD.replace("Anything at all.", "  indented"), 10, "indented"),
    (GOOD.replace("Anything at all.", ".. image:: x.png"), 10, "directive"),
    (GOOD.split("Alpha Thing to Beta Item")[0], 12, "no dataflow sections"),
    (GOOD.replace("     - Beta Data Type", "     - Beta Type"), 23, "header"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_input_names_file_and_line(text: str, line: int, message: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.rst"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DocumentError) as caught:
        import_documents([str(path)])
    assert caught.value.file == str(path)
    assert caught.value.line == line, str(caught.value)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_unreadable_files(tmp_path: Path) -> None:
    binary = tmp_path / "doc.rst"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(DocumentError, match="not UTF-8"):
        import_documents([str(binary)])
    with pytest.raises(DocumentError, match="cannot read"):
        import_documents([str(tmp_path / "missing.rst")])
    with pytest.raises(DocumentError):
        import_documents([])


def test_cli_import_writes_the_config_or_nothing(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.rst", tmp_path / "bad.rst"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(GOOD.replace('"string"', '"money"'), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["docs", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "source: alpha.Thing" in result.stdout
    out = tmp_path / "config.yaml"
    result = runner.invoke(app, ["docs", "import", str(good), str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert f"{bad}:28:" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["docs", "import", str(good), "-o", str(out)])
    assert result.exit_code == 0
    assert parse_config(out.read_text(encoding="utf-8")).config.dataflows[0].target == "beta.Item"


def test_the_import_never_writes_over_a_hand_written_config_or_a_folder(
    shared_dir: Path, tmp_path: Path
) -> None:
    (seed,) = (shared_dir / "seeds").glob("002_*.txt")
    document = tmp_path / "doc.rst"
    document.write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    mine = tmp_path / "samband.yaml"
    mine.write_text("systems: {}\n# my own notes\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["docs", "import", str(document), "-o", str(mine)])
    assert result.exit_code == 2 and "not written by `samband docs import`" in result.output
    assert mine.read_text(encoding="utf-8") == "systems: {}\n# my own notes\n"
    result = runner.invoke(app, ["docs", "import", str(document), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output
    imported = tmp_path / "imported.yaml"
    for _ in range(2):  # an earlier import is replaced
        result = runner.invoke(app, ["docs", "import", str(document), "-o", str(imported)])
        assert result.exit_code == 0, result.output
    assert parse_config(imported.read_text(encoding="utf-8")).config.systems
