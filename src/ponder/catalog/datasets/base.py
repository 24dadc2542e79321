"""The :class:`Pool` type and the cached loader that applies input transforms."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import ValidationError, validate_call

from ponder import registry
from ponder.errors import DataError, SpecError
from ponder.rng import np_rng_for

__all__ = ["Pool", "load_pool", "check_options"]


@dataclass(frozen=True)
class Pool:
    """A dataset's training pool and test set.

    Attributes:
        x_train: float32 array ``(N, *sample_shape)``.
        y_train: int64 labels ``(N,)`` in ``[0, n_classes)``.
        x_test: float32 array ``(N_test, *sample_shape)``.
        y_test: int64 labels ``(N_test,)``.
        n_classes: Number of classes.
        name: Dataset name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options that dataset ``name`` does not take, naming the closest valid one."""
    entry = registry.get("dataset", name)
    allowed = [p for p in inspect.signature(entry.fn).parameters if p != "self"]
    for key in options:
        if key not in allowed:
            hint = registry.did_you_mean(key, allowed)
            raise SpecError(f"dataset {name!r} has no option {key!r}{hint} (valid: {', '.join(allowed) or 'none'})")


def _validate(pool: Pool) -> Pool:
    for part in ("x_train", "x_test"):
        arr = getattr(pool, part)
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        if bad:
            raise DataError(f"dataset {pool.name!r} has {bad} NaN or infinite values in {part}; clean the data before training")
    for part in ("y_train", "y_test"):
        arr = getattr(pool, part)
        if arr.size and (arr.min() < 0 or arr.max() >= pool.n_classes):
            raise DataError(f"dataset {pool.name!r} has labels outside [0, {pool.n_classes}) in {part}")
    if len(pool.x_train) != len(pool.y_train) or len(pool.x_test) != len(pool.y_test):
        raise DataError(f"dataset {pool.name!r} has different numbers of inputs and labels")
    return pool


def _transform_inputs(pool: Pool, mode: str, seed: int) -> Pool:
    """Zhang et al. 2017 input variants; the permutation/noise is fixed by ``seed``."""
    if mode == "original":
        return pool
    rng = np_rng_for(seed, f"inputs:{mode}")
    flat_tr = pool.x_train.reshape(len(pool.x_train), -1)
    flat_te = pool.x_test.reshape(len(pool.x_test), -1)
    d = flat_tr.shape[1]
    if mode == "shuffled_pixels":  # one permutation for every sample, train and test
        perm = rng.permutation(d)
        new_tr, new_te = flat_tr[:, perm], flat_te[:, perm]
    elif mode == "random_pixels":  # a different permutation for every sample
        new_tr = np.take_along_axis(flat_tr, rng.permuted(np.tile(np.arange(d), (len(flat_tr), 1)), axis=1), 1)
        new_te = np.take_along_axis(flat_te, rng.permuted(np.tile(np.arange(d), (len(flat_te), 1)), axis=1), 1)
    elif mode == "gaussian":  # Gaussian noise with the data's mean and std
        mu, sd = float(flat_tr.mean()), float(flat_tr.std())
        new_tr = rng.normal(mu, sd, flat_tr.shape)
        new_te = rng.normal(mu, sd, flat_te.shape)
    else:
        raise SpecError(f"unknown input mode {mode!r}; expected original, shuffled_pixels, random_pixels or gaussian")
    shape = pool.sample_shape
    return Pool(new_tr.reshape(-1, *shape).astype(np.float32), pool.y_train,
                new_te.reshape(-1, *shape).astype(np.float32), pool.y_test, pool.n_classes, pool.name)


@lru_cache(maxsize=16)
def _cached(name: str, frozen_options: tuple[tuple[str, Any], ...], inputs: str, input_seed: int) -> Pool:
    entry = registry.get("dataset", name)
    try:
        # pydantic checks the options against the generator's annotated signature (types and ranges)
        pool = validate_call(entry.fn)(**dict(frozen_options))
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise SpecError(f"dataset {name!r} option {where!r}: {e['msg'].removeprefix('Value error, ')} (found {e.get('input')!r})") from None
    except (DataError, SpecError):
        raise
    except Exception as exc:  # noqa: BLE001  (the user-facing boundary of a generator or loader)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(f"dataset {name!r} cannot be built with options {dict(frozen_options)!r}: {first}") from None
    pool = _validate(pool)
    return _transform_inputs(pool, inputs, input_seed)


def load_pool(name: str, options: dict[str, Any] | None = None, *, inputs: str = "original",
              input_seed: int = 0) -> Pool:
    """Load dataset ``name`` with ``options``, apply the input mode, validate, cache in memory."""
    options = dict(options or {})
    check_options(name, options)
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
    return _cached(name, frozen, inputs, input_seed)
