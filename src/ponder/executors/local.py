"""The study loop and the local executor: expand, skip what the store has, train chunks, write each at once.

:func:`train_chunk` is pure (settings and data in, rows out); :func:`run_study` is the edge
that talks to the store. A population larger than the memory budget is trained in chunks;
every model's numbers are independent of which chunk it lands in. Where chunks train is an
:class:`Executor`: :class:`LocalExecutor` here, one after another in this process, or the Ray
executor (:mod:`ponder.executors.ray_executor`); either way only :func:`run_study` writes.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import psutil
import torch

from ponder.catalog.datasets import load_pool
from ponder.catalog.initializers.base import parse_init
from ponder.catalog.models import Layer, build, is_classical, param_count
from ponder.errors import LimitError, PonderError
from ponder.store import Store, environment
from ponder.study.plan import Run, expand, populations
from ponder.study.spec import Study
from ponder.train import ModelSettings, prepare_data, train_population
from ponder.train.evals import population_rows

__all__ = ["StudyRun", "ChunkResult", "Executor", "LocalExecutor", "check_plan", "plan_chunks", "run_study", "train_chunk",
           "LIMITS", "resolve_device"]

LIMITS = {"runs": 50_000, "params_per_model": 20_000_000, "model_epochs": 5_000_000}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class StudyRun:
    """What :func:`run_study` did."""

    total: int
    skipped: int
    trained: int
    failed: int
    populations: int
    wall_s: float
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # first line of each failure -> runs it failed


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PonderError("--device cuda was asked for but this torch build sees no CUDA device; use --device cpu or install a CUDA build of torch (README, GPU)")
    if device not in ("cpu", "cuda"):
        raise PonderError(f"unknown device {device!r}; use cpu, cuda or auto")
    return device


def _layers_for(cfg: dict[str, Any]) -> tuple[tuple[Layer, ...], Any]:
    ds = cfg["dataset"]
    pool = load_pool(ds["name"], ds["options"], inputs=ds["inputs"])
    m = cfg["model"]
    return build(m["arch"], pool.sample_shape, pool.n_classes, depth=m.get("depth", 0), width=m.get("width", 0),
                 kernel_size=m.get("kernel_size", 0)), pool


def check_plan(study: Study, runs: list[Run], *, force: bool = False) -> None:
    """Refuse impossible or absurd plans before anything is trained.

    Raises:
        SpecError: an architecture does not fit its data, or a training subset is too large.
        LimitError: the study exceeds a soft limit (lifted by ``force``).
    """
    seen: dict[str, int] = {}
    for pop in populations(runs):
        cfg = pop.runs[0].config
        layers, pool = _layers_for(cfg)
        seen[pop.key] = param_count(layers)
        n_pool = len(pool.y_train)
        n_val = int(round(cfg["dataset"]["val_fraction"] * n_pool))
        ts = cfg["dataset"]["train_size"]
        if ts is not None and ts > n_pool - n_val:
            from ponder.errors import SpecError

            raise SpecError(f"{study.source}: dataset.train_size = {ts} is more than the {n_pool - n_val} examples of {cfg['dataset']['name']!r} left after the validation split; use at most {n_pool - n_val}")
        spatial = [k for k in cfg.get("evaluate", {}).get("shift", {}) if k != "noise"]
        if spatial and len(pool.sample_shape) not in (2, 3):
            from ponder.errors import SpecError

            raise SpecError(f"{study.source}: evaluate.shift.{spatial[0]} needs signals or images, {cfg['dataset']['name']!r} "
                            f"has samples of shape {tuple(pool.sample_shape)}; use only noise")
    _check_initializers(study, runs)
    if force:
        return
    worst = max(seen.values(), default=0)
    model_epochs = len(runs) * study.training.epochs
    for what, value in (("runs", len(runs)), ("params_per_model", worst), ("model_epochs", model_epochs)):
        if value > LIMITS[what]:
            raise LimitError(f"{study.source}: the study has {value:,} {what.replace('_', ' ')}, above the limit of {LIMITS[what]:,}; shrink it or pass --force")


def _check_initializers(study: Study, runs: list[Run]) -> None:
    """Draw each distinct (initializer, parameters, activation) once on a small layer, so a bad parameter
    value is refused before training rather than failing every run of its population."""
    import torch

    from ponder import registry
    from ponder.catalog.initializers.base import dense_forward, init_network
    from ponder.errors import SpecError

    seen = set()
    for r in runs:
        m = r.config["model"]
        if is_classical(m["arch"]):
            continue
        key = (m["initializer"], json.dumps(m["init_params"], sort_keys=True, default=str), m["activation"])
        if key in seen:
            continue
        seen.add(key)
        name, params = parse_init(m["initializer"])
        params = {**m["init_params"], **params}
        fwd = dense_forward(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), registry.get("activation", m["activation"]).fn)

        try:
            init_network(name, [(3, 4), (2, 3)], generator=torch.Generator().manual_seed(0),
                         context={"activation": m["activation"], "forward": fwd}, **params)
        except PonderError as exc:
            raise SpecError(f"{study.source}: model.initializer {m['initializer']!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001  (bad parameter values surface as arbitrary errors)
            raise SpecError(f"{study.source}: model.initializer {m['initializer']!r} with parameters {params} fails: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def _bytes_per_model(layers: tuple[Layer, ...], batch: int, eval_chunk: int, itemsize: int) -> int:
    acts = sum(math.prod(l.out_shape) for l in layers) + math.prod(layers[0].in_shape)
    # parameters, gradients, up to two optimizer moments, per-element learning rate and decay;
    # saved activations of a training step; one evaluation chunk's activations
    return itemsize * (6 * param_count(layers) + 6 * batch * acts + 3 * min(eval_chunk, 2048) * acts)


def memory_budget(device: str) -> int:
    """Default budget: a quarter of available RAM, or half the free GPU memory."""
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return int(free * 0.5)
    return int(psutil.virtual_memory().available * 0.25)


def chunk_size(layers: tuple[Layer, ...], cfg: dict[str, Any], budget: int) -> int:
    if not layers:  # the classic pipeline: one population fits its models one after another
        return max(1, budget)
    per = _bytes_per_model(layers, cfg["training"]["batch_size"], 2048, 8 if cfg["training"]["dtype"] == "float64" else 4)
    return max(1, budget // per)


def train_chunk(runs: list[Run], *, device: str = "cpu") -> tuple[list[dict], list[dict], list[dict]]:
    """Train runs that share a population key; return (run rows, epoch rows, layer rows)."""
    cfg = runs[0].config
    layers, pool = _layers_for(cfg)
    dtype = _DTYPES[cfg["training"].get("dtype", "float32")]
    data = prepare_data(pool, seeds=[r.seed for r in runs], label_noise=[r.config["dataset"]["label_noise"] for r in runs],
                        val_fraction=cfg["dataset"]["val_fraction"], train_size=cfg["dataset"]["train_size"],
                        dtype=dtype, device=device)
    if is_classical(cfg["model"]["arch"]):
        return _classical_chunk(runs, pool, data, device)
    models = []
    for r in runs:
        name, params = parse_init(r.config["model"]["initializer"])
        models.append(ModelSettings(r.seed, r.config["training"]["lr"], r.config["training"]["weight_decay"], name,
                                    {**r.config["model"]["init_params"], **params}, r.config["model"]["dropout"]))
    t0 = time.perf_counter()
    t = cfg["training"]
    records = train_population(layers, models, data, activation=cfg["model"]["activation"], loss=t["loss"],
                               optimizer=t["optimizer"], momentum=t["momentum"], epochs=t["epochs"],
                               batch_size=t["batch_size"], dtype=dtype, keep_params=bool(cfg.get("evaluate")),
                               switch=t.get("switch", 0.5))
    evals = population_rows(runs, records, layers, data, activation=cfg["model"]["activation"], loss=t["loss"],
                            evaluate=cfg["evaluate"]) if cfg.get("evaluate") else []
    wall = time.perf_counter() - t0
    env = json.dumps(environment(device, torch.get_num_threads()))
    run_rows, epoch_rows, layer_rows = [], [], []
    for r, rec in zip(runs, records):
        run_rows.append({"run_id": r.id, "config_json": json.dumps(r.config, sort_keys=True), "status": rec.status,
                         "diverged_epoch": rec.diverged_epoch, "error": None, "population": r.population_key,
                         "population_size": len(runs), "steps": rec.steps, "wall_s": wall / len(runs),
                         "finished": _now(), "env_json": env})
        epoch_rows += [{"run_id": r.id, **e} for e in rec.epochs]
        layer_rows += [{"run_id": r.id, **row} for row in rec.layers]
    return run_rows, epoch_rows, layer_rows, evals


def _classical_chunk(runs: list[Run], pool, data, device: str) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """Fit the scikit-learn baselines of a chunk; one epoch row (the last epoch) per run."""
    from functools import partial

    from ponder.train.classical import features, fit_predict
    from ponder.train.evals import shift_rows

    cfg = runs[0].config
    arch = cfg["model"]["arch"]
    t0 = time.perf_counter()
    feat = partial(features, arch, ref=pool.x_train)
    metrics, predict = fit_predict(arch, data, [r.seed for r in runs], feature_fn=feat)
    evals = []
    if cfg.get("evaluate", {}).get("shift"):
        evals = shift_rows([r.id for r in runs], predict, data.x_test, data.y_test, cfg["evaluate"]["shift"],
                           x_std=float(data.x_pool.std()))
    wall = time.perf_counter() - t0
    env = json.dumps(environment(device, torch.get_num_threads()))
    run_rows = [{"run_id": r.id, "config_json": json.dumps(r.config, sort_keys=True), "status": "ok", "diverged_epoch": None,
                 "error": None, "population": r.population_key, "population_size": len(runs), "steps": 0,
                 "wall_s": wall / len(runs), "finished": _now(), "env_json": env} for r in runs]
    epoch_rows = [{"run_id": r.id, "epoch": cfg["training"]["epochs"], **m} for r, m in zip(runs, metrics)]
    return run_rows, epoch_rows, [], evals


def _failed_rows(runs: list[Run], error: str) -> list[dict]:
    return [{"run_id": r.id, "config_json": json.dumps(r.config, sort_keys=True), "status": "failed",
             "diverged_epoch": None, "error": error, "population": r.population_key, "population_size": len(runs),
             "steps": 0, "wall_s": 0.0, "finished": _now(), "env_json": None} for r in runs]


def _now():
    from ponder.store import _now as now

    return now()


@dataclass
class ChunkResult:
    """One trained chunk as an executor hands it back: its rows, or the error that stopped it."""

    runs: list[Run]
    rows: tuple[list[dict], list[dict], list[dict]] | None = None
    error: str | None = None


class Executor(Protocol):
    """Where chunks are trained. :func:`run_study` plans, skips and writes; an executor only trains.

    ``train`` yields one :class:`ChunkResult` per chunk, in any order, as each finishes; it never
    touches the store. A :class:`PonderError` (bad data, a bad setting) stops the study; any other
    failure becomes the chunk's ``error``.
    """

    slots: int  # chunks it can train at once; populations are split to give each slot work

    def device(self, requested: str) -> str: ...

    def budget(self, device: str) -> int: ...

    def train(self, chunks: list[list[Run]], *, device: str) -> Iterator[ChunkResult]: ...


class LocalExecutor:
    """Trains chunks one after another in this process."""

    slots = 1

    def device(self, requested: str) -> str:
        return resolve_device(requested)

    def budget(self, device: str) -> int:
        return memory_budget(device)

    def train(self, chunks: list[list[Run]], *, device: str) -> Iterator[ChunkResult]:
        for chunk in chunks:
            try:
                rows = train_chunk(chunk, device=device)
            except (KeyboardInterrupt, PonderError):
                raise
            except Exception as exc:  # a crash in one population must not lose the others
                yield ChunkResult(chunk, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
                continue
            yield ChunkResult(chunk, rows)


def plan_chunks(pending: list[Run], *, budget: int, slots: int = 1) -> tuple[list[list[Run]], int]:
    """Split the pending runs into chunks: populations, cut to the memory budget, and cut further
    so that ``slots`` executors each get work (a population's share of the slots is its share of
    the runs). With one slot, only the memory budget cuts. Returns (chunks, number of populations).
    """
    pops = populations(pending)
    chunks = []
    for pop in pops:
        layers, _ = _layers_for(pop.runs[0].config)
        n = len(pop.runs)
        size = min(chunk_size(layers, pop.runs[0].config, budget), math.ceil(n / math.ceil(slots * n / len(pending))))
        chunks += [pop.runs[start:start + size] for start in range(0, n, size)]
    return chunks, len(pops)


def run_study(study: Study, store: Store, *, device: str = "cpu", memory: int | None = None, quick: bool = False,
              force: bool = False, progress: Callable[[int, int], None] | None = None,
              executor: Executor | None = None) -> StudyRun:
    """Train every run of ``study`` that ``store`` does not have yet, writing each chunk as it finishes.

    Args:
        memory: Memory budget in bytes for one chunk (default: the executor's, see :func:`memory_budget`).
        progress: Called with (runs finished so far, runs pending in total) after each chunk.
        executor: Where chunks train (default: :class:`LocalExecutor`, in this process). Only this
            function writes the store, whatever the executor.
    """
    t0 = time.perf_counter()
    executor = executor or LocalExecutor()
    device = executor.device(device)
    runs = expand(study)
    check_plan(study, runs, force=force)
    store.save_plan(name=study.name, question=study.question, spec=study.model_dump(), source=study.source,
                    quick=quick, runs=runs)
    done = store.finished([r.id for r in runs])
    pending = [r for r in runs if r.id not in done]
    chunks, n_pops = plan_chunks(pending, budget=memory if memory is not None else executor.budget(device),
                                 slots=executor.slots) if pending else ([], 0)
    finished = failed = 0
    errors: dict[str, int] = {}
    for res in executor.train(chunks, device=device):
        if res.error is not None:
            store.save_population(_failed_rows(res.runs, res.error), [], [])
            failed += len(res.runs)
            first = res.error.splitlines()[0] if res.error else "unknown error"
            errors[first] = errors.get(first, 0) + len(res.runs)
        else:
            store.save_population(*res.rows)
        finished += len(res.runs)
        if progress is not None:
            progress(finished, len(pending))
    statuses = store.runs(study.name)["status"].value_counts().to_dict()
    return StudyRun(len(runs), len(runs) - len(pending), len(pending) - failed, failed, n_pops,
                    time.perf_counter() - t0, statuses, errors)
