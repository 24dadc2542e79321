"""Crash safety: SIGKILL `ponder run` at known points of a study; the store is never half-written and a rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import duckdb
import pytest

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


def _run(cmd: list[str], kill: str | None = None) -> subprocess.CompletedProcess:
    """``cmd`` with Ctrl-C's default meaning, even under a runner started with SIGINT ignored (a shell's background
    job): an ignored SIGINT is inherited through exec, and Python then keeps ignoring it."""
    env = dict(os.environ, **({"PONDER_TEST_KILL": kill} if kill else {}))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("points", [
    ["1:during", "2:before", "2:after", "3:during", "1:after", "4:during"],
])
def test_sigkill_at_known_points_loses_nothing_and_resumes(tmp_path, points):
    """SIGKILL before a chunk is written, inside its transaction and right after its COMMIT (the
    PONDER_TEST_KILL hook, no sleeps): the store always opens, holds whole chunks only, never loses a
    finished run, and a rerun completes exactly the plan."""
    study = tmp_path / "crash.toml"
    study.write_text(textwrap.dedent(STUDY))
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "ponder", "run", str(study), "--store", str(store), "--no-report", "--threads", "1",
           "--memory", "0.0000005"]  # a tiny budget: one model per chunk, so there are many chunks to kill in
    counts = []
    for kill in points:
        r = _run(cmd, kill)
        assert r.returncode == -signal.SIGKILL, (kill, r.returncode, r.stderr[-500:])
        counts.append(_check(store))
    assert counts == sorted(counts) and counts[-1] > 0, f"a kill lost finished runs: {counts}"
    r = _run(cmd)
    assert r.returncode == 0, r.stderr
    assert _check(store) == EXPECTED
    assert f"{EXPECTED} runs" in r.stderr


def test_ctrl_c_keeps_finished_populations_and_says_how_to_resume(tmp_path):
    study = tmp_path / "crash.toml"
    study.write_text(textwrap.dedent(STUDY))
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "ponder", "run", str(study), "--store", str(store), "--no-report", "--threads", "1"]
    r = _run(cmd, "2:interrupt")  # Ctrl-C right after the second population is written
    assert r.returncode == 130, r.stderr
    assert "run the same command again to resume" in r.stderr and "Traceback" not in r.stderr
    kept = _check(store)
    assert 0 < kept < EXPECTED
    r = _run(cmd)
    assert r.returncode == 0 and _check(store) == EXPECTED and f"{kept} already in the store" in r.stderr
