"""The built-in studies: each loads, expands and fits its time budget's shape; their report figures render."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from ponder import registry
from ponder.cli import ALL_STUDIES
from ponder.runner import run_study
from ponder.study.checks import check_plan
from ponder.reporting import write_report
from ponder.store import Store
from ponder.study import builtin_studies, expand, load_study
from ponder.theory.logits import gradient_ratio, logit_gradients


def test_the_five_questions_are_built_in():
    names = set(builtin_studies())
    assert set(ALL_STUDIES) <= names and "quickstart" in names
    assert len(ALL_STUDIES) == 5


@pytest.mark.parametrize("name", ALL_STUDIES + ["quickstart"])
def test_builtin_study_validates_and_has_a_quick_mode(name):
    full, quick = load_study(name), load_study(name, quick=True)
    assert len(expand(quick)) < len(expand(full))
    check_plan(quick, expand(quick))  # architectures fit the data, subsets fit the pools, limits hold


def test_activation_study_protocol():
    s = load_study("activations")
    assert len(s.factors["model.activation"]) >= 15 and len(s.factors["model.depth"]) >= 2
    assert len(s.factors["dataset.name"]) >= 2 and s.seeds >= 8 and s.model.initializer == "gain_matched"
    # the learning rate is tuned per arm by random search; the draws also give the stability view
    assert "training.lr" in s.search and s.search["draws"] >= 6 and len(s.draws) == s.search["draws"]
    assert len({d["training.lr"] for d in s.draws}) == len(s.draws)


def test_generalization_and_loss_studies_ask_for_their_measurements():
    g = load_study("generalization")
    assert {"hog_svm", "logreg", "mlp", "cnn1d"} <= set(g.factors["model.arch"])
    assert set(g.evaluate.shift) == {"noise", "translation", "scaling"}
    assert {0.0, 1.0} <= set(g.factors["dataset.label_noise"]) and {"shuffled_pixels", "gaussian"} <= set(g.factors["dataset.inputs"])
    loss = load_study("loss")
    assert loss.evaluate.convexity and "cross_entropy>squared_error_softmax" in loss.factors["training.loss"]


def test_logit_gradients_match_autograd():
    c = 10
    for p in (0.01, 0.3, 0.9):
        q = (1 - p) / (c - 1)
        z = torch.tensor(np.log([p] + [q] * (c - 1)), requires_grad=True)
        for loss in ("cross_entropy", "squared_error_softmax"):
            l = registry.get("loss", loss).fn(z[None], torch.tensor([0]))
            (g,) = torch.autograd.grad(l.sum(), z)
            want = logit_gradients(np.array([p]), c)
            assert abs(g[0].item()) == pytest.approx(want[f"{loss}_true"][0], rel=1e-9)
            assert g.norm().item() == pytest.approx(want[f"{loss}_norm"][0], rel=1e-9)
    assert gradient_ratio(0.01) > 50 > gradient_ratio(0.5) > 1  # far from the target CE's gradient dominates


def test_loss_and_dropout_report_figures(tmp_path):
    text = textwrap.dedent("""
        name = "mini"
        question = "Do loss and dropout change a tiny spiral classifier?"
        seeds = 2
        [dataset]
        name = "spirals"
        options = {n_train = 200, n_test = 100}
        [model]
        depth = 2
        width = 8
        [training]
        epochs = 2
        batch_size = 32
        lr = 0.1
        [factors]
        "training.loss" = ["cross_entropy", "squared_error_softmax", "squared_error"]
        "model.dropout" = [0.0, 0.5]
    """)
    p = tmp_path / "mini.toml"
    p.write_text(text)
    study = load_study(p)
    with Store(tmp_path / "s.duckdb") as st:
        run_study(study, st)
        index = write_report(st, "mini", tmp_path / "reports")
    for f in ("loss_gradients.png", "sparsity.png", "train_test.png", "critical_difference.png", "interaction.png"):
        assert (index.parent / f).stat().st_size > 5000, f
    html = index.read_text()
    assert "Ranking" in html and "practical equivalence" in html
