"""A small line chart as inline SVG, rendered on the server (no JavaScript): a dataflow's
counts over its recent runs."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 640, 180, 28
COLOURS = {"created": "#2f7d32", "updated": "#1f5fa8", "errors": "#b3261e", "held": "#b26a00"}


def counts_chart(
    history: Sequence[dict[str, object]], series: Sequence[str] = tuple(COLOURS)
) -> str:
    """An SVG line per name of ``series``, one point per run of ``history`` (oldest
    first); each point's tooltip names the run and its count."""
    if not history:
        return '<p class="empty">No runs of this dataflow yet.</p>'
    values = {name: [_count(run.get(name)) for run in history] for name in series}
    top = max(1, *(max(v) for v in values.values()))
    step = (WIDTH - 2 * PAD) / max(1, len(history) - 1)

    def x(i: int) -> float:
        return PAD + i * step if len(history) > 1 else WIDTH / 2

    def y(value: int) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" class="chart" aria-label="counts per run">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#9aa3b5"/>',
        f'<text x="{PAD - 4}" y="{PAD}" text-anchor="end" font-size="10">{top}</text>',
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end" font-size="10">0</text>',
    ]
    for index, name in enumerate(series):
        colour = COLOURS.get(name, "#555")
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values[name]))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"'
            f' data-series="{escape(name)}"/>'
        )
        for i, value in enumerate(values[name]):
            run = escape(str(history[i].get("run", "")))
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>run {run}: {value} {escape(name)}</title></circle>"
            )
        parts.append(
            f'<text x="{PAD + index * 90}" y="{HEIGHT - 6}" font-size="11" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
