"""The metric kind: built-in metrics against their formulas, and a study answered by expected calibration error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ponder import registry


def test_ece_matches_its_formula_by_hand():
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], dtype=torch.float64))
    y = torch.tensor([0, 1, 1, 1])
    # confidences 0.9 (right), 0.6 (wrong), 0.7 (right), 0.8 (right): bins 13, 9, 10, 12 (of 15), one each
    want = (abs(1 - 0.9) + abs(0 - 0.6) + abs(1 - 0.7) + abs(1 - 0.8)) / 4
    assert registry.get("metric", "ece").fn(logits, y) == pytest.approx(want)


def test_per_class_accuracies():
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])  # class 0: 2/2, class 1: 1/2
    assert registry.get("metric", "balanced_accuracy").fn(logits, y) == pytest.approx(0.75)
    assert registry.get("metric", "worst_class_accuracy").fn(logits, y) == pytest.approx(0.5)
    assert registry.get("metric", "accuracy").fn(logits, y) == pytest.approx(0.75)


def test_directions_are_declared():
    assert {m: registry.get("metric", m).facts.direction for m in ("accuracy", "loss", "ece")} == {
        "accuracy": "max", "loss": "min", "ece": "min"}


def test_a_study_answered_by_ece_measures_it_and_lower_is_better(make_spec, tmp_path):
    from ponder.analysis import analyze
    from ponder.runner import run_study
    from ponder.store import Store
    from ponder.study import expand

    spec = make_spec(seeds=2, metrics=["ece", "accuracy"], tune=None)
    plain = make_spec(seeds=2, tune=None)
    assert {r.id for r in expand(spec)}.isdisjoint({r.id for r in expand(plain)})  # metrics enter the run id
    with Store(tmp_path / "s.duckdb") as st:
        run_study(spec, st)
        evals = st.evals("tiny")
        an = analyze(st, "tiny")
    assert set(evals["probe"]) == {"metric_val", "metric_test"} and set(evals["kind"]) == {"ece"}
    assert an.metric == "ece" and np.isfinite([a.test.mean for a in an.arms]).all()
    best = min(an.arms, key=lambda a: a.rank)
    assert best.test.mean == min(a.test.mean for a in an.arms)  # lower is better for ece
    assert an.to_json()["metric"] == "ece"
