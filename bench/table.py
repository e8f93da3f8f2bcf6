"""``python -m bench.table [bench/results.json]``: the results as a Markdown table (for
the README's performance section)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import RESULTS, _fmt


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "| benchmark | figure | median | spread (min–max, runs) | unit | goal | met |",
        "|---|---|---:|---|---|---|---|",
    ]
    for fig in payload["figures"]:
        values = fig["values"]
        spread = (
            f"{_fmt(fig['min'])}–{_fmt(fig['max'])} ({len(values)})" if len(values) > 1 else "(1)"
        )
        met = {True: "yes", False: "**no**", None: ""}[fig["met"]]
        lines.append(
            f"| {fig['benchmark']} | {fig['name']} | {_fmt(fig['median'])} | {spread} | "
            f"{fig['unit']} | {fig['goal'] or ''} | {met} |"
        )
    machine = payload["machine"]
    lines.append("")
    lines.append(
        f"Measured {payload['date']} on {machine['cpu']} ({machine['cpus']} cores, "
        f"{machine['memory_gb']} GB; calibration workload "
        f"{machine.get('calibration_ms', '?')} ms), Python {machine['python']}, commit "
        f"`{payload['commit'][:12]}`, {payload['repeat']} runs per figure unless noted."
    )
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(markdown(json.loads(path.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
