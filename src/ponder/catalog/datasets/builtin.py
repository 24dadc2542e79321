"""Datasets generated or bundled offline: MNIST-1D, scikit-learn digits, spirals, teacher."""

from __future__ import annotations

import random
from typing import Annotated

import numpy as np
from pydantic import Field

from ponder.catalog.datasets.base import Pool
from ponder.registry import register
from ponder.rng import np_rng_for

__all__: list[str] = []


@register("dataset", "mnist1d", formula="10 classes, 40-point 1-D signals, 4000 train / 1000 test",
          source="mnist1d package, make_dataset(get_dataset_args()) generated locally, never downloaded",
          cites="Greydanus 2020 (Scaling down deep learning)")
def mnist1d(num_samples: Annotated[int, Field(ge=20, le=1_000_000)] = 5000, seed: Annotated[int, Field(ge=0, lt=2**32)] = 42,
            train_split: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8) -> Pool:
    """MNIST-1D: ten 1-D digit templates, padded, scaled, translated, sheared and noised.

    Generated with the ``mnist1d`` package (defaults = the paper's standard split). The
    package reseeds numpy's and Python's global RNGs; ponder saves and restores both around
    the call so no other stream is disturbed. The arrays are kept in ponder's disk cache
    (:mod:`ponder.cache`), keyed by the options and the versions of mnist1d, numpy and scipy. Samples have shape (1, 40).
    """
    from importlib.metadata import version

    from ponder.cache import cached_arrays

    def generate() -> dict[str, np.ndarray]:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed, args.train_split = int(num_samples), int(seed), float(train_split)
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            data = make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return {"x": np.asarray(data["x"], np.float32), "y": np.asarray(data["y"], np.int64),
                "x_test": np.asarray(data["x_test"], np.float32), "y_test": np.asarray(data["y_test"], np.int64)}

    # generating takes seconds (a scipy interpolation per sample): done once per machine, read from disk afterwards
    key = {"num_samples": int(num_samples), "seed": int(seed), "train_split": float(train_split), "format": 1,
           **{pkg: version(pkg) for pkg in ("mnist1d", "numpy", "scipy")}}  # generation interpolates with scipy
    data = cached_arrays("mnist1d", key, generate)
    return Pool(data["x"][:, None, :], data["y"], data["x_test"][:, None, :], data["y_test"], 10, "mnist1d")


@register("dataset", "digits", formula="10 classes, 8x8 grey images scaled to [0, 1]; stratified 70/30 split",
          source="scikit-learn load_digits (bundled UCI optical digits)",
          cites="Alpaydin & Kaynak 1998 (UCI Optical Recognition of Handwritten Digits)")
def digits(test_fraction: Annotated[float, Field(ge=0.05, le=0.9)] = 0.3, split_seed: Annotated[int, Field(ge=0, lt=2**32)] = 0) -> Pool:
    """scikit-learn's 1797 handwritten digits, 8x8 pixels in 0..16 scaled to [0, 1].

    Near ceiling for an MLP (about 97% test accuracy) when trained on all of it; use
    ``train_size`` to make design choices visible. Samples have shape (1, 8, 8).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    return Pool(x_tr, y_tr, x_te, y_te, 10, "digits")


@register("dataset", "spirals", formula="K interleaved 2-D spirals with Gaussian noise",
          source="ponder generator (the classic CS231n/Lang & Witbrock spiral task)",
          cites="Lang & Witbrock 1988 (Learning to tell two spirals apart)")
def spirals(n_classes: Annotated[int, Field(ge=2, le=100)] = 3, n_train: Annotated[int, Field(ge=10, le=1_000_000)] = 1500,
            n_test: Annotated[int, Field(ge=10, le=1_000_000)] = 1500, noise: Annotated[float, Field(ge=0.0, le=10.0)] = 0.2,
            turns: Annotated[float, Field(gt=0.0, le=100.0)] = 1.5, seed: Annotated[int, Field(ge=0)] = 0) -> Pool:
    """K spirals in the plane: class k has angle t * turns * 2 pi + 2 pi k / K and radius t.

    Points are drawn with t ~ U[0, 1] and isotropic Gaussian noise of std ``noise * t``
    added in the plane. Samples have shape (2,).
    """
    rng = np_rng_for(seed, "dataset:spirals")

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, n_classes, n)
        t = rng.random(n)
        angle = t * turns * 2 * np.pi + 2 * np.pi * y / n_classes
        x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1)
        x = x + rng.normal(0, 1, x.shape) * (noise * t)[:, None]
        return (x / x.std()).astype(np.float32), y.astype(np.int64)

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return Pool(x_tr, y_tr, x_te, y_te, n_classes, "spirals")


@register("dataset", "teacher", formula="y = argmax(teacher(x)), x ~ N(0, I_d), teacher a random 1-hidden-layer tanh net",
          source="ponder generator (student-teacher setting)",
          cites="Gardner & Derrida 1989; Saad & Solla 1995 (student-teacher networks)")
def teacher(n_features: Annotated[int, Field(ge=1, le=100_000)] = 20, n_hidden: Annotated[int, Field(ge=1, le=100_000)] = 100,
            n_classes: Annotated[int, Field(ge=2, le=1000)] = 10, n_train: Annotated[int, Field(ge=10, le=1_000_000)] = 4000,
            n_test: Annotated[int, Field(ge=10, le=1_000_000)] = 1000, seed: Annotated[int, Field(ge=0)] = 0) -> Pool:
    """Labels from a random teacher network: h = tanh(W1 x / sqrt(d)), logits = W2 h / sqrt(H).

    W1, W2 have i.i.d. N(0, 1) entries drawn from the ``seed`` stream; the task is exactly
    learnable by a network of the teacher's size. Samples have shape (n_features,).
    """
    rng = np_rng_for(seed, "dataset:teacher")
    w1 = rng.normal(0, 1, (n_hidden, n_features))
    w2 = rng.normal(0, 1, (n_classes, n_hidden))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0, 1, (n, n_features))
        logits = np.tanh(x @ w1.T / np.sqrt(n_features)) @ w2.T / np.sqrt(n_hidden)
        return x.astype(np.float32), logits.argmax(1).astype(np.int64)

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return Pool(x_tr, y_tr, x_te, y_te, n_classes, "teacher")
