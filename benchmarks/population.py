"""Population training vs the loop a user would write, side by side in one process.

    python benchmarks/population.py            # the full table (several minutes on 2 cores)
    python benchmarks/population.py --quick    # a smaller grid

For each workload (MLPs of width 32, 100, 256 at depth 2 and 8 on MNIST-1D, and a small 1-D
CNN) and each population size N, it measures:
- the baseline: N models trained one after another with nn.Module + torch.optim (SGD with
  momentum), minibatches indexed from one tensor. For large N the baseline is timed on the
  first `--base-models` models and its rate extrapolated (sequential runs are independent;
  the table says how many were timed);
- ponder's engine: the same N models as one population, the same data and number of steps;
- the machine's float32 matmul peak (a large sgemm with all threads).
It reports model-steps/s, achieved GFLOP/s (forward + backward = 3x the forward FLOPs),
the fraction of the peak, the engine's tensor memory and the ratio ponder/baseline, checks
that both sides reach the same accuracy, and writes JSON and Markdown to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ponder import registry
from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build, flops_per_example, param_count
from ponder.rng import rng_for
from ponder.train.dense import dense_step, is_dense
from ponder.train.engine import forward, init_population
from ponder.train.optim import flatten, opt_init, opt_step

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 64
LR, MOMENTUM = 0.05, 0.9


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of a large float32 matmul with all intra-op threads."""
    a = torch.randn(n, n, generator=rng_for(0, "bench-a"))
    b = torch.randn(n, n, generator=rng_for(0, "bench-b"))
    for _ in range(2):
        a @ b
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _baseline_net(arch: str, width: int, depth: int, sample_shape, n_classes: int) -> nn.Module:
    mods: list[nn.Module] = []
    if arch == "mlp":
        d = math.prod(sample_shape)
        mods.append(nn.Flatten())
        for _ in range(depth):
            mods += [nn.Linear(d, width), nn.ReLU()]
            d = width
        mods.append(nn.Linear(d, n_classes))
    else:
        c, n = sample_shape
        for _ in range(depth):
            mods += [nn.Conv1d(c, width, 5, stride=2, padding=2), nn.ReLU()]
            c, n = width, (n + 4 - 5) // 2 + 1
        mods += [nn.Flatten(), nn.Linear(c * n, n_classes)]
    return nn.Sequential(*mods)


def baseline(arch, width, depth, pool, n_models: int, steps: int, seed0: int = 0) -> tuple[float, list[nn.Module]]:
    """Seconds to train n_models one after another for `steps` steps each; returns the trained nets too."""
    x = torch.as_tensor(pool.x_train)
    y = torch.as_tensor(pool.y_train)
    nets, total = [], 0.0
    for m in range(n_models):
        torch.manual_seed(seed0 + m)  # the user's loop: global seeding, as in most training scripts
        net = _baseline_net(arch, width, depth, pool.sample_shape, pool.n_classes)
        opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
        order = torch.randint(0, len(x), (steps, BATCH), generator=rng_for(m, "bench-order"))
        t = time.perf_counter()
        for s in range(steps):
            idx = order[s]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        total += time.perf_counter() - t
        nets.append(net)
    return total, nets


def ponder_population(arch, width, depth, pool, n_models: int, steps: int):
    """Seconds for ponder's engine to train n_models together for `steps` steps; returns (seconds, params, layers, bytes)."""
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=depth, width=width, kernel_size=5)
    params = init_population(layers, [("torch.default", {})] * n_models, [rng_for(m, "init") for m in range(n_models)],
                             torch.float32)
    flat = flatten(params)
    params = flat.views
    leaves = [t for pair in params for t in pair]
    state = opt_init("momentum", flat.data)
    lr = flat.per_element(torch.full((n_models,), LR))
    grad_buf = torch.zeros_like(flat.data)
    grad_views = flat.grad_views(grad_buf)
    fast = is_dense(layers)
    x = torch.as_tensor(pool.x_train)
    y = torch.as_tensor(pool.y_train)
    loss_fn = registry.get("loss", "cross_entropy").fn
    orders = torch.stack([torch.randint(0, len(x), (steps, BATCH), generator=rng_for(m, "bench-order"))
                          for m in range(n_models)], 1)  # (steps, M, B)
    t = time.perf_counter()
    for s in range(steps):
        idx = orders[s]
        if fast:
            dense_step(params, grad_views, layers, x[idx], y[idx], act=torch.relu, act_name="relu", loss_fn=loss_fn)
            grad = grad_buf
        else:
            logits = forward(params, layers, x[idx], torch.relu)
            per_model = loss_fn(logits, y[idx]).mean(1)
            grad = flat.flat_grad(torch.autograd.grad(per_model.sum(), leaves))
        opt_step(state, flat.data, grad, lr=lr, weight_decay=None, momentum=MOMENTUM)
    seconds = time.perf_counter() - t
    nbytes = flat.data.numel() * flat.data.element_size() * 4  # parameters, gradients, momentum, learning rates
    return seconds, params, layers, nbytes


@torch.no_grad()
def _accuracy_baseline(nets, pool) -> float:
    x, y = torch.as_tensor(pool.x_test), torch.as_tensor(pool.y_test)
    return sum(float((n(x).argmax(1) == y).float().mean()) for n in nets) / len(nets)


@torch.no_grad()
def _accuracy_ponder(params, layers, pool, m: int) -> float:
    x, y = torch.as_tensor(pool.x_test), torch.as_tensor(pool.y_test)
    logits = forward(params, layers, x.unsqueeze(0).expand(m, *x.shape), torch.relu)
    return float((logits.argmax(-1) == y).float().mean())


def accuracy_check(pool, steps: int = 600, n: int = 8) -> dict:
    """Both sides train the same 8 MLPs (100-100, 600 steps) and must reach the same mean test accuracy."""
    _, nets = baseline("mlp", 100, 2, pool, n, steps)
    _, params, layers, _ = ponder_population("mlp", 100, 2, pool, n, steps)
    a, b = _accuracy_baseline(nets, pool), _accuracy_ponder(params, layers, pool, n)
    return {"baseline_test_acc": a, "ponder_test_acc": b, "difference_points": 100 * (b - a), "ok": abs(b - a) < 0.02}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    pool = load_pool("mnist1d")
    peak = matmul_peak()
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s with {torch.get_num_threads()} threads", flush=True)
    workloads = [("mlp", 32, 2), ("mlp", 32, 8), ("mlp", 100, 2), ("mlp", 100, 8), ("mlp", 256, 2), ("mlp", 256, 8),
                 ("cnn1d", 25, 3)]
    sizes = [1, 8, 32, 128, 512]
    if args.quick:
        workloads = [("mlp", 32, 2), ("mlp", 100, 2), ("mlp", 256, 8), ("cnn1d", 25, 3)]
        sizes = [1, 32, 128]
    rows = []
    for arch, width, depth in workloads:
        layers = build(arch, pool.sample_shape, pool.n_classes, depth=depth, width=width, kernel_size=5)
        flops_step = 3 * flops_per_example(layers) * BATCH  # forward + backward, one model, one step
        base_cache: dict[int, float] = {}
        baseline(arch, width, depth, pool, 1, 10)  # warm-up: allocator, thread pool, kernel selection
        ponder_population(arch, width, depth, pool, 4, 3)
        for n in sizes:
            steps = max(5, min(args.steps, int(args.budget_flop / (flops_step * n))))
            k = min(n, args.base_models)
            if k not in base_cache:
                secs, _ = baseline(arch, width, depth, pool, k, steps)
                base_cache[k] = k * steps / secs  # model-steps per second
            base_rate = base_cache[k]
            secs, _, _, nbytes = ponder_population(arch, width, depth, pool, n, steps)
            rate = n * steps / secs
            row = {"arch": arch, "width": width, "depth": depth, "params": param_count(layers), "N": n, "steps": steps,
                   "baseline_model_steps_s": base_rate, "baseline_models_timed": k, "ponder_model_steps_s": rate,
                   "ratio": rate / base_rate, "baseline_gflops": base_rate * flops_step / 1e9,
                   "ponder_gflops": rate * flops_step / 1e9, "ponder_peak_fraction": rate * flops_step / 1e9 / peak,
                   "ponder_state_mb": nbytes / 2**20}
            rows.append(row)
            print(f"{arch:5s} w{width:<3d} d{depth} N={n:<3d} base {base_rate:8.0f}/s ponder {rate:9.0f}/s  x{row['ratio']:5.2f}  "
                  f"{row['ponder_gflops']:6.1f} GFLOP/s ({100 * row['ponder_peak_fraction']:4.1f}% of peak)", flush=True)
    acc = accuracy_check(pool)
    print(f"accuracy check (8 MLPs 40-100-100-10, 600 steps): baseline {100 * acc['baseline_test_acc']:.1f}%, "
          f"ponder {100 * acc['ponder_test_acc']:.1f}% -> {'same' if acc['ok'] else 'DIFFERENT'}", flush=True)
    return {"machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "matmul_peak_gflops": peak}, "batch": BATCH, "rows": rows, "accuracy": acc}


def targets(res: dict) -> list[str]:
    out = []
    small = [r for r in res["rows"] if r["arch"] == "mlp" and r["width"] <= 100 and r["N"] >= 32]
    if small:
        worst = min(small, key=lambda r: r["ratio"])
        out.append(f"ratio >= 5x at width <= 100, N >= 32: worst x{worst['ratio']:.2f} (w{worst['width']} d{worst['depth']} N={worst['N']}) "
                   f"-> {'met' if worst['ratio'] >= 5 else 'NOT met'}")
    one = [r for r in res["rows"] if r["N"] == 1]
    if one:
        worst = min(one, key=lambda r: r["ratio"])
        out.append(f"ratio >= 0.9x at N = 1: worst x{worst['ratio']:.2f} ({worst['arch']} w{worst['width']} d{worst['depth']}) "
                   f"-> {'met' if worst['ratio'] >= 0.9 else 'NOT met'}")
    wide = [r for r in res["rows"] if r["arch"] == "mlp" and r["width"] >= 128 and r["N"] >= 32]
    if wide:
        worst = min(wide, key=lambda r: r["ponder_peak_fraction"])
        out.append(f">= 70% of matmul peak at width >= 128, N >= 32: worst {100 * worst['ponder_peak_fraction']:.0f}% "
                   f"(w{worst['width']} d{worst['depth']} N={worst['N']}) -> {'met' if worst['ponder_peak_fraction'] >= 0.7 else 'NOT met'}")
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# Population benchmark", "", f"{m['platform']}, torch {m['torch']}, {m['threads']} threads, "
             f"float32 matmul peak {m['matmul_peak_gflops']:.1f} GFLOP/s, batch {res['batch']}.", "",
             "| model | params | N | steps | baseline model-steps/s (models timed) | ponder model-steps/s | ratio | ponder GFLOP/s | % of peak | ponder state MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['arch']} w{r['width']} d{r['depth']} | {r['params']} | {r['N']} | {r['steps']} | "
                     f"{r['baseline_model_steps_s']:.0f} ({r['baseline_models_timed']}) | {r['ponder_model_steps_s']:.0f} | "
                     f"{r['ratio']:.2f} | {r['ponder_gflops']:.1f} | {100 * r['ponder_peak_fraction']:.1f} | {r['ponder_state_mb']:.1f} |")
    a = res["accuracy"]
    lines += ["", f"Accuracy check: baseline {100 * a['baseline_test_acc']:.1f}%, ponder {100 * a['ponder_test_acc']:.1f}% "
              f"({a['difference_points']:+.1f} points).", "", "Targets:", ""] + [f"- {t}" for t in targets(res)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--steps", type=int, default=30, help="steps per cell (fewer for the biggest cells)")
    ap.add_argument("--budget-flop", type=float, default=4e11, help="FLOPs per cell, to bound the big cells")
    ap.add_argument("--base-models", type=int, default=8, help="baseline models timed before extrapolating")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    res = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "quick" if args.quick else "full"
    (out / f"population_{tag}.json").write_text(json.dumps(res, indent=2))
    md = markdown(res)
    (out / f"population_{tag}.md").write_text(md)
    print("\n" + "\n".join(targets(res)))
    print(f"written: {out / f'population_{tag}.md'}")


if __name__ == "__main__":
    main()
