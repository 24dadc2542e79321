"""Everything the CLI prints, as written: never rich markup, never emoji codes.

Text that reaches the screen often comes from users: study names, questions, factor levels,
error messages. It can hold square brackets (``[dataset]``, ``[/x]``) that rich would take for
markup, hiding them or raising ``MarkupError``. Every console here is made with ``markup=False``,
``highlight=False`` and ``emoji=False``, and is created on first use so that importing the CLI
does not import rich's console.

Tables: ``--format auto`` (the default) draws a table when stdout is a terminal and writes
tab-separated values otherwise, so that a pipe gets whole names, never a table cut at 80 columns.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["out", "err", "say", "emit", "TABLE_FORMATS"]

TABLE_FORMATS = ("auto", "table", "tsv", "json")


class _LazyConsole:
    """A markup-free rich Console for stdout or stderr, made when first printed to."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, markup=False, highlight=False, emoji=False)
        return self._console

    @property
    def is_terminal(self) -> bool:
        return bool(self.console.is_terminal)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Like ``Console.print``; markup and highlighting stay off whatever the caller passes."""
        kwargs["markup"] = False
        kwargs["highlight"] = False
        kwargs["emoji"] = False
        if all(isinstance(o, str) for o in objects):
            kwargs.setdefault("soft_wrap", True)  # a pipe gets whole lines, never wrapped at 80 columns
        self.console.print(*objects, **kwargs)


out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


def say(text: str, *, bold: str = "", to_err: bool = False) -> None:
    """Print one line as written; ``bold`` is a prefix shown in bold on a terminal."""
    console = err if to_err else out
    if bold:
        from rich.text import Text

        console.print(Text.assemble((bold, "bold"), text), soft_wrap=True)
    else:
        console.print(text)


def emit(rows: list[dict[str, Any]], fmt: str) -> None:
    """Print rows as a table (terminal), tab-separated values (pipe) or JSON.

    Args:
        rows: One dict per row; the first row's keys are the columns.
        fmt: One of :data:`TABLE_FORMATS` (checked by the command before any work).
    """
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    if fmt == "tsv" or (fmt == "auto" and not out.is_terminal):
        _tsv(rows)
        return
    from rich.table import Table

    table = Table(show_lines=False)
    for col in (rows[0] if rows else {"name": ""}):
        table.add_column(str(col), overflow="fold")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    out.print(table)


def _tsv(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    lines = ["\t".join(_cell(c) for c in rows[0])]
    lines += ["\t".join(_cell(v) for v in r.values()) for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")


def _cell(value: Any) -> str:
    # A tab or newline inside a value would break the row; a space keeps the text readable.
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")
