"""Exact Online's schema against the field's documents: every property they name for
``exact-online`` is declared and readable (through the sandbox too), and writable where
Exact allows it; what is not is listed with its reason (and named in the docs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from samband.config.model import EntityTypeConfig, SystemConfig
from samband.connectors.base import EntityType
from samband.kinds.exact_online.connector import ExactOnlineConnector
from samband.kinds.exact_online.connector._schema import TYPES
from samband.kinds.exact_online.field_documents import READ_ONLY_IN_EXACT, UNSUPPORTED_TYPES
from samband.kinds.exact_online.fields import FIELDS
from samband.kinds.exact_online.sandbox import ExactOnlineSandbox
from samband.sandbox._base import Clock, SandboxServer
from tests.support.exact import make_connector, read_all, serve
from tests.support.field_documents import FieldProperty, field_properties

DOCS = Path(__file__).resolve().parents[3] / "docs/systems/exact.md"


@pytest.fixture
def rows() -> list[FieldProperty]:
    return field_properties("exact-online")


def schema() -> dict[str, EntityType]:
    return ExactOnlineConnector.describe(SystemConfig(kind="exact-online"))


def schema_name(document_type: str) -> str | None:
    return {name.lower(): name for name in TYPES}.get(document_type.lower())


def test_every_property_is_declared_or_its_type_explained(rows: list[FieldProperty]) -> None:
    types = schema()
    missing = []
    for row in rows:
        name = schema_name(row.entity_type)
        if name is None:
            if row.entity_type not in UNSUPPORTED_TYPES:
                missing.append(f"{row.entity_type} (no such type, not explained)")
            continue
        prop = types[name].properties.get(row.property)
        if prop is None or prop.unreadable:
            missing.append(f"{name}.{row.property}")
    assert missing == []


def test_what_documents_write_is_writable_where_exact_allows(
    rows: list[FieldProperty],
) -> None:
    types = schema()
    wrong = []
    for row in rows:
        name = schema_name(row.entity_type)
        if name is None or not row.is_target:
            continue
        prop = types[name].properties[row.property]
        writable = not prop.read_only and not types[name].read_only
        explained = (name, row.property) in READ_ONLY_IN_EXACT
        exact_read_only = TYPES[name].read_only or FIELDS[TYPES[name].resource][row.property][1]
        if not writable and not explained:
            wrong.append(f"{name}.{row.property} is written by documents but read-only")
        if explained and not (exact_read_only or row.property == TYPES[name].key):
            wrong.append(f"{name}.{row.property} is listed read-only but Exact lets it be written")
    assert wrong == []


def test_the_docs_name_every_unsupported_type_and_read_only_property() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Faithful and assumed", 1)[1]
    for name in UNSUPPORTED_TYPES:
        assert f"`{name}`" in section, name
    for name, prop in READ_ONLY_IN_EXACT:
        assert f"`{name}.{prop}`" in section, (name, prop)


@pytest.fixture
def box() -> ExactOnlineSandbox:
    sandbox = ExactOnlineSandbox(clock=Clock(), minutely_limit=100_000, daily_limit=100_000)
    sandbox.seed(5, 2)
    return sandbox


@pytest.fixture
def server(box: ExactOnlineSandbox) -> Iterator[SandboxServer]:
    running = serve(box)
    yield running
    running.stop()


@pytest.mark.parametrize("full_scan", [False, True])
def test_the_sandbox_serves_every_property_the_documents_read(
    rows: list[FieldProperty],
    box: ExactOnlineSandbox,
    server: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_scan: bool,
) -> None:
    """Read through the Sync API (and the CRUD endpoints), asking for exactly those
    properties: a property Exact (and so the sandbox) lacks would be a 400."""
    monkeypatch.setenv("SAMBAND_TOKEN_KEY", Fernet.generate_key().decode())
    wanted: dict[str, set[str]] = {}
    for row in rows:
        name = schema_name(row.entity_type)
        if name is not None:
            wanted.setdefault(name, set()).add(row.property)
    connector = make_connector(
        box,
        server,
        tmp_path,
        entity_types={name: EntityTypeConfig(full_scan=full_scan) for name in wanted},
    )
    connector.wanted_fields = wanted
    for name, props in wanted.items():
        _, records, _ = read_all(connector, name)
        assert records, name
        assert props <= set(records[0].data), (name, props - set(records[0].data))
