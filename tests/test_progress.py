"""The progress display counts records, never shows more done than the total, and shows
the rate and the time left."""

from __future__ import annotations

import io

from rich.console import Console

from samband.progress import RichProgress


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=160, color_system=None), buffer


def test_never_more_done_than_the_total() -> None:
    console, buffer = _console()
    progress = RichProgress(console)
    progress.phase("sync", 10)
    for _ in range(3):  # three rounds over the same ten records
        progress.advance(6)
        progress.advance(4)
    progress.done()
    text = buffer.getvalue()
    assert "10/10" in text
    assert "20/10" not in text and "30/10" not in text


def test_reading_counts_records_with_a_rate() -> None:
    console, buffer = _console()
    progress = RichProgress(console)
    progress.phase("read", None)
    progress.advance(500)
    progress.advance(250)
    progress.done()
    text = buffer.getvalue()
    assert "750" in text
    assert "records/s" in text
