"""Run expansion, run ids and population grouping."""

from __future__ import annotations

import dataclasses

from ponder import registry
from ponder.study import expand, load_study, populations
from ponder.study.plan import run_id


def test_expansion_counts_and_ids(tiny_study):
    s = load_study(tiny_study)
    runs = expand(s)
    assert len(runs) == 2 * 2 * 3  # initializers x lrs x seeds
    assert len({r.id for r in runs}) == len(runs)
    assert [r.id for r in expand(load_study(tiny_study))] == [r.id for r in runs]  # stable
    assert {r.arm.label for r in runs} == {"initializer=torch.default", "initializer=torch.kaiming_normal"}


def test_run_id_changes_with_config_and_catalog_version(tiny_study, monkeypatch):
    run = expand(load_study(tiny_study))[0]
    assert run_id(run.config.model_copy(update={"seed": run.config.seed + 1})) != run.id
    assert run_id(run.config.canonical()) == run.id  # a stored config_json gives back its id
    entry = registry.get("initializer", run.config.model.initializer)
    table = registry._REGISTRY["initializer"]
    monkeypatch.setitem(table, entry.name, dataclasses.replace(entry, version=entry.version + "-changed"))
    assert run_id(run.config) != run.id


def test_populations_group_by_graph_not_by_per_model_settings(tiny_study, tmp_path):
    s = load_study(tiny_study)
    pops = populations(expand(s))
    # initializer, lr and seed vary per model: one population
    assert len(pops) == 1 and len(pops[0].runs) == 12
    text = tiny_study.read_text() + '"model.activation" = ["relu", "tanh"]\n'
    text = text.replace("[tune]", "").replace('"training.lr" = [0.05, 0.2]', "")
    text = text.replace('[factors]', '[tune]\n"training.lr" = [0.05, 0.2]\n[factors]')
    p = tmp_path / "two.toml"
    p.write_text(text)
    pops = populations(expand(load_study(p)))
    assert len(pops) == 2  # activation changes the graph
    assert all(len({r.config.model.activation for r in pop.runs}) == 1 for pop in pops)


def test_run_ids_of_stores_written_before_the_typed_config_are_unchanged(losses_as_in_0_1):
    """Every built-in study (full and quick) expands to exactly the run ids ponder 0.1 gave it, so
    existing stores skip what they have (fixture: sorted ids' SHA-256 per study, written by 0.1), once what was
    changed since by design is taken back: the two losses at version 2 and the studies' ``probe_every = 5``."""
    import hashlib
    import json
    from pathlib import Path

    old = json.loads((Path(__file__).parent / "fixtures" / "run_ids_0.1.json").read_text())
    for key, want in old.items():
        name, _, quick = key.partition("/")
        study = load_study(name, quick=bool(quick))
        study = study.model_copy(update={"evaluate": study.evaluate.model_copy(update={"probe_every": None})})
        runs = expand(study)
        got = hashlib.sha256("\n".join(sorted(r.id for r in runs)).encode()).hexdigest()
        assert (len(runs), got) == (want["n"], want["sha256"]), key


def test_the_loss_version_bump_renews_exactly_the_runs_of_those_losses(request):
    """Runs trained with cross-entropy or squared error on softmax get new ids (their numbers changed at rounding
    level); runs of the unchanged squared error keep theirs, so a store retrains only what changed."""
    now = {r.id: r.config.training.loss for r in expand(load_study("loss", quick=True))}
    bumped = request.getfixturevalue("losses_as_in_0_1")  # from here on, the losses at their 0.1 versions
    before = {r.id: r.config.training.loss for r in expand(load_study("loss", quick=True))}
    kept = set(now) & set(before)
    assert kept and {now[i] for i in kept} == {"squared_error"}
    assert all(any(b in loss for b in bumped) for i, loss in now.items() if i not in kept)
