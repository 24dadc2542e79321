"""Statistics libraries that load on first use, so reading back a kept analysis (its dataclasses) stays cheap.

``stats.ttest_rel(...)`` through :data:`stats` imports :mod:`scipy.stats` on the first attribute
read (about a second) and is the module itself afterwards.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["stats"]


class _Module:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, loaded on first use>"


stats: Any = _Module("scipy.stats")
