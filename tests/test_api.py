"""The Python API: results as flat columns, the report as a Report, progress, and every block of docs/python.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import ponder
from ponder import api
from ponder.errors import NotFound, PonderError
from ponder.export.frames import INTERACTION_COLS
from ponder.store import Store
from ponder.study.spec import parse_study
from tests.conftest import study_dict

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"
# A factor whose report draws no initializer figures (the mean-field phase diagram alone takes a minute here).
WIDTH = {"model.width": [8, 16]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(study, store path): 2 widths x 2 learning rates x 3 seeds, trained once for the module."""
    spec = parse_study(study_dict(factors=WIDTH, training__epochs=2))
    store = tmp_path_factory.mktemp("api") / "ponder.duckdb"
    ponder.run(spec, store=store, progress=False)
    return spec, store


def test_results_flattens_config_and_environment_and_splits_time(trained):
    spec, store = trained
    df = ponder.results(spec, store=store)
    assert len(df) == 2 * 2 * spec.seeds and set(df["status"]) == {"ok"}
    assert not [c for c in df.columns if c.endswith("_json")]
    assert {"config.dataset.name", "config.model.depth", "config.training.lr", "env.torch", "env.threads"} <= set(df.columns)
    assert (df["config.model.width"] == df["width"]).all() and (df["config.training.lr"] == df["lr"]).all()
    assert (df["config.dataset.name"] == "spirals").all()
    with Store(store, read_only=True) as st:
        runs = st.runs(spec.name)
    per_population = runs.groupby("population")["wall_s"].sum()
    assert df["population_wall_s"].tolist() == pytest.approx(df["population"].map(per_population).tolist())
    assert df["wall_s"].sum() == pytest.approx(runs["wall_s"].sum())  # shares add up to the training time
    assert (df["wall_s"] < df["population_wall_s"]).all()  # a run's share, not its population's time repeated


def test_results_chosen_keeps_the_runs_the_answer_is_computed_from(trained):
    from ponder.analysis.summary import load_context

    spec, store = trained
    df = ponder.results(spec.name, store=store, chosen=True)
    with Store(store, read_only=True) as st:
        chosen = load_context(st, spec.name).chosen
    assert sorted(df["run_id"]) == sorted(chosen["run_id"])
    assert len(df) == 2 * spec.seeds and (df.groupby("arm")["lr"].nunique() == 1).all()
    every = ponder.results(spec, store=store).set_index("run_id")["population_wall_s"]
    assert df["population_wall_s"].tolist() == pytest.approx(every[df["run_id"]].tolist())  # over all the population's runs


def test_report_without_writing_opens_the_store_read_only(trained, tmp_path):
    spec, store = trained
    before = store.stat().st_mtime_ns
    rep = ponder.report(spec, store=store, out=tmp_path / "reports", write=False)
    assert rep.path is None and rep.figures == [] and not (tmp_path / "reports").exists()
    assert store.stat().st_mtime_ns == before
    with Store(store, read_only=True) as st:
        assert st.analysis(spec.name) is None
    assert {"headline", "answer", "factors", "interactions", "warnings"} <= set(rep.analysis)
    json.dumps(rep.analysis, allow_nan=False)
    assert rep.headline == rep.analysis["headline"] and rep.answer == rep.analysis["answer"] and rep.headline
    assert list(rep.arms["arm"]) == [a["arm"] for a in rep.analysis["arms"]] and len(rep.arms) == 2
    assert {"model.width", "training.lr", "test_accuracy", "ci_lo", "ci_hi", "rank"} <= set(rep.arms.columns)
    assert list(rep.factors["factor"]) == ["model.width"] and "details" not in rep.factors
    assert rep.interactions.empty and list(rep.interactions.columns) == INTERACTION_COLS  # one factor: no pairs
    assert len(rep.comparisons) == 1 and {"ref", "other", "diff", "diff_lo", "diff_hi", "p_holm"} <= set(rep.comparisons)
    assert "Report('tiny'" in repr(rep)


def test_report_writes_the_folder_and_keeps_the_analysis(trained, tmp_path):
    spec, store = trained
    copy = Path(shutil.copy(store, tmp_path / "copy.duckdb"))
    rep = ponder.report(spec.name, store=copy, out=tmp_path / "reports")
    assert rep.path == tmp_path / "reports" / "tiny" / "index.html" and rep.path.is_file()
    assert rep.figures and {p.suffix for p in rep.figures} == {".png", ".svg"}
    assert all(p.is_file() and p.parent == rep.path.parent for p in rep.figures)
    with Store(copy, read_only=True) as st:
        assert st.analysis("tiny")[1]["headline"] == rep.headline


def test_report_of_a_study_the_store_keeps_otherwise_is_refused(trained, tmp_path):
    spec, store = trained
    other = spec.model_copy(update={"question": "A question the store never saw?"})
    with pytest.raises(PonderError, match=r"differs from the study 'tiny' as .* stored it \(question\); run `ponder run"):
        ponder.report(other, store=store, write=False)
    assert ponder.report(spec, store=store, write=False).headline  # the version it keeps


def test_report_of_a_missing_store_creates_none(tmp_path):
    with pytest.raises(NotFound):
        ponder.report("tiny", store=tmp_path / "typo.duckdb", out=tmp_path / "reports")
    assert not (tmp_path / "typo.duckdb").exists()


def test_ponder_report_is_a_function_whatever_the_import_order():
    import inspect

    code = ("import ponder.reporting.html, ponder, inspect; assert callable(ponder.report) and "
            "list(inspect.signature(ponder.report).parameters) == ['study', 'store', 'out', 'force', 'write']")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert inspect.isfunction(ponder.report)


def test_run_shows_progress_outside_a_terminal_and_is_silent_without(tmp_path, capsys):
    ponder.run(parse_study(study_dict(factors=WIDTH, seeds=1, training__epochs=1)), store=tmp_path / "p.duckdb")
    assert re.search(r"^ponder: (\d+)/\1 model-epochs trained$", capsys.readouterr().err, flags=re.M)
    ponder.run(parse_study(study_dict(factors=WIDTH, seeds=2, training__epochs=1)), store=tmp_path / "p.duckdb",
               progress=False)
    assert "model-epochs trained" not in capsys.readouterr().err


def test_progress_display_follows_where_it_runs(monkeypatch, capsys):
    assert api._in_jupyter() is False  # no kernel here
    monkeypatch.setattr(api, "_in_jupyter", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    assert isinstance(api._progress_bar(), api._Lines)

    class Bar:
        def __init__(self, total, unit, desc):
            self.total, self.unit, self.n, self.closed = total, unit, 0, False

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=Bar))
    bar = api._progress_bar()
    bar.update(2, 5), bar.update(5, 5), bar.close()
    assert isinstance(bar, api._Tqdm) and (bar.bar.n, bar.bar.total, bar.bar.closed) == (5, 5, True)
    assert bar.bar.unit == "model-epoch"  # what the numbers count, as on the CLI
    monkeypatch.setattr(api, "_in_jupyter", lambda: False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = api._progress_bar()
    bar.update(1, 2), bar.update(2, 2), bar.close()
    err = capsys.readouterr().err
    assert isinstance(bar, api._Rich) and "2/2" in err and "model-epochs" in err


def test_python_doc_runs(make_study, tmp_path, monkeypatch):
    """Every ```python block of docs/python.md, in order, in one namespace, on a tiny study in a fresh folder."""
    import matplotlib

    matplotlib.use("Agg")
    path = make_study("tiny.toml", factors=WIDTH, training__epochs=2)
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for block in blocks:
        assert '"quickstart"' in block or "quickstart" not in block
        exec(compile(block.replace('"quickstart"', repr(str(path))), str(DOC), "exec"), ns)
    assert ns["summary"].trained == 12 and ns["rep"].path.is_file() and ns["df"]["arm"].nunique() == 2
    assert ns["ax"].get_xlabel() == "test accuracy at the chosen setting"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a_study_object_is_stored_in_the_mode_it_was_loaded_in(tmp_path):
    full, quick = ponder.load_study("quickstart"), ponder.load_study("quickstart", quick=True)
    assert api._mode(quick, False) is True and api._mode(full, False) is False  # read back from the file
    with pytest.raises(PonderError, match=r"quick=True, but this study was loaded without its \[quick\] overrides"):
        ponder.run(full, store=tmp_path / "s.duckdb", quick=True, progress=False)  # refused before anything trains
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.parametrize("call, needle", [
    (lambda s: ponder.load_study(ponder.load_study("quickstart")), "a Study is loaded already"),
    (lambda s: ponder.load_study(42), r"takes a built-in study's name or a \.toml path \(got int\)"),
    (lambda s: ponder.run("quickstart", store=s, memory="1GiB"), "memory is a budget in bytes"),
    (lambda s: ponder.run("quickstart", store=s, memory=0), "memory is a budget in bytes"),
    (lambda s: ponder.run("quickstart", store=s, progress="no"), "progress is True or False"),
])
def test_the_python_api_refuses_wrong_arguments_in_one_sentence(tmp_path, call, needle):
    with pytest.raises(PonderError, match=needle):
        call(tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()
