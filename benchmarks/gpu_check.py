"""The GPU checks in one short script: CUDA results equal the CPU's in float64, and the quickstart runs on CUDA.

Run it on a machine with a CUDA build of torch (README, GPU)::

    python benchmarks/gpu_check.py            # about 2-5 minutes

It trains a small float64 study (MLP and 1-D CNN arms, SGD and Adam, dropout) once on the CPU and
once on CUDA, each into its own temporary store, and compares every per-epoch metric (|diff| <= 1e-9
expected: the same seeds give the same data, order, masks and initial weights on both devices);
then runs the quickstart study with --quick on CUDA (store gpu_check.duckdb, reports in
reports-gpu/) and prints its headline. Exit code 0 when everything agrees, 1 otherwise. `make bench` itself runs on
CUDA unchanged (`python benchmarks/population.py`), writing the same tables.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOL = 1e-9
STUDY = {
    "name": "gpu-check", "question": "Do CUDA and CPU give the same numbers?", "seeds": 2,
    "dataset": {"name": "mnist1d", "train_size": 400},
    "model": {"depth": 2, "width": 32, "activation": "tanh", "dropout": 0.1},
    "training": {"epochs": 3, "batch_size": 50, "dtype": "float64", "lr": 0.05},
    "factors": {"model.arch": ["mlp", "cnn1d"], "training.optimizer": ["sgd", "adam"]},
}


def _train(device: str, folder: Path):
    from ponder.runner import run_study
    from ponder.store import Store
    from ponder.study.spec import parse_study

    spec = parse_study(STUDY)
    with Store(folder / f"{device}.duckdb") as st:
        t0 = time.perf_counter()
        run_study(spec, st, device=device)
        wall = time.perf_counter() - t0
        return st.epochs(spec.name).sort_values(["run_id", "epoch"]).reset_index(drop=True), wall


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: this torch build sees no CUDA device; nothing to check")
        return 1
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        cpu, t_cpu = _train("cpu", Path(tmp))
        gpu, t_gpu = _train("cuda", Path(tmp))
    cols = [c for c in cpu.columns if c not in ("run_id", "epoch")]
    same_rows = cpu[["run_id", "epoch"]].equals(gpu[["run_id", "epoch"]])
    worst = float(np.nanmax(np.abs(cpu[cols].to_numpy(float) - gpu[cols].to_numpy(float)))) if same_rows else np.inf
    ok = same_rows and worst <= TOL
    print(f"float64 CPU vs CUDA: {len(cpu)} epoch rows, largest difference {worst:.3g} ({'ok' if ok else 'DIFFERENT'}); "
          f"wall CPU {t_cpu:.1f} s, CUDA {t_gpu:.1f} s")
    from ponder.cli import main as cli

    try:
        cli(["run", "quickstart", "--quick", "--device", "cuda", "--store", "gpu_check.duckdb", "--out", "reports-gpu"])
    except SystemExit as exc:
        ok = ok and not exc.code
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
