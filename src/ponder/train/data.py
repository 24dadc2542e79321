"""A population's data on the device: one copy of the inputs, per-model indices and labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ponder.catalog.datasets import Pool, split

__all__ = ["PopulationData", "prepare_data"]


@dataclass
class PopulationData:
    """Tensors for training M models on one pool.

    Attributes:
        x_pool: ``(N, *sample)`` training-pool inputs, shared by all models.
        labels: ``(M, N)`` per-model training labels (corrupted where label noise applies).
        clean: ``(N,)`` the pool's true labels (validation uses these).
        train_idx: ``(M, n_train)`` each model's training examples.
        val_idx: ``(M, n_val)`` each model's validation examples.
        x_test, y_test: the shared test set.
        n_classes: class count.
    """

    x_pool: torch.Tensor
    labels: torch.Tensor
    clean: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int


def prepare_data(pool: Pool, *, seeds: list[int], label_noise: list[float], val_fraction: float,
                 train_size: int | None, dtype: torch.dtype, device: torch.device | str = "cpu") -> PopulationData:
    """Draw each model's split (from its seed's data stream) and move everything to ``device``."""
    splits = [split(pool.y_train, pool.n_classes, seed=s, val_fraction=val_fraction, train_size=train_size,
                    label_noise=p) for s, p in zip(seeds, label_noise)]
    as_t = lambda a, dt=torch.long: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)  # noqa: E731
    return PopulationData(
        x_pool=as_t(pool.x_train, dtype),
        labels=as_t(np.stack([s.labels for s in splits])),
        clean=as_t(pool.y_train),
        train_idx=as_t(np.stack([s.train_idx for s in splits])),
        val_idx=as_t(np.stack([s.val_idx for s in splits])),
        x_test=as_t(pool.x_test, dtype),
        y_test=as_t(pool.y_test),
        n_classes=pool.n_classes,
    )
