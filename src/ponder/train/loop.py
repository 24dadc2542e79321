"""Train a population: the loop a reader can follow top to bottom.

    state = init_state(...)                    every model draws its initial weights
    log_epoch(state, epoch 0)                  evaluate train / val / test, probe every layer
    for each epoch:
        order = epoch_order(state)             each seed shuffles its data (the same for every arm with that seed)
        for each minibatch:
            train_step(state, batch)           forward all models, per-model loss, backward, optimizer step
            check_divergence(state)            every `check_every` steps: freeze models whose loss went NaN/inf
        log_epoch(state, epoch)
    finish(state) -> one RunRecord per model

The loop itself is :func:`train_population`; everything that changes while training lives in
one :class:`PopulationState`, and every named step above is a small function of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ponder import registry
from ponder.catalog.models import Layer
from ponder.rng import rng_for
from ponder.train.conv import conv_step, is_conv
from ponder.train.data import PopulationData
from ponder.train.dense import dense_step, is_dense
from ponder.train.engine import forward, init_population, layer_output
from ponder.train.metrics import evaluate, inplace_activation
from ponder.train.fused import fused_opt_step
from ponder.train.optim import Flat, OptState, flatten, opt_init
from ponder.train.probes import probe

__all__ = ["EvalSchedule", "ModelSettings", "RunRecord", "train_population", "inverted_dropout"]

LSUV_BATCH = 256  # examples of the model's own training set that data-dependent initializers see


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


@dataclass(frozen=True)
class Network:
    """What every model of the population shares: the layers and the activation."""

    layers: tuple[Layer, ...]
    act: Callable[[torch.Tensor], torch.Tensor]
    act_name: str
    dense: bool  # MLP: the hand-written backward writes straight into the gradient buffer


@dataclass
class PopulationState:
    """Everything that changes while a population trains, plus the per-model settings it trains with."""

    flat: Flat  # one parameter buffer (P * M,); flat.views are the per-layer (W (M, out, ...), b (M, out))
    opt: OptState  # moment buffers, same layout as flat.data
    grad: torch.Tensor  # (P * M,) gradient buffer; grad_views are its per-layer views
    grad_views: list[tuple[torch.Tensor, torch.Tensor]]
    lr: torch.Tensor  # (P * M,) per-element learning rate
    weight_decay: torch.Tensor | None  # (P * M,) per-element L2 coefficient; None when every model has 0
    momentum: float
    p_drop: torch.Tensor  # (M,) dropout probability of hidden units
    any_dropout: bool  # some model uses dropout: draw masks (else skip the draws)
    seed_ix: torch.Tensor  # (M,) model -> index of its seed in order_gens / drop_gens
    order_gens: list[torch.Generator]  # one data-order stream per distinct seed
    drop_gens: list[torch.Generator]  # one dropout-mask stream per distinct seed
    active: torch.Tensor  # (M,) bool: still training (not diverged)
    keep: torch.Tensor | None  # (P * M,) bool expansion of `active`; None until the first divergence
    loss_sum: torch.Tensor  # (M,) training loss summed since the last divergence check
    records: list[RunRecord]
    initial: list[tuple[torch.Tensor, torch.Tensor]] | None  # initial (W, b) per layer, if kept
    step: int = 0

    @property
    def leaves(self) -> list[torch.Tensor]:
        """The autograd leaves W0, b0, W1, b1, ... (views into the flat buffer)."""
        return [t for pair in self.flat.views for t in pair]

    def dropout_mult(self, a: torch.Tensor, layer: int) -> torch.Tensor:
        """Inverted-dropout multiplier (mask / keep probability) for the hidden activation a (M, B, ...)."""
        return inverted_dropout(self.drop_gens, self.seed_ix, [a.shape[1:]], [self.p_drop], device=a.device,
                                dtype=a.dtype)[0]

    def step_dropout(self, layers: tuple[Layer, ...], x: torch.Tensor) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """:meth:`dropout_mult` for every hidden layer of one step on the batch ``x`` (M, B, ...), drawn at once."""
        hidden = [i for i, layer in enumerate(layers) if layer.hidden]
        masks = inverted_dropout(self.drop_gens, self.seed_ix, [(x.shape[1], *layers[i].out_shape) for i in hidden],
                                 [self.p_drop] * len(hidden), device=x.device, dtype=x.dtype)
        by_layer = dict(zip(hidden, masks))
        return lambda a, i: by_layer[i]

    def dropout(self, a: torch.Tensor, layer: int) -> torch.Tensor:
        return a * self.dropout_mult(a, layer)


def inverted_dropout(gens: list[torch.Generator], seed_ix: torch.Tensor, shapes, p_drop: list[torch.Tensor], *,
                     device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    """Inverted-dropout multipliers (M, *shape) for each of ``shapes`` (one step's dropout sites, in order, each with
    its per-model rate ``p_drop`` (M,)): each seed stream draws one uniform tensor per site (every arm with that seed
    sees the same pattern); where u >= 1 - p the model's 1 / (1 - p), else 0. On the CPU a stream draws all its
    sites in one call: the same numbers in the same order (its generator fills element by element; tested)."""
    sizes = [math.prod(s) for s in shapes]

    def draw(n: int) -> torch.Tensor:  # (M, n): the seed streams' uniforms, per model
        return torch.stack([torch.rand(n, generator=g, device=device, dtype=dtype) for g in gens]).index_select(0, seed_ix)

    def mult(u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:  # (u >= 1 - keep) / keep in place: no bool tensor (7x)
        keep = (1 - p.to(device, dtype)).view(-1, 1)
        return u.ge_(1 - keep).div_(keep)

    draws = draw(sum(sizes)).split(sizes, 1) if device.type == "cpu" and shapes else [draw(n) for n in sizes]
    return [mult(u, p).view(len(seed_ix), *s) for u, p, s in zip(draws, p_drop, shapes)]  # (M, *shape), empty too


def _init_context(net: Network, data: PopulationData, m: int, dtype: torch.dtype) -> dict[str, Any]:
    """What data-dependent initializers need: the activation's name and a one-model forward on a real batch."""
    x = data.x_pool[data.train_idx[m, :LSUV_BATCH]].unsqueeze(0).to("cpu", dtype)  # (1, B, *sample)

    @torch.no_grad()
    def fwd(params1, upto: int, post: bool) -> torch.Tensor:
        return layer_output(params1, net.layers, x, net.act, upto, post)

    return {"activation": net.act_name, "forward": fwd}


def init_state(net: Network, models: list[ModelSettings], data: PopulationData, *, optimizer: str, momentum: float,
               dtype: torch.dtype, keep_params: bool) -> PopulationState:
    """Draw every model's initial weights (each from its own seed's stream) and zero the optimizer state."""
    dev = data.x_pool.device
    seeds = sorted({m.seed for m in models})
    contexts = [_init_context(net, data, m, dtype) for m in range(len(models))]
    params = init_population(net.layers, [(m.initializer, m.init_params) for m in models],
                             [rng_for(m.seed, "init") for m in models], dtype, contexts)
    flat = flatten([(w.to(dev), b.to(dev)) for w, b in params])

    def per_element(values: list[float]) -> torch.Tensor:
        return flat.per_element(torch.tensor(values, dtype=dtype, device=dev))

    wd = per_element([m.weight_decay for m in models])
    p_drop = torch.tensor([m.dropout for m in models], dtype=dtype, device=dev)
    grad = torch.zeros_like(flat.data)
    return PopulationState(
        flat=flat, opt=opt_init(optimizer, flat.data), grad=grad, grad_views=flat.grad_views(grad),
        lr=per_element([m.lr for m in models]), weight_decay=wd if bool((wd != 0).any()) else None, momentum=momentum,
        p_drop=p_drop, any_dropout=bool((p_drop > 0).any()),
        seed_ix=torch.tensor([seeds.index(m.seed) for m in models], device=dev),
        order_gens=[rng_for(s, "order", dev) for s in seeds], drop_gens=[rng_for(s, "dropout", dev) for s in seeds],
        active=torch.ones(len(models), dtype=torch.bool, device=dev), keep=None,
        loss_sum=torch.zeros(len(models), dtype=dtype, device=dev), records=[RunRecord("ok", None) for _ in models],
        initial=[(w.clone(), b.clone()) for w, b in params] if keep_params else None)


def loss_stage(epoch: int, *, epochs: int, stages: int, switch: float) -> int:
    """Which loss of a schedule ``first>second`` trains epoch ``epoch`` (and scores its evaluation).

    The first loss for the first ``switch`` fraction of the epochs (at least one, and never all),
    the second for the rest. Epoch 0 (the evaluation before training) always uses the first.
    """
    if stages == 1 or epoch == 0:
        return 0
    switch_epoch = min(epochs - 1, max(1, round(switch * epochs)))
    return 0 if epoch <= switch_epoch else 1


def epoch_order(state: PopulationState, data: PopulationData) -> torch.Tensor:
    """This epoch's (M, n_train) pool indices: one shuffle per seed, shared by every arm with that seed."""
    n_train = data.train_idx.shape[1]
    perms = torch.stack([torch.randperm(n_train, generator=g, device=data.x_pool.device)
                         for g in state.order_gens])[state.seed_ix]  # (M, n_train)
    return data.train_idx.gather(1, perms)


def train_step(state: PopulationState, net: Network, xb: torch.Tensor, yb: torch.Tensor, *, loss_fn: Callable) -> None:
    """One minibatch for every model: forward, per-model mean loss, backward, optimizer step (the active models)."""
    if net.dense or is_conv(net.layers):  # hand-written backward: gradients straight into the flat buffer
        step = dense_step if net.dense else conv_step
        per_model = step(state.flat.views, state.grad_views, net.layers, xb, yb, act=net.act, act_name=net.act_name,
                         loss_fn=loss_fn, dropout=state.step_dropout(net.layers, xb) if state.any_dropout else None)
        grad = state.grad
    else:
        logits = forward(state.flat.views, net.layers, xb, net.act, dropout=state.dropout if state.any_dropout else None)
        per_model = loss_fn(logits, yb).mean(dim=1)  # (M,)
        grad = state.flat.flat_grad(torch.autograd.grad(per_model.sum(), state.leaves))
    fused_opt_step(state.opt, state.flat, grad, lr=state.lr, weight_decay=state.weight_decay, momentum=state.momentum,
                   keep=state.keep)  # opt_step, fused where that gives the same bits
    state.loss_sum += per_model.detach()
    state.step += 1


def train_epoch(state, net, data: PopulationData, epoch: int, *, loss_fn: Callable, batch_size: int,
                check_every: int, step: Callable) -> None:
    """One epoch of minibatches for every model: ``step(state, net, xb, yb, loss_fn=...)`` per batch,
    divergence checks every ``check_every`` steps and at the epoch's end (shared by the module path)."""
    n_train = data.train_idx.shape[1]
    order = epoch_order(state, data)  # (M, n_train) pool indices, one shuffle per seed
    for start in range(0, n_train, batch_size):
        idx = order[:, start:start + batch_size]  # (M, B)
        xb, yb = data.x_pool[idx], data.labels.gather(1, idx)  # (M, B, *sample), (M, B)
        step(state, net, xb, yb, loss_fn=loss_fn)  # forward, backward, update the active models
        if state.step % check_every == 0 or start + batch_size >= n_train:
            check_divergence(state, epoch)  # freeze models whose loss went NaN/inf


def check_divergence(state: PopulationState, epoch: int) -> None:
    """Mark models whose loss since the last check is NaN/inf as diverged; their weights stop changing."""
    bad = ~torch.isfinite(state.loss_sum) & state.active  # (M,)
    if bool(bad.any()):
        for m in bad.nonzero().flatten().tolist():
            state.records[m].status, state.records[m].diverged_epoch = "diverged", epoch
        state.active &= ~bad
        state.keep = state.flat.per_element(state.active)
    state.loss_sum.zero_()


@dataclass(frozen=True)
class EvalSchedule:
    """When and on what the loop evaluates: every ``every`` epochs (epoch 0 and the last always), probes
    every ``probe_every`` epochs (default: whenever it evaluates), training metrics on the first
    ``train_subset`` of each model's training examples (default: all; the last epoch always all)."""

    every: int = 1
    probe_every: int | None = None
    train_subset: int | None = None

    def evaluates(self, epoch: int, epochs: int) -> bool:
        return epoch == 0 or epoch == epochs or epoch % self.every == 0

    def probes(self, epoch: int, epochs: int) -> bool:
        return epoch == 0 or epoch == epochs or epoch % (self.probe_every or self.every) == 0

    def subset(self, epoch: int, epochs: int) -> int | None:
        return None if epoch == epochs else self.train_subset


def log_epoch(state: PopulationState, net: Network, data: PopulationData, epoch: int, *, loss_fn: Callable,
              probes: bool, train_subset: int | None = None) -> None:
    """Append every model's train / val / test loss and accuracy, and its layer probes, to its record."""
    rows = evaluate(state.flat.views, net.layers, inplace_activation(net.act_name, net.act), loss_fn, data,
                    train_subset=train_subset, act_name=net.act_name)
    for rec, row in zip(state.records, rows):
        rec.epochs.append({"epoch": epoch, **row})
    if probes:
        for rec, rows in zip(state.records, probe(state.flat.views, net.layers, net.act, loss_fn, data,
                                                  act_name=net.act_name)):
            rec.layers += [{"epoch": epoch, "layer": li, **row} for li, row in enumerate(rows)]


def finish(state: PopulationState) -> list[RunRecord]:
    """Close the records: steps taken and, when kept, each model's initial and final weights."""
    for m, rec in enumerate(state.records):
        rec.steps = state.step
        if state.initial is not None:
            rec.params = [(w[m].detach().clone(), b[m].detach().clone()) for w, b in state.flat.views]
            rec.init = [(w[m], b[m]) for w, b in state.initial]
    return state.records


def train_population(layers: tuple[Layer, ...], models: list[ModelSettings], data: PopulationData, *,
                     activation: str, loss: str, optimizer: str, momentum: float, epochs: int, batch_size: int,
                     dtype: torch.dtype = torch.float32, check_every: int = 50, probes: bool = True,
                     keep_params: bool = False, switch: float = 0.5,
                     schedule: EvalSchedule = EvalSchedule(),
                     on_epoch: Callable[[int], None] | None = None) -> list[RunRecord]:
    """Train the models of one population together and return one record per model.

    ``loss`` may be a schedule ``"first>second"``: the first loss for the first ``switch`` fraction
    of the epochs (at least one), the second for the rest (Golik et al. 2013 fine-tune a
    cross-entropy-trained net with squared error this way). Each epoch logs the loss it trained on.
    ``schedule`` says which epochs are evaluated and probed (default: every epoch, in full);
    ``on_epoch(epoch)`` is called after each epoch (progress).
    """
    net = Network(layers, registry.get("activation", activation).fn, activation, is_dense(layers))
    losses = [registry.get("loss", part).fn for part in loss.split(">")]
    state = init_state(net, models, data, optimizer=optimizer, momentum=momentum, dtype=dtype, keep_params=keep_params)
    log_epoch(state, net, data, 0, loss_fn=losses[0], probes=probes)  # the models as initialized
    for epoch in range(1, epochs + 1):
        loss_fn = losses[loss_stage(epoch, epochs=epochs, stages=len(losses), switch=switch)]  # this epoch's loss
        train_epoch(state, net, data, epoch, loss_fn=loss_fn, batch_size=batch_size, check_every=check_every,
                    step=train_step)  # shuffle, minibatches, divergence checks
        if schedule.evaluates(epoch, epochs):  # evaluate and probe
            log_epoch(state, net, data, epoch, loss_fn=loss_fn, probes=probes and schedule.probes(epoch, epochs),
                      train_subset=schedule.subset(epoch, epochs))
        if on_epoch is not None:
            on_epoch(epoch)
    return finish(state)
