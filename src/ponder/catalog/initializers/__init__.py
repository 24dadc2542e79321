"""Weight initializers, one module per source library.

A *layer* initializer is a function ``fn(shape, *, generator, dtype, **params) -> Tensor``
that draws one weight tensor in ponder's layout (PyTorch's: dense ``(out, in)``, conv
``(out, in/groups, *kernel)``) from the generator it is given and from nothing else. Its
registration says how the layer's bias is initialized (``bias="zeros"`` or
``bias="fan_in_uniform"``, PyTorch's module default). Adding an initializer is one function
with one decorator.
"""

from __future__ import annotations

from ponder.catalog.initializers import torch_  # noqa: F401  (registers entries)
from ponder.catalog.initializers.base import draw_bias, fans_torch, init

__all__ = ["init", "draw_bias", "fans_torch"]
