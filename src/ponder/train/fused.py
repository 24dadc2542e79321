"""SGD and SGD-with-momentum as one fused pass over the flat buffer, bit-identical to :func:`opt_step`.

:func:`ponder.train.optim.opt_step` is three in-place operations for momentum (``buf.mul_``,
``buf.add_``, ``data.addcmul_``), each streaming the whole population's parameters; for wide
MLPs that is a quarter of the step. PyTorch's fused SGD kernel (``torch._fused_sgd_``, what
``torch.optim.SGD(fused=True)`` runs) reads the parameters, gradients and momentum once and
computes, per element, the same operations in the same order: measured bit-identical to
``opt_step`` in float32 and float64, except in the kernel's scalar tail (the last
``numel % vector width`` elements of a tensor), where it contracts ``mu * buf + g`` into a
fused multiply-add. So the fused kernel gets every run of elements that share a learning rate
and a decay, cut to a multiple of :data:`ALIGN` elements, and ``opt_step``'s own operations do
the few remaining elements. Runs of frozen (diverged) models are skipped, which is what
``opt_step``'s ``keep`` mask does. Adam, buffers cut into too many runs (every model a
different learning rate, many models) and devices other than the CPU (where the identity was
not checked: a GPU compiler contracts ``mu * buf + g`` freely) use ``opt_step`` itself.
"""

from __future__ import annotations

import torch

from ponder.train.optim import Flat, OptState, opt_step

__all__ = ["fused_opt_step"]

ALIGN = 64  # elements: a multiple of every CPU vector width, so the fused kernel never reaches its tail loop
MAX_RUNS = 64  # more runs than this (per-model settings in many small blocks): the list overhead wins; use opt_step
MIN_ELEMENTS = 1 << 18  # smaller buffers: the fused kernel saves less (< 0.1 ms) than the bookkeeping costs


class _Plan:
    """The runs of one population's buffers: fused lists and the unaligned remainders, with what they were made
    for; ``groups`` None when the buffers have too many runs to fuse (opt_step does the update)."""

    def __init__(self, key: tuple, groups: list | None, tails: list) -> None:
        self.key, self.groups, self.tails = key, groups, tails


def _runs(values: list[torch.Tensor], n: int) -> list[tuple[int, int]]:
    """[start, end) of the maximal runs where every per-element buffer in ``values`` is constant."""
    change = torch.zeros(n - 1, dtype=torch.bool, device=values[0].device)
    for v in values:
        change |= v[1:] != v[:-1]
    cuts = [0, *(change.nonzero().flatten() + 1).tolist(), n]
    return list(zip(cuts[:-1], cuts[1:]))


def _plan(state: OptState, data: torch.Tensor, lr: torch.Tensor, wd: torch.Tensor | None,
          keep: torch.Tensor | None) -> _Plan | None:
    """The fused lists for these buffers, made once: the gradient is sliced afresh every step (by the spans kept
    here), since the autograd path hands over a new gradient tensor each time."""
    key = (data, lr, wd, keep, *state.buffers)
    plan = getattr(state, "_fused_plan", None)
    if plan is not None and len(plan.key) == len(key) and all(a is b for a, b in zip(plan.key, key)):
        return plan if plan.groups is not None else None
    per_element = [lr] + ([wd] if wd is not None else []) + ([keep] if keep is not None else [])
    runs = _runs(per_element, data.numel())
    if len(runs) > MAX_RUNS:  # remembered too: finding the runs costs more than the update itself
        state._fused_plan = _Plan(key, None, [])
        return None
    groups: dict[tuple[float, float], tuple[list, list, list]] = {}
    tails = []
    for s, e in runs:
        if keep is not None and not bool(keep[s]):
            continue  # a frozen model: parameters and moments stay as they are
        body = s + (e - s) // ALIGN * ALIGN
        if body > s:
            ps, spans, bs = groups.setdefault((float(lr[s]), float(wd[s]) if wd is not None else 0.0), ([], [], []))
            ps.append(data[s:body])
            spans.append((s, body))
            bs.extend(b[s:body] for b in state.buffers)
        if e > body:  # opt_step's own arguments for the remainder, made once
            tails.append((OptState(state.kind, 0, [b[body:e] for b in state.buffers]), data[body:e], (body, e),
                          lr[body:e], wd[body:e] if wd is not None else None))
    plan = _Plan(key, [(lr_v, wd_v, *lists) for (lr_v, wd_v), lists in groups.items()], tails)
    state._fused_plan = plan  # lives as long as the optimizer state it describes
    return plan


@torch.no_grad()
def fused_opt_step(state: OptState, flat: Flat, grad: torch.Tensor, *, lr: torch.Tensor,
                   weight_decay: torch.Tensor | None, momentum: float, keep: torch.Tensor | None = None) -> None:
    """:func:`ponder.train.optim.opt_step` on ``flat.data``, fused where PyTorch's kernel gives the same bits."""
    data = flat.data
    fusable = (state.kind in ("sgd", "momentum") and data.numel() >= MIN_ELEMENTS and data.device.type == "cpu"
               and hasattr(torch, "_fused_sgd_"))
    plan = _plan(state, data, lr, weight_decay, keep) if fusable else None
    if plan is None:
        opt_step(state, data, grad, lr=lr, weight_decay=weight_decay, momentum=momentum, keep=keep)
        return
    mu = momentum if state.kind == "momentum" else 0.0
    for lr_v, wd_v, ps, spans, bs in plan.groups:
        torch._fused_sgd_(ps, [grad[s:e] for s, e in spans], bs, weight_decay=wd_v, momentum=mu, lr=lr_v,
                          dampening=0.0, nesterov=False, maximize=False, is_first_step=False)
    for sub, d, (s, e), lr_t, wd_t in plan.tails:  # opt_step's own operations on the unaligned remainders
        opt_step(sub, d, grad[s:e], lr=lr_t, weight_decay=wd_t, momentum=momentum)
    state.step += 1
