"""Batched parameters, forward pass and optimizers for a population of M models.

Every parameter has a leading model axis: a dense weight is ``(M, out, in)``, a conv weight
``(M, out, in, *kernel)``, a bias ``(M, out)``. One forward pass runs all M models with
batched matmuls (``baddbmm``) and grouped convolutions (``groups = M``); models never mix, so
a diverging model cannot change another model's numbers.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ponder.catalog.initializers.base import init_network
from ponder.catalog.models import Layer

__all__ = ["Params", "init_population", "forward", "layer_output"]

Params = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (W (M, out, ...), b (M, out))


def init_population(layers: tuple[Layer, ...], inits: list[tuple[str, dict]], generators: list[torch.Generator],
                    dtype: torch.dtype, contexts: list[dict] | None = None) -> Params:
    """Initialize M models: model m uses initializer ``inits[m]`` and generator ``generators[m]``.

    Each model draws its layers in order, weight then bias, from its own generator, exactly
    as the same model built alone would. ``contexts[m]`` carries what some initializers need
    (the activation's name; a forward function and a batch for LSUV).
    """
    shapes = [layer.weight_shape for layer in layers]
    per_model = [init_network(name, shapes, generator=gen, dtype=dtype, context=(contexts[m] if contexts else None), **params)
                 for m, ((name, params), gen) in enumerate(zip(inits, generators))]
    return [(torch.stack([m[i][0] for m in per_model]).contiguous(), torch.stack([m[i][1] for m in per_model]).contiguous())
            for i in range(len(layers))]


def _dense(layer: Layer, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x: (M, B, in) or (M, B, *in_shape) when flattening -> (M, B, out)."""
    if layer.flatten:
        x = x.reshape(x.shape[0], x.shape[1], -1)
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def forward(params: Params, layers: tuple[Layer, ...], x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor], *,
            dropout: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
            record: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """Logits (M, B, C) of all models for inputs x (M, B, *sample_shape).

    Args:
        dropout: Applied to each hidden layer's output when given (training mode).
        record: When given, (pre-activation, post-activation) of each hidden layer is appended.
    """
    for i, (layer, (w, b)) in enumerate(zip(layers, params)):
        h = _dense(layer, w, b, x) if layer.kind == "dense" else _conv(layer, w, b, x)
        if not layer.hidden:
            return h
        a = act(h)
        if record is not None:
            record.append((h, a))
        x = dropout(a, i) if dropout is not None else a
    return x


def layer_output(params1: list[tuple[torch.Tensor, torch.Tensor]], layers: tuple[Layer, ...], x: torch.Tensor,
                 act: Callable[[torch.Tensor], torch.Tensor], upto: int, post: bool) -> torch.Tensor:
    """The output of layer ``upto`` (pre- or post-activation) of ONE model with unbatched params, on x (1, B, ...)."""
    h = x
    for i, (layer, (w, b)) in enumerate(zip(layers, params1)):
        h = _dense(layer, w[None], b[None], h) if layer.kind == "dense" else _conv(layer, w[None], b[None], h)
        if i == upto:
            return act(h) if post and layer.hidden else h
        if layer.hidden:
            h = act(h)
    return h


def _conv(layer: Layer, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    m, bsz = x.shape[0], x.shape[1]
    conv = F.conv1d if layer.kind == "conv1d" else F.conv2d
    xx = x.transpose(0, 1).reshape(bsz, m * x.shape[2], *x.shape[3:])  # (B, M*C, *spatial)
    out = w.shape[1]  # w: (M, out, in, *k)
    y = conv(xx, w.reshape(m * out, *w.shape[2:]), b.reshape(-1), stride=layer.stride,
             padding=layer.padding, groups=m)  # (B, M*out, *spatial')
    return y.reshape(bsz, m, out, *y.shape[2:]).transpose(0, 1)  # (M, B, out, *spatial')
