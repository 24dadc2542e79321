"""Cheap reruns: a report whose inputs have not changed is not rebuilt; mean-field grids are computed once."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest


def _value(levels, tuned, seed):
    acc = 0.7 + 0.05 * (levels["model.initializer"] == "torch.kaiming_normal") + 0.01 * seed
    return acc, acc, 0.9


def test_an_unchanged_report_is_kept_and_a_changed_one_rebuilt(synthetic_store, make_spec, tmp_path, monkeypatch):
    import ponder.reporting.html as html
    from ponder.analysis import fingerprint

    spec = make_spec(seeds=3, tune=None)
    out = tmp_path / "reports"
    with synthetic_store(spec, _value) as st:
        first = html.write_report(st, "tiny", out)
        stamp = first.stat().st_mtime_ns
        monkeypatch.setattr("ponder.analysis.summary.analyze", lambda *a, **k: pytest.fail("an unchanged report was analyzed again"))
        assert html.write_report(st, "tiny", out) == first and first.stat().st_mtime_ns == stamp
        assert st.analysis("tiny")[0] == fingerprint(st, "tiny")  # the analysis is kept with the study
        monkeypatch.undo()
        st.con.execute("UPDATE runs SET status = 'diverged' WHERE run_id IN (SELECT run_id FROM runs LIMIT 1)")
        html.write_report(st, "tiny", out)  # the runs changed: rebuilt
        assert first.stat().st_mtime_ns != stamp


def test_derived_grids_are_computed_once_across_calls(tmp_path, monkeypatch):
    from ponder.cache import cached_arrays

    monkeypatch.setenv("PONDER_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"grid": np.arange(6.0).reshape(2, 3)}

    a = cached_arrays("demo", {"activation": "tanh"}, compute)
    b = cached_arrays("demo", {"activation": "tanh"}, compute)
    c = cached_arrays("demo", {"activation": "relu"}, compute)
    assert len(calls) == 2 and np.array_equal(a["grid"], b["grid"]) and np.array_equal(a["grid"], c["grid"])


def test_mnist1d_is_generated_once_and_equals_the_package(tmp_path, monkeypatch):
    """The generated MNIST-1D arrays come from the disk cache after the first time, equal to the package's own."""
    import mnist1d.data

    from ponder.catalog.datasets.builtin import mnist1d as make

    monkeypatch.setenv("PONDER_CACHE", str(tmp_path))
    calls = []
    real = mnist1d.data.make_dataset
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: calls.append(1) or real(args))
    first = make(num_samples=200, seed=3)
    second = make(num_samples=200, seed=3)
    third = make(num_samples=200, seed=4)
    assert len(calls) == 2  # seed 3 once, seed 4 once
    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.seed, args.train_split = 200, 3, 0.8
    ref = real(args)
    for pool in (first, second):
        assert np.array_equal(pool.x_train[:, 0, :], np.asarray(ref["x"], np.float32))
        assert np.array_equal(pool.x_test[:, 0, :], np.asarray(ref["x_test"], np.float32))
        assert np.array_equal(pool.y_train, ref["y"]) and np.array_equal(pool.y_test, ref["y_test"])
        assert pool.x_train.dtype == np.float32 and pool.y_train.dtype == np.int64 and pool.sample_shape == (1, 40)
    assert not np.array_equal(third.x_train, first.x_train)


def test_a_rerun_that_trains_nothing_loads_no_data(tiny_study, tmp_path, monkeypatch):
    """Every run stored: the plan checks, which build the data, are not run again."""
    import ponder.catalog.datasets as datasets
    from ponder.runner import run_study
    from ponder.store import Store
    from ponder.study import load_study

    study = load_study(str(tiny_study))
    with Store(tmp_path / "s.duckdb") as st:
        assert run_study(study, st).trained == 12
        monkeypatch.setattr(datasets, "load_pool", lambda *a, **k: pytest.fail("a rerun loaded its data"))
        before = st.con.execute("SELECT updated FROM studies").fetchall()
        res = run_study(study, st)
        assert st.con.execute("SELECT updated FROM studies").fetchall() == before  # the same plan: nothing rewritten
        assert res.statuses == {"ok": 12}
        monkeypatch.undo()
        seeds = study.model_copy(update={"seeds": study.seeds + 1})
        assert run_study(seeds, st).trained == 4 and st.plan_size("tiny", quick=False) == 16  # a new plan is stored
    assert (res.trained, res.skipped) == (0, 12)


def test_a_rerun_after_a_read_only_report_still_prints_the_headline(tiny_study, tmp_path, cli):
    """`ponder report` reads the store read-only; a later `ponder run` keeps that report and prints its answer."""
    store, out = str(tmp_path / "s.duckdb"), str(tmp_path / "reports")
    first = cli("run", str(tiny_study), "--store", store, "--out", out, "--no-report")
    assert first.returncode == 0, first.stderr
    rep = cli("report", "tiny", "--store", store, "--out", out)
    assert rep.returncode == 0, rep.stderr
    page = tmp_path / "reports" / "tiny" / "index.html"
    stamp = page.stat().st_mtime_ns
    again = cli("run", str(tiny_study), "--store", store, "--out", out)
    assert again.returncode == 0, again.stderr
    headline = json.loads((tmp_path / "reports" / "tiny" / "analysis.json").read_text())["headline"]
    assert again.stdout.startswith(headline) and page.stat().st_mtime_ns == stamp


def test_the_cli_lets_idle_openmp_threads_sleep_unless_the_user_chose(monkeypatch):
    from ponder.cli import share_cpus

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    share_cpus()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    share_cpus()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_figures_drawn_in_forked_workers_equal_those_drawn_in_turn(synthetic_store, make_spec, tmp_path, monkeypatch):
    """Parallel drawing changes nothing a reader sees: the same figures, captions and PNG bytes, in page order;
    a figure whose catalog entry is missing says so in its caption either way."""
    from ponder.analysis import analyze
    from ponder.errors import CatalogError
    from ponder.reporting import figures

    def missing(an, path):
        raise CatalogError("activation 'mine' is not in the catalog")

    monkeypatch.setattr(figures, "FIGURES", (figures.Figure("mine.png", missing, "never shown"),) + figures.FIGURES)
    spec = make_spec(seeds=3, tune=None, factors={"model.initializer": ["torch.default", "torch.kaiming_normal", "lsuv"]})
    with synthetic_store(spec, _value) as st:
        an = analyze(st, "tiny")
    drawn = {}
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        drawn[workers] = (figures.draw_figures(an, folder, workers=workers), folder)
    (one, f1), (two, f2) = drawn[1], drawn[2]
    assert one == two and len(one) >= 4
    assert one[0] == {"file": "", "caption": "mine.png not drawn: activation 'mine' is not in the catalog (load the study's plugins)"}
    assert "weight_histograms.png" in [d["file"] for d in one]  # a figure that needs torch, drawn in a worker
    assert sorted(p.name for p in f1.iterdir()) == sorted(p.name for p in f2.iterdir())
    for png in f1.glob("*.png"):
        assert png.read_bytes() == (f2 / png.name).read_bytes(), png.name


def test_the_cli_and_a_kept_report_load_no_torch_statistics_or_plotting():
    """What a rerun with nothing to train needs (the CLI, the store, the report check) loads neither torch, the
    statistics libraries nor matplotlib: torch must not be loaded when the CLI sets the OpenMP wait policy."""
    import subprocess
    import sys

    code = ("import sys, ponder.cli, ponder.reporting, ponder.analysis, ponder.store, ponder.rng; "
            "from ponder.reporting.html import write_report; from ponder.analysis import fingerprint; "
            "print(sorted(m for m in ('torch', 'scipy.stats', 'statsmodels', 'matplotlib', 'baycomp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_report_of_the_same_study_state_reuses_the_kept_analysis_and_figures(synthetic_store, make_spec, tmp_path,
                                                                              monkeypatch):
    """A second report of unchanged runs into another folder neither analyzes nor draws: it copies what the first
    kept, and every file of the folder (page, figures, summary, table, analysis.json) has the same bytes."""
    import ponder.reporting.html as html
    from ponder.reporting import figures, memo

    monkeypatch.setenv("PONDER_CACHE", str(tmp_path / "cache"))
    spec = make_spec(seeds=3, tune=None, factors={"model.initializer": ["torch.default", "torch.kaiming_normal", "lsuv"]})
    with synthetic_store(spec, _value) as st:
        first = html.write_report(st, "tiny", tmp_path / "a").parent
        assert len(list((tmp_path / "cache" / "reports").iterdir())) == 1
        with monkeypatch.context() as m:
            m.setattr("ponder.analysis.summary.analyze", lambda *a, **k: pytest.fail("analyzed again"))
            m.setattr(figures, "draw_figures", lambda *a, **k: pytest.fail("drawn again"))
            m.setattr(html, "_folklore", lambda *a, **k: pytest.fail("folklore computed again"))
            second = html.write_report(st, "tiny", tmp_path / "b").parent
        assert _files(first) == _files(second)
        page = (second / "index.html").read_text()
        assert "Folklore: \"uniform" in page and "<td>torch.kaiming_normal</td><td>normal</td>" in page
        assert (second / "weight_histograms.png").is_file() and (second / "weight_histograms.svg").is_file()
        st.con.execute("UPDATE runs SET status = 'diverged' WHERE run_id IN (SELECT run_id FROM runs LIMIT 1)")
        calls = []
        real = figures.draw_figures
        monkeypatch.setattr(figures, "draw_figures", lambda *a, **k: calls.append(1) or real(*a, **k))
        html.write_report(st, "tiny", tmp_path / "c")  # the runs changed: a new entry, analyzed and drawn
        assert calls == [1] and len(list((tmp_path / "cache" / "reports").iterdir())) == 2
        assert memo.KEEP >= 2


def test_a_broken_or_unwritable_report_cache_only_costs_the_work(synthetic_store, make_spec, tmp_path, monkeypatch):
    import ponder.reporting.html as html
    from ponder.reporting import memo

    monkeypatch.setenv("PONDER_CACHE", str(tmp_path / "cache"))
    with synthetic_store(make_spec(seeds=3, tune=None), _value) as st:
        first = html.write_report(st, "tiny", tmp_path / "a").parent
        (entry,) = (tmp_path / "cache" / "reports").iterdir()
        (entry / "analysis.pkl").write_bytes(b"\x80\x05truncated")
        second = html.write_report(st, "tiny", tmp_path / "b").parent  # unreadable entry: computed afresh
        assert _files(first) == _files(second)
        assert memo.load(entry.name) is not None  # ... and kept again in its place
        with monkeypatch.context() as m:
            m.setattr("ponder.analysis.summary.analyze", lambda *a, **k: pytest.fail("analyzed again"))
            assert _files(first) == _files(html.write_report(st, "tiny", tmp_path / "b2").parent)
        blocker = tmp_path / "blocked"
        blocker.write_text("a file where the cache folder would be")
        monkeypatch.setenv("PONDER_CACHE", str(blocker))
        third = html.write_report(st, "tiny", tmp_path / "c").parent  # nothing can be kept: the report is written
        assert _files(first) == _files(third) and memo.load(memo.memo_key("x")) is None


def test_the_kept_parts_belong_to_the_loaded_initializers_and_libraries(own_registry, monkeypatch):
    """The folklore table and the weight histograms sample every loaded initializer, and the statistics come from
    scipy, statsmodels and baycomp: another initializer (a plugin) or another library version is another entry."""
    import importlib.metadata

    from ponder import registry
    from ponder.reporting import memo

    before = memo.memo_key("f")
    assert memo.memo_key("f") == before and memo.memo_key("g") != before

    @registry.register("initializer", "mine.tiny", law="normal", formula="N(0, 0.01)", source="a test",
                       cites="none", sigma_w2="0.01")
    def tiny(shape, *, generator, dtype=None):
        raise AssertionError("not called")

    assert memo.memo_key("f") != before
    registry._REGISTRY["initializer"].pop("mine.tiny", None)  # own_registry also restores it
    assert memo.memo_key("f") == before
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9" if name == "statsmodels" else real(name))
    assert memo.memo_key("f") != before


def test_a_report_with_a_figure_not_drawn_is_not_kept_and_old_entries_are_pruned(tmp_path, monkeypatch):
    from ponder.reporting import memo

    monkeypatch.setenv("PONDER_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    (folder / "a.svg").write_bytes(b"svg")
    memo.save("k0", {"x": 1}, None, [{"file": "a.png", "caption": "c"}, {"file": "", "caption": "b.png not drawn"}],
              folder)
    assert memo.load("k0") is None
    monkeypatch.setattr(memo, "KEEP", 3)
    for k in range(5):
        memo.save(f"k{k}", {"x": k}, {"verdict": "v", "rows": []}, [{"file": "a.png", "caption": "c"}], folder)
        os.utime(tmp_path / "cache" / "reports" / f"k{k}", (k, k))  # k4 the most recently used
    assert sorted(p.name for p in (tmp_path / "cache" / "reports").iterdir()) == ["k2", "k3", "k4"]
    entry = memo.load("k3")
    assert entry["analysis"] == {"x": 3} and entry["folklore"] == {"verdict": "v", "rows": []}
    out = tmp_path / "out"
    out.mkdir()
    assert memo.restore_figures(entry, out) == [{"file": "a.png", "caption": "c"}]
    assert (out / "a.png").read_bytes() == b"png" and (out / "a.svg").read_bytes() == b"svg"


def test_a_report_from_kept_parts_loads_no_torch_statistics_or_plotting(synthetic_store, make_spec, tmp_path):
    """``ponder report`` of a study state reported before: neither torch, the statistics libraries nor matplotlib
    load (reading the kept analysis back does not import them)."""
    import subprocess
    import sys

    import ponder.reporting.html as html

    env = {**os.environ, "PONDER_CACHE": str(tmp_path / "cache")}
    os.environ["PONDER_CACHE"], old = env["PONDER_CACHE"], os.environ["PONDER_CACHE"]
    try:
        with synthetic_store(make_spec(seeds=3, tune=None, factors={"model.initializer": ["torch.default", "lsuv"]}),
                             _value) as st:
            html.write_report(st, "tiny", tmp_path / "a")
            path = st.path
    finally:
        os.environ["PONDER_CACHE"] = old
    code = ("import sys; from ponder.store import Store; from ponder.reporting.html import write_report; "
            f"st = Store({str(path)!r}, read_only=True); write_report(st, 'tiny', {str(tmp_path / 'b')!r}); "
            "print(sorted(m for m in ('torch', 'scipy.stats', 'statsmodels', 'matplotlib', 'baycomp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert _files(tmp_path / "a" / "tiny") == _files(tmp_path / "b" / "tiny")


def test_a_rerun_that_trains_nothing_loads_no_torch(tiny_study, tmp_path, cli):
    """Validating a study, computing its run ids and finding them all stored needs the catalog's names and
    versions, not torch (the catalog loads torch on first use): a rerun with its report kept loads neither torch
    nor pandas, and says nothing of a device it did not need; the first run settles --device auto and says so."""
    import subprocess
    import sys

    store, out = str(tmp_path / "s.duckdb"), str(tmp_path / "reports")
    first = cli("run", str(tiny_study), "--store", store, "--out", out)
    assert first.returncode == 0, first.stderr
    assert "device: cpu (--device auto)" in first.stderr
    code = ("import sys; from ponder.cli import main; sys.argv = ['ponder', 'run', sys.argv[1], '--store', sys.argv[2], "
            "'--out', sys.argv[3]]\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in ('torch', 'pandas', 'scipy.stats', 'matplotlib') if m in sys.modules), file=sys.stderr)")
    again = subprocess.run([sys.executable, "-c", code, str(tiny_study), store, out], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip().splitlines()[-1] == "[]" and "device:" not in again.stderr
    assert "12 already in the store, 0 trained" in again.stderr


def _interrupt_parent(an, path):
    """A figure that presses Ctrl-C on the process drawing the report, then would take minutes."""
    import signal
    import time

    os.kill(os.getppid(), signal.SIGINT)
    time.sleep(300)


def test_ctrl_c_while_figures_are_drawn_stops_the_workers_and_raises(synthetic_store, make_spec, tmp_path, monkeypatch):
    """Ctrl-C during the forked figure drawing raises KeyboardInterrupt in the parent at once and leaves no worker
    behind (it used to leave the pool's queue locked and every process waiting for ever)."""
    import multiprocessing
    import signal
    import time

    from ponder.analysis import analyze
    from ponder.reporting import figures

    monkeypatch.setattr(figures, "FIGURES", (figures.Figure("stuck.png", _interrupt_parent, "never drawn", cost=9),)
                        + figures.FIGURES)
    with synthetic_store(make_spec(seeds=3, tune=None), _value) as st:
        an = analyze(st, "tiny")
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C live, even under a runner ignoring it
    try:
        t = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            figures.draw_figures(an, tmp_path, workers=2)
        assert time.monotonic() - t < 200  # not the figure's 300 s: the workers were stopped
        assert multiprocessing.active_children() == []
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the parent's handler put back
    finally:
        signal.signal(signal.SIGINT, outer)
