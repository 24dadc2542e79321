"""The Ray executor on a local 2-CPU Ray instance: same results as local, killed tasks retried,
exhausted retries recorded as failed, and one sentence when Ray is missing or misnamed.

Ray is part of the ``test`` extra, so these tests run (never skip) wherever ``make test`` does.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

import duckdb
import psutil
import pytest
import ray

from ponder.api import load_study
from ponder.executors import open_executor
from ponder.runner import run_study
from ponder.reporting import write_report
from ponder.store import Store
from tests.conftest import write

TWO_POPULATIONS = """
name = "twopop"
question = "Does depth matter on a tiny spiral task?"
seeds = 2
[dataset]
name = "spirals"
options = {n_train = 1000, n_test = 100}
[model]
width = 16
[training]
epochs = 100  # about 2 s per task: long enough to be killed mid-way
batch_size = 32
[factors]
"model.depth" = [1, 2]
[tune]
"training.lr" = [0.05, 0.2]
"""


def ponder_cli(*args):
    return subprocess.run([sys.executable, "-m", "ponder", *map(str, args)], capture_output=True, text=True, timeout=600)


def _metrics(store) -> tuple[list, list]:
    with duckdb.connect(str(store), read_only=True) as con:
        runs = con.execute("SELECT run_id, status, diverged_epoch, steps FROM runs ORDER BY run_id").fetchall()
        epochs = con.execute("SELECT * EXCLUDE (run_id), run_id FROM epochs ORDER BY run_id, epoch").fetchall()
    return runs, epochs


def test_ray_executor_gives_the_same_run_ids_and_metrics_as_local(tiny_study, tmp_path):
    # Through the command line: `--executor ray` without --address starts (and stops) its own instance.
    a, b = tmp_path / "local.duckdb", tmp_path / "ray.duckdb"
    r = ponder_cli("run", tiny_study, "--store", a, "--no-report")
    assert r.returncode == 0, r.stderr
    r = ponder_cli("run", tiny_study, "--store", b, "--no-report", "--executor", "ray")
    assert r.returncode == 0, r.stderr
    assert "12 runs, 0 already in the store, 12 trained, 0 failed" in r.stderr
    runs_a, epochs_a = _metrics(a)
    runs_b, epochs_b = _metrics(b)
    assert len(runs_a) == 12 and runs_a == runs_b  # run ids, statuses, steps
    assert len(epochs_a) == 12 * 4 and epochs_a == epochs_b  # every metric of every epoch, bit for bit
    with duckdb.connect(str(b), read_only=True) as con:  # the population was split over the 2 CPUs
        assert con.execute("SELECT max(population_size) FROM runs").fetchone()[0] == 6


def _main(argv, monkeypatch, capsys) -> tuple[int, str]:
    """`ponder ARGV` in this process (no Ray instance is running yet): exit code and stderr."""
    from ponder import cli

    assert not ray.is_initialized()
    monkeypatch.setattr(sys, "argv", ["ponder", *map(str, argv)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, needle", [
    (["--executor", "rey"], "unknown executor 'rey'; did you mean 'ray'? (choose from local, ray)"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster at --address '127.0.0.1:1'"),
    (["--address", "auto"], "--address is an option of the Ray executor; add --executor ray"),
    (["--executor", "ray", "--retries", "-1"], "--retries must be 0 or more"),
])
def test_bad_executor_options_give_one_line_and_exit_2(tiny_study, tmp_path, monkeypatch, capsys, args, needle):
    code, err = _main(["run", tiny_study, "--store", tmp_path / "s.duckdb", *args], monkeypatch, capsys)
    assert code == 2 and needle in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s.duckdb").exists()


def test_missing_ray_gives_a_sentence(tiny_study, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code, err = _main(["run", tiny_study, "--store", tmp_path / "s.duckdb", "--executor", "ray"], monkeypatch, capsys)
    assert code == 2, err
    assert "the Ray executor needs Ray" in err and "pip install 'ponder[ray]'" in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the tests below; the executor uses it and leaves it running."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


class _KillOneTask(threading.Thread):
    """SIGKILLs the first worker seen running a training task, once it has run for ``after_s``."""

    def __init__(self, after_s: float = 0.3):
        super().__init__(daemon=True)
        self.after_s, self.killed, self.stop = after_s, [], threading.Event()

    def run(self):
        first_seen: dict[int, float] = {}
        while not self.stop.is_set() and not self.killed:
            for p in psutil.process_iter(["pid", "cmdline"]):
                if (p.info["cmdline"] or [""])[0].startswith("ray::_train_task"):
                    t = first_seen.setdefault(p.info["pid"], time.monotonic())
                    if time.monotonic() - t >= self.after_s:
                        p.send_signal(signal.SIGKILL)
                        self.killed.append(p.info["pid"])
                        break
            time.sleep(0.05)


def _run_with_one_kill(study, store, **options):
    killer = _KillOneTask()
    killer.start()
    try:
        with open_executor("ray", **options) as ex:
            res = run_study(study, store, executor=ex)
    finally:
        killer.stop.set()
        killer.join()
    assert len(killer.killed) == 1, "no training task was seen running long enough to be killed"
    return res


def test_a_task_killed_mid_way_is_retried(local_ray, tmp_path):
    study = load_study(write(tmp_path, TWO_POPULATIONS))
    with Store(tmp_path / "s.duckdb") as st:
        res = _run_with_one_kill(study, st)  # two retries by default
        assert res.failed == 0 and res.trained == 8, res
        assert set(st.runs("twopop")["status"]) <= {"ok", "diverged"}
        assert st.epochs("twopop").groupby("run_id").size().eq(101).all()  # epochs 0..100 of every run


def test_exhausted_retries_record_failed_runs_and_the_study_completes(local_ray, tmp_path):
    study = load_study(write(tmp_path, TWO_POPULATIONS))
    with Store(tmp_path / "s.duckdb") as st:
        res = _run_with_one_kill(study, st, max_retries=0)
        assert (res.failed, res.trained) == (4, 4), res  # the killed population failed, the other trained
        runs = st.runs("twopop")
        failed = runs[runs["status"] == "failed"]
        assert len(failed) == 4 and failed["population"].nunique() == 1
        assert failed["error"].str.contains("WorkerCrashedError").all(), failed["error"].iloc[0]
        assert list(res.errors.values()) == [4] and "1 try (no retries)" in next(iter(res.errors))
        assert write_report(st, "twopop", tmp_path / "reports").exists()  # a study with failures still reports

        with open_executor("ray") as ex:  # a rerun retries only the failed runs
            res = run_study(study, st, executor=ex)
        assert (res.skipped, res.trained, res.failed) == (4, 4, 0), res
        assert set(st.runs("twopop")["status"]) <= {"ok", "diverged"}

