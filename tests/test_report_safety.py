"""Reports are safe to write: ponder keeps out of folders it does not own, merges the reports index,
escapes user text in every format, and groups initialization figures by what changes at init."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

import ponder
from ponder.analysis import analyze
from ponder.errors import PonderError
from ponder.reporting import write_report
from ponder.reporting.latex import latex_table
from ponder.reporting.ownership import INDEX_DATA, MARKER
from ponder.reporting.plots import init_groups
from ponder.reporting.plots.initialization import ALL_RUNS
from ponder.store import Store
from ponder.study import load_study
from tests.conftest import write

QUESTION = r"Does it matter? **Answer.** FAKE <script>alert(1)</script> a|b \\ $x^$ [/x]"  # a TOML string: \\ is one backslash
STUDY = """
name = "{name}"
question = "{question}"
seeds = 2
[dataset]
name = "spirals"
options = {{n_train = 120, n_test = 60}}
[model]
depth = 2
width = 8
activation = "relu"
[training]
epochs = 1
batch_size = 32
lr = 0.1
[factors]
{factors}
"""
TWO_FACTORS = '"training.optimizer" = ["sgd", "adam"]\n"model.initializer" = ["torch.default", "torch.kaiming_normal"]'


def _train(tmp, name: str, question: str, factors: str):
    """Train a tiny study into its own store; return the store's path."""
    spec = load_study(write(tmp, STUDY.format(name=name, question=question, factors=factors), f"{name}.toml"))
    path = tmp / f"{name}.duckdb"
    ponder.run(spec, store=path)
    return path


class _LineBreakQuestion:
    """A store whose study question holds a line break, as in stores written before questions were checked."""

    def __init__(self, store: Store):
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def study(self, name: str) -> dict:
        study = dict(self._store.study(name))
        study["question"] = study["question"].replace(" **Answer.**", "\n**Answer.**")
        return study


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two stores: 'safety' (optimizer x initializer, hostile question) and 'other' (optimizer only)."""
    tmp = tmp_path_factory.mktemp("safety")
    return {"safety": _train(tmp, "safety", QUESTION, TWO_FACTORS),
            "other": _train(tmp, "other", "Which optimizer trains spirals?", '"training.optimizer" = ["sgd", "adam"]')}


@pytest.fixture(scope="module")
def report(stores, tmp_path_factory):
    """The 'safety' study, its question with a line break before a forged answer, reported into a fresh folder."""
    out = tmp_path_factory.mktemp("reports") / "reports"
    with Store(stores["safety"], read_only=True) as st:
        assert "\n**Answer.** FAKE" in _LineBreakQuestion(st).study("safety")["question"]
        return write_report(_LineBreakQuestion(st), "safety", out)


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_foreign_index_is_refused_then_forced(stores, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>my own site</p>")
    before = _tree(site)
    with Store(stores["safety"], read_only=True) as st:
        with pytest.raises(PonderError, match=r"index\.html.*--force"):
            write_report(st, "safety", site)
        assert _tree(site) == before  # byte-identical, nothing added
        write_report(st, "safety", site, force=True)
    assert "safety/index.html" in (site / "index.html").read_text()
    assert json.loads((site / MARKER).read_text())["tool"] == "ponder"


def test_foreign_study_folder_is_refused_then_forced(stores, tmp_path):
    out = tmp_path / "out"
    (out / "safety").mkdir(parents=True)
    (out / "safety" / "notes.txt").write_bytes(b"mine \x00\xff")
    before = _tree(out)
    with Store(stores["safety"], read_only=True) as st:
        with pytest.raises(PonderError, match=r"notes\.txt.*--force"):
            write_report(st, "safety", out)
        assert _tree(out) == before
        write_report(st, "safety", out, force=True)
    assert (out / "safety" / "notes.txt").read_bytes() == b"mine \x00\xff"  # other files are left alone
    assert (out / "safety" / "index.html").is_file()
    assert json.loads((out / "safety" / MARKER).read_text())["study"] == "safety"


def test_unwritable_out_fails_before_analysis(stores, tmp_path, monkeypatch):
    def no_analysis(*args, **kwargs):
        raise AssertionError("the analysis ran before the output folder was checked")

    monkeypatch.setattr("ponder.analysis.summary.analyze", no_analysis)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with Store(stores["safety"], read_only=True) as st, pytest.raises(PonderError, match="not a folder"):
        write_report(st, "safety", blocker / "reports")


def test_index_merges_studies_of_two_stores(stores, report):
    out = report.parent.parent
    with Store(stores["other"], read_only=True) as st:
        write_report(st, "other", out)
    with Store(stores["safety"], read_only=True) as st:
        write_report(st, "safety", out)  # rewriting the first keeps the second
    names = [e["name"] for e in json.loads((out / INDEX_DATA).read_text())["studies"]]
    assert sorted(names) == ["other", "safety"]
    index = (out / "index.html").read_text()
    assert 'href="safety/index.html"' in index and 'href="other/index.html"' in index


def test_summary_has_one_answer_line_and_escaped_question(report):
    lines = (report.parent / "summary.md").read_text().splitlines()
    assert sum(line.startswith("**Answer.**") for line in lines) == 1
    question = [line for line in lines if line.startswith("**Question.**")]
    assert question == ["**Question.** Does it matter? \\*\\*Answer.\\*\\* FAKE &lt;script&gt;alert(1)&lt;/script&gt; "
                        "a|b \\\\ \\$x^\\$ \\[/x\\]"]
    assert "<script>" not in "\n".join(lines)


def test_html_pages_escape_the_question(report):
    for page in (report, report.parent.parent / "index.html"):
        html = page.read_text()
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_latex_table_escapes_a_backslash(stores):
    with Store(stores["safety"], read_only=True) as st:
        an = analyze(st, "safety")
    an.arms[0] = dataclasses.replace(an.arms[0], arm="a\\b & c_d")
    tex = latex_table(an)
    assert r"a\textbackslash{}b \& c\_d" in tex and r"\textbackslash\{\}" not in tex


def test_grouping_ignores_what_cannot_change_a_network_at_init():
    def config(optimizer, initializer, lr=0.1, loss="cross_entropy", epochs=3, batch_size=32, width=8):
        return {"model": {"arch": "mlp", "activation": "tanh", "depth": 4, "width": width, "kernel_size": 5,
                          "initializer": initializer, "init_params": {}},
                "training": {"optimizer": optimizer, "lr": lr, "loss": loss, "epochs": epochs, "batch_size": batch_size}}

    runs = [config(o, i, lr, loss, e, b) for o in ("sgd", "adam") for i in ("torch.default", "caffe.xavier")
            for lr, loss, e, b in ((0.1, "cross_entropy", 3, 32), (0.01, "squared_error", 5, 64))]
    assert init_groups(runs) == ["initializer=torch.default"] * 2 + ["initializer=caffe.xavier"] * 2 + \
        ["initializer=torch.default"] * 2 + ["initializer=caffe.xavier"] * 2
    assert set(init_groups([config("sgd", "a"), config("adam", "a", lr=1.0)])) == {ALL_RUNS}
    wide = init_groups([config("sgd", "a", width=8), config("sgd", "b", width=64)])
    assert wide == ["width=8, initializer=a", "width=64, initializer=b"]
    assert init_groups([config("sgd", "a", width=8), config("sgd", "b", width=64)], without=["model.width"]) == \
        ["initializer=a", "initializer=b"]


def test_init_figures_group_by_initializer_not_optimizer(stores, report):
    with Store(stores["safety"], read_only=True) as st:
        an = analyze(st, "safety")
    configs = [json.loads(c) for c in an.finals["config_json"]]
    labels = init_groups(configs)
    assert sorted(set(labels)) == ["initializer=torch.default", "initializer=torch.kaiming_normal"]
    by_optimizer = {(c["training"]["optimizer"], lbl) for c, lbl in zip(configs, labels)}
    assert len(by_optimizer) == 4  # both optimizers fall in each initializer's group
    for f in ("propagation.png", "weight_histograms.png", "phase.png"):
        assert (report.parent / f).stat().st_size > 5000, f


def test_one_group_when_nothing_changes_at_init(stores, tmp_path):
    with Store(stores["other"], read_only=True) as st:
        an = analyze(st, "other")
        index = write_report(st, "other", tmp_path / "r")
    assert set(init_groups([json.loads(c) for c in an.finals["config_json"]])) == {ALL_RUNS}
    assert (index.parent / "propagation.png").is_file()
    assert "one line for all runs" in index.read_text()
    assert not (index.parent / "weight_histograms.png").exists() and not (index.parent / "phase.png").exists()
    shutil.rmtree(tmp_path / "r")
