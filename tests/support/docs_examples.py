"""The code blocks of the README and of the documentation pages (docs/**/*.md).

``blocks()`` lists every fenced block with its page, its line and its language, so the
tests in tests/test_docs_site.py can run or check each of them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<code>.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def blocks(page: Path | None = None) -> list[Block]:
    found = []
    for path in [page] if page else pages():
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(path, line, match["lang"], match["code"]))
    return found


def block_after(page: Path, heading: str, lang: str) -> Block:
    """The first ``lang`` block after a heading of ``page``."""
    text = page.read_text(encoding="utf-8")
    start = text.index(heading)
    return next(b for b in blocks(page) if b.lang == lang and _offset(text, b.line) > start)


def _offset(text: str, line: int) -> int:
    return sum(len(chunk) + 1 for chunk in text.split("\n")[: line - 1])


def command_lines(block: Block) -> list[list[str]]:
    """The ``samband …`` command lines of a shell or console block, split into words."""
    found = []
    joined = block.code.replace("\\\n", " ")
    for raw in joined.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        elif block.lang == "console":
            continue  # output, not a command
        if not line.startswith("samband "):
            continue
        line = line.split("  #", 1)[0].split(" # ", 1)[0]
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        found.append(words)
    return found
