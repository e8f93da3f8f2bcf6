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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_WAIT_FOR_PORT = (
    'python -c "import socket, sys, time\n'
    "for _ in range(300):\n"
    "    try:\n"
    "        socket.create_connection(('127.0.0.1', {port}), 1).close(); sys.exit(0)\n"
    "    except OSError:\n"
    "        time.sleep(0.1)\n"
    'sys.exit(1)"'
)


def try_it_script(page: Path, heading: str, config_name: str) -> tuple[str, str, list[int]]:
    """A page's "try it on the sandbox" example, made runnable as it stands.

    The config is the last YAML block before the section's last shell block (saved as
    ``config_name``); the shell blocks are those from the heading to the next heading.
    Each sandbox port is replaced by a free one (in the config too), the script waits for
    a sandbox started with ``&`` before going on and stops it at the end, and a command
    followed by the error it prints (a ``# system …`` comment) must fail.
    Returns (script, config, the ports used).
    """
    text = page.read_text(encoding="utf-8")
    start = text.index(heading)
    fences = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    headings = [
        m.start()
        for m in re.finditer(r"^#{1,6} ", text, re.M)
        if m.start() > start and not any(a < m.start() < b for a, b in fences)
    ]
    section = text[start : headings[0] if headings else len(text)]
    shells = [b for b in blocks(page) if b.lang == "sh" and b.code in section]
    last_shell = text.index(shells[-1].code)
    configs = [b for b in blocks(page) if b.lang == "yaml" and text.index(b.code) < last_shell]
    config = configs[-1].code
    script = "\n".join(b.code for b in shells)
    ports = []
    for old in re.findall(r"--port (\d+)", script):
        new = free_port()
        ports.append(new)
        script = re.sub(rf"\b{old}\b", str(new), script)
        config = re.sub(rf"\b{old}\b", str(new), config)
    lines = ["trap 'kill $(jobs -p) 2>/dev/null' EXIT"]
    raw = script.splitlines()
    for index, line in enumerate(raw):
        following = raw[index + 1].lstrip() if index + 1 < len(raw) else ""
        if following.startswith("# system "):
            lines.append(f"if {line}; then echo 'expected to fail: {line}' >&2; exit 9; fi")
            continue
        lines.append(line)
        port = re.search(r"--port (\d+).*&\s*(#.*)?$", line)
        if port:
            lines.append(_WAIT_FOR_PORT.format(port=port[1]))
    return "\n".join(lines) + "\n", config, ports


def run_python(block: Block, cwd: Path) -> None:
    """Run a Python example of the docs in ``cwd`` with the memory kind's datasets empty."""
    import os

    from samband.kinds.memory import connector as memory

    memory._DATASETS.clear()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(block.code, block.where, "exec"), {})
    finally:
        os.chdir(before)
