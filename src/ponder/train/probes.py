"""Per-layer probes: activation and gradient statistics on a fixed probe batch."""

from __future__ import annotations

import torch

from ponder.train.data import PopulationData
from ponder.train.engine import Params, forward

__all__ = ["PROBE_SIZE", "layer_stats", "probe"]

PROBE_SIZE = 256  # examples in the fixed probe batch: the first of each model's training set


def layer_stats(params: Params, layers, act, loss_fn, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Statistics of every layer of every model on the batch x (M, B, ...), y (M, B).

    Per hidden layer: pre-activation std, activation mean and std, the fraction of exact zeros
    in the activation, the fraction of dead units (zero on every probe example) and the
    gradient norm of the layer's weight, and the layer's effective sigma_w^2 = fan_in E[W^2] and
    sigma_b^2 = E[b^2]. The output layer reports its weight-gradient norm
    and pre-activation std only. Every value is a tensor (M,).
    """
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.enable_grad():
        logits = forward(params, layers, x, act, record=record)
        per_model = loss_fn(logits, y).mean(1)
        weights = [w for w, _ in params]
        grads = torch.autograd.grad(per_model.sum(), weights, allow_unused=True)
    rows = []
    with torch.no_grad():
        for i, w in enumerate(weights):
            g = grads[i]
            gnorm = g.flatten(1).norm(dim=1) if g is not None else torch.zeros(w.shape[0])
            fan_in = w[0].numel() // w.shape[1]
            # effective mean-field variances: sigma_w^2 = fan_in * E[W^2], sigma_b^2 = E[b^2]
            weight = {"sigma_w2": fan_in * w.flatten(1).pow(2).mean(1), "sigma_b2": params[i][1].pow(2).mean(1)}
            if i < len(record):
                h, a = record[i]
                h, a = h.flatten(2), a.flatten(2)  # (M, B, units...)
                zero = a == 0
                dead = zero.all(dim=1).to(a.dtype).mean(dim=1)  # units zero on every example
                rows.append({"preact_std": h.std(dim=(1, 2)), "act_mean": a.mean(dim=(1, 2)), "act_std": a.std(dim=(1, 2)),
                             "zero_frac": zero.to(a.dtype).mean(dim=(1, 2)), "dead_frac": dead, "grad_norm": gnorm, **weight})
            else:
                lg = logits.flatten(2)
                nan = torch.full_like(gnorm, float("nan"))
                rows.append({"preact_std": lg.std(dim=(1, 2)), "act_mean": nan, "act_std": nan, "zero_frac": nan,
                             "dead_frac": nan, "grad_norm": gnorm, **weight})
    return [{k: v.detach().cpu() for k, v in r.items()} for r in rows]


def probe(params: Params, layers, act, loss_fn, data: PopulationData) -> list[list[dict[str, float]]]:
    """:func:`layer_stats` on each model's first PROBE_SIZE training examples, as one list of rows per model.

    Row ``[m][i]`` holds layer ``i``'s statistics for model ``m``, as plain floats.
    """
    idx = data.train_idx[:, :PROBE_SIZE]  # (M, B)
    stats = layer_stats(params, layers, act, loss_fn, data.x_pool[idx], data.labels.gather(1, idx))
    return [[{k: float(v[m]) for k, v in row.items()} for row in stats] for m in range(params[0][0].shape[0])]
