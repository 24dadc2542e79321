"""Statistics against hand-computed values and scipy, and the analysis of a synthetic store."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from ponder.analysis import analyze
from ponder.analysis.stats import estimate, holm, paired, wilcoxon_floor
from ponder.store import Store
from ponder.study import expand, load_study


def test_estimate_by_hand():
    e = estimate(np.array([1.0, 2.0, 3.0, 4.0]))
    half = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (e.n, e.mean, e.median) == (4, 2.5, 2.5)
    assert e.lo == pytest.approx(2.5 - half) and e.hi == pytest.approx(2.5 + half)
    assert estimate(np.array([np.nan, 1.0])).n == 1


def test_paired_matches_scipy():
    a = np.array([0.61, 0.58, 0.64, 0.60, 0.59, 0.62, 0.63, 0.57])
    b = a - np.array([0.02, 0.03, 0.01, 0.04, 0.02, 0.03, 0.05, 0.01])
    c = paired("a", a, "b", b)
    assert c.diff == pytest.approx(-0.02625)
    assert c.t_p == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert c.wilcoxon_p == pytest.approx(stats.wilcoxon(b - a).pvalue)
    assert c.wilcoxon_p == pytest.approx(wilcoxon_floor(8))  # all differences negative: the exact minimum
    d = b - a
    assert c.cohen_dz == pytest.approx(d.mean() / d.std(ddof=1))


def test_identical_arms():
    c = paired("a", np.ones(6), "b", np.ones(6))
    assert c.diff == 0 and c.t_p == 1.0 and c.wilcoxon_p == 1.0


def test_holm_by_hand():
    # sorted p: 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    out = holm([0.2, math.nan])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1])


def test_wilcoxon_floor():
    assert wilcoxon_floor(5) == pytest.approx(0.0625)
    assert wilcoxon_floor(6) < 0.05


def _fill(store: Store, study, accuracy):
    """Write synthetic records: accuracy(arm_label, lr, seed) -> (val, test)."""
    runs = expand(study)
    store.save_plan(name=study.name, question=study.question, spec=study.model_dump(), source="x", quick=False, runs=runs)
    rows, epochs = [], []
    from ponder.study.checks import build_layers

    n_classes = build_layers(runs[0].config)[1].n_classes
    for r in runs:
        val, test = accuracy(r.arm.label, dict(r.tuned)["training.lr"], r.seed)
        rows.append({"run_id": r.id, "config_json": r.config.json(), "n_classes": n_classes, "status": "diverged" if test is None else "ok",
                     "diverged_epoch": 1 if test is None else None, "error": None, "population": "p", "population_size": 1,
                     "steps": 1, "wall_s": 0.0, "finished": None, "env_json": "{}"})
        train = 0.1 if test is None else 0.9  # a diverged run ends at chance on its own training set
        test = 0.1 if test is None else test
        epochs.append({"run_id": r.id, "epoch": 0, "train_loss": 2.3, "train_acc": 0.1, "val_loss": 2.3, "val_acc": 0.1,
                       "test_loss": 2.3, "test_acc": 0.1})
        epochs.append({"run_id": r.id, "epoch": 3, "train_loss": 0.5, "train_acc": train, "val_loss": 1.0, "val_acc": val,
                       "test_loss": 1.0, "test_acc": test})
    store.save_population(rows, epochs, [])


def test_analysis_tunes_on_validation_and_compares_by_seed(tiny_study, tmp_path):
    study = load_study(tiny_study, seeds=8)
    noise = np.random.default_rng(0).normal(0, 0.005, 100)

    def acc(arm, lr, seed):
        good = arm.endswith("torch.kaiming_normal")
        if lr == 0.2:  # best on validation for both arms, but the test set would prefer 0.05
            return 0.8, (0.70 if good else 0.60) + noise[seed]
        return 0.5, 0.99

    with Store(tmp_path / "s.duckdb") as st:
        _fill(st, study, acc)
        an = analyze(st, "tiny")
    assert {a.arm: a.tuned for a in an.arms} == {"initializer=torch.default": {"training.lr": 0.2},
                                                 "initializer=torch.kaiming_normal": {"training.lr": 0.2}}
    best = next(a for a in an.arms if a.rank == 1)
    assert best.arm == "initializer=torch.kaiming_normal" and best.test.mean == pytest.approx(0.70 + noise[:8].mean())
    (c,) = an.comparisons
    assert c.n == 8 and c.diff == pytest.approx(-0.10) and c.p_holm < 1e-6
    assert "learning rate tuned per arm on the validation split over {0.05, 0.2}" in an.answer
    assert "8 seeds per arm" in an.answer and f"'initializer=torch.kaiming_normal' gives the best test accuracy ({100 * best.test.mean:.1f}%" in an.answer
    assert "model.initializer matters (paired t-test over 8 seeds" in an.answer
    assert an.headline.startswith("Use torch.kaiming_normal for model.initializer") and "not torch.default" in an.headline
    out = an.to_json()
    assert [(f["factor"], f["verdict"], f["best"]) for f in out["factors"]] == [
        ("model.initializer", "matters", ["torch.kaiming_normal"])]
    assert not an.warnings


def test_diverged_runs_are_reported_not_dropped(tiny_study, tmp_path):
    study = load_study(tiny_study, seeds=4)

    def acc(arm, lr, seed):
        if arm.endswith("torch.default") and seed < 2:
            return 0.1, None  # diverged
        return 0.7, 0.65 + 0.01 * seed

    with Store(tmp_path / "s.duckdb") as st:
        _fill(st, study, acc)
        an = analyze(st, "tiny")
    arm = next(a for a in an.arms if a.arm.endswith("torch.default"))
    assert arm.n_runs == 4 and arm.n_diverged == 2 and arm.n_chance == 2
    assert "2 diverged and 2 did not train" in an.answer
    assert any("cannot go below p = 0.125" in w for w in an.warnings)


def test_paired_runs_no_test_below_three_seeds_and_estimates_cut_to_bounds():
    c = paired("a", np.array([0.5, 0.6]), "b", np.array([0.7, 0.9]))
    assert c.n == 2 and c.diff == pytest.approx(0.25) and c.diff_lo == c.diff_lo  # the difference and its interval
    assert all(v != v for v in (c.t_p, c.wilcoxon_p, c.cohen_dz))  # but no test: 1 degree of freedom
    e = estimate(np.array([0.97, 0.999]), bounds=(0.0, 1.0))
    free = estimate(np.array([0.97, 0.999]))
    assert free.hi > 1.0 and e.hi == 1.0 and e.lo == free.lo and e.mean == free.mean


def test_metric_ranges_are_stored_with_the_plan_and_read_back():
    from ponder.analysis.summary import metric_bounds
    from ponder.study.spec import parse_study

    study = parse_study({"name": "r", "question": "Which is better?", "metrics": ["ece", "accuracy", "loss"],
                         "factors": {"model.activation": ["relu", "tanh"]}})
    assert study.bounds == {"ece": [0.0, 1.0], "accuracy": [0.0, 1.0], "loss": [0.0, None]}
    spec = json.loads(json.dumps(study.model_dump() | {"bounds": study.bounds}))  # as the store keeps it
    assert metric_bounds(spec, "ece") == (0.0, 1.0) and metric_bounds(spec, "loss") == (0.0, math.inf)
    assert metric_bounds({}, "accuracy") == (0.0, 1.0) and metric_bounds({}, "ece") is None  # stored before ranges


def test_a_study_whose_every_run_failed_says_why_not_run_it_first(tmp_path, make_spec):
    from ponder.errors import PonderError
    from ponder.store import ChunkRows, RunRow

    study = make_spec(seeds=2, tune=None, factors={"model.activation": ["relu", "tanh"]})
    runs = expand(study)
    with Store(tmp_path / "f.duckdb") as st:
        st.save_plan(name=study.name, question=study.question, spec=study.model_dump(), source="my/tiny.toml",
                     quick=False, runs=runs)
        st.save_chunk(ChunkRows([RunRow(r.id, r.config.json(), "failed", "p", 1, error="RuntimeError: bad shape\nmore")
                                 for r in runs]))
        with pytest.raises(PonderError, match=r"all 4 runs failed \(the first: RuntimeError: bad shape\); fix the study "
                                              r"and run it again \(ponder run my/tiny.toml\)"):
            analyze(st, study.name)
