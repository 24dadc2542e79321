"""The catalog: every named building block a study can vary.

Importing this package registers every entry, so lookups never depend on import order.
"""

from __future__ import annotations

from ponder.catalog import activations, datasets, initializers, losses, metrics, models  # noqa: F401

__all__ = ["activations", "datasets", "initializers", "losses", "metrics", "models"]
