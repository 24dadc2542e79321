"""The DuckDB store: transactions, resume, locking."""

from __future__ import annotations

import json

import multiprocessing as mp

import pytest

from ponder.errors import NotFound, StoreError
from ponder.runner import run_study
from ponder.store import Store
from ponder.study import expand, load_study


def test_population_written_in_one_transaction(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    runs = [{"run_id": "a", "config_json": "{}", "status": "ok", "diverged_epoch": None, "error": None, "population": "p",
             "population_size": 2, "steps": 1, "wall_s": 0.1, "finished": None, "env_json": None}]
    bad_epochs = [{"run_id": "a", "epoch": "not-a-number"}]
    with pytest.raises(Exception):
        st.save_population(runs, bad_epochs, [])
    assert st.count("runs") == 0 and st.count("epochs") == 0  # rolled back together
    st.save_population(runs, [{"run_id": "a", "epoch": 0}], [])
    assert st.finished(["a", "b"]) == {"a"}
    st.close()


def test_missing_study_and_store(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        Store(tmp_path / "none.duckdb", read_only=True)
    with Store(tmp_path / "s.duckdb") as st:
        with pytest.raises(NotFound, match="not in store"):
            st.study("x")


def test_not_a_store(tmp_path):
    p = tmp_path / "junk.duckdb"
    p.write_bytes(b"hello, not a database" * 100)
    with pytest.raises(StoreError):
        Store(p)


def _hold(path, ready, done):
    st = Store(path)
    ready.set()
    done.wait(30)
    st.close()


def test_second_process_gets_a_clear_sentence(tmp_path):
    path = str(tmp_path / "s.duckdb")
    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(path, ready, done))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StoreError, match="in use by another ponder process"):
            Store(path)
    finally:
        done.set()
        proc.join(30)


def test_chunking_does_not_change_results(tiny_study, tmp_path):
    study = load_study(tiny_study)
    study = study.model_copy(update={"training": study.training.model_copy(update={"dtype": "float64"})})
    with Store(tmp_path / "a.duckdb") as a, Store(tmp_path / "b.duckdb") as b:
        run_study(study, a)
        res = run_study(study, b, memory=1)  # one model per chunk
        assert res.trained == len(expand(study))
        ea, eb = a.epochs("tiny"), b.epochs("tiny")
        assert len(ea) == len(eb) and ((ea.drop(columns="run_id").to_numpy() - eb.drop(columns="run_id").to_numpy()) ** 2).max() < 1e-16
        assert b.con.execute("select max(population_size) from runs").fetchone()[0] == 1


def test_failed_population_is_recorded_and_retried(tiny_study, tmp_path, monkeypatch):
    import ponder.train.chunk as local  # the executor takes train_chunk from here when it trains

    study = load_study(tiny_study)
    calls = {"n": 0}
    real = local.train_chunk

    def flaky(runs, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated crash")
        return real(runs, **kw)

    monkeypatch.setattr(local, "train_chunk", flaky)
    with Store(tmp_path / "s.duckdb") as st:
        res = run_study(study, st)
        assert res.failed == 12 and st.runs("tiny")["status"].eq("failed").all()
        assert "simulated crash" in st.runs("tiny")["error"].iloc[0]
        res = run_study(study, st)
        assert res.skipped == 0 and res.trained == 12 and st.runs("tiny")["status"].eq("ok").all()


def test_a_version_1_store_is_migrated_and_reported(tmp_path, losses_as_in_0_1):
    """A store written by schema version 1 (no sigma_w2 / sigma_b2) opens, migrates and still reports."""
    import gzip
    from pathlib import Path

    from ponder.reporting import write_report
    from ponder.store import SCHEMA_VERSION

    path = tmp_path / "old.duckdb"
    path.write_bytes(gzip.decompress((Path(__file__).parent / "fixtures" / "store_v1.duckdb.gz").read_bytes()))
    with Store(path, read_only=True) as st:  # even a read-only open migrates first
        assert st._version() == SCHEMA_VERSION
        assert {"sigma_w2", "sigma_b2"} <= set(st.layers("quickstart").columns)
        assert list(st.evals("quickstart").columns) == ["run_id", "probe", "kind", "level", "value"]  # v3
        n = len(st.runs("quickstart"))
        index = write_report(st, "quickstart", tmp_path / "reports")
        stored = st.runs("quickstart")
    assert n > 0 and index.exists()
    # The typed run config gives every stored run its stored id back.
    from ponder.study.config import RunConfig

    for rid, cfg in zip(stored["run_id"], stored["config_json"]):
        assert RunConfig.from_canonical(json.loads(cfg)).run_id() == rid
