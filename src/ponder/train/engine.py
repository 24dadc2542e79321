"""Batched parameters, forward pass and optimizers for a population of M models.

Every parameter has a leading model axis: a dense weight is ``(M, out, in)``, a conv weight
``(M, out, in, *kernel)``, a bias ``(M, out)``. One forward pass runs all M models with
batched matmuls (``baddbmm``) and grouped convolutions (``groups = M``); models never mix, so
a diverging model cannot change another model's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ponder.catalog.initializers.base import init_network
from ponder.catalog.models import Layer

__all__ = ["Params", "init_population", "forward", "layer_output", "flatten", "flat_grad", "OptState", "opt_init", "opt_step"]

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


# ---------------------------------------------------------------------------------------------
# Optimizers: pure functions over stacked tensors, one learning rate and decay per model.


def flatten(params: Params) -> tuple[torch.Tensor, Params]:
    """Pack every parameter of M models into one ``(M, P)`` buffer and return it with per-layer views.

    The views are the leaves autograd differentiates; the optimizer updates the whole buffer
    with a handful of fused operations instead of a loop over layers.
    """
    m = params[0][0].shape[0]
    flat = torch.cat([t.reshape(m, -1) for pair in params for t in pair], dim=1).contiguous()
    views, off = [], 0
    for w, b in params:
        nw, nb = w[0].numel(), b.shape[1]
        wv = flat[:, off:off + nw].view(w.shape)
        bv = flat[:, off + nw:off + nw + nb]
        off += nw + nb
        views.append((wv.requires_grad_(), bv.requires_grad_()))
    return flat, views


def flat_grad(grads: tuple[torch.Tensor, ...], m: int) -> torch.Tensor:
    """Per-layer gradients -> one ``(M, P)`` tensor in the layout of :func:`flatten`."""
    return torch.cat([g.reshape(m, -1) for g in grads], dim=1)


@dataclass
class OptState:
    """Optimizer state: ``kind``, the step count and the ``(M, P)`` moment buffers."""

    kind: str
    step: int
    buffers: list[torch.Tensor]


def opt_init(kind: str, flat: torch.Tensor) -> OptState:
    """Zero state for ``sgd`` (none), ``momentum`` (one buffer) or ``adam`` (two)."""
    n = {"sgd": 0, "momentum": 1, "adam": 2}[kind]
    return OptState(kind, 0, [torch.zeros_like(flat) for _ in range(n)])


@torch.no_grad()
def opt_step(state: OptState, flat: torch.Tensor, grad: torch.Tensor, *, lr: torch.Tensor,
             weight_decay: torch.Tensor | None, momentum: float, active: torch.Tensor | None) -> None:
    """Update the ``(M, P)`` buffer in place by PyTorch's SGD / SGD-momentum / Adam rules.

    ``lr`` and ``weight_decay`` are ``(M,)``: one value per model; decay is L2 added to the
    gradient, as ``torch.optim`` does. Models with ``active[m] == False`` keep their parameters
    and optimizer state.
    """
    state.step += 1
    t = state.step
    lr_c = lr.view(-1, 1)
    g = grad if weight_decay is None else grad.add(flat * weight_decay.view(-1, 1))
    if active is not None:
        keep = active.view(-1, 1)
        old = [flat.clone(), *[b.clone() for b in state.buffers]]
    if state.kind == "sgd":
        flat.sub_(lr_c * g)
    elif state.kind == "momentum":
        buf = state.buffers[0]
        buf.mul_(momentum).add_(g)
        flat.sub_(lr_c * buf)
    else:  # adam, betas (0.9, 0.999), eps 1e-8 as torch.optim.Adam
        m1, m2 = state.buffers
        m1.mul_(0.9).add_(g, alpha=0.1)
        m2.mul_(0.999).addcmul_(g, g, value=0.001)
        denom = (m2.sqrt() / ((1 - 0.999**t) ** 0.5)).add_(1e-8)
        flat.sub_((lr_c / (1 - 0.9**t)) * m1 / denom)
    if active is not None:
        for cur, prev in zip([flat, *state.buffers], old):
            cur.copy_(torch.where(keep, cur, prev))
