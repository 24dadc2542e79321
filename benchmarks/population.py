"""Population training vs the loop a user would write, side by side in one process.

    python benchmarks/population.py            # the full table (several minutes on 2 cores)
    python benchmarks/population.py --quick    # a smaller grid
    python benchmarks/population.py --only cnn1d,cnn2d --no-end-to-end   # some workloads, merged into the file

For each workload (MLPs of width 32, 100, 256 at depth 2 and 8 on MNIST-1D, a small 1-D CNN on
MNIST-1D and small 2-D CNNs on the digits images) and each population size N, it measures:
- the baseline: N models trained one after another with nn.Module + torch.optim (SGD with
  momentum), minibatches indexed from one tensor. For large N the baseline is timed on the
  first `--base-models` models and its rate extrapolated (sequential runs are independent;
  the table says how many were timed);
- ponder's engine: the same N models as one population, the same data and number of steps, on
  the path ``train_step`` takes (the hand-written backward of train/dense.py or train/conv.py and
  the fused optimizer); for CNNs also through autograd, the path the hand-written one replaced;
- the machine's float32 matmul peak (a large sgemm with all threads).
It reports model-steps/s, achieved GFLOP/s (forward + backward = 3x the forward FLOPs),
the fraction of the peak, the engine's tensor memory and the ratio ponder/baseline, checks
that both sides reach the same accuracy, measures a study end to end against the engine
(benchmarks/end_to_end.py), and writes JSON (merged into the existing file) and Markdown to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ponder import registry
from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build, flops_per_example, param_count
from ponder.rng import rng_for
from ponder.train.conv import conv_step, is_conv
from ponder.train.dense import dense_step, is_dense
from ponder.train.engine import forward, init_population
from ponder.train.fused import fused_opt_step
from ponder.train.optim import flatten, opt_init, opt_step

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 64
LR, MOMENTUM = 0.05, 0.9
KERNEL = {"mlp": 0, "cnn1d": 5, "cnn2d": 3}
DATASET = {"mlp": "mnist1d", "cnn1d": "mnist1d", "cnn2d": "digits"}  # digits: the built-in images (1 x 8 x 8)


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
    else:  # the same layers as ponder's cnn1d / cnn2d: stride 2, padding k // 2
        k, conv = KERNEL[arch], (nn.Conv1d if arch == "cnn1d" else nn.Conv2d)
        c, *spatial = sample_shape
        for _ in range(depth):
            mods += [conv(c, width, k, stride=2, padding=k // 2), nn.ReLU()]
            c, spatial = width, [(n + 2 * (k // 2) - k) // 2 + 1 for n in spatial]
        mods += [nn.Flatten(), nn.Linear(c * math.prod(spatial), n_classes)]
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


def ponder_population(arch, width, depth, pool, n_models: int, steps: int, *, fast_path: bool = True):
    """Seconds for ponder's engine to train n_models together for `steps` steps; returns (seconds, params, layers, bytes).

    The step is the one ``train_step`` dispatches to: the hand-written backward for MLPs
    (train/dense.py) and CNNs (train/conv.py), else autograd (also with ``fast_path=False``).
    """
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=depth, width=width, kernel_size=KERNEL[arch])
    params = init_population(layers, [("torch.default", {})] * n_models, [rng_for(m, "init") for m in range(n_models)],
                             torch.float32)
    flat = flatten(params)
    params = flat.views
    leaves = [t for pair in params for t in pair]
    state = opt_init("momentum", flat.data)
    lr = flat.per_element(torch.full((n_models,), LR))
    grad_buf = torch.zeros_like(flat.data)
    grad_views = flat.grad_views(grad_buf)
    step_fn = (dense_step if is_dense(layers) else conv_step if is_conv(layers) else None) if fast_path else None
    x = torch.as_tensor(pool.x_train)
    y = torch.as_tensor(pool.y_train)
    loss_fn = registry.get("loss", "cross_entropy").fn
    orders = torch.stack([torch.randint(0, len(x), (steps, BATCH), generator=rng_for(m, "bench-order"))
                          for m in range(n_models)], 1)  # (steps, M, B)
    t = time.perf_counter()
    for s in range(steps):
        idx = orders[s]
        if step_fn is not None:
            step_fn(params, grad_views, layers, x[idx], y[idx], act=torch.relu, act_name="relu", loss_fn=loss_fn)
            grad = grad_buf
        else:
            logits = forward(params, layers, x[idx], torch.relu)
            per_model = loss_fn(logits, y[idx]).mean(1)
            grad = flat.flat_grad(torch.autograd.grad(per_model.sum(), leaves))
        if step_fn is not None:
            fused_opt_step(state, flat, grad, lr=lr, weight_decay=None, momentum=MOMENTUM)  # as train_step does
        else:
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


WORKLOADS = [("mlp", 32, 2), ("mlp", 32, 8), ("mlp", 100, 2), ("mlp", 100, 8), ("mlp", 256, 2), ("mlp", 256, 8),
             ("cnn1d", 25, 3), ("cnn2d", 16, 2), ("cnn2d", 32, 3)]
QUICK = [("mlp", 32, 2), ("mlp", 100, 2), ("mlp", 256, 8), ("cnn1d", 25, 3), ("cnn2d", 16, 2)]


def workload_rows(arch, width, depth, pool, sizes, args) -> list[dict]:
    """One row per population size: baseline, ponder (the fast path train_step takes), and for CNNs autograd too.

    Each of the ``--repeat`` rounds measures the matmul peak and the sides back to back (a burst of
    load from another process, or the machine's speed drifting over a long run, then hits all of
    them); the row holds the medians, and its fraction of the peak is the median over rounds of
    that round's rate against that round's peak.
    """
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=depth, width=width, kernel_size=KERNEL[arch])
    flops_step = 3 * flops_per_example(layers) * BATCH  # forward + backward, one model, one step
    baseline(arch, width, depth, pool, 1, 10)  # warm-up: allocator, thread pool, kernel selection
    ponder_population(arch, width, depth, pool, 4, 3)
    rows = []
    for n in sizes:
        steps = max(5, min(args.steps, int(args.budget_flop / (flops_step * n))))
        k = min(n, args.base_models)
        rates: dict[str, list[float]] = {"base": [], "ponder": [], "autograd": [], "peak": [], "fraction": []}
        for _ in range(args.repeat):  # one population alive at a time (the largest take GBs)
            rates["peak"].append(matmul_peak(reps=5))
            rates["base"].append(k * steps / baseline(arch, width, depth, pool, k, steps)[0])
            secs, _, _, nbytes = ponder_population(arch, width, depth, pool, n, steps)
            rates["ponder"].append(n * steps / secs)
            rates["fraction"].append(n * steps / secs * flops_step / 1e9 / rates["peak"][-1])
            if arch != "mlp":  # the autograd path (grouped convolutions) the hand-written one replaced
                rates["autograd"].append(n * steps / ponder_population(arch, width, depth, pool, n, steps, fast_path=False)[0])
        base_rate, rate = statistics.median(rates["base"]), statistics.median(rates["ponder"])
        row = {"arch": arch, "width": width, "depth": depth, "dataset": DATASET[arch], "params": param_count(layers), "N": n,
               "steps": steps, "baseline_model_steps_s": base_rate, "baseline_models_timed": k, "ponder_model_steps_s": rate,
               "ratio": rate / base_rate, "baseline_gflops": base_rate * flops_step / 1e9,
               "ponder_gflops": rate * flops_step / 1e9, "ponder_peak_fraction": statistics.median(rates["fraction"]),
               "matmul_peak_gflops": statistics.median(rates["peak"]), "ponder_state_mb": nbytes / 2**20}
        if rates["autograd"]:
            row["autograd_model_steps_s"] = statistics.median(rates["autograd"])
            row["autograd_ratio"] = row["autograd_model_steps_s"] / base_rate
        rows.append(row)
        extra = f"  autograd x{row['autograd_ratio']:5.2f}" if "autograd_ratio" in row else ""
        print(f"{arch:5s} w{width:<3d} d{depth} N={n:<3d} base {base_rate:8.0f}/s ponder {rate:9.0f}/s  x{row['ratio']:5.2f}  "
              f"{row['ponder_gflops']:6.1f} GFLOP/s ({100 * row['ponder_peak_fraction']:4.1f}% of peak){extra}", flush=True)
    return rows


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s with {torch.get_num_threads()} threads", flush=True)
    workloads, sizes = (QUICK, [1, 32, 128]) if args.quick else (WORKLOADS, [1, 8, 32, 128, 512])
    if args.only:
        workloads = [w for w in workloads if any(f"{w[0]}-w{w[1]}-d{w[2]}".startswith(o) for o in args.only.split(","))]
    rows = []
    for arch, width, depth in workloads:
        rows += workload_rows(arch, width, depth, load_pool(DATASET[arch]), sizes, args)
    res = {"machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "matmul_peak_gflops": peak}, "batch": BATCH, "repeat": args.repeat, "rows": rows}
    if not args.only:
        acc = accuracy_check(load_pool("mnist1d"))
        print(f"accuracy check (8 MLPs 40-100-100-10, 600 steps): baseline {100 * acc['baseline_test_acc']:.1f}%, "
              f"ponder {100 * acc['ponder_test_acc']:.1f}% -> {'same' if acc['ok'] else 'DIFFERENT'}", flush=True)
        res["accuracy"] = acc
    if args.end_to_end:
        from end_to_end import measure

        res["end_to_end"] = e2e = measure(reps=max(3, args.repeat))
        print(f"end to end: study {e2e['study_model_steps_s']:.0f} vs engine {e2e['engine_model_steps_s']:.0f} model-steps/s "
              f"-> {e2e['fraction']:.2f}", flush=True)
    return res


def merge(old: dict, new: dict) -> dict:
    """The new results over the old file's: keys not measured now are kept; rows are replaced by workload and N."""
    key = lambda r: (r["arch"], r["width"], r["depth"], r["N"])  # noqa: E731
    fresh = {key(r) for r in new.get("rows", [])}
    rows = [r for r in old.get("rows", []) if key(r) not in fresh] + new.get("rows", [])
    order = {w: i for i, w in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: (order.get((r["arch"], r["width"], r["depth"]), len(order)), r["N"]))
    return {**old, **new, "rows": rows}


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
        out.append(f">= 50% of matmul peak at width >= 128, N >= 32: worst {100 * worst['ponder_peak_fraction']:.0f}% "
                   f"(w{worst['width']} d{worst['depth']} N={worst['N']}) -> {'met' if worst['ponder_peak_fraction'] >= 0.5 else 'NOT met'}")
    for arch in ("cnn1d", "cnn2d"):
        cnn = [r for r in res["rows"] if r["arch"] == arch and r["N"] >= 32]
        if cnn:
            worst = min(cnn, key=lambda r: r["ratio"])
            out.append(f"{arch} >= 4x at N >= 32: worst x{worst['ratio']:.2f} (w{worst['width']} d{worst['depth']} "
                       f"N={worst['N']}) -> {'met' if worst['ratio'] >= 4 else 'NOT met'}")
    if "end_to_end" in res:
        f = res["end_to_end"]["fraction"]
        out.append(f"end to end >= 0.7 of the engine: {f:.2f} -> {'met' if f >= 0.7 else 'NOT met'}")
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# Population benchmark", "", f"{m['platform']}, torch {m['torch']}, {m['threads']} threads, "
             f"float32 matmul peak {m['matmul_peak_gflops']:.1f} GFLOP/s at the start of the run, batch {res['batch']}, "
             f"medians of {res.get('repeat', 1)} measurements per cell. The peak is measured again before each "
             "measurement of a cell; a row's % of peak is the median over its measurements of the ponder rate against "
             "the peak measured just before it (the peak column: their median).", "",
             "| model | params | N | steps | baseline model-steps/s (models timed) | ponder model-steps/s | ratio | "
             "ponder GFLOP/s | peak GFLOP/s | % of peak | ponder state MB | CNN via autograd: ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        auto = f"{r['autograd_ratio']:.2f}" if "autograd_ratio" in r else ""
        lines.append(f"| {r['arch']} w{r['width']} d{r['depth']} | {r['params']} | {r['N']} | {r['steps']} | "
                     f"{r['baseline_model_steps_s']:.0f} ({r['baseline_models_timed']}) | {r['ponder_model_steps_s']:.0f} | "
                     f"{r['ratio']:.2f} | {r['ponder_gflops']:.1f} | {r['matmul_peak_gflops']:.0f} | "
                     f"{100 * r['ponder_peak_fraction']:.1f} | "
                     f"{r['ponder_state_mb']:.1f} | {auto} |")
    lines += ["", "MLPs and cnn1d on MNIST-1D (1 x 40); cnn2d on digits (1 x 8 x 8); CNN kernels 5 (1-D) and 3 x 3 (2-D), "
              "stride 2. The last column: the same CNN population through autograd on grouped convolutions."]
    if "accuracy" in res:
        a = res["accuracy"]
        lines += ["", f"Accuracy check: baseline {100 * a['baseline_test_acc']:.1f}%, ponder {100 * a['ponder_test_acc']:.1f}% "
                  f"({a['difference_points']:+.1f} points)."]
    if "end_to_end" in res:
        from end_to_end import markdown as e2e_markdown

        lines += e2e_markdown(res["end_to_end"])
    lines += ["", "Targets:", ""] + [f"- {t}" for t in targets(res)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--steps", type=int, default=30, help="steps per cell (fewer for the biggest cells)")
    ap.add_argument("--budget-flop", type=float, default=4e11, help="FLOPs per cell, to bound the big cells")
    ap.add_argument("--base-models", type=int, default=8, help="baseline models timed before extrapolating")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--repeat", type=int, default=3, help="measurements per cell; the table shows medians")
    ap.add_argument("--only", default="", help="comma-separated workload prefixes, e.g. cnn1d,mlp-w256 (rows merged into the file)")
    ap.add_argument("--no-end-to-end", dest="end_to_end", action="store_false", help="skip the end-to-end study row")
    args = ap.parse_args()
    res = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "quick" if args.quick else "full"
    path = out / f"population_{tag}.json"
    res = merge(json.loads(path.read_text()) if path.exists() else {}, res)
    path.write_text(json.dumps(res, indent=2))
    md = markdown(res)
    (out / f"population_{tag}.md").write_text(md)
    print("\n" + "\n".join(targets(res)))
    print(f"written: {out / f'population_{tag}.md'}")


if __name__ == "__main__":
    main()
