"""ponder: answers deep-learning design questions with controlled, repeatable experiments.

Python API::

    import ponder
    study = ponder.load_study("quickstart", quick=True)
    ponder.run(study, store="ponder.duckdb")
    df = ponder.results(study, store="ponder.duckdb")

``import ponder`` is light: torch and the trainer load on first use of a function that needs them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_study", "run", "results", "report", "init", "register"]

_LAZY = {"load_study": "ponder.api", "run": "ponder.api", "results": "ponder.api", "report": "ponder.api",
         "init": "ponder.catalog.initializers", "register": "ponder.registry"}


def __getattr__(name: str) -> Any:
    """Load the public functions on first use, so ``import ponder`` imports no torch."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ponder' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
