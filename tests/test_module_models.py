"""Module models: a user's torch.nn.Module trained as a population through torch.func."""

from __future__ import annotations

import math
import textwrap

import pytest
import torch
from torch import nn

from ponder import registry
from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build
from ponder.errors import SpecError
from ponder.registry import register
from ponder.train import ModelSettings, prepare_data, train_population
from ponder.train.module import train_module_population


class Act(nn.Module):
    """A catalog activation as a module."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.fn = registry.get("activation", name).fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def module_mlp(in_shape, n_classes, *, width, depth, activation, dropout):
    """Linear-act(-Dropout) x depth, then Linear: ponder's MLP, dropout after each hidden activation."""
    d, layers = math.prod(in_shape), [nn.Flatten()]
    for _ in range(depth):
        layers += [nn.Linear(d, width), Act(activation), nn.Dropout(dropout)]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, n_classes))


def module_convbn(in_shape, n_classes, *, width, dropout=0.0):
    """Conv1d-BatchNorm-ReLU, then nn.Dropout only for a positive rate (so models differ in structure)."""
    c, n = in_shape
    tail = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(nn.Conv1d(c, width, 5, stride=2, padding=2), nn.BatchNorm1d(width), nn.ReLU(), nn.Flatten(),
                         *tail, nn.Linear(width * ((n - 1) // 2 + 1), n_classes))


@pytest.fixture(autouse=True)
def module_entries(own_registry):
    """The test models, registered in a copy of the registry (conftest's ``own_registry``)."""
    register("model", "test_module.mlp", formula="the built-in MLP as an nn.Sequential", module=True)(module_mlp)
    register("model", "test_module.convbn", formula="conv, batch norm, dropout only when asked", module=True)(module_convbn)


MLP_SETTINGS = {"width": 12, "depth": 2, "activation": "tanh", "kernel_size": 3, "dropout": 0.0}
MODELS = [
    ModelSettings(0, 0.05, 0.0, "torch.default", {}, 0.0),
    ModelSettings(1, 0.10, 1e-3, "torch.kaiming_normal", {}, 0.2),
    ModelSettings(0, 0.02, 0.0, "torch.xavier_uniform", {}, 0.5),
    ModelSettings(2, 0.05, 0.0, "torch.kaiming_normal", {}, 0.0),
]


def _data(models, dataset="spirals", options=None, train_size=120):
    pool = load_pool(dataset, options or {"n_train": 400, "n_test": 100})
    return pool, prepare_data(pool, seeds=[m.seed for m in models], label_noise=[0.1] * len(models), val_fraction=0.2,
                              train_size=train_size, dtype=torch.float64)


def _module(arch, settings, models, optimizer, loss="cross_entropy", epochs=2, **data_kw):
    _, data = _data(models, **data_kw)
    return train_module_population(arch, settings, models, data, loss=loss, optimizer=optimizer, momentum=0.9,
                                   epochs=epochs, batch_size=16, dtype=torch.float64, keep_params=True)


def _same_rows(a: list[dict], b: list[dict], tol: float = 1e-10) -> bool:
    """Equal epoch rows: the same keys, every value within ``tol``."""
    return len(a) == len(b) and all(ra.keys() == rb.keys() and all(abs(ra[k] - rb[k]) <= tol for k in ra)
                                    for ra, rb in zip(a, b))


def _diff(a: dict, b: dict) -> float:
    assert list(a) == list(b)
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_model_in_population_equals_model_alone(optimizer):
    together = _module("test_module.mlp", MLP_SETTINGS, MODELS, optimizer)
    for k, m in enumerate(MODELS):
        alone = _module("test_module.mlp", MLP_SETTINGS, [m], optimizer)[0]
        assert _diff(together[k].final, alone.final) < 1e-10
        assert _same_rows(together[k].epochs, alone.epochs)
        assert together[k].layers == [] and together[k].steps == alone.steps > 0


def test_structures_differ_within_a_population_conv_batchnorm():
    """Dropout only for a positive rate: models train in groups, each as it would alone; BatchNorm's running
    statistics are per model."""
    kw = dict(dataset="mnist1d", options={"num_samples": 500}, train_size=100)
    settings = {"width": 4, "depth": 1, "activation": "relu", "kernel_size": 5, "dropout": 0.0}
    together = _module("test_module.convbn", settings, MODELS[:3], "adam", **kw)
    for k, m in enumerate(MODELS[:3]):
        alone = _module("test_module.convbn", settings, [m], "adam", **kw)[0]
        assert _diff(together[k].final, alone.final) < 1e-10
        assert _same_rows(together[k].epochs, alone.epochs)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_module_mlp_equals_the_built_in_mlp(optimizer):
    """Same init draws, data order and dropout masks: the paths agree to rounding. They run different
    kernels (a vmapped F.linear and autograd against baddbmm and the hand-written backward), so equality
    is asserted to 1e-10 in float64, not bit for bit (it is bit-identical on the CPU this was written on)."""
    pool, data = _data(MODELS)
    layers = build("mlp", pool.sample_shape, pool.n_classes, depth=2, width=12, kernel_size=3)
    kw = dict(loss="cross_entropy", optimizer=optimizer, momentum=0.9, epochs=2, batch_size=16, dtype=torch.float64,
              keep_params=True)
    builtin = train_population(layers, MODELS, data, activation="tanh", **kw)
    module = train_module_population("test_module.mlp", MLP_SETTINGS, MODELS, data, **kw)
    for a, b in zip(builtin, module):
        assert list(b.final) == ["1.weight", "1.bias", "4.weight", "4.bias", "7.weight", "7.bias"]
        assert _diff(dict(zip(b.final, [t for pair in a.params for t in pair])), b.final) < 1e-10
        assert _diff(dict(zip(b.initial, [t for pair in a.init for t in pair])), b.initial) == 0.0
        assert [e["epoch"] for e in b.epochs] == [0, 1, 2] and _same_rows(a.epochs, b.epochs)


def test_a_factory_gets_the_settings_it_declares():
    from ponder.catalog.models import MODULE_SETTINGS, module_kwargs

    settings = {**MLP_SETTINGS, "dropout": 0.3}
    assert module_kwargs("test_module.convbn", settings) == {"width": 12, "dropout": 0.3}

    @register("model", "test_module.kwargs", formula="takes every setting", module=True)
    def everything(in_shape, n_classes, **settings):
        return nn.Linear(in_shape[0], n_classes)

    assert module_kwargs("test_module.kwargs", settings) == {k: settings[k] for k in MODULE_SETTINGS}


def test_divergence_freezes_one_module_model_only():
    wild = ModelSettings(3, 1e6, 0.0, "torch.kaiming_normal", {}, 0.0)
    kw = dict(loss="squared_error", epochs=3)
    base = _module("test_module.mlp", MLP_SETTINGS, MODELS[:2], "sgd", **kw)
    mixed = _module("test_module.mlp", MLP_SETTINGS, [MODELS[0], wild, MODELS[1]], "sgd", **kw)
    assert mixed[1].status == "diverged" and mixed[1].diverged_epoch in (1, 2, 3)
    assert _diff(base[0].final, mixed[0].final) == 0.0 and _diff(base[1].final, mixed[2].final) == 0.0


def test_random_operations_outside_dropout_and_network_initializers_are_refused():
    @register("model", "test_module.noisy", formula="adds noise in forward", module=True)
    def noisy(in_shape, n_classes):
        class Noisy(nn.Linear):
            def forward(self, x):
                return super().forward(x + torch.randn_like(x))
        return Noisy(in_shape[0], n_classes)

    with pytest.raises(SpecError, match="outside nn.Dropout"):
        _module("test_module.noisy", MLP_SETTINGS, MODELS[:1], "sgd")
    with pytest.raises(SpecError, match="whole network"):
        _module("test_module.mlp", MLP_SETTINGS, [ModelSettings(0, 0.1, 0.0, "lsuv", {}, 0.0)], "sgd")


PLUGIN = '''
import math
from torch import nn
from ponder.registry import register


@register("model", "mynet", formula="Linear-Tanh-Linear", module=True)
def mynet(in_shape, n_classes, *, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.Tanh(), nn.Linear(width, {out}))
'''

STUDY = """
name = "modnet"
question = "Does my own network do as well as the built-in MLP on spirals?"
seeds = 3
plugins = ["myplugin"]

[dataset]
name = "spirals"
options = {n_train = 300, n_test = 200}
val_fraction = 0.2

[model]
arch = "mynet"
depth = 1
width = 16
activation = "tanh"

[training]
optimizer = "momentum"
lr = 0.05
epochs = 3
batch_size = 32

[factors]
"model.arch" = ["mynet", "mlp"]
"""


def test_study_with_a_plugin_module_model_runs_analyzes_and_rehashes(tmp_path):
    from ponder.analysis import analyze
    from ponder.runner import run_study
    from ponder.store import Store
    from ponder.study import expand, load_study

    (tmp_path / "myplugin.py").write_text(PLUGIN.format(out="n_classes"))
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(STUDY))
    study = load_study(path)
    with Store(tmp_path / "s.duckdb") as st:
        done = run_study(study, st)
        assert done.failed == 0 and done.statuses == {"ok": 6}
        an = analyze(st, "modnet")
    assert an.answer and {a.arm for a in an.arms} == {"arch=mynet", "arch=mlp"}
    ids = {r.id: r.config.model.arch for r in expand(study)}
    assert sorted(ids.values()).count("mynet") == 3
    (tmp_path / "myplugin.py").write_text(PLUGIN.replace("nn.Tanh()", "nn.ReLU()").format(out="n_classes"))
    again = {r.id: r.config.model.arch for r in expand(load_study(path))}
    assert {i for i, a in ids.items() if a == "mlp"} == {i for i, a in again.items() if a == "mlp"}
    assert not {i for i, a in ids.items() if a == "mynet"} & set(again)


def _plan(tmp_path, plugin: str, factors: str = '"model.arch" = ["mynet", "mlp"]'):
    from ponder.study import expand, load_study

    (tmp_path / "myplugin.py").write_text(plugin)
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(STUDY).replace('"model.arch" = ["mynet", "mlp"]', factors))
    study = load_study(path)
    return study, expand(study)


@pytest.mark.parametrize("change, match", [
    (("{out})", "n_classes + 1)"), r"returns \(2, 4\) .* must return logits of shape \(batch, n_classes\) = \(2, 3\)"),
    (("return nn.Sequential", "return 3 or nn.Sequential"), "returned a int, not a torch.nn.Module"),
    (("return nn.Sequential", "raise ValueError('no such width'); return nn.Sequential"),
     "failed to build .* ValueError: no such width"),
    (("nn.Linear(math.prod(in_shape), width)", "nn.Linear(5, width)"), "fails on a batch of 2 samples of shape"),
    (("*, width", "*, width, heads"), "requires 'heads', which is not a \\[model\\] setting"),
])
def test_plan_checks_refuse_bad_factories(tmp_path, change, match):
    from ponder.study.checks import check_plan

    study, runs = _plan(tmp_path, PLUGIN.replace(*change).format(out="n_classes"))
    with pytest.raises(SpecError, match=match):
        check_plan(study, runs)


def test_plan_checks_refuse_settings_the_factory_ignores(tmp_path):
    from ponder.study.checks import check_plan

    study, runs = _plan(tmp_path, PLUGIN.format(out="n_classes"), '"model.activation" = ["tanh", "relu"]')
    with pytest.raises(SpecError, match="model.activation is \\['relu', 'tanh'\\] but model 'mynet' does not take"):
        check_plan(study, runs)
    study, runs = _plan(tmp_path, PLUGIN.format(out="n_classes"), '"model.initializer" = ["lsuv", "torch.default"]')
    with pytest.raises(SpecError, match="whole network"):
        check_plan(study, runs)
