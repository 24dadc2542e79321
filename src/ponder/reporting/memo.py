"""A report's costly parts kept across report folders: the analysis, the figures and the folklore table.

Writing a report analyzes the study (seconds of statistics) and draws its figures (most of the
time); both are functions of what the report depends on, so they are kept in the disk cache
(:func:`ponder.cache.cache_dir`, ``reports/<key>/``) and a later report of the same study state
(``ponder report`` into another folder, another format of the command line) copies them instead
of computing them again. The key hashes the study's analysis fingerprint (its stored plan, runs
and spec), ponder's version and whole source, and the versions of the libraries that pickle the
analysis and draw the figures: any change to one of them makes a new entry. A report whose
figures could not all be drawn (a plugin not loaded) is not kept. Only the
:data:`KEEP` most recently used entries stay; an unwritable cache costs the computation again.

The analysis is kept with :mod:`pickle`, read back only from ponder's own cache folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ponder.cache import cache_dir

if TYPE_CHECKING:
    from ponder.analysis import Analysis

__all__ = ["KEEP", "memo_key", "load", "save", "restore_figures"]

KEEP = 16  # entries kept (a quickstart's is about 2 MB)
FORMAT = 1


LIBRARIES = ("matplotlib", "pandas", "numpy", "torch", "scipy", "statsmodels", "baycomp")  # what draws or computes parts


def memo_key(fingerprint: str) -> str:
    """The entry of a report whose analysis fingerprint is ``fingerprint``, made by this code, these libraries and
    these initializers (the folklore table and the weight histograms sample every initializer loaded, plugins too)."""
    from importlib.metadata import PackageNotFoundError, version

    from ponder import __version__, registry

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    blob = json.dumps({"fingerprint": fingerprint, "ponder": __version__, "source": _source_hash(), "format": FORMAT,
                       "libs": {name: installed(name) for name in LIBRARIES},
                       "initializers": sorted((e.name, e.identity) for e in registry.entries("initializer"))},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    """Every file of the ponder package (catalog and theory draw some figures, not only reporting)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            digest.update(str(f.relative_to(root)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def _entry(key: str) -> Path:
    return cache_dir() / "reports" / key


def load(key: str) -> dict[str, Any] | None:
    """``{"analysis", "folklore", "figures", "folder"}`` of a kept entry, or None (missing or unreadable)."""
    folder = _entry(key)
    try:
        meta = json.loads((folder / "memo.json").read_text(encoding="utf-8"))
        if meta.get("key") != key or not all((folder / f["file"]).is_file() for f in meta["figures"] if f["file"]):
            return None
        with open(folder / "analysis.pkl", "rb") as fh:
            kept = pickle.load(fh)  # noqa: S301  (written by ponder into its own cache folder)
        os.utime(folder)  # recently used: kept when older entries are pruned
    except FileNotFoundError:  # never kept (or pruned meanwhile)
        return None
    except Exception:  # noqa: BLE001  (truncated or otherwise unreadable: dropped, so this report keeps a new one)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return {"analysis": kept["analysis"], "folklore": kept["folklore"], "figures": meta["figures"], "folder": folder}


def restore_figures(entry: dict[str, Any], folder: Path) -> list[dict[str, str]]:
    """Copy a kept entry's figures (PNG and SVG) into the report folder; ``{"file", "caption"}`` per figure."""
    for fig in entry["figures"]:
        if fig["file"]:
            for path in _figure_files(entry["folder"], fig["file"]):
                shutil.copyfile(path, folder / path.name)
    return [dict(fig) for fig in entry["figures"]]


def save(key: str, analysis: Analysis, folklore: dict | None, figures: list[dict[str, str]], folder: Path) -> None:
    """Keep a freshly written report's analysis, folklore table and figures (from ``folder``) under ``key``."""
    if any(not fig["file"] for fig in figures):  # a figure not drawn (plugin missing): not worth keeping
        return
    target = _entry(key)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{key}."))
        with open(tmp / "analysis.pkl", "wb") as fh:
            pickle.dump({"analysis": analysis, "folklore": folklore}, fh, protocol=pickle.HIGHEST_PROTOCOL)
        for fig in figures:
            for path in _figure_files(folder, fig["file"]):
                shutil.copyfile(path, tmp / path.name)
        meta = {"key": key, "figures": figures}
        (tmp / "memo.json").write_text(json.dumps(meta, allow_nan=False), encoding="utf-8")
        try:
            os.rename(tmp, target)  # atomic: readers see a whole entry or none
            tmp = None
        except OSError:  # another process kept the same entry first
            pass
        _prune(target.parent)
    except (OSError, pickle.PicklingError, TypeError, ValueError, AttributeError):
        pass  # an unwritable cache (or an analysis holding something unpicklable) only costs the work next time
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _figure_files(folder: Path, png: str) -> list[Path]:
    base = folder / png
    return [p for p in (base, base.with_suffix(".svg")) if p.is_file()]


def _prune(root: Path) -> None:
    """Keep the :data:`KEEP` most recently used entries (and no half-written one older than an hour)."""
    import time

    dirs = [p for p in root.iterdir() if p.is_dir()]
    entries = sorted((p for p in dirs if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    stale = [p for p in dirs if p.name.startswith(".") and p.stat().st_mtime < time.time() - 3600]
    for old in entries[KEEP:] + stale:
        shutil.rmtree(old, ignore_errors=True)
