"""Range checks on command-line options, run before a command does any work.

Each check raises :class:`~ponder.errors.PonderError` with one message form: the option, what it
must be, and what it got (``--threads must be at most 2 (the CPUs this process may use), got
100000``), so a bad value costs the user a sentence, never a crash half-way through training.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ponder.errors import PonderError

__all__ = ["cpus_available", "integer", "number", "choice", "writable_folder", "file_target", "new_files"]


def cpus_available() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no sched_getaffinity on macOS and Windows
        return os.cpu_count() or 1


def integer(option: str, value: Optional[int], *, lo: int, hi: Optional[int] = None, why: str = "") -> None:
    """``lo <= value <= hi``; None (the option was not given) passes. ``why`` explains ``hi``."""
    if value is None:
        return
    if value < lo:
        raise PonderError(f"{option} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise PonderError(f"{option} must be at most {hi}{f' ({why})' if why else ''}, got {value}")


def number(option: str, value: Optional[float], *, above: Optional[float] = None, lo: Optional[float] = None,
           hi: Optional[float] = None, unit: str = "") -> None:
    """A finite float with ``value > above``, ``value >= lo`` and ``value <= hi``; None passes."""
    if value is None:
        return
    got = f", got {value:g}"
    if not math.isfinite(value):
        raise PonderError(f"{option} must be a finite number{got}")
    if above is not None and value <= above:
        raise PonderError(f"{option} must be more than {above:g}{unit}{got}")
    if lo is not None and value < lo:
        raise PonderError(f"{option} must be at least {lo:g}{unit}{got}")
    if hi is not None and value > hi:
        raise PonderError(f"{option} must be at most {hi:g}{unit}{got}")


def choice(option: str, value: str, choices: Sequence[str]) -> None:
    """``value`` is one of ``choices``; a miss names the closest one."""
    if value in choices:
        return
    from ponder.registry import did_you_mean

    hint = did_you_mean(value, list(choices))
    raise PonderError(f"unknown {option} {value!r}{hint} (choose from {', '.join(choices)})")


def writable_folder(option: str, folder: str) -> None:
    """``folder`` is a folder this process can write in, or one it can create."""
    path = _path(option, folder)
    base = next(p for p in (path, *path.parents) if _exists(p))  # the root always exists
    if not base.is_dir():
        what = "is a file" if base == path else f"cannot be made: {base} is a file"
        raise PonderError(f"{option} {folder!r} {what}, not a folder; give a folder")
    if not _can_write_in(base):
        raise PonderError(f"{option} {folder!r} is not writable: cannot create files in {base}")


def file_target(option: str, file: str, *, force: Optional[bool] = None) -> None:
    """``file`` can be written: its folder exists and is writable, and it is not a folder.

    Args:
        force: None lets an existing file be replaced; False refuses it (the user passes ``--force``).
    """
    path = _path(option, file)
    if path.is_dir():
        raise PonderError(f"{option} {file!r} is a folder; give a file name in it")
    if not path.parent.is_dir():
        raise PonderError(f"{option} {file!r}: the folder {path.parent} does not exist; create it first")
    if not _can_write_in(path.parent):
        raise PonderError(f"{option} {file!r}: cannot create files in {path.parent}")
    if force is False and _exists(path):
        raise PonderError(f"{option} {file!r} exists already; pass --force to replace it, or choose another name")


def new_files(option: str, folder: str, names: Iterable[str], *, force: bool) -> None:
    """``folder`` is writable and holds none of ``names`` (unless ``force``), nor a folder by those names."""
    writable_folder(option, folder)
    paths = [Path(folder) / n for n in names]
    if dirs := [p.name for p in paths if p.is_dir()]:
        raise PonderError(f"{option} {folder!r} holds folders named {', '.join(dirs)}; move them or choose another folder")
    if (taken := [p.name for p in paths if _exists(p)]) and not force:
        raise PonderError(f"{option} {folder!r} already holds {', '.join(taken)}; pass --force to replace them, "
                          "or choose another folder")


def _can_write_in(folder: Path) -> bool:
    """Try it: create and remove an empty file. Permission bits alone say yes to root on a read-only
    mount or in /proc."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ponder-write-check-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _path(option: str, text: str) -> Path:
    if not text or "\0" in text:
        raise PonderError(f"{option} {text!r} is not a valid path")
    return Path(text).absolute()


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name too long for the file system
        return False
