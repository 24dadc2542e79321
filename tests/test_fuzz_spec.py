"""Hostile input: random and mutated study files give a study or one PonderError sentence, never a traceback."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.errors import PonderError
from ponder.study.spec import parse_study
from tests.conftest import TINY

BASE = tomllib.loads(TINY)
KEYS = ["name", "question", "seeds", "metrics", "reference", "rope", "dataset", "model", "training", "factors", "tune", "quick",
        "dataset.name", "dataset.train_size", "dataset.val_fraction", "dataset.label_noise", "dataset.inputs", "dataset.options",
        "model.arch", "model.depth", "model.width", "model.activation", "model.initializer", "model.dropout", "model.init_params",
        "training.optimizer", "training.lr", "training.epochs", "training.batch_size", "training.loss", "training.dtype",
        "factors.model.depth", "factors.model.initializer", "tune.training.lr", "bogus", "model.bogus"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                    st.sampled_from(["relu", "../x", "caffe.gaussian(std=0.01)", "he_normal(", "mnist1d", "", "nan", "mlp"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def _set(doc: dict, key: str, value) -> None:
    head, _, rest = key.partition(".")
    if head in ("factors", "tune") and rest:
        doc.setdefault(head, {}) if isinstance(doc.get(head), dict) else doc.__setitem__(head, {})
        doc[head][rest] = value
    elif rest:
        if not isinstance(doc.get(head), dict):
            doc[head] = {}
        doc[head][rest] = value
    else:
        doc[key] = value


def _check(doc) -> None:
    try:
        parse_study(doc, origin="fuzz.toml")
    except PonderError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml") and "\n" not in msg and "Traceback" not in msg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=4))
def test_mutated_study_files(mutations):
    import copy

    doc = copy.deepcopy(BASE)
    for key, value in mutations:
        _set(doc, key, value)
    _check(doc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_random_study_documents(doc):
    _check({k.split(".")[0]: v for k, v in doc.items()})


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=6))
def test_mutated_study_files_long(mutations):
    test_mutated_study_files.hypothesis.inner_test(mutations)


option_values = st.one_of(st.integers(min_value=-5, max_value=10**9), st.floats(allow_nan=True), st.text(max_size=10), st.none(),
                          st.lists(st.integers(), max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["spirals", "teacher", "digits", "npz", "mnist_idx", "cifar10_bin"]),
       st.dictionaries(st.sampled_from(["n_train", "n_test", "noise", "n_classes", "turns", "seed", "n_features", "n_hidden",
                                        "path", "test_fraction", "split_seed", "standardize", "bogus"]), option_values, max_size=3))
def test_dataset_options_give_a_sentence(name, options):
    from ponder.catalog.datasets import load_pool

    if name in ("spirals", "teacher"):  # keep generated sizes small
        for k in ("n_train", "n_test", "n_features", "n_hidden"):
            if isinstance(options.get(k), int) and options[k] > 5000:
                options[k] = 5000
    try:
        load_pool(name, options)
    except PonderError as exc:
        assert "\n" not in str(exc)
