"""A study's analysis fingerprint: what its analysis and report depend on, computed without analyzing.

Kept apart from :mod:`ponder.analysis.summary` so a rerun that keeps its report checks it without
loading the statistics libraries.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ponder.store import Store

__all__ = ["fingerprint"]


def fingerprint(store: Store, name: str) -> str:
    """What a study's analysis and report depend on: its stored plan, runs and spec (``Store.fingerprint``) and
    the code that analyzes and reports them, so a stored analysis is reused only while both are unchanged."""
    import hashlib

    return hashlib.sha256(f"{store.fingerprint(name)}:{_code_hash()}".encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted([*root.joinpath("analysis").rglob("*.py"), *root.joinpath("reporting").rglob("*"),
                    root / "__init__.py"])
    digest = hashlib.sha256()
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]
