"""Plugins: a user's components named in a study file, trained and reported like the built-ins;
an edited plugin retrains the runs that use it, and only those."""

from __future__ import annotations

import json
import textwrap

import pytest


@pytest.fixture(autouse=True)
def _own_registry(own_registry):
    """Plugin entries loaded in this process are dropped after each test (conftest's ``own_registry``)."""

PLUGIN = '''
import torch
import ponder


@ponder.register("activation", "swish2", formula="x * sigmoid(BETA x)")
def swish2(x):
    """Swish with a fixed beta."""
    return x * torch.sigmoid(BETA * x)


BETA = 2.0


@ponder.register("model", "tinynet", formula="Linear(width) - act - Linear(classes)", module=True)
def tinynet(in_shape, n_classes, *, width):
    """A user's own network: flatten, one hidden layer with the plugin activation."""
    import math

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(math.prod(in_shape), width)
            self.out = torch.nn.Linear(width, n_classes)

        def forward(self, x):
            return self.out(swish2(self.hidden(x.flatten(1))))

    return Net()


@ponder.register("metric", "confidence", formula="mean max softmax", direction="max")
def confidence(logits, y):
    """Mean confidence of the prediction."""
    return float(torch.softmax(logits.double(), -1).max(-1).values.mean())
'''


def _study(tmp_path, make_study):
    (tmp_path / "my_components.py").write_text(textwrap.dedent(PLUGIN))
    return make_study(seeds=2, tune=None, plugins=["my_components"], metrics=["accuracy", "confidence"],
                      factors={"model.arch+model.activation": [["mlp", "tanh"], ["mlp", "swish2"], ["tinynet", "tanh"]]})


def test_a_plugin_study_runs_reports_and_retrains_only_what_changed(tmp_path, make_study, cli):
    study = _study(tmp_path, make_study)
    store, out = tmp_path / "s.duckdb", tmp_path / "reports"
    r = cli("run", str(study), "--store", str(store), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "6 runs, 0 already in the store, 6 trained, 0 failed" in r.stderr
    analysis = json.loads((out / "tiny" / "analysis.json").read_text())
    assert analysis["metric"] == "accuracy" and len(analysis["arms"]) == 3
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:  # the plugin metric, on every run, the module's too
        measured = con.execute("SELECT count(DISTINCT run_id) FROM evals WHERE kind = 'confidence' "
                               "AND probe = 'metric_test'").fetchone()[0]
    assert measured == 6
    assert {a["arm"] for a in analysis["arms"]} >= {"arch+activation=tinynet+tanh"}
    r = cli("run", str(study), "--store", str(store), "--out", str(out))
    assert "6 runs, 6 already in the store, 0 trained" in r.stderr  # unchanged plugin: reused
    plugin = tmp_path / "my_components.py"
    plugin.write_text(plugin.read_text().replace("BETA = 2.0", "BETA = 50.0"))
    r = cli("run", str(study), "--store", str(store), "--out", str(out))
    assert r.returncode == 0, r.stderr
    # every run measures the plugin metric, and a plugin's identity hashes its whole module file:
    # all 6 retrain (a function used by some runs only retrains those: next test)
    assert "6 runs, 0 already in the store, 6 trained" in r.stderr


def test_editing_a_plugin_function_changes_only_the_ids_of_runs_that_use_it(tmp_path, make_study):
    from ponder.study import expand, load_study

    (tmp_path / "acts.py").write_text(textwrap.dedent('''
        import torch
        import ponder

        @ponder.register("activation", "bump", formula="x + sin(x)")
        def bump(x):
            """x + sin(x)."""
            return x + torch.sin(x)
    '''))
    study = make_study(seeds=2, tune=None, plugins=["acts"], factors={"model.activation": ["tanh", "bump"]})
    before = {r.arm.label: r.id for r in expand(load_study(study))}
    (tmp_path / "acts.py").write_text((tmp_path / "acts.py").read_text().replace("torch.sin(x)", "0.5 * torch.sin(x)"))
    after = {r.arm.label: r.id for r in expand(load_study(study))}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"activation=bump"}


def test_a_missing_plugin_is_one_sentence(tmp_path, make_study, cli):
    study = make_study(plugins=["not_there"])
    r = cli("show", str(study))
    assert r.returncode == 2 and "plugin module 'not_there' was not found" in r.stderr and "Traceback" not in r.stderr


BROKEN = '''
import torch
import ponder


@ponder.register("activation", "bad.shape", formula="keeps one feature")
def shape(x):
    return x[..., :1]


@ponder.register("activation", "bad.inplace", formula="clamps its input")
def inplace(x):
    return x.clamp_(min=0)


@ponder.register("initializer", "bad.square", formula="a square matrix whatever the shape")
def square(shape, *, generator, dtype=torch.float32):
    return torch.randn(shape[0], shape[0], generator=generator, dtype=dtype)
'''


@pytest.mark.parametrize("setting, needle", [
    ({"model.activation": ["tanh", "bad.shape"]}, "model.activation 'bad.shape' returns shape (2, 3, 1) for an input"),
    ({"model.activation": ["tanh", "bad.inplace"]}, "model.activation 'bad.inplace' changes its input in place"),
    ({"model.initializer": ["torch.default", "bad.square"]}, "model.initializer 'bad.square' draws shape (3, 3)"),
])
def test_a_broken_plugin_component_is_refused_before_training(tmp_path, make_study, setting, needle):
    from ponder.errors import SpecError
    from ponder.study import expand, load_study
    from ponder.study.checks import check_plan

    (tmp_path / "broken.py").write_text(textwrap.dedent(BROKEN))
    study = load_study(make_study(seeds=2, tune=None, plugins=["broken"], factors=setting))
    with pytest.raises(SpecError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_plan(study, expand(study))


def test_a_plugin_cannot_take_a_built_in_name_or_one_no_study_can_write():
    import ponder
    from ponder import registry
    from ponder.errors import CatalogError

    with pytest.raises(CatalogError, match=r"activation 'relu' is a built-in name; give yours another \(e\.g\. "
                                           r"'test_plugins\.relu'\)"):
        ponder.register("activation", "relu", formula="x")(lambda x: x)
    assert registry.get("activation", "relu").fn.__module__ == "ponder.catalog.activations"  # the built-in stands
    for bad in ("my act", "my.init(a=1)", "", 5):
        with pytest.raises(CatalogError, match="cannot be written in a study"):
            ponder.register("activation", bad, formula="x")(lambda x: x)
    with pytest.raises(CatalogError, match=r"unknown facts \['lw'\] \(the facts of initializer entries: law, "):
        ponder.register("initializer", "mine.init", formula="x", lw="normal")


def test_the_folklore_table_leaves_out_a_plugin_initializer_that_cannot_draw(tmp_path):
    import torch

    import ponder
    from ponder.catalog.folklore import near_zero_table

    @ponder.register("initializer", "mine.integers", formula="integers", law="uniform")
    def integers(shape, *, generator, dtype=torch.float32):
        return torch.randint(-3, 3, shape, generator=generator)

    names = [r.name for r in near_zero_table()]
    assert "mine.integers" not in names and "torch.xavier_uniform" in names


def test_a_plugin_without_readable_source_is_still_told_apart_by_its_code():
    """A function defined in `python -c`, stdin or a REPL has no source to hash: its compiled code stands in, so an
    edited function gets new run ids instead of reusing the old results."""
    from ponder.registry import code_hash

    def made(body: str):
        scope: dict = {}
        exec(compile(f"def act(x):\n    return {body}\n", "<stdin>", "exec"), scope)  # no file behind it
        return scope["act"]

    assert code_hash(made("x")) == code_hash(made("x"))
    assert code_hash(made("x")) != code_hash(made("x * 0"))


def test_a_module_factory_registered_without_module_true_is_told_so(tmp_path, make_study):
    from ponder.errors import PonderError
    from ponder.study import expand, load_study
    from ponder.study.checks import check_plan

    (tmp_path / "forgot.py").write_text(textwrap.dedent('''
        import torch
        import ponder

        @ponder.register("model", "forgot.net", formula="Linear")
        def net(in_shape, n_classes, *, width):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(n_classes))
    '''))
    study = load_study(make_study(seeds=2, tune=None, plugins=["forgot"], model__arch="forgot.net",
                                  factors={"model.activation": ["relu", "tanh"]}))
    with pytest.raises(PonderError, match=r"model 'forgot.net' does not build ponder's layers .*registered with module=True"):
        check_plan(study, expand(study))
