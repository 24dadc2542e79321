"""Rankings of k arms and practical equivalence, from well-kept libraries.

- Friedman's test over blocks (seeds x conditions) with Nemenyi's post-hoc
  (scikit-posthocs), mean ranks and the critical difference of Demsar 2006;
- the Bayesian signed-rank test with a region of practical equivalence (baycomp, Benavoli et
  al. 2017), so an answer can say "equivalent", not only "not significant";
- bootstrap confidence intervals (scipy.stats.bootstrap) and Cliff's delta.

Every random draw comes from a generator derived from a fixed seed, so a report's numbers are
reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ponder.lazy import stats  # scipy.stats, loaded on first use

from ponder.analysis.stats import MIN_SEEDS
from ponder.rng import np_rng_for, stream_seed

__all__ = ["Ranking", "friedman_nemenyi", "critical_difference", "Rope", "rope_test", "bootstrap_ci", "cliffs_delta", "dz_ci",
           "equivalence_groups"]


@dataclass
class Ranking:
    """Friedman test, mean ranks (1 = best) and Nemenyi p-values for k arms over n blocks."""

    arms: list[str]
    n_blocks: int
    mean_ranks: dict[str, float]
    statistic: float
    p_value: float
    nemenyi: pd.DataFrame  # k x k p-values
    cd: float  # critical difference of mean ranks at alpha


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference CD = q_alpha sqrt(k (k + 1) / (6 n)), q_alpha = studentized range / sqrt(2)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


def friedman_nemenyi(table: pd.DataFrame, *, higher_is_better: bool = True, alpha: float = 0.05) -> Ranking:
    """Rank the columns (arms) of ``table`` (rows = blocks) by Friedman's test and Nemenyi's post-hoc.

    Blocks with a missing value are dropped. Needs at least 3 arms and 2 blocks.
    """
    import scikit_posthocs as sp

    t = table.dropna()
    k, n = t.shape[1], t.shape[0]
    if k < 3 or n < 2:
        raise ValueError(f"a Friedman test needs at least 3 arms and 2 complete blocks, got {k} arms and {n} blocks")
    vals = t.to_numpy(dtype=float)
    ranks = stats.rankdata(-vals if higher_is_better else vals, axis=1)  # 1 = best in each block
    mean_ranks = dict(zip(t.columns, ranks.mean(axis=0)))
    const = np.all(vals == vals[:, :1], axis=1)
    if const.all():
        stat, p = 0.0, 1.0
    else:
        stat, p = stats.friedmanchisquare(*vals.T)
    nem = sp.posthoc_nemenyi_friedman(pd.DataFrame(-vals if higher_is_better else vals, columns=t.columns))
    return Ranking(list(t.columns), n, mean_ranks, float(stat), float(p), nem, critical_difference(k, n, alpha))


@dataclass(frozen=True)
class Rope:
    """Posterior probabilities that ``other`` is worse than, practically equal to, or better than ``ref``."""

    p_worse: float
    p_equal: float
    p_better: float
    rope: float

    @property
    def verdict(self) -> str:
        if self.p_equal >= 0.95:
            return "equivalent"
        if self.p_worse >= 0.95:
            return "worse"
        if self.p_better >= 0.95:
            return "better"
        return "undecided"


ROPE_SAMPLES = 10_000  # posterior samples per test: the Monte Carlo error of a probability is < 0.005


def rope_test(ref: np.ndarray, other: np.ndarray, *, rope: float = 0.01, seed: int = 0) -> Rope:
    """Bayesian signed-rank test of other - ref (paired by seed) with a region of practical equivalence.

    ``rope`` is in the metric's units (0.01 = 1 percentage point of accuracy). Below :data:`MIN_SEEDS` pairs
    no test (NaN probabilities), as for the t-tests: with 2 pairs the posterior is mostly the prior (any two
    differences beyond the rope read "better, P = 0.97").
    """
    from baycomp import SignedRankTest

    a, b = np.asarray(ref, float), np.asarray(other, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_SEEDS:
        return Rope(math.nan, math.nan, math.nan, rope)
    # baycomp's probs(x, y) = (P(x better than y), P(within the rope), P(y better than x)); x = other, y = ref
    better, eq, worse = SignedRankTest.probs(b[ok], a[ok], rope=rope, nsamples=ROPE_SAMPLES,
                                             random_state=stream_seed(seed, "rope") % (2**32 - 1))
    return Rope(float(worse), float(eq), float(better), rope)


def bootstrap_ci(values: np.ndarray, *, level: float = 0.95, seed: int = 0, n_resamples: int = 9999) -> tuple[float, float]:
    """BCa bootstrap confidence interval of the mean (scipy.stats.bootstrap)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.all(v == v[0]):
        return (float(v[0]), float(v[0])) if len(v) else (math.nan, math.nan)
    res = stats.bootstrap((v,), np.mean, confidence_level=level, n_resamples=n_resamples, method="BCa",
                          random_state=np_rng_for(seed, "bootstrap"))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def dz_ci(diffs: np.ndarray, *, level: float = 0.95, seed: int = 0, n_resamples: int = 4999) -> tuple[float, float]:
    """Percentile bootstrap interval of Cohen's d_z = mean / sd of paired differences (NaN with < 3 pairs or sd 0)."""
    d = np.asarray(diffs, float)
    d = d[np.isfinite(d)]
    if len(d) < 3 or d.std(ddof=1) <= 1e-12 * max(1.0, abs(float(d.mean()))):  # constant differences: d_z undefined
        return math.nan, math.nan

    def dz(x, axis=-1):
        sd = x.std(ddof=1, axis=axis)
        return np.where(sd > 0, x.mean(axis=axis) / np.where(sd > 0, sd, 1.0), 0.0)

    res = stats.bootstrap((d,), dz, confidence_level=level, n_resamples=n_resamples, method="percentile", vectorized=True,
                          random_state=np_rng_for(seed, "dz"))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's delta of b against a: P(b > a) - P(b < a) over all pairs, in [-1, 1]."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = b[:, None] - a[None, :]
    return float(((diff > 0).sum() - (diff < 0).sum()) / diff.size)


def equivalence_groups(ranking: Ranking, alpha: float = 0.05) -> list[list[str]]:
    """Maximal runs of arms, in mean-rank order, whose mean ranks differ by less than the critical difference."""
    order = sorted(ranking.arms, key=lambda a: ranking.mean_ranks[a])
    groups: list[list[str]] = []
    for i, a in enumerate(order):
        g = [b for b in order[i:] if ranking.mean_ranks[b] - ranking.mean_ranks[a] < ranking.cd]
        if len(g) > 1 and not any(set(g) <= set(h) for h in groups):
            groups.append(g)
    return groups


def rope_groups(table, order: list[str], *, rope: float = 0.01, seed: int = 0) -> list[list[str]]:
    """Groups of practically equivalent levels: maximal runs of levels, in ``order`` (best first),
    every pair of which the Bayesian signed-rank test over the blocks (rows of ``table``) calls
    ``equivalent`` (P(|difference| < rope) >= 0.95). Singletons are left out."""
    cols = [c for c in order if c in table.columns]
    verdict: dict[tuple[str, str], bool] = {}

    def eq(a: str, b: str) -> bool:
        key = (a, b) if a < b else (b, a)
        if key not in verdict:
            both = table[[a, b]].dropna()
            verdict[key] = len(both) >= MIN_SEEDS and rope_test(both[a].to_numpy(), both[b].to_numpy(), rope=rope, seed=seed).verdict == "equivalent"
        return verdict[key]

    groups: list[list[str]] = []
    for i, a in enumerate(cols):
        g = [a]
        for b in cols[i + 1:]:
            if all(eq(b, c) for c in g):
                g.append(b)
            else:
                break
        if len(g) > 1 and not any(set(g) <= set(h) for h in groups):
            groups.append(g)
    return groups
