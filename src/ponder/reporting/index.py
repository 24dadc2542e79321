"""The reports index, ``<out>/index.html``: one entry per study reported into ``<out>``.

Entries live in ``<out>/.ponder-index.json`` (:data:`ponder.reporting.ownership.INDEX_DATA`)::

    {"format": 1, "studies": [{"name": "init", "question": "...", "answer": "..."}, ...]}

Writing a study merges its entry by name, so reports of several stores can share one ``--out``;
entries whose study folder has gone are dropped. ``index.html`` is rendered from the entries
by a Jinja template with autoescaping, never from the study folders' files.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from ponder.errors import PonderError
from ponder.reporting.ownership import INDEX_DATA, check_report_target, claim
from ponder.reporting.render import render

__all__ = ["write_index", "read_entries"]

_FORMAT = 1


def read_entries(out: Path) -> list[dict]:
    """The index entries stored in ``out``, oldest first; empty when there are none.

    Args:
        out: The top-level reports folder.

    Raises:
        PonderError: The entries file exists but is not ponder's index format.
    """
    path = out / INDEX_DATA
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["studies"] if data.get("format") == _FORMAT else None
    except (OSError, ValueError, KeyError, AttributeError):
        entries = None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise PonderError(f"{path} is not a ponder reports index (format {_FORMAT}); "
                          "delete it and write the reports again")
    return entries


def write_index(out: str | Path = "reports", *, entry: dict | None = None, force: bool = False) -> Path:
    """Merge ``entry`` into the index of ``out`` and write ``out/index.html``.

    Args:
        out: The top-level reports folder.
        entry: A study's entry (``name``, ``question``, ``answer``); it replaces the entry of the
            same name. None rewrites the page from the stored entries.
        force: Write even where ``out`` holds an ``index.html`` ponder did not write.

    Returns:
        The path of ``index.html``.

    Raises:
        PonderError: ``out`` is not ponder's (and not ``force``), cannot be written, or holds a
            damaged entries file.
    """
    out = Path(out)
    check_report_target(out, force=force)
    entries = {e["name"]: e for e in read_entries(out)}
    if entry is not None:
        entries[entry["name"]] = {k: str(entry.get(k, "")) for k in ("name", "question", "answer")}
    kept = [e for e in entries.values() if (out / e["name"] / "index.html").is_file()]
    claim(out, kind="reports")
    (out / INDEX_DATA).write_text(json.dumps({"format": _FORMAT, "studies": kept}, indent=2) + "\n", encoding="utf-8")
    rows = [{**e, "href": f"{quote(e['name'])}/index.html"} for e in sorted(kept, key=lambda e: e["name"])]
    path = out / "index.html"
    path.write_text(render("index.html", studies=rows), encoding="utf-8")
    return path
