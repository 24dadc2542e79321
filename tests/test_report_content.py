"""What the study page states as fixed is fixed: settings a factor varies, or that are tuned or searched per
arm, are not listed among the settings every run shares."""

from __future__ import annotations

from ponder.reporting.html import fixed_settings


def test_fixed_settings_leave_out_what_varies_per_arm():
    spec = {"dataset": {"name": "mnist1d", "label_noise": 0.0},
            "model": {"arch": "mlp", "activation": "relu", "dropout": 0.0, "width": 64, "initializer": "torch.default",
                      "init_params": {}},
            "training": {"optimizer": "momentum", "lr": 0.05, "weight_decay": 0.0, "epochs": 5},
            "factors": {"model.activation": ["relu", "tanh"], "model.initializer+model.init_params": [["a", {}]]},
            "tune": {"training.lr": [0.01, 0.03]},
            "search": {"draws": 4, "seed": 0, "training.weight_decay": {"log_uniform": [1e-5, 1e-3]}}}
    fixed = fixed_settings(spec)
    assert fixed == {"dataset": {"name": "mnist1d", "label_noise": 0.0},
                     "model": {"arch": "mlp", "dropout": 0.0, "width": 64},
                     "training": {"optimizer": "momentum", "epochs": 5}}


def test_the_reproduce_command_is_quoted_for_a_shell():
    import shlex
    from types import SimpleNamespace

    from ponder.reporting.html import _default_command

    an = SimpleNamespace(study={"name": "s", "quick": True, "spec": {"source": "my study;x.toml"}})
    command = _default_command(an, SimpleNamespace(path="my store.duckdb"))
    assert shlex.split(command) == ["ponder", "run", "my study;x.toml", "--quick", "--store", "my store.duckdb"]


def test_a_misspelled_loss_points_to_the_real_listing_command():
    import pytest

    from ponder import registry
    from ponder.errors import CatalogError

    with pytest.raises(CatalogError, match=r"did you mean 'cross_entropy'.*ponder list losses"):
        registry.get("loss", "cross_entropyy")


def test_linked_factors_and_one_seed_read_cleanly_in_the_summary(synthetic_store, make_spec):
    from ponder.analysis import analyze
    from ponder.reporting.html import summary_markdown

    study = make_spec(seeds=1, tune=None, focus="model.width+model.depth", factors={
        "model.activation": ["relu", "tanh"], "model.width+model.depth": [[8, 1], [16, 2]]})

    def value(levels, tuned, seed):
        return 0.8, 0.8 + 0.01 * levels["model.width+model.depth"][0] / 8, 0.9

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert [c.label for c in an.conditions] == ["activation=relu", "activation=tanh"]
    md = summary_markdown(an)
    assert "| width+depth | activation=relu | activation=tanh |" in md  # not "width+model.depth"
    assert "– – –" not in md  # one seed: no interval, one dash
