"""The QA report of one document, as RST and (through docutils) HTML."""

from __future__ import annotations

import re
from typing import Any

from samband.docs.html import to_html
from samband.qa.model import BACK, CREATE, FORWARD, DocumentResult, SectionResult

_SPECIAL = re.compile(r"([\\`*_|\[\]<>:#=+\-.!~^\"'(){}])")


def _text(value: Any) -> str:
    """Any value as inline RST text that no markup can break."""
    if value is None:
        return "—"
    text = " ".join(str(value).split())
    return _SPECIAL.sub(r"\\\1", text) if text else "—"


def _title(text: str, underline: str, overline: bool = False) -> list[str]:
    line = underline * max(len(text), 3)
    return ([line] if overline else []) + [text, line, ""]


def _section(section: SectionResult) -> list[str]:
    lines = _title(f"{_text(section.title)}: {section.status.upper()}", "=")
    lines += [
        f"Dataflow {_text(section.source)} to {_text(section.target)}.",
        "",
    ]
    for message in section.messages:
        lines += [f"- {_text(message)}"]
    if section.messages:
        lines.append("")
    if section.properties:
        lines += [
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - Property",
            "     - Data type",
            "     - Check",
            "     - Expected",
            "     - Actual",
            "     - Result",
            "     - Reason",
        ]
        order: dict[tuple[str, str], int] = {}
        for p in section.properties:
            order.setdefault((p.source, p.target), len(order))
        checks = {CREATE: 0, BACK: 1, FORWARD: 2}
        rows = sorted(
            section.properties,
            key=lambda p: (order[(p.source, p.target)], checks.get(p.check, 3)),
        )
        for p in rows:
            cells = [
                f"{p.source} → {p.target}",
                p.data_type,
                p.check,
                p.expected,
                p.actual,
                p.status.upper(),
                p.reason,
            ]
            lines.append(f"   * - {_text(cells[0])}")
            lines += [f"     - {_text(cell)}" for cell in cells[1:]]
        lines.append("")
    if section.created:
        lines += ["Test records created: " + ", ".join(_text(r) for r in section.created), ""]
    if section.leftovers:
        lines += ["Test records left behind:", ""]
        lines += [
            f"- {_text(left.ref)}: {'archived; ' if left.archived else ''}{_text(left.why)}"
            for left in section.leftovers
        ]
        lines.append("")
    elif section.created:
        lines += ["Every test record was removed again.", ""]
    return lines


def render_rst(document: DocumentResult, *, config: str, run_id: str, started: str) -> str:
    result = "PASSED" if document.passed else "FAILED"
    lines = _title(f"QA report: {_text(document.title)}", "#", overline=True)
    lines += [
        f":Config: {_text(config)}",
        f":QA run: {_text(run_id)}",
        f":Started: {_text(started)}",
        f":Result: {result}",
        "",
        "Each section of the document was executed against the configured systems: a marked "
        "test record (values starting with QA and the run id) was created in the source, "
        "synchronized by the engine, edited in the target and in the source, and removed "
        "again.",
        "",
    ]
    for section in document.sections:
        lines += _section(section)
    return "\n".join(lines).rstrip() + "\n"


def render_html(rst_text: str, name: str) -> str:
    return to_html(rst_text, name)
