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

__all__ = ["is_dense", "dense_step", "loss_delta", "equal_chunks", "CHUNK_ELEMENTS"]

CHUNK_ELEMENTS = 1 << 21  # the largest activation of a chunk of models stays under this (8 MiB in float32)


def is_dense(layers: tuple[Layer, ...]) -> bool:
    return all(layer.kind == "dense" for layer in layers)


def _act_backward(kind: str | None, act: Callable, h: torch.Tensor, a: torch.Tensor, grad_a: torch.Tensor, *,
                  inplace: bool = False) -> torch.Tensor:
    """dL/dh from dL/da: the activation's declared fused derivative (``facts.backward``), else autograd.

    ``inplace``: ``grad_a`` is the caller's own scratch, so the fused kernels may write the result into
    it (same arithmetic, one buffer fewer to allocate and fault in per layer and step)."""
    if kind == "threshold":  # fused kernels: one pass instead of building the derivative
        if inplace:
            return torch.ops.aten.threshold_backward.grad_input(grad_a, a, 0.0, grad_input=grad_a)
        return torch.ops.aten.threshold_backward(grad_a, a, 0.0)
    if kind == "tanh":
        if inplace:
            return torch.ops.aten.tanh_backward.grad_input(grad_a, a, grad_input=grad_a)
        return torch.ops.aten.tanh_backward(grad_a, a)
    if kind == "identity":
        return grad_a
    if kind == "sigmoid":
        if inplace:
            return torch.ops.aten.sigmoid_backward.grad_input(grad_a, a, grad_input=grad_a)
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


def _chunk(layers: tuple[Layer, ...], m: int, bsz: int) -> int:
    """Models per chunk: the largest activation of a chunk stays under :data:`CHUNK_ELEMENTS`, in equal chunks."""
    per_model = bsz * max(layer.out_shape[0] for layer in layers)
    if m <= 1 or per_model == 0:  # one model, or an empty batch: one piece
        return max(m, 1)
    return equal_chunks(m, max(1, min(m, CHUNK_ELEMENTS // per_model)))


def equal_chunks(m: int, size: int) -> int:
    """The chunk size that cuts ``m`` models into as many chunks as ``size`` does, as equal as can be:
    300 models at most 128 a chunk go in 100 + 100 + 100, not 128 + 128 + 44."""
    return -(-m // -(-m // size))


def dense_step(views, grad_views, layers: tuple[Layer, ...], x: torch.Tensor, y: torch.Tensor, *, act: Callable,
               act_name: str, loss_fn: Callable, dropout: Callable | None = None,
               observe: Callable | None = None) -> torch.Tensor:
    """Forward and backward of M MLPs on x (M, B, ...) with labels y (M, B).

    ``dropout(a, layer)`` returns the inverted-dropout multiplier for hidden layer ``layer``.

    Writes d(mean loss over the batch)/d(params) of every model into ``grad_views`` and returns
    the per-model mean loss (M,). Large populations go in chunks of models whose activations
    stay near cache size (:data:`CHUNK_ELEMENTS`); every model's arithmetic is the same as in one
    piece. The dropout masks are drawn first, for the whole population, layer by layer, so they
    are the ones the autograd path draws. ``observe([(pre-activation, activation) per hidden
    layer], logits)`` sees each chunk's forward pass, chunks in model order, with every
    pre-activation kept (ReLU then does not work in place).
    """
    kind = registry.get("activation", act_name).facts.backward
    m, bsz = x.shape[0], x.shape[1]
    masks = None
    if dropout is not None:
        masks = [dropout(x.new_empty(()).expand(m, bsz, layer.out_shape[0]), i)
                 for i, layer in enumerate(layers) if layer.hidden]
    size = _chunk(layers, m, bsz) if x.device.type == "cpu" else m  # measured on CPUs only
    if size >= m:
        return _step(views, grad_views, layers, x, y, act, kind, loss_fn, masks, observe)
    out = []
    for m0 in range(0, m, size):
        sl = slice(m0, m0 + size)
        drop = [mask[sl] for mask in masks] if masks is not None else None
        out.append(_step([(w[sl], b[sl]) for w, b in views], [(gw[sl], gb[sl]) for gw, gb in grad_views], layers,
                         x[sl], y[sl], act, kind, loss_fn, drop, observe))
    return out[0] if len(out) == 1 else torch.cat(out)


def _step(views, grad_views, layers: tuple[Layer, ...], x: torch.Tensor, y: torch.Tensor, act: Callable,
          kind: str | None, loss_fn: Callable, masks: list[torch.Tensor] | None,
          observe: Callable | None = None) -> torch.Tensor:
    """:func:`dense_step` for one chunk of models (``masks``: the chunk's dropout multipliers per hidden layer;
    ``observe(records, logits)``: sees the forward pass)."""
    m, bsz = x.shape[0], x.shape[1]
    a = x.reshape(m, bsz, -1)
    saved = []  # (input to the layer, pre-activation, activation, dropout scale) per hidden layer
    with torch.no_grad():
        for i, (layer, (w, b)) in enumerate(zip(layers, views)):
            h = torch.baddbmm(b.unsqueeze(1), a, w.transpose(1, 2))  # (M, B, out)
            if not layer.hidden:
                saved.append((a, None, None, None))
                break
            in_place = kind == "threshold" and observe is None  # relu in place: its backward needs only the output
            act_out = h.clamp_min_(0.0) if in_place else act(h)
            scale = masks[i] if masks is not None else None  # inverted-dropout multiplier: mask / keep
            saved.append((a, h, act_out, scale))
            a = act_out if scale is None else act_out * scale
    if observe is not None:
        observe([(s[1], s[2]) for s in saved if s[1] is not None], h)
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
            grad_a = torch.bmm(delta, w)  # (M, B, in) = dL/d(input of layer i), scratch of this step
            _, h_prev, a_prev, scale = saved[i - 1]
            if scale is not None:
                grad_a.mul_(scale)
            delta = _act_backward(kind, act, h_prev, a_prev, grad_a, inplace=True)
    return per_model.detach()
