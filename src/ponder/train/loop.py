"""Train a population: the loop a reader can follow top to bottom.

    for each epoch:
        each seed draws its data order (the same for every arm with that seed)
        for each minibatch:
            gather each model's batch, forward all models, per-model loss
            backward, optimizer step for the models still training
            every `check_every` steps: mark models whose loss went NaN/inf as diverged
        evaluate train / validation / test loss and accuracy, and probe every layer
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ponder import registry
from ponder.catalog.models import Layer
from ponder.rng import rng_for
from ponder.train.data import PopulationData
from ponder.train.dense import dense_step, is_dense
from ponder.train.engine import Params, forward, init_population, layer_output
from ponder.train.optim import flatten, opt_init, opt_step
from ponder.train.probes import layer_stats

__all__ = ["ModelSettings", "RunRecord", "train_population"]

EVAL_CHUNK = 2048  # examples per evaluation forward pass
PROBE_SIZE = 256  # examples in the fixed probe batch


@dataclass(frozen=True)
class ModelSettings:
    """What may differ between the models of one population."""

    seed: int
    lr: float
    weight_decay: float
    initializer: str
    init_params: dict[str, Any]
    dropout: float


@dataclass
class RunRecord:
    """What one model of a population produced."""

    status: str  # "ok" or "diverged"
    diverged_epoch: int | None
    epochs: list[dict[str, float]] = field(default_factory=list)
    layers: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    params: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # final (W, b) per layer, if kept
    init: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # initial (W, b) per layer, if kept


LSUV_BATCH = 256  # examples of the model's own training set that data-dependent initializers see


def _init_context(layers, act, activation: str, data: PopulationData, m: int, dtype) -> dict[str, Any]:
    """What data-dependent initializers need: the activation's name and a one-model forward on a real batch."""
    x = data.x_pool[data.train_idx[m, :LSUV_BATCH]].unsqueeze(0).to("cpu", dtype)  # (1, B, *sample)

    @torch.no_grad()
    def fwd(params1, upto: int, post: bool) -> torch.Tensor:
        return layer_output(params1, layers, x, act, upto, post)

    return {"activation": activation, "forward": fwd}


def _per_model_loss(loss_fn, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return loss_fn(logits, y).mean(dim=1)  # (M,)


@torch.no_grad()
def _evaluate(params: Params, layers, act, loss_fn, x_of: Callable[[slice], torch.Tensor],
              y_of: Callable[[slice], torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy (M,) over n examples, in chunks."""
    tot_loss, tot_acc = 0.0, 0.0
    for start in range(0, n, EVAL_CHUNK):
        sl = slice(start, min(n, start + EVAL_CHUNK))
        logits = forward(params, layers, x_of(sl), act)
        y = y_of(sl)
        tot_loss = tot_loss + loss_fn(logits, y).sum(1)
        tot_acc = tot_acc + (logits.argmax(-1) == y).sum(1).to(logits.dtype)
    return tot_loss / n, tot_acc / n


def train_population(layers: tuple[Layer, ...], models: list[ModelSettings], data: PopulationData, *,
                     activation: str, loss: str, optimizer: str, momentum: float, epochs: int, batch_size: int,
                     dtype: torch.dtype = torch.float32, check_every: int = 50, probes: bool = True,
                     keep_params: bool = False, switch: float = 0.5) -> list[RunRecord]:
    """Train the models of one population together and return one record per model.

    ``loss`` may be a schedule ``"first>second"``: the first loss for the first ``switch`` fraction
    of the epochs (at least one), the second for the rest (Golik et al. 2013 fine-tune a
    cross-entropy-trained net with squared error this way). Each epoch logs the loss it trained on.
    """
    dev = data.x_pool.device
    act = registry.get("activation", activation).fn
    stages = [registry.get("loss", part).fn for part in loss.split(">")]
    switch_epoch = min(epochs - 1, max(1, round(switch * epochs))) if len(stages) == 2 else epochs
    loss_fn = stages[0]
    M = len(models)
    seeds = sorted({m.seed for m in models})
    seed_ix = torch.tensor([seeds.index(m.seed) for m in models], device=dev)  # (M,)
    order_gens = [rng_for(s, "order", dev) for s in seeds]
    drop_gens = [rng_for(s, "dropout", dev) for s in seeds]
    init_gens = [rng_for(m.seed, "init") for m in models]
    contexts = [_init_context(layers, act, activation, data, m, dtype) for m in range(M)]
    params = init_population(layers, [(m.initializer, m.init_params) for m in models], init_gens, dtype, contexts)
    initial = [(w.clone(), b.clone()) for w, b in params] if keep_params else None
    flat = flatten([(w.to(dev), b.to(dev)) for w, b in params])  # one buffer + per-layer (M, ...) leaf views
    params = flat.views
    leaves = [t for pair in params for t in pair]
    state = opt_init(optimizer, flat.data)
    fast = is_dense(layers)  # MLPs: hand-written backward straight into the gradient buffer
    grad_buf = torch.zeros_like(flat.data)
    grad_views = flat.grad_views(grad_buf)
    lr = flat.per_element(torch.tensor([m.lr for m in models], dtype=dtype, device=dev))
    wd = flat.per_element(torch.tensor([m.weight_decay for m in models], dtype=dtype, device=dev))
    p_drop = torch.tensor([m.dropout for m in models], dtype=dtype, device=dev)
    any_dropout = bool((p_drop > 0).any())
    wd_or_none = wd if bool((wd != 0).any()) else None
    active = torch.ones(M, dtype=torch.bool, device=dev)
    keep = None  # per-element "still training" mask, built at the first divergence
    diverged_at: list[int | None] = [None] * M
    records = [RunRecord("ok", None) for _ in models]
    n_train = data.train_idx.shape[1]
    ar = torch.arange(M, device=dev)

    def drop_mult(a: torch.Tensor, layer: int) -> torch.Tensor:
        # One uniform draw per seed; every arm with that seed sees the same mask pattern.
        u = torch.stack([torch.rand(a.shape[1:], generator=g, device=dev, dtype=a.dtype) for g in drop_gens])[seed_ix]
        keep_p = (1 - p_drop).view(M, *([1] * (a.dim() - 1)))
        return (u >= (1 - keep_p)) / keep_p  # inverted dropout: mask / keep probability

    def dropout(a: torch.Tensor, layer: int) -> torch.Tensor:
        return a * drop_mult(a, layer)

    def log_epoch(epoch: int) -> None:
        train_x = lambda sl: data.x_pool[data.train_idx[:, sl]]  # noqa: E731
        train_y = lambda sl: data.labels.gather(1, data.train_idx[:, sl])  # noqa: E731
        val_x = lambda sl: data.x_pool[data.val_idx[:, sl]]  # noqa: E731
        val_y = lambda sl: data.clean[data.val_idx[:, sl]]  # noqa: E731
        test_x = lambda sl: data.x_test[sl].unsqueeze(0).expand(M, *data.x_test[sl].shape)  # noqa: E731
        test_y = lambda sl: data.y_test[sl].unsqueeze(0).expand(M, -1)  # noqa: E731
        rows = {}
        for split_name, xo, yo, n in (("train", train_x, train_y, n_train), ("val", val_x, val_y, data.val_idx.shape[1]),
                                      ("test", test_x, test_y, len(data.y_test))):
            if n == 0:
                rows[split_name] = (torch.full((M,), float("nan")),) * 2
                continue
            l, a = _evaluate(params, layers, act, loss_fn, xo, yo, n)
            rows[split_name] = (l.cpu(), a.cpu())
        for m in range(M):
            records[m].epochs.append({"epoch": epoch, **{f"{s}_{k}": float(rows[s][j][m]) for s in rows
                                                         for j, k in enumerate(("loss", "acc"))}})
        if probes:
            stats = layer_stats(params, layers, act, loss_fn, data.x_pool[data.train_idx[:, :PROBE_SIZE]],
                                data.labels.gather(1, data.train_idx[:, :PROBE_SIZE]))
            for m in range(M):
                for li, row in enumerate(stats):
                    records[m].layers.append({"epoch": epoch, "layer": li, **{k: float(v[m]) for k, v in row.items()}})

    log_epoch(0)
    step = 0
    loss_sum = torch.zeros(M, dtype=dtype, device=dev)
    for epoch in range(1, epochs + 1):
        if epoch == switch_epoch + 1:
            loss_fn = stages[-1]
        perms = torch.stack([torch.randperm(n_train, generator=g, device=dev) for g in order_gens])[seed_ix]  # (M, n)
        epoch_idx = data.train_idx.gather(1, perms)  # (M, n_train) pool indices in this epoch's order
        for start in range(0, n_train, batch_size):
            idx = epoch_idx[:, start:start + batch_size]  # (M, B)
            xb, yb = data.x_pool[idx], data.labels[ar[:, None], idx]  # (M, B, *sample), (M, B)
            if fast:
                per_model = dense_step(params, grad_views, layers, xb, yb, act=act, act_name=activation, loss_fn=loss_fn,
                                       dropout=drop_mult if any_dropout else None)  # (M,)
                grad = grad_buf
            else:
                logits = forward(params, layers, xb, act, dropout=dropout if any_dropout else None)
                per_model = _per_model_loss(loss_fn, logits, yb)  # (M,)
                grad = flat.flat_grad(torch.autograd.grad(per_model.sum(), leaves))
            opt_step(state, flat.data, grad, lr=lr, weight_decay=wd_or_none, momentum=momentum, keep=keep)
            loss_sum += per_model.detach()
            step += 1
            if step % check_every == 0 or start + batch_size >= n_train:
                bad = ~torch.isfinite(loss_sum) & active
                if bool(bad.any()):
                    for m in bad.nonzero().flatten().tolist():
                        diverged_at[m] = epoch
                    active &= ~bad
                    keep = flat.per_element(active)
                loss_sum.zero_()
        log_epoch(epoch)
    for m in range(M):
        records[m].steps = step
        if diverged_at[m] is not None:
            records[m].status, records[m].diverged_epoch = "diverged", diverged_at[m]
        if keep_params:
            records[m].params = [(w[m].detach().clone(), b[m].detach().clone()) for w, b in params]
            records[m].init = [(w[m], b[m]) for w, b in initial]
    return records
