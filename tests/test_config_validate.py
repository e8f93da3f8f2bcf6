"""`samband validate`: exit 0 on the examples, exit 2 with FILE:LINE:COLUMN for each problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import samband
from samband.cli import app
from samband.errors import Problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "seeds").glob("*.yaml"))

BASE = """\
systems:
  mem:
    kind: memory
    label: Memory
    entity_types:
      T: {properties: {name: {type: string}, count: {type: integer}, note: {type: string}}}
  other:
    kind: memory
    label: Other
    entity_types:
      U: {properties: {title: {type: string}, size: {type: integer}}}
dataflows:
  - source: mem.T
    target: other.U
    properties:
      - {from: name, to: title, type: string}
"""


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[int, str]:
    """`samband validate -c c.yaml` in tmp_path; (exit code, output with lines unwrapped)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "-c", "c.yaml"])
    return result.exit_code, " ".join(result.output.split())


def problems(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return samband.validate(path)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_examples_are_valid(example: Path, tmp_path: Path) -> None:
    copy = tmp_path / example.name  # validation may touch sqlite files beside the config
    shutil.copy(example, copy)
    found = samband.validate(copy)
    assert [p for p in found if p.severity == "error"] == []
    result = CliRunner().invoke(app, ["validate", "-c", str(copy)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_the_base_config_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(tmp_path, BASE) == []
    code, output = run(tmp_path, monkeypatch, BASE)
    assert (code, output) == (0, "c.yaml: valid")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("kind: memory\n    label: Memory", "kind: [memory\n    label: M"),
            "c.yaml:4:10: error: not valid YAML:",
        ),
        (
            lambda t: t + "dataflow: []\n",
            "c.yaml:17:1: error: dataflow: unknown key",
        ),
        (
            lambda t: t.replace("    properties:\n", "    propertes:\n"),
            "c.yaml:15:5: error: dataflows.0.propertes: unknown key",
        ),
        (
            lambda t: t.replace("target: other.U", "target: othr.U"),
            "c.yaml:14:5: error: unknown system 'othr' (hint: did you mean 'other'?)",
        ),
        (
            lambda t: t.replace("source: mem.T", "source: mem.Tt"),
            "c.yaml:13:5: error: system 'mem' has no entity type 'Tt' (hint: did you mean 'T'?)",
        ),
        (
            lambda t: t.replace("kind: memory\n    label: Other", "kind: memroy\n    label: Other"),
            "c.yaml:8:5: error: unknown system kind 'memroy' (hint: did you mean 'memory'?)",
        ),
        (
            lambda t: t.replace("{from: name, to: title", "{from: nmae, to: title"),
            "c.yaml:16:10: error: T has no property 'nmae' (hint: did you mean 'name'?)",
        ),
        (
            lambda t: t.replace("to: title, type: string}", "to: titel, type: string}"),
            "c.yaml:16:22: error: U has no property 'titel' (hint: did you mean 'title'?)",
        ),
        (
            lambda t: t + "      - {from: note, to: title}\n",
            "c.yaml:17:22: error: 'title' is mapped twice in this dataflow "
            "(hint: the first mapping is entry 1)",
        ),
        (
            lambda t: t.replace("  mem:\n", "  other:\n    kind: memory\n  mem:\n", 1),
            "c.yaml:9:3: error: not valid YAML: duplicate key 'other' (the first is on line 2)",
        ),
        (
            lambda t: (
                t + "  - source: mem.T\n    target: other.U\n"
                "    create_when: {connected_to: [T], synchronized_into: othr}\n"
            ),
            "c.yaml:19:38: error: unknown system 'othr' (hint: did you mean 'other'?)",
        ),
    ],
)
def test_errors_exit_2_with_file_line_column(
    edit, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run(tmp_path, monkeypatch, edit(BASE))
    assert code == 2
    assert expected in output
    assert "valid" not in output.replace("not valid YAML", "")


def test_creation_rule_types_are_checked(tmp_path: Path) -> None:
    text = BASE + (
        "  - source: mem.T\n    target: other.U\n"
        "    create_when: {connected_to: [Tt, T], synchronized_into: other.V}\n"
    )
    found = [(p.line, p.severity, p.message, p.hint) for p in problems(tmp_path, text)]
    assert found == [
        (19, "error", "system 'other' has no entity type 'V'", "known entity types: U"),
        (
            19,
            "error",
            "system 'mem' has no entity type 'Tt'",
            "connected_to lists entity types of the source system; did you mean 'T'?",
        ),
    ]
    fine = text.replace("[Tt, T], synchronized_into: other.V", "[T], synchronized_into: other.U")
    assert problems(tmp_path, fine) == []


def test_missing_systems_and_missing_file(tmp_path: Path) -> None:
    found = problems(tmp_path, "dataflows: []\n")
    assert [(p.line, p.column, p.message) for p in found] == [
        (1, 1, "systems: this key is required")
    ]
    missing = samband.validate(tmp_path / "nope.yaml")
    assert [p.message for p in missing] == ["the config file does not exist"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("{from: name, to: title, type: string}", "{from: name, to: size}"),
            "c.yaml:16:9: warning: name (string) → size (integer) cannot round-trip",
        ),
        (
            lambda t: t.replace("label: Other", 'label: ""'),
            "c.yaml:9:5: warning: system 'other' has an empty label "
            "(hint: documents will show double spaces where the label stands)",
        ),
        (
            lambda t: t.replace(
                "    label: Memory\n", "    label: Memory\n    credentials: {token: hunter2-xyz}\n"
            ),
            "c.yaml:5:19: warning: credential 'token' of 'mem' is written in the file",
        ),
        (
            lambda t: t.replace(
                "    label: Memory\n",
                "    label: Memory\n    url: postgresql://app:hunter2-xyz@db.example/app\n",
            ),
            "c.yaml:5:5: warning: 'url' of 'mem' holds a password written in the file",
        ),
        (
            lambda t: t + "    filter: {text: When a thing is ready}\n",
            "c.yaml:17:5: warning: the filter has text but no 'where'",
        ),
        (
            lambda t: (
                t + "    create: false\n"
                "    create_when: {connected_to: [T], synchronized_into: other}\n"
            ),
            "c.yaml:18:5: warning: create_when has no effect",
        ),
    ],
)
def test_warnings_exit_0(
    edit, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run(tmp_path, monkeypatch, edit(BASE))
    assert code == 0, output
    assert expected in output
    assert "c.yaml: valid (1 warning(s))" in output
    assert "hunter2" not in output  # a secret written in the file is never printed


def test_secrets_in_env_references_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEM_TOKEN", "x")
    monkeypatch.setenv("DB_PASSWORD", "y")
    text = BASE.replace(
        "    label: Memory\n",
        "    label: Memory\n    credentials: {token: '${MEM_TOKEN}'}\n"
        "    url: postgresql://app:${DB_PASSWORD}@db.example/app\n",
    )
    assert problems(tmp_path, text) == []


def test_json_output_lists_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = BASE.replace("target: other.U", "target: othr.U").replace("label: Other", 'label: ""')
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "-c", "c.yaml", "--json"])
    assert result.exit_code == 2
    assert '"severity": "warning"' in result.stdout and '"severity": "error"' in result.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'systems:\n  a: {kind: memory, label: "\xff"}\n', "2:29: error: not UTF-8 text"),
        (b"a: &x [*x]\nsystems: {}\n", "1:4: error: not valid YAML: a recursive alias"),
        (b"? [a]\n: b\nsystems: {}\n", "1:3: error: not valid YAML: a key must be a plain value"),
        (b"- just\n- a list\n", "1:1: error: the config must be a mapping"),
    ],
)
def test_files_yaml_cannot_read_are_problems_not_crashes(
    content: bytes, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_bytes(content)
    result = CliRunner().invoke(app, ["validate", "-c", "c.yaml"])
    assert result.exit_code == 2
    assert f"c.yaml:{expected}" in " ".join(result.output.split())


def test_bom_crlf_and_merge_keys_are_fine(tmp_path: Path) -> None:
    text = "\ufeffbase: &memory {kind: memory}\r\n" + BASE.replace("\n", "\r\n")
    found = problems(
        tmp_path,
        text.replace("\r\n  other:\r\n    kind: memory\r\n", "\r\n  other:\r\n    <<: *memory\r\n"),
    )
    assert [p.message for p in found] == ["base: unknown key"]


def test_two_systems_with_one_label_warn(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE.replace("label: Other", "label: Memory"))
    assert [(p.line, p.severity, p.message) for p in found] == [
        (9, "warning", "systems 'mem' and 'other' have the same label 'Memory'")
    ]


def test_labels_and_filter_texts_are_one_line(tmp_path: Path) -> None:
    text = BASE.replace("label: Other", 'label: "Oth\\ner"') + (
        "    target_label: |\n      Two\n      lines\n"
        '    filter: {text: "When\\nready", where: {name: x}}\n'
    )
    found = [(p.line, p.severity, p.message) for p in problems(tmp_path, text)]
    assert found == [
        (9, "error", "the label of 'other' spans several lines"),
        (17, "error", "target_label spans several lines"),
        (20, "error", "the filter text spans several lines"),
    ]


def test_a_reference_whose_type_is_unknown_is_a_warning(tmp_path: Path) -> None:
    from samband.config.validate import validate_file

    path = tmp_path / "refs.yaml"
    path.write_text(
        """systems:
  a: {kind: memory, entity_types: {Contact: {}, Company: {}}}
  b: {kind: memory, entity_types: {Person: {}, Org: {}}}
dataflows:
  - source: a.Contact
    target: b.Person
    properties:
      - {from: company_id, to: org_id, type: reference}
      - {from: company_id, to: org_id2, type: reference, source_ref: Company}
"""
    )
    problems = validate_file(path)
    assert [(p.severity, p.line) for p in problems] == [("warning", 8)]
    assert "add source_ref" in (problems[0].hint or "")


SQL_TARGET = """\
systems:
  mem:
    kind: memory
    label: Memory
    entity_types:
      T: {properties: {name: {type: string}, number: {type: NUMBER_TYPE}}}
  pms:
    kind: sql
    label: PMS
    url: "URL"
    entity_types:
      Row: {table: coded}
dataflows:
  - source: mem.T
    target: pms.Row
    properties:
      - {from: name, to: name, type: string}
      - {from: number, to: number, type: NUMBER_TYPE}
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mariadb"])
def test_a_declared_type_the_target_column_cannot_give_back_is_a_warning(
    database: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``type: string`` into an INTEGER column: the connector refuses "008" (it would come
    back as "8"), so validate warns about the mapping, as it does for a source type that
    cannot round-trip through the declared one.  A warning: validate still passes."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine

    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'pms.db'}"
    else:
        url = str(
            request.getfixturevalue("postgres_url" if database == "postgresql" else "mariadb_url")
        )
    engine = create_engine(url)
    Table(
        "coded",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(50)),
        Column("number", Integer),
    ).create(engine)
    engine.dispose()
    text = SQL_TARGET.replace("URL", url)
    assert problems(tmp_path, text.replace("NUMBER_TYPE", "integer")) == []
    found = problems(tmp_path, text.replace("NUMBER_TYPE", "string"))
    assert [(p.severity, p.line, p.column) for p in found] == [("warning", 18, 36)], found
    (warning,) = found
    assert warning.message.startswith(
        "number is declared string but pms.Row.number holds integer"
    ), warning.message
    assert "refused" in warning.message and "declare type: integer" in (warning.hint or "")
    code, output = run(tmp_path, monkeypatch, text.replace("NUMBER_TYPE", "string"))
    assert code == 0, output
    assert "c.yaml:18:36: warning: number is declared string but pms.Row.number" in output
    assert "c.yaml: valid (1 warning(s))" in output


def test_a_store_that_is_a_file_path_is_refused_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "store: state.db\n" + BASE
    code, output = run(tmp_path, monkeypatch, text)
    assert code == 2 and "c.yaml:1" in output and "sqlite:///" in output
    result = CliRunner().invoke(app, ["sync", "-c", "c.yaml"])
    assert result.exit_code == 2 and not isinstance(result.exception, ValueError | TypeError)
    assert "Traceback" not in result.output and not (tmp_path / "state.db").exists()
