"""End to end: a study trained through ``run_study`` into a store, against the engine alone.

    python benchmarks/end_to_end.py        # prints the row; population.py adds it to its results

The study: 32 runs (32 seeds) of an MLP of width 100 and depth 2 on MNIST-1D (3200 training
examples), momentum SGD, batch 100, 20 epochs: 32 x 20 x 32 = 20480 model-steps. Its rate is
those model-steps over the wall time of the ``run_study`` call alone (planning, data, training,
evaluation, evals, writing a temporary DuckDB store). The engine's rate is ``train_population``
called directly on the same population (same data, shapes, settings), evaluating only what it
always evaluates (epoch 0 and the last epoch) and without layer probes. The study evaluates
with ``[evaluate] every = 5`` and ``train_subset = 1000`` (the learning curve every 5 epochs,
training metrics on 1000 examples; the last epoch in full, as always); the same study with the
defaults (every epoch, in full, probes every epoch) is measured too.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

EPOCHS, SEEDS, WIDTH, DEPTH, BATCH = 20, 32, 100, 2, 100
SETTINGS = {"every": 5, "train_subset": 1000}  # the row's [evaluate] table


def _study(evaluate: dict):
    from ponder.study.spec import parse_study

    return parse_study({
        "name": "bench-end-to-end", "question": "How fast does a study of 32 small MLPs train end to end?",
        "seeds": SEEDS, "dataset": {"name": "mnist1d", "val_fraction": 0.2},
        "model": {"arch": "mlp", "depth": DEPTH, "width": WIDTH, "activation": "relu", "initializer": "torch.default"},
        "training": {"optimizer": "momentum", "lr": 0.05, "momentum": 0.9, "epochs": EPOCHS, "batch_size": BATCH},
        "evaluate": evaluate}, origin="<benchmark>")


def study_rate(evaluate: dict) -> tuple[float, int]:
    """(model-steps/s of one run_study call into a fresh temporary store, model-steps trained)."""
    from ponder.runner import run_study
    from ponder.store import Store

    study = _study(evaluate)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        t = time.perf_counter()
        res = run_study(study, store)
        secs = time.perf_counter() - t
        steps = _steps(store, study.name)
        store.con.close()
    assert res.failed == 0, res
    return steps / secs, steps


def _steps(store, name: str) -> int:
    return int(store.runs(name)["steps"].sum()) if "steps" in store.runs(name) else SEEDS * EPOCHS * _steps_per_epoch()


def _steps_per_epoch() -> int:
    from ponder.catalog.datasets import load_pool

    n_train = int(len(load_pool("mnist1d").x_train) * 0.8)
    return -(-n_train // BATCH)


def engine_rate() -> float:
    """Model-steps/s of train_population alone on the study's population."""
    from ponder.catalog.datasets import load_pool
    from ponder.catalog.models import build
    from ponder.train import ModelSettings, prepare_data, train_population
    from ponder.train.loop import EvalSchedule

    pool = load_pool("mnist1d")
    layers = build("mlp", pool.sample_shape, pool.n_classes, depth=DEPTH, width=WIDTH, kernel_size=5)
    models = [ModelSettings(s, 0.05, 0.0, "torch.default", {}, 0.0) for s in range(SEEDS)]
    data = prepare_data(pool, seeds=list(range(SEEDS)), label_noise=[0.0] * SEEDS, val_fraction=0.2, train_size=None,
                        dtype=torch.float32)
    t = time.perf_counter()
    recs = train_population(layers, models, data, activation="relu", loss="cross_entropy", optimizer="momentum",
                            momentum=0.9, epochs=EPOCHS, batch_size=BATCH, probes=False, schedule=EvalSchedule(every=EPOCHS))
    secs = time.perf_counter() - t
    return SEEDS * recs[0].steps / secs


def measure(reps: int = 3) -> dict:
    """The end-to-end row: medians of ``reps`` alternating measurements of each side."""
    engine_rate()  # warm-up: data cache, allocator, thread pool
    eng, study, default = [], [], []
    for _ in range(reps):
        eng.append(engine_rate())
        study.append(study_rate(SETTINGS)[0])
        default.append(study_rate({})[0])
    e, s, d = statistics.median(eng), statistics.median(study), statistics.median(default)
    return {"engine_model_steps_s": e, "study_model_steps_s": s, "fraction": s / e,
            "study_evaluate": dict(SETTINGS), "default_evaluate_model_steps_s": d, "default_evaluate_fraction": d / e,
            "population": f"{SEEDS} MLPs w{WIDTH} d{DEPTH}, MNIST-1D, batch {BATCH}, {EPOCHS} epochs", "reps": reps}


def markdown(row: dict) -> list[str]:
    ev = ", ".join(f"{k} = {v}" for k, v in row["study_evaluate"].items())
    return ["", f"End to end ({row['population']}; medians of {row['reps']}):", "",
            "| measured | model-steps/s | fraction of the engine |", "|---|---|---|",
            f"| engine: train_population alone (evaluation at epoch 0 and the last only, no probes) | "
            f"{row['engine_model_steps_s']:.0f} | 1.00 |",
            f"| study: run_study into a temporary store, [evaluate] {ev} | {row['study_model_steps_s']:.0f} | "
            f"{row['fraction']:.2f} |",
            f"| study: run_study, default [evaluate] (every epoch, in full, probes) | "
            f"{row['default_evaluate_model_steps_s']:.0f} | {row['default_evaluate_fraction']:.2f} |"]


if __name__ == "__main__":
    r = measure()
    print("\n".join(markdown(r)))
