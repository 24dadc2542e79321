"""k-arm rankings, practical equivalence and effect sizes against known values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ponder.analysis.rank import (bootstrap_ci, cliffs_delta, critical_difference, equivalence_groups, friedman_nemenyi,
                                  rope_test)


def test_critical_difference_matches_demsar_table():
    # Demsar 2006, Table 5(a): q_0.05 = 2.343 (k=3), 2.569 (k=4), 2.728 (k=5), 3.164 (k=10)
    for k, q in ((3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)):
        assert critical_difference(k, 1) == pytest.approx(q * math.sqrt(k * (k + 1) / 6), rel=2e-3)


def test_friedman_matches_scipy_and_ranks_by_hand():
    rng = np.random.default_rng(0)
    base = rng.normal(0.6, 0.02, (10, 1))
    table = pd.DataFrame(np.hstack([base + 0.05, base, base - 0.05 + rng.normal(0, 0.001, (10, 1))]), columns=["a", "b", "c"])
    r = friedman_nemenyi(table)
    assert r.p_value == pytest.approx(stats.friedmanchisquare(*table.to_numpy().T).pvalue)
    assert r.mean_ranks == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert r.nemenyi.loc["a", "c"] < 0.05
    assert r.cd == pytest.approx(critical_difference(3, 10))
    assert equivalence_groups(r) == [["a", "b"], ["b", "c"]] if r.cd > 1 else equivalence_groups(r) == []


def test_friedman_needs_three_arms():
    with pytest.raises(ValueError, match="at least 3 arms"):
        friedman_nemenyi(pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 3.0]}))


def test_rope_verdicts():
    x = np.array([0.61, 0.62, 0.60, 0.63, 0.61, 0.62, 0.64, 0.60, 0.62, 0.61])
    same = rope_test(x, x + np.array([0.001, -0.001] * 5), rope=0.01)
    assert same.verdict == "equivalent" and same.p_equal > 0.95
    worse = rope_test(x, x - 0.05, rope=0.01)
    assert worse.verdict == "worse" and worse.p_worse > 0.95
    better = rope_test(x, x + 0.05, rope=0.01)
    assert better.verdict == "better"
    assert rope_test(x, x - 0.05, rope=0.01, seed=3) == rope_test(x, x - 0.05, rope=0.01, seed=3)  # reproducible


def test_bootstrap_and_cliffs_delta():
    v = np.random.default_rng(1).normal(0.5, 0.1, 40)
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi and hi - lo < 0.1
    assert bootstrap_ci(np.array([0.3, 0.3])) == (0.3, 0.3)
    assert cliffs_delta(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert cliffs_delta(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0.0
    assert cliffs_delta(np.array([1.0, 2.0, 3.0]), np.array([2.0])) == pytest.approx(0.0)


def test_dz_interval_contains_the_estimate():
    from ponder.analysis.rank import dz_ci

    d = np.array([0.02, 0.03, 0.01, 0.04, 0.02, 0.03, 0.05, 0.01])
    lo, hi = dz_ci(d)
    est = d.mean() / d.std(ddof=1)
    assert lo < est < hi and lo > 0
    assert all(math.isnan(v) for v in dz_ci(np.array([0.1, 0.1, 0.1])))


def test_rope_groups_join_only_levels_equivalent_pairwise():
    from ponder.analysis.rank import rope_groups

    rng = np.random.default_rng(0)
    n = 40
    base = rng.uniform(0.6, 0.9, n)  # blocks differ a lot; levels differ by a constant per block
    table = pd.DataFrame({"a": base + 0.0005 * rng.standard_normal(n), "b": base + 0.001 + 0.0005 * rng.standard_normal(n),
                          "c": base - 0.05 + 0.0005 * rng.standard_normal(n), "d": base - 0.0502 + 0.0005 * rng.standard_normal(n)})
    assert rope_groups(table, ["b", "a", "c", "d"], rope=0.01) == [["b", "a"], ["c", "d"]]
    assert rope_groups(table, ["b", "a", "c", "d"], rope=0.1) == [["b", "a", "c", "d"]]
    assert rope_groups(table, ["a", "c", "b", "d"], rope=0.01) == []  # groups are runs in the given order


def test_rope_test_needs_three_pairs():
    two = rope_test(np.array([0.5, 0.6]), np.array([0.7, 0.8]), rope=0.01)
    assert all(v != v for v in (two.p_worse, two.p_equal, two.p_better))
    three = rope_test(np.array([0.5, 0.6, 0.55]), np.array([0.7, 0.8, 0.75]), rope=0.01)
    assert three.verdict == "better"
