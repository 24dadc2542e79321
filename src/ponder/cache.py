"""A disk cache for derived data that never changes for its inputs (generated datasets, mean-field grids,
critical lines).

Entries live in ``$PONDER_CACHE`` or ``$XDG_CACHE_HOME/ponder`` (default ``~/.cache/ponder``), one
``.npz`` per key; the key hashes the inputs, the ponder version and the identity of the catalog
entry used, so a changed activation (or plugin) computes afresh. An unwritable cache folder only
costs the computation again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["cached_arrays", "cache_dir"]


def cache_dir() -> Path:
    base = os.environ.get("PONDER_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                          os.path.expanduser("~/.cache"), "ponder")
    return Path(base)


def cached_arrays(kind: str, key: dict, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()`` once per ``(kind, key)`` across processes; the arrays from disk afterwards."""
    from ponder import __version__

    digest = hashlib.sha256(json.dumps({"kind": kind, "key": key, "ponder": __version__}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:20]
    path = cache_dir() / kind / f"{digest}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001  (missing, truncated or foreign: computed again and rewritten)
        pass
    arrays = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # atomic: a reader sees the whole file or none
    except OSError:
        pass
    return arrays
