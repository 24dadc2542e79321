"""Theory in the verdict: did each network train where mean-field theory says it can?

Schoenholz et al. (2017) find that random networks train only up to a depth of about 6 xi_c,
xi_c being the depth scale of the correlation map at the network's (sigma_w^2, sigma_b^2). For a
study that varies depth, each arm's effective sigma_w^2 and sigma_b^2 at initialization (measured
and stored per layer) give xi_c; the arm is *inside* when its depth <= 6 xi_c, and it *trained*
when its mean training accuracy is above chance by more than the margin. The prediction holds for
an arm when inside == trained.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

import pandas as pd

__all__ = ["trainability", "trainability_sentence", "DEPTH_FACTOR"]

DEPTH_FACTOR = 6.0  # "trainable iff depth <~ 6 xi_c" (Schoenholz et al. 2017, section 5)


@lru_cache(maxsize=512)
def _xi_c(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    from ponder.errors import PonderError
    from ponder.theory.meanfield import depth_scales

    try:
        return float(depth_scales(activation, sigma_w2, sigma_b2)[1])
    except (PonderError, ValueError, ArithmeticError):
        return math.nan


def trainability(chosen: pd.DataFrame, layers: pd.DataFrame, chance: float, margin: float) -> pd.DataFrame:
    """One row per arm: depth, activation, sigma_w2, sigma_b2, xi_c, inside (depth <= 6 xi_c), trained, held."""
    cols = ["arm", "depth", "activation", "sigma_w2", "sigma_b2", "xi_c", "inside", "trained", "held"]
    if layers.empty or "sigma_w2" not in layers or not chance:
        return pd.DataFrame(columns=cols)
    init = layers[(layers["epoch"] == 0) & layers["act_std"].notna()]
    sw = init.groupby("arm")["sigma_w2"].mean()
    sb = init.groupby("arm")["sigma_b2"].mean() if "sigma_b2" in init else pd.Series(dtype=float)
    rows = []
    for arm, g in chosen.groupby("arm", sort=False):
        if arm not in sw.index or not math.isfinite(sw[arm]):
            continue
        model = json.loads(g["config_json"].iloc[0])["model"]
        s_w2, s_b2 = round(float(sw[arm]), 3), round(float(sb.get(arm, 0.0) or 0.0), 4)
        xi = _xi_c(model["activation"], s_w2, s_b2)
        inside = bool(model["depth"] <= DEPTH_FACTOR * xi) if not math.isnan(xi) else None
        trained = bool(g["train_acc"].astype(float).mean() > chance + margin)
        rows.append({"arm": arm, "depth": int(model["depth"]), "activation": model["activation"], "sigma_w2": s_w2,
                     "sigma_b2": s_b2, "xi_c": xi, "inside": inside, "trained": trained,
                     "held": None if inside is None else inside == trained})
    return pd.DataFrame(rows, columns=cols)


def _point(r) -> str:
    xi = "inf" if math.isinf(r.xi_c) else f"{r.xi_c:.1f}"
    return (f"'{r.arm}' (depth {r.depth}, 6 xi_c = {'inf' if math.isinf(r.xi_c) else f'{DEPTH_FACTOR * r.xi_c:.0f}'}, "
            f"xi_c = {xi}, {'trained' if r.trained else 'did not train'})")


def trainability_sentence(table: pd.DataFrame) -> str:
    """Whether "trainable iff depth <~ 6 xi_c" held for the study's points, naming the points where it failed."""
    judged = table[table["held"].notna()] if len(table) else table
    if judged.empty:
        return ""
    held = judged[judged["held"].astype(bool)]
    wrong = judged[~judged["held"].astype(bool)]
    head = (f"Mean-field theory (Schoenholz et al. 2017: trainable iff depth <~ 6 xi_c, xi_c from each arm's measured "
            f"sigma_w^2 and sigma_b^2 at initialization) predicted {len(held)} of {len(judged)} arms correctly")
    inside = int(judged["inside"].astype(bool).sum())
    head += f" ({inside} inside 6 xi_c, {len(judged) - inside} beyond)"
    if wrong.empty:
        return head + "."
    return head + "; it failed for " + "; ".join(_point(r) for r in wrong.head(4).itertuples()) + \
        (f" and {len(wrong) - 4} more" if len(wrong) > 4 else "") + "."
