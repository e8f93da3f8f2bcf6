"""The way in: the README says how to install before its first `samband` command, every
config in the README and the documentation validates (errors, not only its shape), and
every relative link of the README and docs/ leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import samband
from tests.support.docs_examples import README, ROOT, Block, blocks, pages

_HEREDOC = re.compile(r"<<'?YAML'?\n(?P<body>.*?)^YAML$", re.M | re.S)
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _configs() -> list[tuple[str, str]]:
    """(where, text) of every complete config: YAML blocks with systems (the README's all,
    docs/' those whose dataflows name only systems they declare, not excerpts of a larger
    config), and the YAML here-documents of shell blocks."""
    found: list[tuple[str, str]] = []
    for block in blocks():
        if block.lang == "yaml" and re.search(r"(?m)^systems:", block.code):
            if block.page == README or _complete(block.code):
                found.append((block.where, block.code))
        elif block.lang in ("sh", "console", "bash"):
            for match in _HEREDOC.finditer(block.code):
                found.append((f"{block.where} (here-document)", match["body"]))
    return found


def _complete(text: str) -> bool:
    data = yaml.safe_load(text)
    declared = set((data or {}).get("systems") or {})
    named = {
        str(flow.get(side, "")).split(".", 1)[0]
        for flow in (data or {}).get("dataflows") or []
        for side in ("source", "target")
    }
    return named <= declared


CONFIGS = _configs()


def test_the_readme_and_the_docs_hold_configs() -> None:
    assert any(where.startswith("README.md") for where, _ in CONFIGS)
    assert len(CONFIGS) >= 5


@pytest.mark.parametrize(("where", "text"), CONFIGS, ids=[w for w, _ in CONFIGS])
def test_every_config_snippet_validates(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "samband.yaml"
    path.write_text(text, encoding="utf-8")
    errors = [str(p) for p in samband.validate(path) if p.severity == "error"]
    assert errors == [], where


def _first(block_list: list[Block], pattern: str) -> int | None:
    text = README.read_text(encoding="utf-8")
    for block in block_list:
        for offset, line in enumerate(block.code.splitlines()):
            if re.match(pattern, line.strip()):
                return len("\n".join(text.splitlines()[: block.line + offset]))
    return None


def test_the_readme_installs_before_the_first_samband_command() -> None:
    text = README.read_text(encoding="utf-8")
    first_command = _first(
        [b for b in blocks(README) if b.lang in ("sh", "console", "bash")], r"samband\s"
    )
    assert first_command is not None
    before = text[:first_command]
    assert "pipx install ." in before
    assert "source .venv/bin/activate" in before


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m["target"] for m in _LINK.finditer(text)]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            broken.append(target)
    assert broken == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("see [there](nowhere.md) and [ok](page.md#top)\n", encoding="utf-8")
    assert _links(page) == ["nowhere.md", "page.md#top"]
    assert not (page.parent / "nowhere.md").exists()
