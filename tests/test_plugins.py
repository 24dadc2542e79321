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
