"""Assemble README.md from the sections in docs/readme/ (run from the repository root)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = [
    "_head.md",
    "poweroffice.md",
    "exact.md",
    "webcrm.md",
    "crmoffice.md",
    "sql.md",
    "rest.md",
    "docs.md",
    "qa.md",
    "demo.md",
    "performance.md",
    "reliability.md",
    "_tail.md",
]


def build() -> str:
    sections = [
        (ROOT / "docs" / "readme" / name).read_text(encoding="utf-8").strip() for name in PARTS
    ]
    return "\n\n".join(sections) + "\n"


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        current = (
            (ROOT / "README.md").read_text(encoding="utf-8")
            if (ROOT / "README.md").exists()
            else ""
        )
        sys.exit(0 if current == text else 1)
    (ROOT / "README.md").write_text(text, encoding="utf-8")
