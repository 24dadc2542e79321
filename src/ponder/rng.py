"""Random streams: every draw in ponder comes from a generator made here.

A run's seed and a *purpose* ("init", "order", "dropout", "data", ...) name a stream. The same
(seed, purpose) always gives the same stream, whatever else runs in the process, and different
purposes never share draws. Runs of different arms with the same seed therefore see the same
data order, the same data subset and the same dropout masks: seeds are blocks for paired
statistics.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["stream_seed", "rng_for", "np_rng_for"]


def stream_seed(seed: int, purpose: str) -> int:
    """A 63-bit integer derived from (seed, purpose) by SHA-256."""
    digest = hashlib.sha256(f"ponder:{int(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def rng_for(seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for (seed, purpose) on ``device`` (torch loads here, not when this module does)."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(stream_seed(seed, purpose))
    return gen


def np_rng_for(seed: int, purpose: str) -> np.random.Generator:
    """A numpy generator for (seed, purpose)."""
    return np.random.default_rng(stream_seed(seed, purpose))
