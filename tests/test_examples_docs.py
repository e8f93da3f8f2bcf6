"""``examples/samband.yaml``: it validates, and its documents are exactly what runs.

The documents generated from the shipped config are the QA checklists of the
installation: every property the engine syncs must be a row of a document, and every row
of a document must be a property the engine syncs (with the same data type).  The
engine's side is taken from the compiled dataflows (``Engine.compile``), not from the
config, so a mapping the engine dropped or renamed would show.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from samband.config.validate import validate_file
from samband.demo import EXAMPLE, SEEDS, load_example
from samband.docs import render_documents
from samband.docs.model import section_of
from samband.engine.run import Engine
from samband.kinds.sql.demo import create_pms_schema

ENV = {
    "POWEROFFICE_APPLICATION_KEY": "k",
    "POWEROFFICE_CLIENT_KEY": "k",
    "POWEROFFICE_SUBSCRIPTION_KEY": "k",
    "WEBCRM_API_TOKEN": "t",
    "CUSTOMCRM_TOKEN": "t",
    "CRMOFFICE_CLIENT_ID": "c",
    "CRMOFFICE_CLIENT_SECRET": "s",
    "EXACT_CLIENT_ID": "c",
    "EXACT_CLIENT_SECRET": "s",
}

_TITLE = re.compile(r"^(?P<title>\S.*)\n-+\n", re.M)
_ROW = re.compile(r"^   \* - (?P<a>.*)\n     - (?P<b>.*)\n     - (?P<c>.*)$", re.M)


def sections(text: str) -> dict[str, list[tuple[str, str, str]]]:
    """Section title → its property rows (the header row left out)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    matches = list(_TITLE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end]
        rows = [(m["a"], m["b"], m["c"]) for m in _ROW.finditer(body)]
        found[match["title"]] = rows[1:]  # the first row is the header
    return found


def test_the_example_validates_without_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in re.findall(r"\$\{([A-Z_]+)\}", EXAMPLE.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, "set")  # an unset one is a warning of its own
    (tmp_path / "pms.db").write_bytes(b"")  # so is a SQLite database that is not there
    monkeypatch.setenv("PMS_URL", f"sqlite:///{tmp_path / 'pms.db'}")
    problems = validate_file(EXAMPLE)
    assert [str(p) for p in problems if p.severity == "error"] == []
    # the only warning is the empty label that seed 001 has
    assert all("empty label" in str(p) for p in problems)


def test_every_seed_section_is_a_dataflow_of_the_example() -> None:
    config = load_example()
    keys = [flow.key for flow in config.dataflows]
    listed = [key for _, flows in SEEDS.values() for key in flows]
    assert sorted(listed) == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_seed_section_titles_are_kept(shared_dir: Path) -> None:
    """Each section of the five seeds appears, with the seed's own title."""
    seeds = shared_dir / "seeds"
    config = load_example()
    ours = {section_of(config, flow).title for flow in config.dataflows}
    for path in sorted(seeds.glob("*.txt")):
        for title in sections(path.read_text(encoding="utf-8")):
            if title != "Introduction":
                assert title in ours, f"{path.name}: {title!r}"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    pms = f"sqlite:///{tmp_path / 'pms.db'}"
    create_pms_schema(pms)
    config = load_example()
    engine = Engine(
        config,
        environ={**ENV, "PMS_URL": pms},
        store_url=f"sqlite:///{tmp_path / 'state.db'}",
        state_dir=str(tmp_path / "state"),
    )
    engine.compile()
    return engine


def test_documents_list_exactly_what_the_engine_syncs(engine: Engine) -> None:
    config = engine.config
    texts = render_documents(config, "rst", generated="2026-01-01 00:00:00")
    in_documents: dict[str, list[tuple[str, str, str]]] = {}
    for text in texts.values():
        in_documents.update(sections(text))
    in_documents.pop("Introduction", None)
    try:
        assert len(in_documents) == len(engine.flows)
        for flow in engine.flows:
            title = section_of(config, flow.config).title
            assert title in in_documents, title
            rows = in_documents[title]
            assert rows, f"{title}: the document lists no properties"
            # every row is a mapping the engine runs, with its type ...
            synced = {
                (
                    flow.source_et.canonical(m.source),
                    flow.target_et.canonical(m.target),
                    f'"{m.type.value}"' if m.type else "N/A",
                )
                for m in flow.mappings
            }
            documented = {
                (flow.source_et.canonical(a), flow.target_et.canonical(b), c) for a, b, c in rows
            }
            # ... and every mapping the engine runs is a row
            assert documented == synced, title
            assert len(rows) == len(flow.mappings), title
    finally:
        engine.close()


def test_documents_name_the_merge_criteria(engine: Engine) -> None:
    texts = render_documents(engine.config, "rst", generated="2026-01-01 00:00:00")
    joined = "\n".join(texts.values())
    try:
        for flow in engine.flows:
            for combination in flow.match:
                for term in combination:
                    assert term.source in joined or term.source.lower() in joined.lower()
    finally:
        engine.close()


def test_the_example_keeps_credentials_out_of_the_file() -> None:
    config = load_example()
    for system in config.systems.values():
        for value in system.credentials.values():
            assert re.fullmatch(r"\$\{[A-Z_]+\}", value), value
