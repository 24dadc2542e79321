"""``ponder export --format mlflow``: a study's runs in a local MLflow file store, read back with MLflow's client."""

from __future__ import annotations

import json
import sys

import pytest
from mlflow.tracking import MlflowClient

from ponder.errors import PonderError
from ponder.export.frames import flatten
from ponder.export.mlflow import ALLOW_FILE_STORE, METRIC_COLS, _batches, export_mlflow, param_text
from ponder.store import Store
from ponder.study.spec import parse_study
from tests.conftest import study_dict


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(study, store path): the tiny initializer study, 2 seeds, 2 epochs, trained once for the module."""
    from ponder.runner import run_study

    spec = parse_study(study_dict(seeds=2, training__epochs=2))
    path = tmp_path_factory.mktemp("mlflow") / "ponder.duckdb"
    with Store(path) as st:
        run_study(spec, st)
    return spec, path


@pytest.fixture
def client(monkeypatch):
    """``client(uri)``: an MlflowClient on a file store (MLflow >= 3.13 opens one only when allowed)."""
    monkeypatch.setenv(ALLOW_FILE_STORE, "true")
    return lambda uri: MlflowClient(tracking_uri=uri)


def _ponder_runs(mlflow: MlflowClient, experiment_id: str) -> dict:
    return {r.data.tags["ponder.run_id"]: r for r in mlflow.search_runs([experiment_id], max_results=1000)}


def test_every_run_reads_back_with_its_params_metrics_and_tags(trained, tmp_path, client):
    from ponder import __version__

    spec, path = trained
    with Store(path, read_only=True) as st:
        done = export_mlflow(st, spec.name, tmp_path / "mlruns")
        runs, epochs = st.runs(spec.name), st.epochs(spec.name)
    mlflow = client(done.uri)
    experiment = mlflow.get_experiment_by_name(spec.name)
    assert experiment is not None and experiment.experiment_id == done.experiment_id
    exported = _ponder_runs(mlflow, done.experiment_id)
    assert len(exported) == len(runs) == done.runs == 2 * 2 * 2 and done.skipped == 0
    for row in runs.to_dict("records"):
        got = exported[row["run_id"]]
        assert got.info.status == "FINISHED"
        assert got.data.params == {k: param_text(v) for k, v in flatten(json.loads(row["config_json"])).items()}
        assert got.data.params["model.initializer"] == json.loads(row["arm_json"])["model.initializer"]
        tags = got.data.tags
        assert (tags["ponder.study"], tags["ponder.arm"], tags["ponder.seed"]) == (spec.name, row["arm"], str(row["seed"]))
        assert (tags["ponder.status"], tags["ponder.version"], tags["env.torch"]) == \
            ("ok", __version__, json.loads(row["env_json"])["torch"])
        curve = epochs[epochs["run_id"] == row["run_id"]].sort_values("epoch")
        for col in METRIC_COLS:
            history = sorted(mlflow.get_metric_history(got.info.run_id, col), key=lambda m: m.step)
            assert [m.step for m in history] == curve["epoch"].tolist()
            assert [m.value for m in history] == pytest.approx(curve[col].tolist())


def test_cli_refuses_a_non_empty_folder_and_replaces_with_force(trained, tmp_path, cli, client):
    spec, path = trained
    out = tmp_path / "mlruns"
    args = ("export", spec.name, "--store", str(path), "--format", "mlflow", "--out", str(out))
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "mlflow ui --backend-store-uri" in first.stdout and "8 runs of tiny" in first.stdout
    again = cli(*args)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "not empty" in again.stderr and "--force" in again.stderr
    forced = cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    mlflow = client(out.absolute().as_uri())
    experiment = mlflow.get_experiment_by_name(spec.name)
    assert len(_ponder_runs(mlflow, experiment.experiment_id)) == 8  # the earlier export's runs were replaced
    file = tmp_path / "a-file"
    file.write_text("x")
    refused = cli(*args[:-1], str(file))
    assert refused.returncode == 2 and "is a file, not a folder" in refused.stderr, refused.stderr
    missing = cli("export", "nope", "--store", str(path), "--format", "mlflow", "--out", str(tmp_path / "new"))
    assert missing.returncode == 2 and "'nope'" in missing.stderr and not (tmp_path / "new").exists()


def test_diverged_runs_keep_their_status_and_leave_out_non_finite_values(synthetic_store, make_spec, tmp_path, client):
    spec = make_spec(seeds=2)
    store = synthetic_store(spec, lambda levels, tuned, seed: (0.5, None if seed == 0 else 0.6, 0.7))
    with store:
        runs = store.runs(spec.name)
        store.con.execute("UPDATE epochs SET train_loss = 'nan'::DOUBLE WHERE epoch = 3")
        done = export_mlflow(store, spec.name, tmp_path / "mlruns")
    mlflow = client(done.uri)
    exported = _ponder_runs(mlflow, done.experiment_id)
    diverged = runs[runs["status"] == "diverged"]["run_id"]
    assert len(diverged) and {exported[r].data.tags["ponder.status"] for r in diverged} == {"diverged"}
    assert {exported[r].info.status for r in diverged} == {"FINISHED"}
    some = exported[diverged.iloc[0]]
    assert [m.step for m in mlflow.get_metric_history(some.info.run_id, "train_loss")] == [0]
    assert [m.step for m in mlflow.get_metric_history(some.info.run_id, "test_acc")] == [0, 3]


def test_missing_mlflow_is_one_sentence_naming_the_extra(trained, tmp_path, monkeypatch):
    spec, path = trained
    for name in ("mlflow", "mlflow.entities", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, name, None)
    with Store(path, read_only=True) as st, pytest.raises(PonderError) as err:
        export_mlflow(st, spec.name, tmp_path / "mlruns")
    assert "pip install 'ponder[mlflow]'" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "mlruns").exists()


def test_batches_stay_within_mlflow_limits_and_lose_nothing():
    metrics, params, tags = list(range(2500)), list(range(150)), list(range(30))
    batches = list(_batches(metrics, params, tags))
    assert all(len(p) <= 100 and len(t) <= 100 and len(m) + len(p) + len(t) <= 1000 for m, p, t in batches)
    assert [x for b in batches for x in b[0]] == metrics and [x for b in batches for x in b[1]] == params
    assert [x for b in batches for x in b[2]] == tags
    assert len(list(_batches(list(range(60)), list(range(25)), list(range(20))))) == 1  # a usual run: one call
