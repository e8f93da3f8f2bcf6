"""A Rich progress display for ``samband sync``: records (not entity types) read and
synced, the rate, and the time left; never more done than the total."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Records per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:
            speed = task.completed / task.elapsed
        shown = "?" if speed is None else f"{speed:,.0f}"
        return Text(f"{shown} records/s", style="progress.data.speed")


class RichProgress:
    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: object | None = None
        self._total: int | None = None
        self._done = 0
        self._started = False

    def phase(self, name: str, total: int | None = None) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._total, self._done = total, 0
        self._task = self._progress.add_task(name, total=total)

    def advance(self, count: int = 1) -> None:
        if self._task is None:
            return
        if self._total is not None:
            # a record synced again in a later round is not more work done
            count = max(min(count, self._total - self._done), 0)
        self._done += count
        if count:
            self._progress.advance(self._task, count)  # type: ignore[arg-type]

    def done(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
