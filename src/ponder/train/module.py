"""Any ``torch.nn.Module`` as a model: a population of a user's network, trained through ``torch.func``.

A module model is a factory ``fn(in_shape, n_classes, **settings) -> torch.nn.Module`` registered
with ``module=True``. The loop is the built-in one (:mod:`ponder.train.loop`) with the network
swapped for a vmapped ``functional_call``:

    nets = build_models(...)                   one module per model, from its own seed; ponder's initializer
                                               on every Linear / Conv layer, from the stream (seed, "init")
    state = init_state(nets, ...)              parameters stacked (like stack_module_state) into one flat buffer
    log_epoch(state, epoch 0)                  train / val / test loss and accuracy (no layer probes)
    for each epoch:
        order = epoch_order(state)             the built-in loop's per-seed shuffle
        for each minibatch:
            train_step(state, batch)           vmapped forward, per-model loss, autograd, ponder's optimizer
            check_divergence(state)            the built-in loop's freezing of NaN/inf models
        log_epoch(state, epoch)

Dropout: every ``nn.Dropout`` of the network is replaced, in the shared forward, by a stand-in
that multiplies by a mask ponder draws: one uniform draw per seed from the stream
(seed, "dropout") per call site and step, thresholded at each model's own ``p`` -- the built-in
MLP's rule, so arms with one seed share masks and a model trains the same alone or in any
population. Any other random operation in ``forward`` (``F.dropout``, ``nn.Dropout2d``,
``torch.randn``) is refused: vmap runs with ``randomness="error"``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call

from ponder import registry
from ponder.catalog.initializers.base import init_network
from ponder.catalog.models import build_module
from ponder.errors import SpecError
from ponder.rng import rng_for
from ponder.train.data import PopulationData
from ponder.train.loop import EvalSchedule, ModelSettings, RunRecord, inverted_dropout, loss_stage, train_epoch
from ponder.train.metrics import SPLITS, _chunks, _split_size
from ponder.train.optim import Flat, OptState, opt_init, opt_step

__all__ = ["ModuleRecord", "build_models", "init_module_", "train_module_population", "module_bytes_per_model"]

LAYER_TYPES = (nn.Linear, nn.modules.conv._ConvNd)  # what the run's initializer sets (weight by its fans, bias by its rule)


@dataclass
class ModuleRecord(RunRecord):
    """A :class:`RunRecord` (layers empty) that can keep a module's parameters by name."""

    final: dict[str, torch.Tensor] | None = None  # parameters after training, if kept
    initial: dict[str, torch.Tensor] | None = None  # parameters as initialized, if kept


class _SiteDropout(nn.Module):
    """Stands in for an ``nn.Dropout`` in the shared forward: multiplies by the mask it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.empty(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask if self.training and self.mask.numel() else x


@dataclass(frozen=True)
class Site:
    """One ``nn.Dropout`` call in the forward pass: its module name, the per-example shape it sees,
    and each model's drop probability (M,)."""

    name: str
    feat: tuple[int, ...]
    p: torch.Tensor


@dataclass(frozen=True)
class ModuleNet:
    """What every model of the population shares: the forward (a parameterless copy on the meta device)."""

    arch: str
    skeleton: nn.Module
    sites: tuple[Site, ...]  # dropout calls, in the order the forward makes them


@dataclass
class ModuleState:
    """What changes while training. ``order_gens``, ``seed_ix``, ``loss_sum``, ``active``, ``keep``, ``records``
    and ``flat`` carry the built-in :class:`~ponder.train.loop.PopulationState` names, so its
    ``epoch_order`` and ``check_divergence`` serve both paths."""

    flat: Flat  # one buffer (P * M,) with per-parameter blocks (M, ...); flat.views is unused here
    views: dict[str, torch.Tensor]  # trainable parameters by name, (M, ...) views into flat.data
    fixed: dict[str, torch.Tensor]  # buffers and frozen parameters by name, (M, ...)
    opt: OptState
    lr: torch.Tensor  # (P * M,)
    weight_decay: torch.Tensor | None
    momentum: float
    seed_ix: torch.Tensor  # (M,) model -> index into order_gens / drop_gens
    order_gens: list[torch.Generator]
    drop_gens: list[torch.Generator]
    any_dropout: bool
    active: torch.Tensor  # (M,) bool
    keep: torch.Tensor | None
    loss_sum: torch.Tensor  # (M,)
    records: list[ModuleRecord]
    initial: dict[str, torch.Tensor] | None = None
    step: int = 0
    leaves: list[torch.Tensor] = field(default_factory=list)


@torch.no_grad()
def init_module_(net: nn.Module, model: ModelSettings, *, activation: str, dtype: torch.dtype) -> None:
    """Set every Linear / Conv layer of ``net`` by the run's initializer, in module order, weight then
    bias, from the stream (seed, "init") -- the draws the built-in MLP makes for the same shapes.

    A layer without a bias still draws one (discarded), so ``bias=False`` never moves other layers' draws.

    Raises:
        SpecError: the initializer sets a whole network (``network=True``) or needs a forward pass.
    """
    entry = registry.get("initializer", model.initializer)
    if entry.facts.network or "forward" in entry.facts.needs:
        raise SpecError(f"initializer {model.initializer!r} sets a whole network from its own forward pass, which a "
                        f"module model does not offer; use a layer initializer (e.g. torch.kaiming_normal)")
    layers = [m for m in net.modules() if isinstance(m, LAYER_TYPES)]
    drawn = init_network(model.initializer, [tuple(m.weight.shape) for m in layers], generator=rng_for(model.seed, "init"),
                         dtype=dtype, context={"activation": activation}, **model.init_params)
    for layer, (w, b) in zip(layers, drawn):
        layer.weight.copy_(w)
        if layer.bias is not None:
            layer.bias.copy_(b)


def build_models(arch: str, settings: dict, models: list[ModelSettings], *, sample_shape: tuple[int, ...],
                 n_classes: int, dtype: torch.dtype) -> list[nn.Module]:
    """One initialized network per model: the factory gets ``settings`` with the model's own dropout rate."""
    nets = []
    for m in models:
        net = build_module(arch, sample_shape, n_classes, settings={**settings, "dropout": m.dropout}, seed=m.seed)
        net = net.to(dtype)
        init_module_(net, m, activation=settings["activation"], dtype=dtype)
        nets.append(net)
    return nets


def _structure(net: nn.Module) -> tuple:
    """Modules, parameter and buffer shapes: models with equal structure share one forward."""
    return (tuple((n, type(m).__name__) for n, m in net.named_modules()),
            tuple((n, tuple(t.shape), t.requires_grad) for n, t in net.named_parameters()),
            tuple((n, tuple(t.shape)) for n, t in net.named_buffers()))


def _logits(net: ModuleNet, tensors: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits (M, B, C) of every model for inputs x (M, B, *sample); tensors are (M, ...) by name."""
    return torch.vmap(lambda t, xx: functional_call(net.skeleton, t, (xx,)))(tensors, x)


def _skeleton(arch: str, nets: list[nn.Module], stacked: dict[str, torch.Tensor],
              sample_shape: tuple[int, ...], dtype: torch.dtype) -> ModuleNet:
    """The shared forward: a meta copy of model 0 with its ``nn.Dropout`` modules replaced, and the dropout
    sites found by one training-mode call on two examples (refusing other random operations)."""
    skeleton = copy.deepcopy(nets[0])
    names = [n for n, m in skeleton.named_modules() if type(m) is nn.Dropout]
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(skeleton.get_submodule(parent) if parent else skeleton, child, _SiteDropout())
    skeleton = skeleton.to("meta").train()
    calls: list[tuple[str, tuple[int, ...]]] = []
    hooks = [skeleton.get_submodule(n).register_forward_hook(lambda _m, inp, _o, n=n: calls.append((n, tuple(inp[0].shape))))
             for n in names]
    x = torch.zeros(1, 2, *sample_shape, dtype=dtype)
    try:
        with torch.no_grad():
            _logits(ModuleNet(arch, skeleton, ()), {k: v[:1].clone() for k, v in stacked.items()}, x)
    except RuntimeError as exc:
        if "random" not in str(exc):
            raise
        raise SpecError(f"model {arch!r} draws random numbers in its forward pass outside nn.Dropout (F.dropout, "
                        f"nn.Dropout2d, torch.randn, ...); ponder seeds only nn.Dropout modules, use those") from None
    finally:
        for h in hooks:
            h.remove()
    seen = [n for n, _ in calls]
    if len(set(seen)) < len(seen) or any(shape[0] != 2 for _, shape in calls):
        raise SpecError(f"model {arch!r}: each nn.Dropout must be called once per forward, on a tensor whose first axis "
                        f"is the batch; give every place its own nn.Dropout")
    p = {n: torch.tensor([float(net.get_submodule(n).p) for net in nets], dtype=torch.float64) for n, _ in calls}
    sites = tuple(Site(n, shape[1:], p[n]) for n, shape in calls)
    return ModuleNet(arch, skeleton, sites)


def _flat(stacked: dict[str, torch.Tensor], device: torch.device) -> tuple[Flat, dict[str, torch.Tensor]]:
    """Copy stacked parameters (M, ...) into one buffer; return it and per-parameter leaf views into it."""
    m = next(iter(stacked.values())).shape[0]
    data = torch.cat([t.detach().reshape(-1) for t in stacked.values()]).to(device)
    views, blocks, off = {}, [], 0
    for name, t in stacked.items():
        views[name] = data[off:off + t.numel()].view(t.shape).requires_grad_()
        blocks.append(t.numel() // m)
        off += t.numel()
    return Flat(data, [], blocks, m), views


def init_state(net: ModuleNet, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
               models: list[ModelSettings], *, optimizer: str, momentum: float, dtype: torch.dtype, device: torch.device,
               keep_params: bool) -> ModuleState:
    """Copy the stacked parameters (M, ...) into one flat buffer and zero the optimizer state."""
    trainable = {n: t for n, t in params.items() if t.requires_grad}
    fixed = {n: t.detach().to(device) for n, t in {**params, **buffers}.items() if n not in trainable}
    if not trainable:
        raise SpecError(f"model {net.arch!r} has no trainable parameters; give it at least one layer")
    flat, views = _flat(trainable, device)
    seeds = sorted({m.seed for m in models})

    def per_element(values: list[float]) -> torch.Tensor:
        return flat.per_element(torch.tensor(values, dtype=dtype, device=device))

    wd = per_element([m.weight_decay for m in models])
    return ModuleState(
        flat=flat, views=views, fixed=fixed, opt=opt_init(optimizer, flat.data), lr=per_element([m.lr for m in models]),
        weight_decay=wd if bool((wd != 0).any()) else None, momentum=momentum,
        seed_ix=torch.tensor([seeds.index(m.seed) for m in models], device=device),
        order_gens=[rng_for(s, "order", device) for s in seeds], drop_gens=[rng_for(s, "dropout", device) for s in seeds],
        any_dropout=any(bool((s.p > 0).any()) for s in net.sites),
        active=torch.ones(len(models), dtype=torch.bool, device=device), keep=None,
        loss_sum=torch.zeros(len(models), dtype=dtype, device=device), records=[ModuleRecord("ok", None) for _ in models],
        initial={n: v.detach().clone() for n, v in views.items()} if keep_params else None, leaves=list(views.values()))


def draw_masks(state: ModuleState, net: ModuleNet, batch: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Inverted-dropout multipliers (M, B, *feat) per site: one uniform draw per seed, thresholded per model."""
    dev = state.active.device  # sites in call order, as the built-in MLP draws hidden layer by hidden layer
    masks = inverted_dropout(state.drop_gens, state.seed_ix, [(batch, *site.feat) for site in net.sites],
                             [site.p for site in net.sites], device=dev, dtype=dtype)
    return {f"{site.name}.mask": mask for site, mask in zip(net.sites, masks)}  # (M, B, *feat) each


def train_step(state: ModuleState, net: ModuleNet, xb: torch.Tensor, yb: torch.Tensor, *, loss_fn: Callable) -> None:
    """One minibatch for every model: vmapped forward, per-model mean loss, autograd, optimizer step."""
    masks = draw_masks(state, net, xb.shape[1], xb.dtype) if state.any_dropout else {}
    logits = _logits(net, {**state.views, **state.fixed, **masks}, xb)  # (M, B, C)
    per_model = loss_fn(logits, yb).mean(dim=1)  # (M,)
    grads = torch.autograd.grad(per_model.sum(), state.leaves, allow_unused=True, materialize_grads=True)
    opt_step(state.opt, state.flat.data, state.flat.flat_grad(grads), lr=state.lr, weight_decay=state.weight_decay,
             momentum=state.momentum, keep=state.keep)
    state.loss_sum += per_model.detach()
    state.step += 1


@torch.no_grad()
def log_epoch(state: ModuleState, net: ModuleNet, data: PopulationData, epoch: int, *, loss_fn: Callable,
              train_subset: int | None = None) -> None:
    """Append every model's train / val / test loss and accuracy (modules in eval mode) to its record."""
    net.skeleton.eval()
    tensors, m = {**state.views, **state.fixed}, len(state.records)
    cols: dict[str, torch.Tensor] = {}
    for split in SPLITS:
        n = _split_size(data, split, train_subset)
        loss, acc = torch.zeros(m, dtype=state.loss_sum.dtype), torch.zeros(m, dtype=state.loss_sum.dtype)
        for x, y in _chunks(data, split, m, train_subset):
            logits = _logits(net, tensors, x)  # (M, C, classes)
            loss += loss_fn(logits, y).sum(1).cpu()
            acc += (logits.argmax(-1) == y).sum(1).to(logits.dtype).cpu()
        cols[f"{split}_loss"], cols[f"{split}_acc"] = (loss / n, acc / n) if n else (torch.full((m,), math.nan),) * 2
    for k, rec in enumerate(state.records):
        rec.epochs.append({"epoch": epoch, **{c: float(v[k]) for c, v in cols.items()}})
    net.skeleton.train()


def _train_group(arch: str, nets: list[nn.Module], models: list[ModelSettings], data: PopulationData, *, loss: str,
                 optimizer: str, momentum: float, epochs: int, batch_size: int, dtype: torch.dtype, check_every: int,
                 keep_params: bool, switch: float, schedule: EvalSchedule,
                 on_epoch: Callable[[int], None] | None) -> list[ModuleRecord]:
    """The built-in loop's steps for models that share one structure."""
    losses = [registry.get("loss", part).fn for part in loss.split(">")]
    device = data.x_pool.device
    params, buffers = _stack_state(nets)
    net = _skeleton(arch, nets, {**params, **buffers}, tuple(data.x_pool.shape[1:]), dtype)
    state = init_state(net, params, buffers, models, optimizer=optimizer, momentum=momentum, dtype=dtype, device=device,
                       keep_params=keep_params)
    log_epoch(state, net, data, 0, loss_fn=losses[0])  # the models as initialized
    for epoch in range(1, epochs + 1):
        loss_fn = losses[loss_stage(epoch, epochs=epochs, stages=len(losses), switch=switch)]  # this epoch's loss
        train_epoch(state, net, data, epoch, loss_fn=loss_fn, batch_size=batch_size, check_every=check_every,
                    step=train_step)  # the built-in loop's epoch: shuffle, minibatches, divergence checks
        if schedule.evaluates(epoch, epochs):
            log_epoch(state, net, data, epoch, loss_fn=loss_fn, train_subset=schedule.subset(epoch, epochs))
        if on_epoch is not None:
            on_epoch(len(models))  # model-epochs just finished
    for m, rec in enumerate(state.records):
        rec.steps = state.step
        if keep_params:
            rec.final = {n: v[m].detach().clone() for n, v in state.views.items()}
            rec.initial = {n: v[m] for n, v in state.initial.items()}
    return state.records


def _stack_state(nets: list[nn.Module]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Parameters and buffers of same-structure networks stacked on a leading model axis (as
    ``torch.func.stack_module_state``, without requiring one Python class: a factory that defines its
    class inside the function returns a new class on every call)."""
    names = [n for n, _ in nets[0].named_parameters()]
    bufs = [n for n, _ in nets[0].named_buffers()]
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets]).requires_grad_() for n in names}
    buffers = {n: torch.stack([dict(m.named_buffers())[n] for m in nets]) for n in bufs}
    return params, buffers


def _subset(data: PopulationData, ix: list[int]) -> PopulationData:
    """The data of some models of a population (per-model tables indexed, shared tensors kept)."""
    t = torch.tensor(ix, device=data.labels.device)
    return replace(data, labels=data.labels[t], train_idx=data.train_idx[t], val_idx=data.val_idx[t])


def train_module_population(arch: str, settings: dict, models: list[ModelSettings], data: PopulationData, *,
                            loss: str, optimizer: str, momentum: float, epochs: int, batch_size: int,
                            dtype: torch.dtype = torch.float32, check_every: int = 50, keep_params: bool = False,
                            switch: float = 0.5, schedule: EvalSchedule = EvalSchedule(),
                            on_epoch: Callable[[int], None] | None = None) -> list[ModuleRecord]:
    """Train a population of module model ``arch`` and return one record per model, in order.

    Args:
        arch: A model registered with ``module=True``.
        settings: The [model] table (``depth``, ``width``, ``kernel_size``, ``activation``, ...; a key left
            out takes its default); the factory gets the keys it declares, with each model's own ``dropout``.
        models: Per-model seed, learning rate, decay, initializer and dropout rate.
        keep_params: Keep each model's initial and final parameters by name (``final``, ``initial``).
        on_epoch: Called with the number of model-epochs just finished (progress).

    Models whose networks differ in structure (a factory that adds ``nn.Dropout`` only when the
    rate is positive) train as separate groups, which gives the same numbers: models never mix.
    """
    from ponder.study.spec import ModelSpec

    settings = {**ModelSpec().model_dump(), **settings}  # a key left out takes the [model] default
    nets = build_models(arch, settings, models, sample_shape=tuple(data.x_pool.shape[1:]), n_classes=data.n_classes,
                        dtype=dtype)
    groups: dict[tuple, list[int]] = {}
    for m, net in enumerate(nets):
        groups.setdefault(_structure(net), []).append(m)
    records: list[ModuleRecord | None] = [None] * len(models)
    for ix in groups.values():
        recs = _train_group(arch, [nets[m] for m in ix], [models[m] for m in ix], _subset(data, ix), loss=loss,
                            optimizer=optimizer, momentum=momentum, epochs=epochs, batch_size=batch_size, dtype=dtype,
                            check_every=check_every, keep_params=keep_params, switch=switch, schedule=schedule,
                            on_epoch=on_epoch)
        for m, rec in zip(ix, recs):
            records[m] = rec
    return records  # type: ignore[return-value]


@torch.no_grad()
def module_bytes_per_model(net: nn.Module, sample_shape: tuple[int, ...], *, batch: int, eval_chunk: int,
                           itemsize: int) -> int:
    """Memory estimate for one model, as the built-in estimate counts it: parameters with gradients and
    optimizer state, and the outputs of every leaf module for a training batch and an evaluation chunk."""
    acts = [math.prod(sample_shape)]
    hooks = [m.register_forward_hook(lambda _m, _i, out: acts.append(out.numel() if torch.is_tensor(out) else 0))
             for m in net.modules() if not list(m.children())]
    try:
        net.eval()(torch.zeros(1, *sample_shape, dtype=next(net.parameters()).dtype))
    finally:
        for h in hooks:
            h.remove()
    n_params = sum(p.numel() for p in net.parameters())
    return itemsize * (6 * n_params + 6 * batch * sum(acts) + 3 * eval_chunk * sum(acts))
