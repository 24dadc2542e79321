"""Train one chunk of a population: typed run configs in, records out.

This is where a run's settings become the trainer's arguments. It is pure in the sense the
executors need: the same runs give the same records on any machine, nothing is written, and a
Ray task can call it on a worker.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import psutil
import torch

from ponder.catalog.initializers.base import parse_init
from ponder.catalog.models import Layer, is_module, param_count
from ponder.study.checks import build_layers
from ponder.study.config import RunConfig
from ponder.study.plan import Run
from ponder.train.data import PopulationData, prepare_data
from ponder.train.loop import EvalSchedule, ModelSettings, RunRecord, train_population

__all__ = ["ChunkOutput", "train_chunk", "chunk_size", "memory_budget", "DTYPES", "EVAL_CHUNK"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
EVAL_CHUNK = 2048  # examples per evaluation forward pass, for the memory estimate


@dataclass
class ChunkOutput:
    """What training a chunk produced: one record per run (in the chunk's order) and its evals rows."""

    records: list[RunRecord]
    evals: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    threads: int = 1
    n_classes: int = 0


def _data(runs: list[Run], pool, device: str) -> PopulationData:
    ds = runs[0].config.dataset
    return prepare_data(pool, seeds=[r.seed for r in runs], label_noise=[r.config.dataset.label_noise for r in runs],
                        val_fraction=ds.val_fraction, train_size=ds.train_size,
                        dtype=DTYPES[runs[0].config.training.dtype], device=device)


def _settings(cfg: RunConfig) -> ModelSettings:
    name, params = parse_init(cfg.model.initializer)
    return ModelSettings(cfg.seed, cfg.training.lr, cfg.training.weight_decay, name,
                         {**cfg.model.init_params, **params}, cfg.model.dropout)


def train_chunk(runs: list[Run], *, device: str = "cpu", on_epoch: Callable[[int], None] | None = None) -> ChunkOutput:
    """Train runs that share a population key (neural, or the classic pipeline) and return their records.

    ``on_epoch(n)`` is called with the number of model-epochs just finished (progress), as they finish.
    """
    cfg = runs[0].config
    layers, pool = build_layers(cfg)
    data = _data(runs, pool, device)
    t0 = time.perf_counter()
    if cfg.classical:
        records, evals = _classical(runs, pool, data)
        if on_epoch is not None:
            on_epoch(len(runs) * cfg.training.epochs)
    elif is_module(cfg.model.arch):
        records = _module(runs, data, on_epoch)
        evals = _module_metrics(runs, records, pool, data) if cfg.metrics else []
    else:
        t = cfg.training
        records = train_population(layers, [_settings(r.config) for r in runs], data, activation=cfg.model.activation,
                                   loss=t.loss, optimizer=t.optimizer, momentum=t.momentum, epochs=t.epochs,
                                   batch_size=t.batch_size, dtype=DTYPES[t.dtype], keep_params=cfg.evaluate.measures or bool(cfg.metrics),
                                   switch=t.switch, schedule=EvalSchedule(cfg.evaluate.every, cfg.evaluate.probe_every,
                                                                          cfg.evaluate.train_subset),
                                   on_epoch=None if on_epoch is None else (lambda _e: on_epoch(len(runs))))
        evals = _neural_evals(runs, records, layers, data)
    for rec in records:  # weights stay on the worker
        rec.params = rec.init = None
    return ChunkOutput(records, evals, time.perf_counter() - t0, torch.get_num_threads(), pool.n_classes)


def _module(runs: list[Run], data: PopulationData, on_epoch: Callable[[int], None] | None) -> list[RunRecord]:
    """Train a chunk of a module model (a user's ``torch.nn.Module``; learning curves only)."""
    from ponder.train.module import train_module_population

    cfg = runs[0].config
    t, ev = cfg.training, cfg.evaluate
    return train_module_population(cfg.model.arch, cfg.model.model_dump(), [_settings(r.config) for r in runs], data,
                                   loss=t.loss, optimizer=t.optimizer, momentum=t.momentum, epochs=t.epochs,
                                   batch_size=t.batch_size, dtype=DTYPES[t.dtype], switch=t.switch,
                                   schedule=EvalSchedule(ev.every, ev.probe_every, ev.train_subset), on_epoch=on_epoch,
                                   keep_params=bool(cfg.metrics))


@torch.no_grad()
def _module_metrics(runs: list[Run], records: list, pool, data: PopulationData) -> list[dict]:
    """Extra metrics of module models: each trained network rebuilt, its weights loaded, scored in eval mode."""
    from ponder import registry
    from ponder.catalog.models import build_module

    cfg = runs[0].config
    fns = {m: registry.get("metric", m).fn for m in cfg.metrics}
    rows: list[dict] = []
    for i, (r, rec) in enumerate(zip(runs, records)):
        net = build_module(cfg.model.arch, pool.sample_shape, pool.n_classes, settings=cfg.model.model_dump(), seed=r.seed)
        net = net.to(device=data.x_pool.device, dtype=DTYPES[cfg.training.dtype])
        net.load_state_dict(rec.final, strict=False)
        net.eval()
        splits = {"metric_test": (data.x_test, data.y_test)}
        if data.val_idx.shape[1]:
            splits["metric_val"] = (data.x_pool[data.val_idx[i]], data.clean[data.val_idx[i]])
        for probe, (x, y) in splits.items():
            logits = torch.cat([net(x[s:s + EVAL_CHUNK]) for s in range(0, len(x), EVAL_CHUNK)])
            rows += [{"run_id": r.id, "probe": probe, "kind": m, "level": 0.0, "value": float(fn(logits, y))}
                     for m, fn in fns.items()]
        rec.final = rec.initial = None
    return rows


def _module_bytes(cfg: RunConfig, pool, itemsize: int) -> int:
    from ponder.catalog.models import build_module
    from ponder.train.module import module_bytes_per_model

    net = build_module(cfg.model.arch, pool.sample_shape, pool.n_classes, settings=cfg.model.model_dump(), seed=cfg.seed)
    return module_bytes_per_model(net.to(DTYPES[cfg.training.dtype]), tuple(pool.sample_shape),
                                  batch=cfg.training.batch_size, eval_chunk=EVAL_CHUNK, itemsize=itemsize)


def _neural_evals(runs: list[Run], records: list[RunRecord], layers: tuple[Layer, ...], data) -> list[dict]:
    from ponder.train.evals import population_rows

    from ponder import registry
    from ponder.train.evals import metric_rows

    cfg = runs[0].config
    rows = []
    if cfg.evaluate.measures:
        rows += population_rows(runs, records, layers, data, activation=cfg.model.activation, loss=cfg.training.loss,
                                evaluate=cfg.evaluate.config())
    if cfg.metrics:
        final = [(torch.stack([r.params[i][0] for r in records]), torch.stack([r.params[i][1] for r in records]))
                 for i in range(len(layers))]
        rows += metric_rows([r.id for r in runs], final, layers, registry.get("activation", cfg.model.activation).fn,
                            data, cfg.metrics)
    return rows


def _classical(runs: list[Run], pool, data) -> tuple[list[RunRecord], list[dict]]:
    """Fit the scikit-learn baselines of a chunk; one epoch row (the last epoch) per run."""
    from ponder.train.classical import features, fit_predict
    from ponder.train.evals import shift_rows

    cfg = runs[0].config
    metrics, predict = fit_predict(cfg.model.arch, data, [r.seed for r in runs],
                                   feature_fn=partial(features, cfg.model.arch, ref=pool.x_train))
    evals = []
    if cfg.evaluate.shift:
        evals = shift_rows([r.id for r in runs], predict, data.x_test, data.y_test, cfg.evaluate.config()["shift"],
                           x_std=float(data.x_pool.std()))
    records = [RunRecord("ok", None, epochs=[{"epoch": cfg.training.epochs, **m}]) for m in metrics]
    return records, evals


def _bytes_per_model(layers: tuple[Layer, ...], batch: int, itemsize: int) -> int:
    acts = sum(math.prod(l.out_shape) for l in layers) + math.prod(layers[0].in_shape)
    # parameters, gradients, up to two optimizer moments, per-element learning rate and decay;
    # saved activations of a training step; one evaluation chunk's activations
    return itemsize * (6 * param_count(layers) + 6 * batch * acts + 3 * EVAL_CHUNK * acts)


def memory_budget(device: str) -> int:
    """Default budget: a quarter of available RAM, or half the free GPU memory."""
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return int(free * 0.5)
    return int(psutil.virtual_memory().available * 0.25)


def chunk_size(cfg: RunConfig, budget: int) -> int:
    """How many models of this population fit in ``budget`` bytes at once (at least 1)."""
    if cfg.classical:  # the classic pipeline: one population fits its models one after another
        return max(1, budget)
    layers, pool = build_layers(cfg)
    itemsize = 8 if cfg.training.dtype == "float64" else 4
    if is_module(cfg.model.arch):
        return max(1, budget // _module_bytes(cfg, pool, itemsize))
    return max(1, budget // _bytes_per_model(layers, cfg.training.batch_size, itemsize))
