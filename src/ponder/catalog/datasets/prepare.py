"""Per-seed data preparation: validation split, training subset and label corruption.

All draws come from the run seed's ``data`` stream, so every arm with the same seed trains on
the same subset with the same corrupted labels: seeds are blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ponder.errors import SpecError
from ponder.rng import np_rng_for

__all__ = ["Split", "split", "INPUT_MODES"]

INPUT_MODES = ("original", "shuffled_pixels", "random_pixels", "gaussian")


@dataclass(frozen=True)
class Split:
    """Indices into a pool's training part, and the (possibly corrupted) labels to train on.

    Attributes:
        train_idx: int64 ``(n_train,)`` indices of the training examples.
        val_idx: int64 ``(n_val,)`` indices of the validation examples (clean labels).
        labels: int64 ``(N_pool,)`` labels used for training; equal to the pool's labels
            except at the corrupted training positions.
        corrupted: bool ``(N_pool,)``, True where a training label was replaced.
    """

    train_idx: np.ndarray
    val_idx: np.ndarray
    labels: np.ndarray
    corrupted: np.ndarray


def split(y_pool: np.ndarray, n_classes: int, *, seed: int, val_fraction: float,
          train_size: int | None, label_noise: float) -> Split:
    """Draw the validation set, the training subset and the label corruption for ``seed``.

    The validation set is ``round(val_fraction * N)`` examples of the pool; the training set is
    ``train_size`` of the rest (all of it when None). With ``label_noise = p`` each training
    label is, with probability p, replaced by a class drawn uniformly from all classes (it may
    draw the true class), as in Zhang et al. 2017; p = 1 gives random labels.
    """
    n = len(y_pool)
    rng = np_rng_for(seed, "data")
    order = rng.permutation(n)
    n_val = int(round(val_fraction * n))
    val_idx, rest = order[:n_val], order[n_val:]
    if train_size is not None:
        if train_size > len(rest):
            raise SpecError(f"dataset.train_size = {train_size} is more than the {len(rest)} examples left after the validation split; use at most {len(rest)}")
        rest = rest[:train_size]
    train_idx = np.sort(rest)
    labels = y_pool.astype(np.int64).copy()
    corrupted = np.zeros(n, dtype=bool)
    if label_noise > 0:
        hit = rng.random(len(train_idx)) < label_noise
        new = rng.integers(0, n_classes, size=len(train_idx))
        labels[train_idx[hit]] = new[hit]
        corrupted[train_idx[hit]] = True
    return Split(train_idx.astype(np.int64), np.sort(val_idx).astype(np.int64), labels, corrupted)
