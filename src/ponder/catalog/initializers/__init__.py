"""Weight initializers, one module per source: ``torch_``, ``caffe``, ``keras`` (with TF1),
``opencv`` and ``modern`` (LSUV, orthogonal, critical).

A *layer* initializer is ``fn(shape, *, generator, dtype, **params) -> Tensor``: one weight in
ponder's layout (PyTorch's), drawn from the given generator and nothing else. Its registration
says how the layer's bias is set (``bias="zeros"``, ``"fan_in_uniform"`` or ``"own"``). A
*network* initializer (``network=True``) sets every layer at once. Adding one is one function
with one decorator.
"""

from __future__ import annotations

from ponder.catalog.initializers import caffe, keras, modern, opencv, torch_  # noqa: F401  (registers entries)
from ponder.catalog.initializers.base import draw_bias, fans_caffe, fans_keras, fans_torch, init, init_network

__all__ = ["init", "init_network", "draw_bias", "fans_torch", "fans_caffe", "fans_keras"]
