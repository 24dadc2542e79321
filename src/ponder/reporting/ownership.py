"""Ownership of report folders: ponder writes only where it created the place or marked it as its own.

Every folder ponder writes reports into carries a marker file, :data:`MARKER` (``.ponder-report``),
a small JSON object::

    {"tool": "ponder", "version": "0.1.0", "kind": "study", "study": "init"}   # <out>/<study>/
    {"tool": "ponder", "version": "0.1.0", "kind": "reports"}                  # <out>/

Before writing, :func:`check_report_target` refuses a study folder that exists, is not empty and
has no marker, and a top-level folder that holds an ``index.html`` (or an index file) without a
marker; ``force=True`` lifts both refusals, and the folder is marked as ponder's from then on.
It also checks that the folders can be written, so a report fails before any analysis or figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ponder import __version__
from ponder.errors import PonderError

__all__ = ["MARKER", "INDEX_DATA", "is_ours", "check_report_target", "claim"]

MARKER = ".ponder-report"
INDEX_DATA = ".ponder-index.json"  # the reports index's entries, merged by study name (see report.index)
_TOP_FILES = ("index.html", INDEX_DATA)  # what ponder writes at the top of --out


def is_ours(folder: Path) -> bool:
    """Whether ``folder`` holds a readable ponder marker.

    Args:
        folder: A directory (need not exist).

    Returns:
        True when ``folder/.ponder-report`` is a JSON object with ``"tool": "ponder"``.
    """
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("tool") == "ponder"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(folder: Path) -> None:
    """Raise unless ``folder`` exists as a writable directory or could be created under a writable one."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise PonderError(f"cannot write reports to {folder}: {base} is a file, not a folder; choose another --out")
    if not os.access(base, os.W_OK | os.X_OK):
        raise PonderError(f"cannot write reports to {folder}: {base} is not writable; choose a folder you can write to")


def check_report_target(out: Path, folder: Path | None = None, *, force: bool = False) -> None:
    """Refuse to write where ponder did not create or mark the place, or cannot write at all.

    Args:
        out: The top-level reports folder (``--out``), which holds ``index.html``.
        folder: The study's report folder inside ``out``; None checks ``out`` alone.
        force: Write into foreign folders anyway (their other files are left alone).

    Raises:
        PonderError: ``folder`` is a non-empty folder without a marker, ``out`` holds an
            ``index.html`` without a marker (both unless ``force``), or either cannot be written.
    """
    if not force:
        if folder is not None and folder.is_dir() and not is_ours(folder) and any(folder.iterdir()):
            names = ", ".join(sorted(p.name for p in folder.iterdir())[:3])
            raise PonderError(f"report folder {folder} holds files ponder did not write ({names}); "
                              "choose an empty folder or pass --force")
        foreign = [n for n in _TOP_FILES if (out / n).exists()]
        if foreign and not is_ours(out):
            raise PonderError(f"--out {out} holds files ponder did not write ({', '.join(foreign)}); "
                              "choose an empty folder or pass --force")
    for path in (out, folder) if folder is not None else (out,):
        if path.exists() and not path.is_dir():
            raise PonderError(f"cannot write reports to {path}: it is a file, not a folder; choose another --out")
        _check_writable(path)


def claim(folder: Path, **fields: str) -> None:
    """Create ``folder`` if needed and mark it as ponder's.

    Args:
        folder: The folder to mark.
        **fields: Extra marker fields, e.g. ``kind="study", study="init"``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    marker = {"tool": "ponder", "version": __version__, **fields}
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
