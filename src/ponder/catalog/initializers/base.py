"""Shared initializer machinery: fan computation and the public ``init`` call."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ponder import registry
from ponder.errors import CatalogError

__all__ = ["fans_torch", "init", "draw_bias", "BIAS_RULES"]

BIAS_RULES = ("zeros", "fan_in_uniform")


def fans_torch(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) by PyTorch's rule for a per-model weight shape.

    Layout ``(out, in, *kernel)``: fan_in = in * prod(kernel), fan_out = out * prod(kernel).
    A population's leading model axis must not be passed here.

    Raises:
        CatalogError: fewer than 2 dimensions (PyTorch refuses them too).
    """
    if len(shape) < 2:
        raise CatalogError(f"fans need a weight of at least 2 dimensions (out, in, ...), got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def init(name: str, shape: Sequence[int], *, generator: torch.Generator,
         dtype: torch.dtype = torch.float32, **params: Any) -> torch.Tensor:
    """Draw one weight tensor of ``shape`` with catalog initializer ``name``.

    Args:
        name: A catalog initializer name (``ponder list initializers``).
        shape: Per-model weight shape in PyTorch layout.
        generator: The only source of randomness.
        dtype: Floating dtype of the result.
        **params: The initializer's parameters.

    Returns:
        A new tensor of ``shape`` and ``dtype``.
    """
    entry = registry.get("initializer", name)
    if generator is None:
        raise CatalogError(f"initializer {name!r} needs an explicit generator (ponder never uses the global RNG)")
    try:
        return entry.fn(tuple(int(s) for s in shape), generator=generator, dtype=dtype, **params)
    except TypeError as exc:
        raise CatalogError(f"initializer {name!r} got bad parameters {sorted(params)}: {exc}") from None


def draw_bias(rule: str, out_features: int, fan_in: int, *, generator: torch.Generator,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw a layer's bias by ``rule``: zeros, or PyTorch's module default U[-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    if rule == "zeros":
        return torch.zeros(out_features, dtype=dtype)
    if rule == "fan_in_uniform":
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        return torch.empty(out_features, dtype=dtype).uniform_(-bound, bound, generator=generator)
    raise CatalogError(f"unknown bias rule {rule!r}; expected one of {BIAS_RULES}")
