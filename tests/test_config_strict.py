"""`samband validate` can be trusted: every misspelt key, unknown choice and wrong URL at
every level is an error at its FILE:LINE:COLUMN, all of them in one pass, and what a run
would trip over (an unset ${VAR}, a missing SQLite file, a TODO) is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

import samband
from samband.errors import Problem

BASE = """\
systems:
  crm:
    kind: rest
    base_url: http://127.0.0.1:8081
    auth: bearer
    credentials: {token: '${STRICT_TOKEN:-x}'}
    rate_limit: 5
    entity_types:
      Contact:
        path: /contacts
        external_ref: ext
        page_size: 10
        paging: cursor
        archive: {property: active, value: false}
        properties:
          name: string
          email: {type: string}
          customer: {type: reference, references: Customer}
      Customer: {path: /customers}
  db:
    kind: sql
    url: sqlite:///pms.db
    page_size: 5
    entity_types:
      contact: {table: contact, external_ref: ext}
  pog:
    kind: poweroffice-go
    base_url: https://goapi.poweroffice.net/v2
    credentials:
      application_key: '${STRICT_APP:-a}'
      client_key: '${STRICT_CLIENT:-c}'
      subscription_key: '${STRICT_SUB:-s}'
    entity_types:
      Customers: {full_scan: true}
  web:
    kind: webcrm
    base_url: https://api.webcrm.com
    changes: queries
    credentials: {token: '${STRICT_WEB:-w}'}
dataflows:
  - source: crm.Contact
    target: pog.Contactperson
    on_delete: unlink
    match:
      - [{from: email, to: EmailAddress, normalize: email}]
    properties:
      - {from: name, to: FirstName, type: string}
    create_when: {connected_to: [Customer], synchronized_into: pog.Customers, via: [customer]}
    filter: {text: When active, where: {name: x}}
defaults: {max_delete_share: 0.5}
"""


def validate(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return samband.validate(path)


@pytest.fixture(autouse=True)
def _a_database(tmp_path: Path) -> None:
    (tmp_path / "pms.db").write_bytes(b"")  # the sql system's database exists


def test_the_base_is_clean(tmp_path: Path) -> None:
    assert validate(tmp_path, BASE) == []


def _at(text: str, needle: str) -> tuple[int, int]:
    """The line and column of ``needle`` in ``text`` (1-based)."""
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


# (what is replaced, by what, what the error says, its hint); the error stands where the
# replacement starts
MISTAKES = [
    # keys at every level
    (
        "    external_ref: ext",
        "    externl_ref: ext",
        "unknown key 'externl_ref'",
        "'external_ref'",
    ),
    ("    page_size: 10", "    page_sise: 10", "unknown key 'page_sise'", "'page_size'"),
    ("    page_size: 5", "    page_sise: 5", "unknown key 'page_sise'", "'page_size'"),
    (
        "{table: contact, external_ref",
        "{table: contact, externl_ref",
        "'externl_ref'",
        "'external_ref'",
    ),
    ("{full_scan: true}", "{ful_scan: true}", "unknown key 'ful_scan'", "'full_scan'"),
    ("{type: string}", "{tpye: string}", "unknown key 'tpye'", "'type'"),
    ("references: Customer", "refrences: Customer", "unknown key 'refrences'", "'references'"),
    ("{property: active", "{proprety: active", "unknown key 'proprety'", "'property'"),
    ("    on_delete: unlink", "    on_delet: unlink", "unknown key", "'on_delete'"),
    ("normalize: email", "normalise: email", "unknown key", "'normalize'"),
    ("to: FirstName, type", "to: FirstName, tpye", "unknown key", "'type'"),
    ("via: [customer]", "vai: [customer]", "unknown key", "'via'"),
    ("where: {name: x}", "were: {name: x}", "unknown key", "'where'"),
    ("{max_delete_share: 0.5}", "{max_delete_shar: 0.5}", "unknown key", "'max_delete_share'"),
    ("dataflows:", "dataflow:", "unknown key", "'dataflows'"),
    ("    auth: bearer", "    lable: CRM\n    auth: bearer", "unknown key 'lable'", "'label'"),
    (
        "    credentials: {token: '${STRICT_TOKEN",
        "    credential: {token: '${STRICT_TOKEN",
        "unknown key 'credential'",
        "'credentials'",
    ),
    (
        "    entity_types:\n      Contact:",
        "    entity_type:\n      Contact:",
        "unknown key 'entity_type'",
        "'entity_types'",
    ),
    # choices
    ("auth: bearer", "auth: baerer", "'baerer' is not known (did you mean 'bearer'?)", None),
    ("paging: cursor", "paging: cursors", "'cursors' is not known (did you mean 'cursor'?)", None),
    (
        "changes: queries",
        "changes: querys",
        "'querys' is not known (did you mean 'queries'?)",
        None,
    ),
    ("name: string", "name: strin", "'strin' is not known (did you mean 'string'?)", None),
    ("{type: string}", "{type: strng}", "'strng' is not known (did you mean 'string'?)", None),
    ("FirstName, type: string", "FirstName, type: strng", "'strng' is not known", None),
    (
        "on_delete: unlink",
        "on_delete: unlnk",
        "'unlnk' is not known (did you mean 'unlink'?)",
        None,
    ),
    # addresses
    ("base_url: http://127.0.0.1:8081", "base_url: htp://127.0.0.1:8081", "not an http://", None),
    ("base_url: https://goapi", "base_url: htps://goapi", "not an http://", None),
    ("base_url: https://api.webcrm", "base_url: api.webcrm", "not an http://", None),
    ("url: sqlite:///pms.db", "url: sqlit:///pms.db", "not a database URL", None),
    ("systems:", "store: mysql://x/y\nsystems:", "not a sqlite:// or postgresql:// URL", None),
]


@pytest.mark.parametrize(
    ("old", "new", "says", "hint"), MISTAKES, ids=[m[1].strip() for m in MISTAKES]
)
def test_each_mistake_is_an_error_where_it_stands(
    tmp_path: Path, old: str, new: str, says: str, hint: str | None
) -> None:
    assert BASE.count(old) == 1
    text = BASE.replace(old, new)
    errors = [p for p in validate(tmp_path, text) if p.severity == "error"]
    line, column = _at(text, new)
    if "entity_type:" not in new:  # without its types, the dataflows cannot find them
        assert len(errors) == 1, errors
    (error,) = [p for p in errors if p.line == line]
    assert says in error.message
    if hint is not None:
        assert error.hint == f"did you mean {hint}?"
    assert column <= error.column <= column + len(new)


def test_every_mistake_is_reported_in_one_pass(tmp_path: Path) -> None:
    """Model errors and semantic checks together: no second round after a fix."""
    text = BASE
    for old, new in [
        ("    external_ref: ext", "    externl_ref: ext"),  # a kind's type setting
        ("auth: bearer", "auth: baerer"),  # a kind's choice
        ("{type: string}", "{type: strng}"),  # a REST property type
        ("    on_delete: unlink", "    on_delet: unlink"),  # a dataflow key
        ("to: FirstName, type", "to: FirstName, tpye"),  # a mapping key
        ("target: pog.Contactperson", "target: pog.Contactpersn"),  # semantic: a type
        ("synchronized_into: pog.Customers", "synchronized_into: pogo.Customers"),  # a system
        ("{max_delete_share: 0.5}", "{max_delete_share: 0.5, overlap: 1}"),  # defaults
    ]:
        text = text.replace(old, new)
    errors = [p for p in validate(tmp_path, text) if p.severity == "error"]
    said = " | ".join(p.message for p in errors)
    assert len(errors) == 8, said
    for part in [
        "'externl_ref'",
        "'baerer'",
        "'strng'",
        "on_delet",
        "tpye",
        "'Contactpersn'",
        "'pogo'",
        "overlap",
    ]:
        assert part in said


def test_a_dataflow_missing_a_key_does_not_hide_the_next_one(tmp_path: Path) -> None:
    text = BASE.replace("    target: pog.Contactperson\n", "").replace(
        "defaults:", "  - source: crm.Customer\n    target: pog.Customerz\ndefaults:"
    )
    errors = [p for p in validate(tmp_path, text) if p.severity == "error"]
    assert [(p.line, p.message) for p in errors] == [
        (_at(text, "- source: crm.Contact")[0], "dataflows.0.target: this key is required"),
        (_at(text, "target: pog.Customerz")[0], "system 'pog' has no entity type 'Customerz'"),
    ]


def test_an_unset_variable_is_a_warning_that_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRICT_NEVER_SET", raising=False)
    text = BASE.replace("'${STRICT_WEB:-w}'", "'${STRICT_NEVER_SET}'")
    found = validate(tmp_path, text)
    assert [(p.severity, p.line, p.message) for p in found] == [
        (
            "warning",
            _at(text, "${STRICT_NEVER_SET}")[0],
            "the environment variable STRICT_NEVER_SET is not set",
        )
    ]
    monkeypatch.setenv("STRICT_NEVER_SET", "now")
    assert validate(tmp_path, text) == []


def test_a_missing_sqlite_database_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "pms.db").unlink()
    found = validate(tmp_path, BASE)
    assert [(p.severity, p.line) for p in found] == [("warning", _at(BASE, "url: sqlite")[0])]
    assert f"the SQLite database {tmp_path / 'pms.db'} does not exist" == found[0].message
    assert not (tmp_path / "pms.db").exists()  # validating did not create it


def test_todo_marks_are_warnings_and_a_placeholder_kind_is_an_error(tmp_path: Path) -> None:
    text = BASE.replace(
        "  web:\n    kind: webcrm\n",
        "  web:\n    kind: unknown  # TODO: the kind of this system\n",
    ).replace(
        "    filter: {text: When active, where: {name: x}}\n",
        "    filter:\n      text: When active\n"
        "      where: {name: x}  # TODO: the condition the sync evaluates\n",
    )
    found = validate(tmp_path, text)
    line = _at(text, "kind: unknown")[0]
    assert [(p.severity, p.line, p.message) for p in found if p.line == line] == [
        (
            "error",
            line,
            "system 'web' has no kind yet ('unknown' is a placeholder left by samband docs import)",
        ),
    ]  # the TODO on that line is not repeated as a warning: the error says it
    assert any(
        p.severity == "warning"
        and p.message.endswith(
            "TODO left by `samband docs import`: the condition the sync evaluates"
        )
        for p in found
    )
