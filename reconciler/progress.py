"""Progress reporting: a small observer the CLI passes into the library.

Long work (copying a drill's tables, one statement per table in ``apply``, one pass per table
in the residual scan) tells a :class:`Progress` what it is doing; the library never prints.
The CLI passes a rich progress bar on a terminal (``reconciler.console``) and
:class:`NullProgress` otherwise. Labels name phases, actions and tables, never data.

Left out on purpose: no rendering, no terminal detection (both live in the CLI).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What long-running library calls report."""

    def phase(self, name: str, total: int | None) -> None:
        """A phase starts (``copy``, ``plan``, ``apply``, ``scan``) with ``total`` steps."""

    def step(self, label: str) -> None:
        """The next step starts (e.g. ``delete order_lines``, ``scan customers``)."""

    def done(self) -> None:
        """The current phase is finished."""


class NullProgress:
    """Reports nowhere (the default, and the CLI's choice off a terminal or with --json)."""

    def phase(self, name: str, total: int | None) -> None:
        """Ignored."""

    def step(self, label: str) -> None:
        """Ignored."""

    def done(self) -> None:
        """Ignored."""


__all__ = ["NullProgress", "Progress"]
