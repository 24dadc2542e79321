"""Datasets that work offline: generated, bundled with scikit-learn, or read from local files.

A dataset entry returns a :class:`Pool`: a training pool and a test set as numpy arrays, with
each sample in its natural shape (``(1, 40)`` for MNIST-1D, ``(1, 8, 8)`` for digits). What a
run trains on is drawn from the pool by :func:`ponder.catalog.datasets.prepare.split`.
"""

from __future__ import annotations

from ponder.catalog.datasets import builtin, files  # noqa: F401  (registers entries)
from ponder.catalog.datasets.base import Pool, load_pool
from ponder.catalog.datasets.prepare import INPUT_MODES, Split, split

__all__ = ["Pool", "load_pool", "Split", "split", "INPUT_MODES"]
