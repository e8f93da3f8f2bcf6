"""The five seed documents, regenerated from examples/seeds/*.yaml, byte for byte.

Only the ``Generated:`` line and the Introduction paragraph may differ (the seeds'
introduction is another company's wording, which we do not copy).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from samband.cli import app
from samband.config import read_config
from samband.docs import generated_stamp, render_documents, write_documents
from samband.docs.html import rst_warnings
from samband.errors import SambandError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "seeds"
SEEDS = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
STAMP = "2024-09-11 07:44:14"
FILE_NAMES = {
    "000_24f8df1caa7db65f": "poweroffice-pms",
    "001_4b2b41b73c3e2920": "poweroffice-webcrm",
    "002_1a65df464bebb572": "crm-poweroffice",
    "003_9f3185b9bedf750b": "crmoffice-poweroffice",
    "004_bffe6b17f40518a5": "exact-pms",
}


def split_document(text: str) -> tuple[str, str, str]:
    """(document without Generated value and Introduction paragraph, generated, intro)."""
    lines = text.split("\n")
    assert lines[4].startswith("Generated: ")
    generated = lines[4][len("Generated: ") :]
    assert lines[6:9] == ["Introduction", "------------", ""]
    end = lines.index("", 9)
    intro = "\n".join(lines[9:end])
    rest = [*lines[:4], "Generated: <stamp>", *lines[5:9], "<introduction>", *lines[end:]]
    return "\n".join(rest), generated, intro


def render_one(seed: str, fmt: str = "rst") -> tuple[str, str]:
    documents = render_documents(read_config(EXAMPLES / f"{seed}.yaml").config, fmt, STAMP)
    assert len(documents) == 1
    ((name, text),) = documents.items()
    return name, text


def test_there_are_five_seed_configs() -> None:
    assert sorted(FILE_NAMES) == SEEDS


@pytest.mark.parametrize("seed", SEEDS)
def test_document_equals_the_seed(seed: str, shared_dir: Path) -> None:
    expected = (shared_dir / "seeds" / f"{seed}.txt").read_text(encoding="utf-8")
    name, text = render_one(seed)
    assert name == f"{FILE_NAMES[seed]}.rst"
    ours, stamp, intro = split_document(text)
    theirs, _, their_intro = split_document(expected)
    assert ours == theirs
    assert stamp == STAMP
    # Our own introduction: it names both systems and copies nothing of the seed's.
    assert intro != their_intro
    title = text.split("\n")[1]
    source, target = title[: -len(" Dataflow")].split(" to ", 1)
    assert f"from {source} to {target}" in intro
    assert "Sesam" not in text
    assert "intellectual property" not in text


@pytest.mark.parametrize("seed", SEEDS)
def test_title_bars_are_as_long_as_the_title(seed: str) -> None:
    lines = render_one(seed)[1].split("\n")
    assert lines[0] == lines[2] == "=" * len(lines[1])
    for index, line in enumerate(lines):
        if line and set(line) == {"-"}:
            assert len(line) == len(lines[index - 1]), lines[index - 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_docutils_reports_only_the_field_formats_header_only_tables(seed: str) -> None:
    """The field's documents keep a table with no rows header-only, which docutils
    refuses; every other message (any warning) fails the test."""
    text = render_one(seed)[1]
    lines = text.split("\n")
    empty_tables = [
        index + 1
        for index, line in enumerate(lines)
        if line == ".. list-table::" and lines[index + 7 : index + 8] in ([""], [])
    ]
    messages = rst_warnings(text)
    assert [int(line) for line, _, _ in messages] == empty_tables
    assert all(m.startswith("Insufficient data supplied (1 row(s))") for _, _, m in messages)


@pytest.mark.parametrize("seed", SEEDS)
def test_html_has_real_tables_and_no_warnings(seed: str) -> None:
    name, html = render_one(seed, "html")
    assert name == f"{FILE_NAMES[seed]}.html"
    assert "<table" in html and "<th" in html
    assert '<div class="system-message' not in html and '<aside class="system-message' not in html
    rst_text = render_one(seed)[1]
    assert html.count("<table") == rst_text.count(".. list-table::")
    assert re.search(r"<h1[^>]*>.* Dataflow</h1>", html)


def test_both_formats_and_the_generated_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    config = read_config(EXAMPLES / "003_9f3185b9bedf750b.yaml").config
    both = render_documents(config, "both", STAMP)
    assert sorted(both) == ["crmoffice-poweroffice.html", "crmoffice-poweroffice.rst"]
    assert f"Generated: {STAMP}" in both["crmoffice-poweroffice.rst"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1726214548")
    assert generated_stamp() == "2024-09-13 08:02:28"
    assert "Generated: 2024-09-13 08:02:28" in render_documents(config)["crmoffice-poweroffice.rst"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    with pytest.raises(SambandError, match="SOURCE_DATE_EPOCH"):
        generated_stamp()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", generated_stamp())
    for bad in ("2024-09-13", "2024-13-40 00:00:00", "yesterday"):
        with pytest.raises(SambandError, match="--generated"):
            generated_stamp(bad)
    with pytest.raises(SambandError, match="format"):
        render_documents(config, "pdf", STAMP)


def test_write_documents_writes_every_file(tmp_path: Path) -> None:
    config = read_config(EXAMPLES / "001_4b2b41b73c3e2920.yaml").config
    paths = write_documents(config, tmp_path / "out", "both", STAMP)
    assert [p.name for p in paths] == ["poweroffice-webcrm.rst", "poweroffice-webcrm.html"]
    assert paths[0].read_text(encoding="utf-8") == render_one("001_4b2b41b73c3e2920")[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def test_cli_docs_writes_the_seed_documents(tmp_path: Path) -> None:
    runner = CliRunner()
    for seed in SEEDS:
        # A copy: validating a `kind: sql` system may create its sqlite file beside the config.
        config = tmp_path / f"{seed}.yaml"
        shutil.copy(EXAMPLES / f"{seed}.yaml", config)
        result = runner.invoke(
            app,
            [
                "docs",
                "-c",
                str(config),
                "-o",
                str(tmp_path),
                "--generated",
                STAMP,
            ],
        )
        assert result.exit_code == 0, result.output
        written = tmp_path / f"{FILE_NAMES[seed]}.rst"
        assert written.read_text(encoding="utf-8") == render_one(seed)[1]


def test_a_config_error_leaves_no_docs_folder(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        (EXAMPLES / "000_24f8df1caa7db65f.yaml")
        .read_text(encoding="utf-8")
        .replace("target: pms.Project", "target: pmz.Project"),
        encoding="utf-8",
    )
    out = tmp_path / "docs"
    result = CliRunner().invoke(app, ["docs", "-c", str(config), "-o", str(out)])
    assert result.exit_code == 2
    assert "unknown system 'pmz'" in result.output
    assert not out.exists()


def test_a_bad_stamp_leaves_no_docs_folder(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    seed = EXAMPLES / "002_1a65df464bebb572.yaml"
    result = CliRunner().invoke(
        app, ["docs", "-c", str(seed), "-o", str(out), "--generated", "now"]
    )
    assert result.exit_code != 0
    assert not out.exists()


def test_a_rendering_error_writes_nothing(tmp_path: Path) -> None:
    """Everything is rendered before anything is written (a label docutils cannot take)."""
    from samband.config import parse_config

    config = parse_config(
        'systems:\n  a: {kind: memory, label: "Foo\\nBar"}\n  b: {kind: memory, label: B}\n'
        "dataflows:\n  - {source: a.T, target: b.U}\n"
    ).config
    with pytest.raises(SambandError, match=r"a-b\.html: docutils cannot render"):
        write_documents(config, tmp_path / "out", "both", STAMP)
    assert not (tmp_path / "out").exists()
