"""Study throughput: the local executor against the Ray executor on a local Ray instance.

    python benchmarks/ray_throughput.py                    # quickstart (quick) and quickstart, about 6 min on 2 cores
    python benchmarks/ray_throughput.py --study init --quick

Each study is run into fresh stores: with the local executor (this process, torch's default
threads, its data already loaded), then with the Ray executor on one local Ray instance with
every CPU of this machine (one CPU and one torch thread per task), first with cold workers (each
worker imports torch and ponder and builds its data) and then with warm ones. Local and warm Ray
take the best of ``--repeat`` runs (the machine may be shared); Ray's start-up is timed apart.
It prints runs/s side by side, checks that both executors wrote the same run ids and final test
accuracies, and writes Markdown to benchmarks/results/ray_throughput.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import ray
import torch

from ponder.api import load_study
from ponder.executors import open_executor
from ponder.runner import run_study
from ponder.study.checks import check_plan
from ponder.store import Store
from ponder.study.plan import expand

RESULTS = Path(__file__).resolve().parent / "results"


def _final(store: Store, name: str) -> dict[str, float]:
    ep = store.epochs(name)
    return ep.sort_values("epoch").groupby("run_id").tail(1).set_index("run_id")["test_acc"].sort_index().to_dict()


def _timed(study, folder: Path, label: str, executor) -> tuple[float, dict[str, float], int]:
    with Store(folder / f"{label}.duckdb") as st:
        t = time.perf_counter()
        res = run_study(study, st, executor=executor)
        wall = time.perf_counter() - t
        assert res.failed == 0, res.errors
        return wall, _final(st, study.name), res.populations


def bench(name: str, quick: bool, repeat: int) -> dict:
    study = load_study(name, quick=quick)
    check_plan(study, expand(study))  # loads the data into this process, as the planning of a real run does
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with open_executor("local") as ex:
            local = [_timed(study, folder, f"local{i}", ex) for i in range(repeat)]
        local_s, local_final, pops = min(l[0] for l in local), local[0][1], local[0][2]
        t = time.perf_counter()
        with open_executor("ray") as ex:  # starts the local instance; shut down on exit
            start_s = time.perf_counter() - t
            slots = ex.slots
            cold_s, ray_final, _ = _timed(study, folder, "ray_cold", ex)
            warm_s = min(_timed(study, folder, f"ray_warm{i}", ex)[0] for i in range(repeat))
    n = len(local_final)
    same = local_final == ray_final
    return {"study": name + (" --quick" if quick else ""), "runs": n, "populations": pops, "slots": slots,
            "local_s": local_s, "ray_start_s": start_s, "cold_s": cold_s, "warm_s": warm_s, "same": same}


def _table(rows: list[dict]) -> str:
    lines = ["| study | runs | populations | Ray tasks at once | local runs/s | Ray runs/s, cold workers | Ray runs/s, warm workers "
             "| Ray start-up s | warm Ray / local | same run ids and test accuracy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['study']} | {r['runs']} | {r['populations']} | {r['slots']} | {r['runs'] / r['local_s']:.2f} "
                     f"| {r['runs'] / r['cold_s']:.2f} | {r['runs'] / r['warm_s']:.2f} | {r['ray_start_s']:.1f} "
                     f"| {r['local_s'] / r['warm_s']:.2f}x | {'yes' if r['same'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", action="append", help="built-in study or .toml (repeatable)")
    ap.add_argument("--quick", action="store_true", help="apply the studies' [quick] overrides")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement, the best is kept (default 2)")
    args = ap.parse_args()
    plan = [(s, args.quick) for s in args.study] if args.study else [("quickstart", True), ("quickstart", False)]
    rows = [bench(name, quick, args.repeat) for name, quick in plan]
    head = (f"# Ray executor throughput\n\n{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads in the local executor), Ray {ray.__version__} (local instance, "
            "1 CPU and 1 torch thread per task).\n\n")
    text = head + _table(rows) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_throughput.md").write_text(text)


if __name__ == "__main__":
    main()
