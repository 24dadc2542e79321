"""The focus factor within each condition: the table behind the report's interaction heatmap.

For a study with two or more factors, every combination of the other factors' levels is a
*condition* (e.g. activation = tanh, depth = 12). Within each condition the focus factor's levels
are compared by seed-paired tests against the condition's best level (Holm-corrected within the
condition). Whether the factors interact is decided by the interaction tests of
:mod:`ponder.analysis.factors`, not here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from ponder.analysis.stats import MIN_SEEDS, holm, level_order, paired

from ponder.analysis.answer import ALPHA
from ponder.study.keys import short_key

__all__ = ["Condition", "interactions"]


@dataclass
class Condition:
    """The focus factor's levels within one combination of the other factors."""

    label: str
    levels: dict[str, float]  # focus level -> mean final test accuracy
    best: str
    tied: list[str]  # levels not significantly worse than the best (Holm, paired over seeds)
    worse: list[str]
    no_train: list[str]  # levels whose runs mostly did not train
    spread: float  # best mean minus worst mean
    ranks: dict[str, int] = field(default_factory=dict)
    untested: list[str] = field(default_factory=list)  # fewer than MIN_SEEDS seeds beside the best: no test, no claim

    def mark(self, level: str) -> str:
        """The table mark of ``level``: '(best)', '*' (tied with the best), '?' (not tested) or ''."""
        return "(best)" if level == self.best else "*" if level in self.tied else "?" if level in self.untested else ""


def _short(v) -> str:
    if isinstance(v, list):
        return "+".join(_short(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def interactions(chosen: pd.DataFrame, factors: dict[str, list], focus: str, chance: float,
                 margin: float = 0.05) -> list[Condition]:
    """Per condition of the non-focus factors: focus-level means, the best, its ties, the failures."""
    others = [k for k in factors if k != focus]
    levels = chosen["arm_json"].map(json.loads)
    df = chosen.assign(_focus=[_short(lv[focus]) for lv in levels],
                       _cond=[", ".join(f"{short_key(k)}={_short(lv[k])}" for k in others) for lv in levels])
    conds = []
    rank = {_short(v): i for i, v in enumerate(factors.get(focus, []))}
    key = level_order({k: factors[k] for k in others})  # conditions in the study's level order
    first = df.drop_duplicates("_cond")
    order = [c for _, c in sorted((key(lv), c) for lv, c in zip(first["arm_json"].map(json.loads), first["_cond"]))]
    for cond in order:
        g = df[df["_cond"] == cond]
        by_level = g.groupby("_focus")["test_acc"].mean().to_dict()  # then in the study's order of the focus levels
        means = {lv: by_level[lv] for lv in sorted(by_level, key=lambda lv: (rank.get(lv, len(rank)), lv))}
        best = max(means, key=lambda k: means[k])
        ref = g[g["_focus"] == best].set_index("seed")["test_acc"]
        names, comps = [], []
        for lvl in means:
            if lvl == best:
                continue
            other = g[g["_focus"] == lvl].set_index("seed")["test_acc"]
            both = ref.index.intersection(other.index)
            comps.append(paired(best, ref.loc[both].to_numpy(), lvl, other.loc[both].to_numpy()))
            names.append(lvl)
        adj = holm([c.t_p for c in comps])
        tied = [n for n, p in zip(names, adj) if p == p and not p < ALPHA]
        worse = [n for n, p in zip(names, adj) if p == p and p < ALPHA]
        untested = [n for n, c in zip(names, comps) if c.n < MIN_SEEDS]
        no_train = [lvl for lvl, gg in g.groupby("_focus") if chance and (gg["train_acc"] <= chance + margin).mean() > 0.5]
        vals = [v for v in means.values() if math.isfinite(v)]
        ranks = {k: i + 1 for i, k in enumerate(sorted(means, key=lambda k: -means[k]))}
        conds.append(Condition(cond or "all", means, best, tied, worse, no_train, max(vals) - min(vals), ranks, untested))
    return conds
