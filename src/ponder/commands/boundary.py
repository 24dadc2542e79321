"""The CLI's one error boundary: what a user sees when a command fails, and its exit code.

- A user error (:class:`~ponder.errors.PonderError`, or a usage error of the command line) is
  one line on stderr, ``error: ...``, and exit code 2.
- Any other exception is a bug in ponder: one sentence on stderr, ``internal error: Type:
  message; the traceback is in FILE``, and exit code 1. The traceback goes to a log file under
  ``$XDG_STATE_HOME/ponder/logs`` (``~/.local/state/ponder/logs`` when unset), or under the temp
  folder when that cannot be written. A raw traceback never reaches the screen.
- ``--debug`` re-raises both kinds, so the traceback shows.
- Ctrl-C is ``interrupted`` and exit code 130; a closed pipe (``ponder list | head``) exits quietly.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Optional

from ponder.commands.console import err
from ponder.errors import PonderError

__all__ = ["exit_code_for", "internal_sentence", "log_folder", "write_log"]


def exit_code_for(exc: BaseException, *, debug: bool) -> Optional[int]:
    """Report ``exc`` to the user and return the exit code; None means re-raise it."""
    exits, aborts, usage = _cli_exception_types()
    if isinstance(exc, exits):
        return exc.exit_code  # type: ignore[attr-defined]
    if isinstance(exc, (KeyboardInterrupt, *aborts)):
        err.print("interrupted")
        return 130
    if isinstance(exc, usage):
        return _usage(exc)
    if not isinstance(exc, Exception) or debug:
        return None
    if isinstance(exc, PonderError):
        _line(f"error: {exc}")
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        _quiet_stdout()
        return 1
    _line(internal_sentence(exc, write_log(exc)))
    return 1


def internal_sentence(exc: BaseException, log: Optional[Path]) -> str:
    """``internal error: Type: first line; the traceback is in LOG``."""
    text = str(exc).strip()
    what = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    where = f"the traceback is in {log}" if log else "the traceback could not be saved; run again with --debug to see it"
    return f"internal error: {what}; {where}"


def log_folder() -> Path:
    """Where internal-error logs go: ``$XDG_STATE_HOME/ponder/logs``, else ``~/.local/state/ponder/logs``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "ponder" / "logs"


def write_log(exc: BaseException) -> Optional[Path]:
    """Write the traceback of ``exc`` to a new log file; None when no folder can take it."""
    name = f"ponder-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    text = (f"ponder internal error\ncommand: {' '.join(sys.argv)}\npython: {sys.version.split()[0]}\n"
            f"cwd: {os.getcwd()}\n\n" + "".join(traceback.format_exception(exc)))
    for folder in (log_folder(), Path(tempfile.gettempdir()) / "ponder-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _cli_exception_types() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(exit, abort, usage-error) classes: typer's own, and click's where typer still uses click."""
    import typer

    exits: list[type] = [typer.Exit]
    aborts: list[type] = [typer.Abort]
    usage: list[type] = []
    try:
        from typer.exceptions import TyperException  # base of the click that newer typer vendors

        usage.append(TyperException)
    except ImportError:
        pass
    try:
        import click

        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
        usage.append(click.exceptions.ClickException)
    except ImportError:
        pass
    return tuple(exits), tuple(aborts), tuple(usage)


def _usage(exc: BaseException) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `ponder`: typer printed the help already, or it is the message
        if text := exc.format_message().strip():  # type: ignore[attr-defined]
            sys.stderr.write(text + "\n")
        return 2
    msg = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    _line(f"error: {msg}")
    return 2


def _line(text: str) -> None:
    # One line: a message with newlines (a library's multi-line text) is joined.
    err.print(" ".join(text.split("\n")))


def _quiet_stdout() -> None:
    # The reader went away; point stdout at devnull so the interpreter's final flush stays silent.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
