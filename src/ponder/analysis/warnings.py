"""Warnings a reader needs before trusting the answer: too few seeds, unfinished runs, tuning at the edge."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ponder.analysis.answer import CHANCE_MARGIN
from ponder.analysis.stats import wilcoxon_floor

if TYPE_CHECKING:
    from ponder.analysis.summary import Analysis, Context

__all__ = ["study_warnings", "edge_warnings"]


def _seeds(n: int) -> list[str]:
    if n >= 6:
        return []
    return [f"with {n} seed{'' if n == 1 else 's'} per arm an exact Wilcoxon signed-rank test cannot go below "
            f"p = {wilcoxon_floor(n):.4g}, so no comparison of two levels or two arms can be significant by its rank "
            "test at 0.05 and a paired t-test that rejects is at best suggestive (Friedman's test of three or more "
            "levels is not bound this way); use at least 6 seeds (8 or more recommended)"]


def edge_warnings(tune: dict[str, list], chosen_tuned: dict[str, dict]) -> list[str]:
    """Arms whose chosen value of a tuned setting sits at the edge of a grid of 3 or more values."""
    out = []
    for key, grid in tune.items():
        numeric = sorted(v for v in grid if isinstance(v, (int, float)) and not isinstance(v, bool))
        if len(numeric) < 3:
            continue
        for edge, word in ((numeric[0], "lowest"), (numeric[-1], "highest")):
            arms = [a for a, t in chosen_tuned.items() if t.get(key) == edge]
            if arms:
                names = ", ".join(f"'{a}'" for a in arms[:4]) + (f" and {len(arms) - 4} more" if len(arms) > 4 else "")
                out.append(f"{key} chose the {word} value of its grid ({edge:g}) for {names}; the best value may lie "
                           f"beyond the grid, so widen it")
    return out


def _search_edges(search: dict, draws: list[dict]) -> list[str]:
    """Best draws within 10% (of the log range for log_uniform) of a search range's end."""
    out = []
    for key, dist in search.items():
        if not isinstance(dist, dict) or next(iter(dist), "") not in ("uniform", "log_uniform"):
            continue
        (name, (lo, hi)), = dist.items()
        f = (lambda v: math.log(v)) if name == "log_uniform" else (lambda v: v)
        span = f(hi) - f(lo)
        near = [d for d in draws if key in d and min(f(d[key]) - f(lo), f(hi) - f(d[key])) < 0.1 * span]
        if near:
            out.append(f"search.{key}: {len(near)} arm{'' if len(near) == 1 else 's'} chose a draw within 10% of the "
                       f"end of its range [{lo:g}, {hi:g}]; the best value may lie beyond it")
    return out


def study_warnings(ctx: "Context", an: "Analysis") -> list[str]:
    """Every warning of the study, computed from its records."""
    out = _seeds(ctx.seeds)
    if ctx.pending:
        out.append(f"{ctx.pending} runs of the plan are not finished; the numbers cover finished runs only")
    if not ctx.chance:
        out.append("these runs were stored before ponder recorded the number of classes (store schema 4); "
                   "'did not train' is not judged for them")
    c = ctx.chosen
    runs = len(c)
    no_train = c["train_acc"].astype(float) <= ctx.chance + CHANCE_MARGIN
    failed = int(((c["status"] == "diverged") | no_train).sum()) if ctx.chance else 0
    if runs and failed * 2 > runs:  # the answer then ranks failures: say so before any number is read
        out.append(f"{failed} of the {runs} runs at the chosen settings diverged or did not train (training accuracy "
                   f"within {100 * CHANCE_MARGIN:.0f} points of chance): the comparison is mostly between failures; fix the setup (learning "
                   "rate, epochs, initializer) before reading the answer")
    tuned = {a.arm: a.tuned for a in an.arms}
    out += edge_warnings(ctx.spec.get("tune", {}), tuned)
    search = {k: v for k, v in ctx.spec.get("search", {}).items() if k not in ("draws", "seed")}
    if search:
        out += _search_edges(search, [{k: v for k, v in t.items()} for t in tuned.values()])
    return out
