"""Tracebacks for ``--debug`` that show where a failure happened, never the data involved.

A database driver's message quotes the row it failed on ("Failing row contains (..., 
jan@example.nl)"; a trigger's RAISE text), and so can Python's own (a ``KeyError`` of a
value). So a traceback here keeps every frame (file, line, function, source line) and the
exception's class, and shows a message only for the project's own error classes, whose
messages are written to name tables, columns and sequence numbers, never values.

Left out on purpose: no printing; the CLI and the logging formatter decide where it goes.
"""

from __future__ import annotations

import logging
import traceback

from erasure_ledger import LedgerError
from reconciler.errors import ReconcileError

_HIDDEN = "(message not shown: it can quote personal data)"


def _message(exc: BaseException) -> str:
    if isinstance(exc, LedgerError | ReconcileError):
        return str(exc)
    return _HIDDEN


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def safe_traceback(exc: BaseException) -> str:
    """The whole chain (causes and contexts, oldest first, even where ``raise ... from None``
    hid them: with ``--debug`` the cause is the point), messages of foreign exceptions
    hidden.

    Returns:
        The text, ending with a newline.
    """
    parts: list[str] = []
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        kind = type(link)
        block = ["Traceback (most recent call last):\n", *traceback.format_tb(link.__traceback__),
                 f"{kind.__module__}.{kind.__qualname__}: {_message(link)}\n"]
        if link.__cause__ is not None:
            block.insert(0, _CAUSE)
        elif link.__context__ is not None:
            block.insert(0, _CONTEXT)
        parts[:0] = block
        link = link.__cause__ or link.__context__
    return "".join(parts).lstrip("\n")


class SafeFormatter(logging.Formatter):
    """A logging formatter whose exception text is :func:`safe_traceback`."""

    def formatException(self, ei: object) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return safe_traceback(exc).rstrip("\n") if isinstance(exc, BaseException) else ""


__all__ = ["SafeFormatter", "safe_traceback"]
