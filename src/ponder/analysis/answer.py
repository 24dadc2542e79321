"""The answer sentence: computed from the analysis, stating its scope, never typed."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ponder.analysis.stats import Comparison

__all__ = ["answer_sentence", "scope"]

ALPHA = 0.05


def _fmt(metric: str, v: float) -> str:
    return f"{100 * v:.1f}%" if metric == "accuracy" else f"{v:.3f}"


def scope(spec: dict[str, Any], chosen: pd.DataFrame) -> str:
    """The protocol in words: data, model, optimizer, learning rate, epochs, seeds."""
    ds, m, t = spec["dataset"], spec["model"], spec["training"]
    data = ds["name"] + (f" ({ds['train_size']} training examples)" if ds.get("train_size") else "")
    if ds.get("label_noise"):
        data += f" with {100 * ds['label_noise']:.0f}% corrupted labels"
    factors = spec.get("factors", {})
    depth = "depth varied" if "model.depth" in factors else f"{m['depth']} hidden layer{'' if m['depth'] == 1 else 's'}"
    width = "width varied" if "model.width" in factors else f"width {m['width']}"
    article = "an" if m["arch"][:1] in "aefhilmnorsx" else "a"  # initialisms: "an mlp", "a cnn1d"
    arch = "models of each architecture" if "model.arch" in factors else f"{article} {m['arch']}"
    model = f"{arch} ({depth}, {width})"
    tune = spec.get("tune", {})
    search = {k: v for k, v in spec.get("search", {}).items() if k not in ("draws", "seed")}
    if search:
        names = ", ".join(k.split(".", 1)[1].replace("lr", "learning rate").replace("_", " ") for k in search)
        lr = (f"{names} tuned per arm by random search ({spec['search']['draws']} draws shared by all arms, "
              "best on the validation split)")
    elif "training.lr" in tune:
        grid = ", ".join(f"{v:g}" for v in tune["training.lr"])
        lr = f"learning rate tuned per arm on the validation split over {{{grid}}}"
    elif "training.lr" in factors:
        lr = "learning rate as a factor"
    else:
        lr = f"fixed learning rate {t['lr']:g}"
    seeds = int(chosen.groupby("arm")["seed"].nunique().min())
    optimizer = "each optimizer" if "training.optimizer" in factors else t["optimizer"]
    loss = "each loss" if "training.loss" in factors else t["loss"]
    return (f"on {data}, {model} trained with {optimizer} and {loss} for {t['epochs']} epochs, "
            f"{lr}, {seeds} seeds per arm")


def answer_sentence(spec: dict[str, Any], metric: str, arms: list, ref: Any, comps: list[Comparison],
                    chosen: pd.DataFrame, ropes: dict | None = None, ranking: Any = None) -> str:
    """One paragraph: the best arm, which arms are worse with significance, which are not."""
    what = "test accuracy" if metric == "accuracy" else "test loss"
    best = ref
    ci = "" if best.test.lo != best.test.lo else f", 95% CI {_fmt(metric, best.test.lo)} to {_fmt(metric, best.test.hi)}"
    head = f"{scope(spec, chosen)[0].upper()}{scope(spec, chosen)[1:]}: '{best.arm}' "
    head += ("gives the best " if best.rank == 1 else "(the reference) gives ") + f"{what} ({_fmt(metric, best.test.mean)}{ci})."
    sig = [c for c in comps if c.p_holm == c.p_holm and c.p_holm < ALPHA]
    ns = [c for c in comps if not (c.p_holm == c.p_holm and c.p_holm < ALPHA)]
    parts = [head]
    if comps:
        if sig:
            worst = sorted(sig, key=lambda c: c.diff)
            lst = "; ".join(f"'{c.other}' by {abs(100 * c.diff) if metric == 'accuracy' else abs(c.diff):.1f}"
                            f"{' points' if metric == 'accuracy' else ''}" for c in worst[:4])
            more = f" and {len(sig) - 4} more" if len(sig) > 4 else ""
            parts.append(f"{len(sig)} of {len(comps)} other arms differ significantly from it "
                         f"(paired t-test over seeds, Holm-corrected p < {ALPHA}): {lst}{more}.")
        else:
            parts.append(f"None of the {len(comps)} other arms differs significantly from it "
                         f"(paired t-test over seeds, Holm-corrected p < {ALPHA}).")
        if ns and sig:
            names = ", ".join(f"'{c.other}'" for c in ns[:5]) + (f" and {len(ns) - 5} more" if len(ns) > 5 else "")
            parts.append(f"Not distinguishable from it: {names}.")
    if ropes:
        eq = [k for k, r in ropes.items() if r.verdict == "equivalent"]
        rope_pts = 100 * next(iter(ropes.values())).rope
        if eq:
            parts.append(f"Practically equivalent to it (Bayesian signed-rank test, P(|difference| < {rope_pts:g} points) >= 0.95): "
                         + ", ".join(f"'{e}'" for e in eq[:5]) + (f" and {len(eq) - 5} more" if len(eq) > 5 else "") + ".")
        else:
            parts.append(f"No other arm is shown practically equivalent to it (within {rope_pts:g} points, Bayesian signed-rank test).")
    if ranking is not None:
        order = sorted(ranking.mean_ranks, key=ranking.mean_ranks.get)
        parts.append(f"Over {ranking.n_blocks} blocks, Friedman's test {'rejects' if ranking.p_value < ALPHA else 'does not reject'} "
                     f"equal ranks (p = {ranking.p_value:.2g}); best mean ranks: "
                     + ", ".join(f"'{o}' {ranking.mean_ranks[o]:.2f}" for o in order[:3])
                     + f" (Nemenyi critical difference {ranking.cd:.2f}).")
    diverged = sum(a.n_diverged for a in arms)
    chance = sum(a.n_chance for a in arms)
    total = sum(a.n_runs for a in arms)
    parts.append(f"Of the {total} runs at the chosen settings, {diverged} diverged and {chance} did not train "
                 f"(test accuracy within 5 points of chance).")
    return " ".join(parts)
