"""A hand-written backward pass for populations of MLPs.

Autograd through ``baddbmm`` on stacked weights spends more time copying than multiplying
(transposed gradient layouts, one concatenation of all gradients per step). For networks made
only of dense layers, this module computes the gradients directly into the flat gradient
buffer with ``bmm(..., out=view)``: two batched matmuls and one reduction per layer, plus the
activation's derivative. It is used by the training loop whenever the architecture is an MLP;
tests check it against autograd.
"""

from __future__ import annotations

from typing import Callable

import torch

from ponder import registry
from ponder.catalog.models import Layer

__all__ = ["is_dense", "dense_step", "loss_delta"]


def is_dense(layers: tuple[Layer, ...]) -> bool:
    return all(layer.kind == "dense" for layer in layers)


def _act_backward(kind: str | None, act: Callable, h: torch.Tensor, a: torch.Tensor, grad_a: torch.Tensor) -> torch.Tensor:
    """dL/dh from dL/da: the activation's declared fused derivative (``facts.backward``), else autograd."""
    if kind == "threshold":  # fused kernels: one pass instead of building the derivative
        return torch.ops.aten.threshold_backward(grad_a, a, 0.0)
    if kind == "tanh":
        return torch.ops.aten.tanh_backward(grad_a, a)
    if kind == "identity":
        return grad_a
    if kind == "sigmoid":
        return torch.ops.aten.sigmoid_backward(grad_a, a)
    with torch.enable_grad():
        hh = h.detach().requires_grad_()
        (g,) = torch.autograd.grad(act(hh), hh, grad_a)
    return g


def loss_delta(logits: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-model mean loss (M,), d(sum of those means)/d(logits) (M, B, C)): where the hand-written backward passes
    (dense and conv) start, by autograd through the loss alone."""
    with torch.enable_grad():
        z = logits.detach().requires_grad_()
        per_model = loss_fn(z, y).mean(1)
        (delta,) = torch.autograd.grad(per_model.sum(), z)
    return per_model, delta


def dense_step(views, grad_views, layers: tuple[Layer, ...], x: torch.Tensor, y: torch.Tensor, *, act: Callable,
               act_name: str, loss_fn: Callable, dropout: Callable | None = None) -> torch.Tensor:
    """Forward and backward of M MLPs on x (M, B, ...) with labels y (M, B).

    ``dropout(a, layer)`` returns the inverted-dropout multiplier for hidden layer ``layer``.

    Writes d(mean loss over the batch)/d(params) of every model into ``grad_views`` and returns
    the per-model mean loss (M,).
    """
    kind = registry.get("activation", act_name).facts.backward
    m, bsz = x.shape[0], x.shape[1]
    a = x.reshape(m, bsz, -1)
    saved = []  # (input to the layer, pre-activation, activation, dropout scale) per hidden layer
    with torch.no_grad():
        for i, (layer, (w, b)) in enumerate(zip(layers, views)):
            h = torch.baddbmm(b.unsqueeze(1), a, w.transpose(1, 2))  # (M, B, out)
            if not layer.hidden:
                saved.append((a, None, None, None))
                break
            act_out = h.clamp_min_(0.0) if kind == "threshold" else act(h)  # relu in place: its backward needs only the output
            scale = dropout(act_out, i) if dropout is not None else None  # inverted-dropout multiplier: mask / keep
            saved.append((a, h, act_out, scale))
            a = act_out if scale is None else act_out * scale
    per_model, delta = loss_delta(h, y, loss_fn)
    with torch.no_grad():
        for i in range(len(layers) - 1, -1, -1):
            w = views[i][0]
            gw, gb = grad_views[i]
            a_in = saved[i][0]
            torch.bmm(delta.transpose(1, 2), a_in, out=gw)  # (M, out, in)
            torch.sum(delta, dim=1, out=gb)  # (M, out)
            if i == 0:
                break
            grad_a = torch.bmm(delta, w)  # (M, B, in) = dL/d(input of layer i)
            _, h_prev, a_prev, scale = saved[i - 1]
            if scale is not None:
                grad_a = grad_a * scale
            delta = _act_backward(kind, act, h_prev, a_prev, grad_a)
    return per_model.detach()
