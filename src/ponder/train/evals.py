"""Measurements of trained models beyond the learning curve (the store's ``evals`` table).

- **Input shift** ("lab vs real world"): accuracy on the test set after a controlled change of
  the inputs: additive Gaussian noise (in units of the training inputs' standard deviation),
  translation (in samples or pixels, zero-filled) and scaling (resampling about the centre by
  a factor). Each shifted test set is drawn once per (kind, level) from a fixed stream, so
  every model sees the same shifted examples.
- **Loss along lines** in parameter space: the training loss at ``(1 - a) * theta_0 + a * theta_1``
  for the line from a model's initial to its trained weights, and for the line between two
  trained solutions of the same arm (two seeds). A function convex in the weights stays below
  every chord; a bump above the chord, or a barrier between two solutions, shows it is not.

Everything here is pure: tensors in, tensors or rows out.
"""

from __future__ import annotations

import json
from typing import Callable

import torch
import torch.nn.functional as F

from ponder.catalog.models import Layer
from ponder.errors import SpecError
from ponder.rng import rng_for
from ponder.study.spec import SHIFTS
from ponder.train.engine import Params, forward

__all__ = ["SHIFTS", "shift_inputs", "shift_rows", "line_losses", "LINE_POINTS", "population_rows",
           "population_predict"]

LINE_POINTS = 21  # alphas 0, 0.05, ..., 1
EVAL_BATCH = 1024


def shift_inputs(x: torch.Tensor, kind: str, level: float, *, x_std: float) -> torch.Tensor:
    """The test inputs ``x`` (N, *sample) under one shift.

    Args:
        kind: ``noise`` (level = noise std in units of ``x_std``), ``translation`` (level =
            samples/pixels moved right, and down for images; zero-filled) or ``scaling``
            (level = magnification about the centre; 1 is the identity).

    Raises:
        SpecError: translation or scaling asked of inputs that have no spatial axis.
    """
    if kind == "noise":
        gen = rng_for(0, f"shift:noise:{level:g}", x.device)
        return x + level * x_std * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    spatial = x.dim() - 2  # (N, C, L) -> 1, (N, C, H, W) -> 2
    if spatial not in (1, 2):
        raise SpecError(f"evaluate.shift.{kind} needs signals (channels, length) or images (channels, height, width), "
                        f"these inputs have shape {tuple(x.shape[1:])}; use only noise")
    if kind == "translation":
        k = int(round(level))
        out = torch.zeros_like(x)
        n = x.shape[-1]
        if abs(k) < n:
            src = slice(max(0, -k), n - max(0, k))
            dst = slice(max(0, k), n - max(0, -k))
            if spatial == 1:
                out[..., dst] = x[..., src]
            else:
                h = x.shape[-2]
                if abs(k) < h:
                    srch, dsth = slice(max(0, -k), h - max(0, k)), slice(max(0, k), h - max(0, -k))
                    out[..., dsth, dst] = x[..., srch, src]
        return out
    if kind == "scaling":
        if level <= 0:
            raise SpecError(f"evaluate.shift.scaling levels must be positive magnifications, got {level:g}")
        img = x if spatial == 2 else x.unsqueeze(-2)  # (N, C, 1, L)
        n_h, n_w = img.shape[-2], img.shape[-1]
        ys = torch.linspace(-1, 1, n_h, dtype=x.dtype, device=x.device) / level if n_h > 1 else torch.zeros(1, dtype=x.dtype, device=x.device)
        xs = torch.linspace(-1, 1, n_w, dtype=x.dtype, device=x.device) / level
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1).expand(img.shape[0], n_h, n_w, 2)
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return out if spatial == 2 else out.squeeze(-2)
    raise SpecError(f"unknown shift {kind!r}; use one of {', '.join(SHIFTS)}")


def shift_rows(run_ids: list[str], predict: Callable[[torch.Tensor], torch.Tensor], x_test: torch.Tensor,
               y_test: torch.Tensor, shifts: dict[str, list[float]], *, x_std: float) -> list[dict]:
    """Accuracy of every model under every shift: rows (run_id, "shift", kind, level, accuracy).

    ``predict(x)`` maps inputs (N, *sample) to predicted labels (M, N) for the M models.
    """
    rows = []
    for kind, levels in shifts.items():
        for level in levels:
            xs = shift_inputs(x_test, kind, float(level), x_std=x_std)
            acc = (predict(xs) == y_test.unsqueeze(0)).to(torch.float64).mean(1)
            rows += [{"run_id": r, "probe": "shift", "kind": kind, "level": float(level), "value": float(a)}
                     for r, a in zip(run_ids, acc.tolist())]
    return rows


@torch.no_grad()
def population_predict(params: Params, layers: tuple[Layer, ...], act: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``predict`` for :func:`shift_rows` from a population's parameters."""
    m = params[0][0].shape[0]

    def predict(x: torch.Tensor) -> torch.Tensor:
        out = []
        for s in range(0, len(x), EVAL_BATCH):
            xb = x[s:s + EVAL_BATCH]
            out.append(forward(params, layers, xb.unsqueeze(0).expand(m, *xb.shape), act).argmax(-1))
        return torch.cat(out, dim=1)

    return predict


@torch.no_grad()
def line_losses(p0: Params, p1: Params, layers: tuple[Layer, ...], act: Callable, loss_fn: Callable,
                x: torch.Tensor, y: torch.Tensor, points: int = LINE_POINTS) -> torch.Tensor:
    """Mean loss (M, points) of each model at ``(1 - a) p0 + a p1`` for a in linspace(0, 1, points).

    Args:
        p0, p1: Per-layer (W, b) with a leading model axis, the two ends of each model's line.
        x, y: Each model's evaluation batch (M, B, *sample) and its labels (M, B).
    """
    alphas = torch.linspace(0, 1, points, dtype=p0[0][0].dtype)
    out = []
    for a in alphas.tolist():
        params = [((1 - a) * w0 + a * w1, (1 - a) * b0 + a * b1) for (w0, b0), (w1, b1) in zip(p0, p1)]
        out.append(loss_fn(forward(params, layers, x, act), y).mean(1))
    return torch.stack(out, dim=1)


def _stack(per_model: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> Params:
    return [(torch.stack([m[i][0] for m in per_model]), torch.stack([m[i][1] for m in per_model]))
            for i in range(len(per_model[0]))]


LINE_BATCH = 512  # training examples (with the labels trained on) each line is evaluated on


def population_rows(runs: list, records: list, layers: tuple[Layer, ...], data, *, activation: str, loss: str,
                    evaluate: dict) -> list[dict]:
    """The ``evals`` rows of a trained population: shift accuracies and losses along lines.

    Args:
        runs: The population's runs (``id``, ``seed``, ``config``), in the order of ``records``.
        records: :class:`~ponder.train.loop.RunRecord` with ``init`` and ``params`` kept.
        loss: The study's loss (for a schedule ``a>b``, lines use the loss trained on last).
        evaluate: The run config's ``evaluate`` table.
    """
    from ponder import registry

    act = registry.get("activation", activation).fn
    loss_fn = registry.get("loss", loss.split(">")[-1]).fn
    final = _stack([r.params for r in records])
    rows: list[dict] = []
    ids = [r.id for r in runs]
    if evaluate.get("shift"):
        rows += shift_rows(ids, population_predict(final, layers, act), data.x_test, data.y_test, evaluate["shift"],
                           x_std=float(data.x_pool.std()))
    if evaluate.get("convexity"):
        idx = data.train_idx[:, :LINE_BATCH]
        x, y = data.x_pool[idx], data.labels.gather(1, idx)
        init = _stack([r.init for r in records])
        along = line_losses(init, final, layers, act, loss_fn, x, y)
        alphas = torch.linspace(0, 1, along.shape[1]).tolist()
        for i, rid in enumerate(ids):
            rows += [{"run_id": rid, "probe": "line_init", "kind": "train_loss", "level": a, "value": float(v)}
                     for a, v in zip(alphas, along[i].tolist())]
        # Between two solutions: pair the seeds of each arm and setting (0 with 1, 2 with 3, ...).
        # Seeds train on different subsets, so the line is evaluated on one objective both ends
        # share: the first LINE_BATCH test examples with true labels. Stored with the first run.
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(runs):
            key = json.dumps({k: v for k, v in r.config.canonical().items() if k != "seed"}, sort_keys=True, default=str)
            groups.setdefault(key, []).append(i)
        pairs = [(g[j], g[j + 1]) for g in groups.values() for j in range(0, len(g) - 1, 2)]
        if pairs:
            first, second = [p[0] for p in pairs], [p[1] for p in pairs]
            p0 = [(w[first], b[first]) for w, b in final]
            p1 = [(w[second], b[second]) for w, b in final]
            xt, yt = data.x_test[:LINE_BATCH], data.y_test[:LINE_BATCH]
            n = len(pairs)
            between = line_losses(p0, p1, layers, act, loss_fn, xt.unsqueeze(0).expand(n, *xt.shape),
                                  yt.unsqueeze(0).expand(n, -1))
            for k, i in enumerate(first):
                rows += [{"run_id": ids[i], "probe": "line_pair", "kind": "train_loss", "level": a, "value": float(v)}
                         for a, v in zip(alphas, between[k].tolist())]
    return rows


@torch.no_grad()
def metric_rows(run_ids: list[str], params: Params, layers: tuple[Layer, ...], act: Callable, data,
                metrics: tuple[str, ...]) -> list[dict]:
    """``evals`` rows of each extra metric on each model's validation split and on the test set
    (probe ``metric_val`` / ``metric_test``, kind = the metric's name)."""
    from ponder import registry

    fns = {m: registry.get("metric", m).fn for m in metrics}
    rows: list[dict] = []
    for i, rid in enumerate(run_ids):
        one = [(w[i:i + 1], b[i:i + 1]) for w, b in params]
        val_idx = data.val_idx[i]
        splits = {"metric_test": (data.x_test, data.y_test)}
        if len(val_idx):
            splits["metric_val"] = (data.x_pool[val_idx], data.clean[val_idx])
        for probe, (x, y) in splits.items():
            logits = torch.cat([forward(one, layers, x[s:s + EVAL_BATCH].unsqueeze(0), act)[0]
                                for s in range(0, len(x), EVAL_BATCH)])
            rows += [{"run_id": rid, "probe": probe, "kind": m, "level": 0.0, "value": float(fn(logits, y))}
                     for m, fn in fns.items()]
    return rows
