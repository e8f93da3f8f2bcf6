"""Every property the field's documents name for PowerOffice GO is readable (writable where
the API allows), or its absence is explained in code and in docs/systems/poweroffice.md."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from samband.config.model import SystemConfig
from samband.kinds.poweroffice_go.connector import PowerOfficeConnector
from samband.kinds.poweroffice_go.connector._documents import (
    ABSENT,
    DOCUMENT_TYPES,
    READ_ONLY,
    RENAMED,
    UNSUPPORTED_TYPES,
    document_property,
)

ROOT = Path(__file__).resolve().parents[3]
TSV = ROOT.parent / "shared" / "reference" / "field-properties.tsv"
DOC = ROOT / "docs" / "systems" / "poweroffice.md"


def document_rows() -> list[tuple[str, str]]:
    if not TSV.is_file():
        message = f"{TSV} is not there: the field's documents cannot be checked"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: ../shared must be beside the checkout)")
        pytest.skip(message)
    lines = [line for line in TSV.read_text(encoding="utf-8").splitlines() if line[:1] != "#"]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    return [(r["entity type"], r["property"]) for r in rows if r["system"] == "poweroffice-go"]


def test_every_documented_property_is_in_the_schema_or_explained() -> None:
    rows = document_rows()
    assert len(rows) > 100  # the file has the poweroffice-go rows, read as such
    types = PowerOfficeConnector.describe(SystemConfig(kind="poweroffice-go"))
    unexplained: list[str] = []
    for document_type, raw in rows:
        type_name = DOCUMENT_TYPES.get(document_type, document_type)
        if type_name in UNSUPPORTED_TYPES:
            continue
        if type_name not in types:
            unexplained.append(f"{document_type}: no such entity type")
            continue
        name = document_property(raw)
        if (type_name, name) in ABSENT:
            continue
        name = RENAMED.get((type_name, name), name)
        prop = types[type_name].property(name)
        if prop is None:
            unexplained.append(f"{document_type}.{raw}: not in the schema")
        elif prop.read_only and not {(type_name, prop.name), ("*", prop.name)} & set(READ_ONLY):
            unexplained.append(f"{document_type}.{raw}: read-only without a reason")
    assert unexplained == []


def test_the_explanations_are_in_the_documentation() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## What the field's documents name") :]
    for type_name in UNSUPPORTED_TYPES:
        assert f"`{type_name}`" in section, type_name
    for (type_name, name), v2_name in RENAMED.items():
        assert f"`{type_name}.{name}`" in section and f"`{v2_name}`" in section, name
    for type_name, name in ABSENT:
        assert f"`{type_name}.{name}`" in section, name


def test_renamed_properties_point_at_properties_that_exist() -> None:
    types = PowerOfficeConnector.describe(SystemConfig(kind="poweroffice-go"))
    for (type_name, name), v2_name in RENAMED.items():
        assert types[type_name].property(name) is None, f"{name} is no rename"
        assert types[type_name].property(v2_name) is not None, v2_name
    for type_name, name in ABSENT:
        assert types[type_name].property(name) is None, f"{type_name}.{name} is there"
