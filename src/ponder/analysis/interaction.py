"""Interactions: does the ranking of the focus factor's levels change across the other factors?

For a study with two or more factors, the first factor is the *focus* (e.g. the initializer)
and every combination of the other factors' levels is a *condition* (e.g. activation = tanh,
depth = 12). Within each condition the focus levels are compared by seed-paired tests against
the condition's best level (Holm-corrected within the condition); the summary says where the
levels tie and where they separate.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from ponder.analysis.stats import holm, paired

__all__ = ["Condition", "interactions", "ALPHA"]

ALPHA = 0.05


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


def _short(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def interactions(chosen: pd.DataFrame, factors: dict[str, list], chance: float, margin: float = 0.05) -> tuple[str, list[Condition]]:
    """Per condition of the non-focus factors: focus-level means, the best, its ties, the failures."""
    keys = list(factors)
    focus, others = keys[0], keys[1:]
    levels = chosen["arm_json"].map(json.loads)
    df = chosen.assign(_focus=[str(lv[focus]) for lv in levels],
                       _cond=[", ".join(f"{k.split('.', 1)[1]}={_short(lv[k])}" for k in others) for lv in levels])
    conds = []
    order = list(dict.fromkeys(df["_cond"]))
    for cond in order:
        g = df[df["_cond"] == cond]
        means = g.groupby("_focus")["test_acc"].mean().to_dict()
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
        tied = [n for n, p in zip(names, adj) if not p < ALPHA]
        worse = [n for n in names if n not in tied]
        no_train = [lvl for lvl, gg in g.groupby("_focus") if (gg["test_acc"] <= chance + margin).mean() > 0.5]
        vals = [v for v in means.values() if math.isfinite(v)]
        ranks = {k: i + 1 for i, k in enumerate(sorted(means, key=lambda k: -means[k]))}
        conds.append(Condition(cond or "all", means, best, tied, worse, no_train, max(vals) - min(vals), ranks))
    return focus, conds


def interaction_sentence(focus: str, conds: list[Condition]) -> str:
    """Where the focus factor matters and where it does not, in words computed from the conditions."""
    if not conds:
        return ""
    name = focus.split(".", 1)[1]
    parts = []
    for c in conds:
        others = len(c.levels) - 1
        if not c.tied:
            tail = f"every other level of {name} is significantly worse"
        else:
            tail = f"{len(c.tied)} of the {others} other levels {'is' if len(c.tied) == 1 else 'are'} not significantly worse"
        txt = f"with {c.label}, '{c.best}' is best ({100 * c.levels[c.best]:.1f}%) and {tail}"
        if c.no_train:
            txt += f"; {len(c.no_train)} did not train ({', '.join(repr(x) for x in c.no_train[:4])}{' ...' if len(c.no_train) > 4 else ''})"
        parts.append(txt)
    bests = {c.best for c in conds}
    tie_frac = [(len(c.tied) + 1) / len(c.levels) for c in conds]
    lo, hi = min(range(len(conds)), key=lambda i: tie_frac[i]), max(range(len(conds)), key=lambda i: tie_frac[i])
    if tie_frac[lo] == tie_frac[hi]:
        summary = (f"The choice of {name} separates the levels equally in every condition ({len(conds[lo].tied)} of "
                   f"{len(conds[lo].levels) - 1} others tie with the best)")
    else:
        summary = (f"The choice of {name} matters most with {conds[lo].label} ({len(conds[lo].tied)} of "
                   f"{len(conds[lo].levels) - 1} others tie with the best) and least with {conds[hi].label} "
                   f"({len(conds[hi].tied)} of {len(conds[hi].levels) - 1} tie)")
    summary += "; the best level is the same in every condition." if len(bests) == 1 else \
        f"; the best level changes across conditions ({', '.join(sorted(repr(b) for b in bests))}), an interaction."
    return summary + " In detail: " + "; ".join(parts) + "."
