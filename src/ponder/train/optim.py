"""Parameters of a population in one flat buffer, and optimizers as fused in-place updates.

Layout: layer by layer, each layer's weight block ``(M, out, in, ...)`` then its bias block
``(M, out)``, every block contiguous. Per-layer views are what the forward pass and autograd
see; the optimizer sees one 1-D buffer, so a step is a handful of fused operations however
deep the network. Per-model settings (learning rate, weight decay, the "still training" mask)
are expanded once to per-element buffers of the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Flat", "flatten", "OptState", "opt_init", "opt_step"]


@dataclass
class Flat:
    """A population's parameters: the buffer, per-layer (W, b) views, and block sizes per model."""

    data: torch.Tensor  # (P_total * M,)
    views: list[tuple[torch.Tensor, torch.Tensor]]
    blocks: list[int]  # elements per model of each block, in buffer order
    m: int

    def per_element(self, values: torch.Tensor) -> torch.Tensor:
        """Expand a per-model vector (M,) to the buffer's layout (P_total * M,)."""
        return torch.cat([values.view(self.m, 1).expand(self.m, n).reshape(-1) for n in self.blocks])

    def grad_views(self, grad: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views of a gradient buffer with the same shapes as :attr:`views`."""
        out, off = [], 0
        for w, b in self.views:
            nw, nb = w.numel(), b.numel()
            out.append((grad[off:off + nw].view(w.shape), grad[off + nw:off + nw + nb].view(b.shape)))
            off += nw + nb
        return out

    def flat_grad(self, grads) -> torch.Tensor:
        """Autograd's per-leaf gradients (W0, b0, W1, b1, ...) -> one buffer in this layout."""
        return torch.cat([g.reshape(-1) for g in grads])


def flatten(params: list[tuple[torch.Tensor, torch.Tensor]], *, requires_grad: bool = True) -> Flat:
    """Copy stacked per-layer parameters into one buffer; return it with contiguous per-layer views."""
    m = params[0][0].shape[0]
    data = torch.cat([t.reshape(-1) for pair in params for t in pair]).contiguous()
    views, blocks, off = [], [], 0
    for w, b in params:
        nw, nb = w.numel(), b.numel()
        wv, bv = data[off:off + nw].view(w.shape), data[off + nw:off + nw + nb].view(b.shape)
        if requires_grad:
            wv.requires_grad_()
            bv.requires_grad_()
        views.append((wv, bv))
        blocks += [nw // m, nb // m]
        off += nw + nb
    return Flat(data, views, blocks, m)


@dataclass
class OptState:
    """Optimizer state: ``kind``, the step count and the moment buffers (same layout as the parameters)."""

    kind: str
    step: int
    buffers: list[torch.Tensor]


def opt_init(kind: str, data: torch.Tensor) -> OptState:
    """Zero state for ``sgd`` (none), ``momentum`` (one buffer) or ``adam`` (two)."""
    n = {"sgd": 0, "momentum": 1, "adam": 2}[kind]
    return OptState(kind, 0, [torch.zeros_like(data) for _ in range(n)])


@torch.no_grad()
def opt_step(state: OptState, data: torch.Tensor, grad: torch.Tensor, *, lr: torch.Tensor, weight_decay: torch.Tensor | None,
             momentum: float, keep: torch.Tensor | None = None) -> None:
    """Update ``data`` in place by PyTorch's SGD, SGD-with-momentum or Adam rule.

    With ``g = grad + weight_decay * data`` (L2 decay, coupled: it enters the moments), per element:

    - ``sgd``: ``p <- p - lr g``; ``torch.optim.SGD(lr, weight_decay=wd)``.
    - ``momentum`` (heavy ball, learning rate outside the buffer): ``v <- momentum v + g``,
      ``p <- p - lr v`` from ``v = 0``; ``torch.optim.SGD(lr, momentum, dampening=0,
      nesterov=False, weight_decay=wd)``.
    - ``adam``: betas (0.9, 0.999), eps 1e-8 added after the bias-corrected square root;
      ``torch.optim.Adam(lr, weight_decay=wd)``, not ``AdamW`` (whose decay is decoupled).

    tests/test_optim_torch.py checks each, per model, against those torch optimizers.

    Args:
        lr, weight_decay: per-element buffers (:meth:`Flat.per_element`); decay is L2 added to
            the gradient, as ``torch.optim`` does; None means no decay.
        keep: per-element bool buffer; where False the parameters and the optimizer state do not
            change (models marked diverged). None: every model trains.
    """
    state.step += 1
    t = state.step
    if weight_decay is not None:
        grad = grad.addcmul(weight_decay, data)
    frozen = None if keep is None else _frozen(state, keep)  # elements of diverged models: kept as they are
    old = None if frozen is None else [t.view(-1).index_select(0, frozen) for t in (data, *state.buffers)]
    if state.kind == "sgd":
        data.addcmul_(lr, grad, value=-1.0)
    elif state.kind == "momentum":
        buf = state.buffers[0]
        buf.mul_(momentum).add_(grad)
        data.addcmul_(lr, buf, value=-1.0)
    else:  # adam, betas (0.9, 0.999), eps 1e-8, as torch.optim.Adam
        m1, m2 = state.buffers
        m1.mul_(0.9).add_(grad, alpha=0.1)
        m2.mul_(0.999).addcmul_(grad, grad, value=0.001)
        denom = m2.sqrt().div_((1 - 0.999**t) ** 0.5).add_(1e-8)
        data.addcdiv_(lr * m1, denom, value=-1.0 / (1 - 0.9**t))
    if old is not None:  # only the frozen elements are saved and put back: a few models, not the whole buffer
        for cur, prev in zip([data, *state.buffers], old):
            cur.view(-1).index_copy_(0, frozen, prev)


def _frozen(state: OptState, keep: torch.Tensor) -> torch.Tensor | None:
    """Indices where ``keep`` is False (None if nowhere), found once per ``keep`` buffer."""
    cached = getattr(state, "_frozen_index", None)
    if cached is not None and cached[0] is keep:
        return cached[1]
    idx = (~keep).view(-1).nonzero().squeeze(1)
    idx = idx if idx.numel() else None
    state._frozen_index = (keep, idx)
    return idx
