"""Terminal rendering for the CLI: rich progress bars for :class:`reconciler.progress.Progress`.

Only the CLI imports this module. :func:`progress_for` gives a bar per phase (``copy``,
``plan`` / ``apply``, ``scan``) advancing per table on a terminal, and a silent
:class:`~reconciler.progress.NullProgress` when stderr is not a terminal or the output is
JSON, so logs and pipelines get no progress noise.

Left out on purpose: no library logic; labels come from the library and name tables only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from reconciler.progress import NullProgress, Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichBars
    from rich.progress import TaskID


class RichProgress:
    """One rich bar per phase; a step finishes the previous step of its phase."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars

        self.bars: RichBars = Bars(SpinnerColumn(), TextColumn("{task.description:<40}"),
                                   BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                   console=console)
        self.task: TaskID | None = None
        self.name = ""
        self.started = False

    def start(self) -> None:
        """Show the live display."""
        self.bars.start()

    def stop(self) -> None:
        """Finish the current phase and stop the live display."""
        self.done()
        self.bars.stop()

    def phase(self, name: str, total: int | None) -> None:
        """A new bar."""
        self.done()
        self.name = name
        self.started = False
        self.task = self.bars.add_task(name, total=total)

    def step(self, label: str) -> None:
        """Advance past the previous step; show this one."""
        if self.task is None:
            self.phase("working", None)
        assert self.task is not None
        self.bars.update(self.task, description=label, advance=1 if self.started else 0)
        self.started = True

    def done(self) -> None:
        """Complete the current bar."""
        if self.task is None:
            return
        total = self.bars.tasks[self._index()].total
        self.bars.update(self.task, description=self.name,
                         completed=total if total is not None else 1,
                         total=total if total is not None else 1)
        self.task = None

    def _index(self) -> int:
        return next(i for i, t in enumerate(self.bars.tasks) if t.id == self.task)


@contextmanager
def progress_for(stream: TextIO, *, quiet: bool) -> Iterator[Progress]:
    """Bars on ``stream`` when it is a terminal and not ``quiet``; silence otherwise.

    Yields:
        The observer to pass into the library.
    """
    if quiet or not stream.isatty():
        yield NullProgress()
        return
    from rich.console import Console

    bars = RichProgress(Console(file=stream))
    bars.start()
    try:
        yield bars
    finally:
        bars.stop()


__all__ = ["RichProgress", "progress_for"]
