"""Per-layer probes: activation and gradient statistics on a fixed probe batch."""

from __future__ import annotations

import torch

from ponder.train.conv import conv_step, is_conv
from ponder.train.data import PopulationData
from ponder.train.dense import dense_step, is_dense
from ponder.train.engine import Params, forward

__all__ = ["PROBE_SIZE", "layer_stats", "probe"]

PROBE_SIZE = 256  # examples in the fixed probe batch: the first of each model's training set


def layer_stats(params: Params, layers, act, loss_fn, x: torch.Tensor, y: torch.Tensor, *,
                act_name: str | None = None) -> list[dict[str, torch.Tensor]]:
    """Statistics of every layer of every model on the batch x (M, B, ...), y (M, B).

    Per hidden layer: pre-activation std, activation mean and std, the fraction of exact zeros
    in the activation, the fraction of dead units (zero on every probe example) and the
    gradient norm of the layer's weight, and the layer's effective sigma_w^2 = fan_in E[W^2] and
    sigma_b^2 = E[b^2]. The output layer reports its weight-gradient norm
    and pre-activation std only. Every value is a tensor (M,).

    With ``act_name``, MLPs and CNNs on the CPU take the hand-written forward and backward that
    training takes (:mod:`ponder.train.dense`, :mod:`ponder.train.conv`), in the same chunks of
    models; other models, devices and callers without it go through autograd. Both give the
    same statistics up to float rounding (tested).
    """
    by_hand = is_dense(layers) or is_conv(layers)
    if by_hand and act_name is not None and x.device.type == "cpu" and x.shape[0] and x.shape[1]:
        return _by_hand(params, layers, act, act_name, loss_fn, x, y)
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.enable_grad():
        logits = forward(params, layers, x, act, record=record)
        per_model = loss_fn(logits, y).mean(1)
        weights = [w for w, _ in params]
        grads = torch.autograd.grad(per_model.sum(), weights, allow_unused=True)
    with torch.no_grad():
        acts = [_act_stats(h, a) for h, a in record]
        return _rows(params, grads, acts, _std(logits))


def _std(x: torch.Tensor) -> torch.Tensor:
    """Sample standard deviation over all but the first axis (M,), in two passes (mean, then centered squares):
    as accurate as ``Tensor.std`` and several times faster on the CPU, whose ``std`` over many elements is one
    sequential Welford pass."""
    x = x.flatten(1)
    return (x - x.mean(dim=1, keepdim=True)).square_().sum(dim=1).div_(x.shape[1] - 1).sqrt_()


def _act_stats(h: torch.Tensor, a: torch.Tensor) -> dict[str, torch.Tensor]:
    """A hidden layer's activation statistics (M,) from its pre-activation h and activation a (M, B, units...)."""
    h, a = h.flatten(2), a.flatten(2)  # (M, B, units)
    zero = a == 0
    dead = zero.all(dim=1).to(a.dtype).mean(dim=1)  # units zero on every example
    return {"preact_std": _std(h), "act_mean": a.mean(dim=(1, 2)), "act_std": _std(a),
            "zero_frac": zero.to(a.dtype).mean(dim=(1, 2)), "dead_frac": dead}


def _rows(params: Params, grads, acts: list[dict[str, torch.Tensor]], logit_std: torch.Tensor) -> list[dict]:
    """One row per layer: the hidden layers' activation statistics ``acts``, then the output layer's; weight-gradient
    norms from ``grads`` (None for an unused weight) and the effective mean-field variances of every layer."""
    rows = []
    for i, (w, b) in enumerate(params):
        g = grads[i]
        gnorm = g.flatten(1).norm(dim=1) if g is not None else torch.zeros(w.shape[0])
        fan_in = w[0].numel() // w.shape[1]
        # effective mean-field variances: sigma_w^2 = fan_in * E[W^2], sigma_b^2 = E[b^2]
        weight = {"sigma_w2": fan_in * w.flatten(1).pow(2).mean(1), "sigma_b2": b.pow(2).mean(1)}
        if i < len(acts):
            rows.append({**acts[i], "grad_norm": gnorm, **weight})
        else:
            nan = torch.full_like(gnorm, float("nan"))
            rows.append({"preact_std": logit_std, "act_mean": nan, "act_std": nan, "zero_frac": nan, "dead_frac": nan,
                         "grad_norm": gnorm, **weight})
    return [{k: v.detach().cpu() for k, v in r.items()} for r in rows]


@torch.no_grad()
def _by_hand(params: Params, layers, act, act_name: str, loss_fn, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """:func:`layer_stats` through the hand-written step: statistics of each chunk of models as it passes."""
    grads = [(torch.empty_like(w), torch.empty_like(b)) for w, b in params]  # scratch: the step writes every element
    parts: list[tuple[list[dict[str, torch.Tensor]], torch.Tensor]] = []

    def observe(record, logits: torch.Tensor) -> None:  # chunk after chunk, in model order
        parts.append(([_act_stats(h, a) for h, a in record], _std(logits)))

    step = dense_step if is_dense(layers) else conv_step
    step(params, grads, layers, x, y, act=act, act_name=act_name, loss_fn=loss_fn, observe=observe)
    acts = [{k: torch.cat([p[0][i][k] for p in parts]) for k in parts[0][0][i]} for i in range(len(parts[0][0]))]
    return _rows(params, [g for g, _ in grads], acts, torch.cat([p[1] for p in parts]))


def probe(params: Params, layers, act, loss_fn, data: PopulationData, *,
          act_name: str | None = None) -> list[list[dict[str, float]]]:
    """:func:`layer_stats` on each model's first PROBE_SIZE training examples, as one list of rows per model.

    Row ``[m][i]`` holds layer ``i``'s statistics for model ``m``, as plain floats.
    """
    idx = data.train_idx[:, :PROBE_SIZE]  # (M, B)
    stats = layer_stats(params, layers, act, loss_fn, data.x_pool[idx], data.labels.gather(1, idx), act_name=act_name)
    return [[{k: float(v[m]) for k, v in row.items()} for row in stats] for m in range(params[0][0].shape[0])]
