"""Measurements beyond the learning curve: input shift, loss along lines, epochs to fit, loss
schedules, random-search draws and the classic pipeline; each checked against hand-computable
cases or scipy/numpy on fixed data, then end to end through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from ponder.analysis import evals as ev
from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build
from ponder.errors import SpecError
from ponder.study.spec import parse_study
from ponder.train import ModelSettings, prepare_data, train_population
from ponder.analysis.evals import chord_gap
from ponder.train.evals import line_losses, shift_inputs

# -- input shift ---------------------------------------------------------------------------------


def test_translation_moves_and_zero_fills_signals_and_images():
    x = torch.arange(1, 7, dtype=torch.float32).view(1, 1, 6)
    assert shift_inputs(x, "translation", 2, x_std=1.0).flatten().tolist() == [0, 0, 1, 2, 3, 4]
    assert shift_inputs(x, "translation", -1, x_std=1.0).flatten().tolist() == [2, 3, 4, 5, 6, 0]
    assert torch.equal(shift_inputs(x, "translation", 0, x_std=1.0), x)
    img = torch.arange(9, dtype=torch.float32).view(1, 1, 3, 3)
    out = shift_inputs(img, "translation", 1, x_std=1.0)[0, 0]
    assert out.tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]]


def test_scaling_resamples_about_the_centre():
    ramp = torch.arange(9, dtype=torch.float64).view(1, 1, 9)  # centre at index 4
    assert torch.allclose(shift_inputs(ramp, "scaling", 1.0, x_std=1.0), ramp)
    out = shift_inputs(ramp, "scaling", 2.0, x_std=1.0).flatten().numpy()
    # magnification 2: output position t reads the input at 4 + (t - 4) / 2 (linear interpolation)
    expect = np.interp(4 + (np.arange(9) - 4) / 2, np.arange(9), ramp.flatten().numpy())
    assert np.allclose(out, expect)
    shrunk = shift_inputs(ramp, "scaling", 0.5, x_std=1.0).flatten().numpy()
    assert shrunk[0] == 0 and shrunk[-1] == 0 and shrunk[4] == 4  # reads outside: zeros; the centre stays


def test_noise_has_the_asked_scale_and_is_the_same_for_every_model():
    x = torch.zeros(2000, 1, 40)
    a = shift_inputs(x, "noise", 0.5, x_std=2.0)
    assert abs(float(a.std()) - 1.0) < 0.02
    assert torch.equal(a, shift_inputs(x, "noise", 0.5, x_std=2.0))  # one fixed shifted test set per level


def test_spatial_shift_of_flat_inputs_is_refused():
    with pytest.raises(SpecError, match="use only noise"):
        shift_inputs(torch.zeros(4, 20), "translation", 2, x_std=1.0)


# -- loss along lines ----------------------------------------------------------------------------


def test_chord_gap_by_hand():
    assert chord_gap([1.0, 2.0, 1.0]) == (1.0, 1.0)
    assert chord_gap([2.0, 1.0, 0.0]) == (0.0, 0.0)
    gap, barrier = chord_gap([1.0, 1.2, 0.0])  # chord at the middle is 0.5: 0.7 above it, 0.2 above the higher end
    assert gap == pytest.approx(0.7) and barrier == pytest.approx(0.2)


def _softmax_regression(seed):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, 4, 5, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64))]


def test_line_losses_match_the_ends_and_softmax_regression_is_convex():
    from ponder import registry

    layers = build("mlp", (5,), 4, depth=0, width=1, kernel_size=1)  # no hidden layer: cross-entropy is convex
    p0, p1 = _softmax_regression(0), _softmax_regression(1)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(3, 64, 5, generator=g, dtype=torch.float64), torch.randint(0, 4, (3, 64), generator=g)
    ce = registry.get("loss", "cross_entropy").fn
    act = registry.get("activation", "relu").fn
    v = line_losses(p0, p1, layers, act, ce, x, y)
    from ponder.train.engine import forward

    assert torch.allclose(v[:, 0], ce(forward(p0, layers, x, act), y).mean(1))
    assert torch.allclose(v[:, -1], ce(forward(p1, layers, x, act), y).mean(1))
    for row in v.numpy():
        assert chord_gap(row)[0] < 1e-9  # convex in the weights: never above the chord


def test_a_hidden_layer_breaks_convexity_between_equivalent_solutions():
    """Swapping two hidden units gives the same function; the midpoint of the two weight vectors
    averages the units and is a different (here: worse) network, a barrier no convex loss has."""
    from ponder import registry

    layers = build("mlp", (2,), 2, depth=1, width=2, kernel_size=1)
    w1 = torch.tensor([[[4.0, 0.0], [0.0, 4.0]]], dtype=torch.float64)
    b1 = torch.zeros(1, 2, dtype=torch.float64)
    w2 = torch.tensor([[[3.0, -3.0], [-3.0, 3.0]]], dtype=torch.float64)
    b2 = torch.zeros(1, 2, dtype=torch.float64)
    perm = [1, 0]
    p0 = [(w1, b1), (w2, b2)]
    p1 = [(w1[:, perm], b1[:, perm]), (w2[:, :, perm], b2)]
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    y = torch.tensor([[0, 1]])
    v = line_losses(p0, p1, layers, registry.get("activation", "relu").fn, registry.get("loss", "cross_entropy").fn, x, y)[0]
    assert v[0] == pytest.approx(float(v[-1]))
    gap, barrier = chord_gap(v.numpy())
    assert barrier > 0.5 and gap > 0.5


# -- analyses on hand-made tables ------------------------------------------------------------------


def test_epochs_to_fit_by_hand():
    epochs = pd.DataFrame({"run_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["k"],
                           "epoch": [0, 1, 2, 3] * 3 + [3],
                           "train_acc": [0.1, 0.5, 0.995, 1.0, 0.1, 0.2, 0.3, 0.99, 0.1, 0.2, 0.3, 0.4, 0.7]})
    chosen = pd.DataFrame({"run_id": ["a", "b", "c", "k"], "arm": ["x", "x", "y", "svm"]})
    t = ev.epochs_to_fit(epochs, chosen).set_index("arm")
    assert t.loc["x", "fitted"] == 2 and t.loc["x", "median_epoch"] == 2.5
    assert t.loc["y", "fitted"] == 0 and np.isnan(t.loc["y", "median_epoch"])
    assert "svm" not in t.index  # one row, no epochs: a classical baseline
    assert "1 of 2 arms fit" in ev.fit_sentence(t.reset_index())


def test_convexity_table_counts_lines_and_barriers():
    rows = []
    for run, probe, vals in (("a", "line_init", [2.0, 1.5, 1.0]), ("b", "line_init", [2.0, 1.9, 0.2]),
                             ("a", "line_pair", [0.5, 1.0, 0.5]), ("c", "line_init", [2.0, 2.5, 0.5])):
        rows += [{"run_id": run, "probe": probe, "kind": "train_loss", "level": a, "value": v}
                 for a, v in zip([0, 0.5, 1], vals)]
    chosen = pd.DataFrame({"run_id": ["a", "b", "c"], "arm": ["ce", "ce", "se"]})
    t = ev.convexity_table(pd.DataFrame(rows), chosen).set_index("arm")
    # b: chord at 0.5 is 1.1 and the loss is 1.9 -> above the chord, still monotone
    assert (t.loc["ce", "lines"], t.loc["ce", "convex"], t.loc["ce", "monotone"]) == (2, 1, 2)
    assert (t.loc["ce", "pairs"], t.loc["ce", "barriers"]) == (1, 1)
    assert t.loc["ce", "mean_barrier"] == pytest.approx(1.0)  # rises 0.5 above ends of 0.5
    assert (t.loc["se", "convex"], t.loc["se", "monotone"]) == (0, 0)
    text = ev.convexity_sentence(t.reset_index(), {"ce": "cross_entropy", "se": "squared_error"})
    assert "does not make training convex" in text


def test_schedule_effect_equals_scipy_paired_t_test():
    rng = np.random.default_rng(0)
    rows = []
    base, sched = rng.normal(0.8, 0.02, 12), rng.normal(0.81, 0.02, 12)
    for i in range(12):
        depth = 2 if i < 6 else 6
        for loss, v in (("cross_entropy", base[i]), ("cross_entropy>squared_error_softmax", sched[i])):
            rows.append({"arm_json": json.dumps({"training.loss": loss, "model.depth": depth}), "seed": i % 6, "test_acc": v})
    [e] = ev.schedule_effect(pd.DataFrame(rows), "training.loss", "test_acc")
    ref = stats.ttest_rel(sched, base)
    assert e.n == 12 and e.diff == pytest.approx(np.mean(sched - base)) and e.p == pytest.approx(ref.pvalue)
    assert e.lo < e.diff < e.hi
    assert "Golik" in ev.schedule_sentence([e], "accuracy")


def test_stability_table_quantiles():
    vals = [0.1, 0.5, 0.6, 0.9]
    final = pd.DataFrame({"arm": ["r"] * 8, "tuned_json": [json.dumps({"search.draw": i}) for i in range(4)] * 2,
                          "test_acc": vals + vals})
    t = ev.stability_table(final, "test_acc", chance=0.1, margin=0.05).iloc[0]
    assert t["configs"] == 4 and t["median"] == pytest.approx(np.median(vals))
    assert t["q25"] == pytest.approx(np.quantile(vals, 0.25)) and t["best"] == 0.9 and t["worst"] == 0.1
    assert t["trained"] == 3


# -- study files -----------------------------------------------------------------------------------

BASE = {"name": "s", "question": "Which activation?", "seeds": 2, "factors": {"model.activation": ["relu", "tanh"]}}


def test_search_draws_are_deterministic_and_shared_by_arms():
    from ponder.study.plan import expand

    spec = parse_study({**BASE, "search": {"draws": 4, "training.lr": {"log_uniform": [1e-4, 1e-1]},
                                           "model.dropout": {"choice": [0.0, 0.5]}}})
    draws = spec.draws
    assert len(draws) == 4 and draws == parse_study({**BASE, "search": dict(spec.search)}).draws
    assert all(1e-4 <= d["training.lr"] <= 1e-1 and d["model.dropout"] in (0.0, 0.5) for d in draws)
    runs = expand(spec)
    assert len(runs) == 2 * 4 * 2 and len({r.id for r in runs}) == len(runs)
    by_arm = {}
    for r in runs:
        by_arm.setdefault(r.arm.label, set()).add(r.tuned)
    assert len({frozenset(v) for v in by_arm.values()}) == 1  # every arm sees the same draws
    r = runs[0]
    assert r.config.training.lr == dict(r.tuned)["training.lr"]


@pytest.mark.parametrize("search, needle", [
    ({"draws": 3}, "has no setting to draw"),
    ({"draws": 0, "training.lr": {"uniform": [0.1, 0.2]}}, "search.draws must be"),
    ({"draws": 2, "training.lr": {"gauss": [0.1, 0.2]}}, "needs one distribution"),
    ({"draws": 2, "training.lr": {"log_uniform": [0.0, 0.2]}}, "lo > 0"),
    ({"draws": 2, "training.lrr": {"uniform": [0.1, 0.2]}}, "did you mean 'training.lr'"),
    ({"draws": 2, "model.activation": {"choice": ["relu"]}}, "set in two of factors, tune and search"),
    ({"draws": 2, "model.depth": {"choice": [1, -3]}}, "search.'model.depth' value -3"),
    ({"draws": 2, "training.batch_size": {"uniform": [8, 64]}}, "is a whole number: draw it with {choice"),
    ({"draws": 2, "training.epochs": {"log_uniform": [2, 8]}}, "is a whole number: draw it with {choice"),
    ({"draws": 2, "dataset.train_size": {"uniform": [100, 300]}}, "is a whole number: draw it with {choice"),
])
def test_bad_search_gets_one_sentence(search, needle):
    with pytest.raises(SpecError, match=needle.replace("(", r"\(").replace("'", "'").replace(".", r"\.")):
        parse_study({**BASE, "search": search})


def test_loss_schedule_and_evaluate_validation():
    ok = parse_study({**BASE, "training": {"loss": "cross_entropy>squared_error"}, "evaluate": {"shift": {"noise": [0.5]}}})
    assert ok.training.loss == "cross_entropy>squared_error"
    with pytest.raises(SpecError, match="did you mean 'squared_error'"):
        parse_study({**BASE, "training": {"loss": "cross_entropy>squared_eror"}})
    with pytest.raises(SpecError, match="did you mean 'noise'"):
        parse_study({**BASE, "evaluate": {"shift": {"noize": [0.5]}}})
    with pytest.raises(SpecError, match="positive"):
        parse_study({**BASE, "evaluate": {"shift": {"scaling": [0.0]}}})


def test_new_settings_leave_old_run_ids_alone():
    """A study that asks for none of the new settings resolves to the same config keys as before."""
    from ponder.study.plan import expand

    cfg = expand(parse_study(BASE))[0].config.canonical()
    assert set(cfg) == {"dataset", "model", "training", "seed"} and "switch" not in cfg["training"]
    sched = expand(parse_study({**BASE, "training": {"loss": "cross_entropy>squared_error_softmax"}}))[0].config
    assert sched.canonical()["training"]["switch"] == 0.5


# -- engine: the loss schedule ---------------------------------------------------------------------


def test_loss_schedule_trains_on_the_first_loss_until_the_switch():
    pool = load_pool("spirals", {"n_train": 300, "n_test": 100})
    layers = build("mlp", pool.sample_shape, pool.n_classes, depth=1, width=8, kernel_size=1)
    data = prepare_data(pool, seeds=[0], label_noise=[0.0], val_fraction=0.2, train_size=None, dtype=torch.float64)
    m = [ModelSettings(0, 0.5, 0.0, "torch.default", {}, 0.0)]
    kw = dict(activation="tanh", optimizer="sgd", momentum=0.0, epochs=4, batch_size=32, dtype=torch.float64, probes=False)
    plain = train_population(layers, m, data, loss="cross_entropy", **kw)[0].epochs
    sched = train_population(layers, m, data, loss="cross_entropy>squared_error_softmax", switch=0.5, **kw)[0].epochs
    assert plain[:3] == sched[:3]  # epochs 0-2: the same cross-entropy training
    assert plain[4]["train_loss"] != sched[4]["train_loss"]


# -- the classic pipeline --------------------------------------------------------------------------


def test_hog_svm_and_logreg_learn_digits_and_are_deterministic():
    from functools import partial

    from ponder.train.classical import features, fit_predict

    pool = load_pool("digits", {})
    data = prepare_data(pool, seeds=[0, 1], label_noise=[0.0, 0.0], val_fraction=0.2, train_size=400, dtype=torch.float32)
    for arch, floor in (("hog_svm", 0.8), ("logreg", 0.85)):
        metrics, predict = fit_predict(arch, data, [0, 1], feature_fn=partial(features, arch, ref=pool.x_train))
        assert all(m["test_acc"] > floor for m in metrics), (arch, metrics)
        again, _ = fit_predict(arch, data, [0, 1], feature_fn=partial(features, arch, ref=pool.x_train))
        assert json.dumps(again) == json.dumps(metrics)  # NaN losses of the SVM compare equal as text
        pred = predict(data.x_test)
        assert pred.shape == (2, len(data.y_test))
        assert float((pred[0] == data.y_test).float().mean()) == pytest.approx(metrics[0]["test_acc"])


def test_a_signal_is_drawn_as_a_line_plot():
    from ponder.train.classical import render_signals

    img = render_signals(np.array([[0.0, 1.0, 1.0]]), lo=0.0, hi=1.0, height=3)[0]
    # the top row is hi: a line from the bottom-left corner up to the top row, then flat along it
    assert img.tolist() == [[0, 1, 1], [0, 1, 0], [1, 0, 0]]


# -- end to end ------------------------------------------------------------------------------------

STUDY = """
name = "beyond"
question = "Do the classic pipeline and an MLP differ under shift, and is the loss convex along lines?"
seeds = 2

[dataset]
name = "mnist1d"
train_size = 300

[model]
depth = 1
width = 16

[training]
optimizer = "adam"
lr = 0.003
epochs = 3

[factors]
"model.arch" = ["mlp", "logreg"]
"training.loss" = ["cross_entropy", "cross_entropy>squared_error_softmax"]

[evaluate]
shift = {noise = [1.0], translation = [3], scaling = [1.25]}
convexity = true
"""


def test_cli_run_stores_evals_and_reports_them(tmp_path):
    study = tmp_path / "beyond.toml"
    study.write_text(textwrap.dedent(STUDY))
    store, out = tmp_path / "s.duckdb", tmp_path / "rep"
    res = subprocess.run([sys.executable, "-m", "ponder", "run", str(study), "--store", str(store), "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    counts = dict(con.execute("SELECT probe, count(*) FROM evals GROUP BY probe").fetchall())
    con.close()
    # 8 runs x 3 shifts; 4 mlp runs x 21 points from init; 2 pairs x 21 points between solutions
    assert counts == {"shift": 24, "line_init": 84, "line_pair": 42}
    summary = (out / "beyond" / "summary.md").read_text()
    assert "(lab vs real world)" in summary and "Convexity probe" in summary and "Fine-tuning" in summary
    assert (out / "beyond" / "input_shift.png").exists() and (out / "beyond" / "loss_lines.png").exists()
    html = (out / "beyond" / "index.html").read_text()
    assert "accuracy under input shift" in html and "Convexity probe" in html


def test_random_search_study_reports_stability(tmp_path):
    from ponder.runner import run_study
    from ponder.reporting import write_report
    from ponder.store import Store
    from ponder.study import load_study

    p = tmp_path / "draws.toml"
    p.write_text(textwrap.dedent("""
        name = "draws"
        question = "How stable is each activation over random hyperparameters?"
        seeds = 2
        [dataset]
        name = "spirals"
        options = {n_train = 200, n_test = 100}
        [model]
        depth = 1
        width = 8
        [training]
        epochs = 2
        batch_size = 32
        [factors]
        "model.activation" = ["relu", "tanh", "sigmoid"]
        [search]
        draws = 3
        "training.lr" = {log_uniform = [0.01, 1.0]}
        "model.dropout" = {choice = [0.0, 0.2]}
    """))
    study = load_study(p)
    with Store(tmp_path / "s.duckdb") as st:
        run_study(study, st)
        index = write_report(st, "draws", tmp_path / "reports")
        from ponder.analysis import analyze

        an = analyze(st, "draws")
    assert list(an.stability["configs"]) == [3, 3, 3]
    assert len(an.draws) == 9 and an.stability_rank is not None and an.stability_rank.n_blocks == 3
    best = {a.arm: json.dumps(a.tuned, sort_keys=True) for a in an.arms}
    assert all('"search.draw"' in t for t in best.values())  # the tuned result is the best draw on validation
    assert "random draws of the other hyperparameters" in an.answer
    assert (index.parent / "stability.png").stat().st_size > 5000
    assert "Stability over random draws" in index.read_text()


def test_baselines_are_not_trained_once_per_learning_rate():
    from ponder.study.plan import expand

    spec = parse_study({"name": "b", "question": "Baselines?", "seeds": 2, "dataset": {"name": "mnist1d"},
                        "factors": {"model.arch": ["mlp", "logreg", "hog_svm"]}, "tune": {"training.lr": [0.01, 0.1]}})
    runs = expand(spec)
    per_arm = {}
    for r in runs:
        per_arm.setdefault(r.arm.label, []).append(r)
    assert len(per_arm["arch=mlp"]) == 4 and len(per_arm["arch=logreg"]) == 2 and len(per_arm["arch=hog_svm"]) == 2
    assert "lr" not in per_arm["arch=logreg"][0].config.canonical()["training"]
