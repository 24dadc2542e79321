"""Crash safety: SIGKILL `ponder run` at 20 points of a study; the store is never half-written and a rerun completes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import duckdb

STUDY = """
name = "crash"
question = "Does the store survive being killed at any point?"
seeds = 2
[dataset]
name = "spirals"
options = {n_train = 300, n_test = 100}
[model]
depth = 1
width = 8
[training]
epochs = 3
batch_size = 32
[factors]
"model.activation" = ["relu", "tanh", "elu", "selu", "gelu", "silu", "softsign", "sigmoid"]
"model.depth" = [1, 2]
[tune]
"training.lr" = [0.05, 0.2]
"""
EXPECTED = 8 * 2 * 2 * 2  # activations x depths x lrs x seeds
EPOCHS = 3


def _check(store, epochs: int = EPOCHS) -> int:
    """The store opens; every finished run has all its epoch and layer records; no orphan records."""
    from ponder.store import Store

    Store(store).close()  # opens (and completes a schema a kill interrupted before its first commit)
    with duckdb.connect(str(store), read_only=True) as con:
        bad = con.execute("""
            SELECT r.run_id FROM runs r
            LEFT JOIN (SELECT run_id, count(*) AS n FROM epochs GROUP BY run_id) e USING (run_id)
            LEFT JOIN (SELECT run_id, count(*) AS n FROM layers GROUP BY run_id) l USING (run_id)
            WHERE r.status IN ('ok', 'diverged') AND (coalesce(e.n, 0) != ? OR coalesce(l.n, 0) = 0)""", [epochs + 1]).fetchall()
        assert not bad, f"runs missing records: {bad[:3]}"
        orphans = con.execute("SELECT count(*) FROM epochs WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchone()[0]
        assert orphans == 0
        dup = con.execute("SELECT count(*) - count(DISTINCT run_id) FROM runs").fetchone()[0]
        assert dup == 0
        return con.execute("SELECT count(*) FROM runs WHERE status IN ('ok', 'diverged')").fetchone()[0]


def test_sigkill_at_twenty_points(tmp_path):
    study = tmp_path / "crash.toml"
    study.write_text(textwrap.dedent(STUDY))
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "ponder", "run", str(study), "--store", str(store), "--no-report", "--threads", "1"]
    counts = []
    for i in range(20):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.5 + 0.35 * i)  # kill points spread over start-up, planning, training and writing
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if store.exists():
            counts.append(_check(store))
    assert counts and counts == sorted(counts), "a kill lost finished runs"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert _check(store) == EXPECTED
    assert f"{EXPECTED} runs" in r.stderr


def test_ctrl_c_keeps_finished_populations_and_says_how_to_resume(tmp_path):
    study = tmp_path / "crash.toml"
    study.write_text(textwrap.dedent(STUDY).replace("epochs = 3", "epochs = 300"))  # long enough to interrupt
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "ponder", "run", str(study), "--store", str(store), "--no-report", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(10)  # start-up (~3 s) and a few of the 16 populations (the store is locked while it runs)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    kept = _check(store, epochs=300)
    assert 0 < kept < EXPECTED
