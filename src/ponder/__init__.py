"""ponder: answers deep-learning design questions with controlled, repeatable experiments.

Python API::

    import ponder
    study = ponder.load_study("quickstart", quick=True)
    ponder.run(study, store="ponder.duckdb")
    df = ponder.results(study, store="ponder.duckdb")
"""

from __future__ import annotations

__version__ = "0.1.0"

from ponder.api import load_study, results, run  # noqa: E402
from ponder.catalog.initializers import init  # noqa: E402

__all__ = ["__version__", "load_study", "run", "results", "init"]
