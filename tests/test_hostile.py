"""Hostile input at the command line, one row per case, grouped by category.

Categories: study files, levels, stores, output paths, data, markup. Every case runs
``ponder.cli.main(argv)`` in this process (no subprocess, nothing timed) and checks the promises
of docs/reliability.md: a user error is exit code 2 with exactly one ``error:`` line on stderr and
no traceback; a study that is valid after coercion runs (exit 0); the user's own files are
byte-identical afterwards; a refused ``run`` trains nothing (its store is not even created).
Only two tiny studies train (a few seconds each); every other case fails before training.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sqlite3
from pathlib import Path

import duckdb
import numpy as np
import pytest
import tomli_w

from ponder import cli
from tests.conftest import study_dict

# A study that trains in about a second: 2 arms x 1 seed, one epoch of a 4-wide net.
SMALL = dict(name="h", question="Does the activation matter here?", seeds=1, tune=None,
             dataset={"name": "spirals", "options": {"n_train": 200, "n_test": 60}, "val_fraction": 0.2},
             model={"arch": "mlp", "depth": 1, "width": 4, "activation": "tanh"},
             training={"optimizer": "sgd", "epochs": 1, "batch_size": 16, "lr": 0.1},
             factors={"model.activation": ["relu", "tanh"]})


def small(**overrides) -> dict:
    """:data:`SMALL` with overrides (``section__key`` sets one key; None removes it)."""
    doc = copy.deepcopy(study_dict(**SMALL))  # study_dict shares the tables it is given
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        node, last = (doc.setdefault(section, {}), field) if field else (doc, section)
        node.pop(last, None) if value is None else node.__setitem__(last, value)
    return doc


def ponder(argv, capsys) -> tuple[int, str, str]:
    """``ponder ARGV`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(a) for a in argv])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_.value.code or 0, captured.out, captured.err


def expect(result: tuple[int, str, str], code: int, needle: str = "") -> str:
    """Check the exit code and the one-sentence promise; return stderr."""
    got, out, err = result
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert got == code, err
    assert "Traceback" not in err + out and "internal error" not in err, err
    assert len(errors) == (1 if code == 2 else 0), err
    assert needle in (errors[0] if errors else out), err
    return err


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def _logs_here(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # an internal error's log stays in tmp


def _write_study(path: Path, content) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else tomli_w.dumps(content).encode())
    return path


# -- study files: (id, file content, text the error line holds) ------------------------------------

def _big(path: Path) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(50 << 20)  # 50 MB of zeros, sparse on disk
    return path


STUDY_FILES = [
    ("random-bytes", random.Random(0).randbytes(4096), "is not UTF-8 text"),
    ("nested-2000-deep", b"x = " + b"[" * 2000 + b"]" * 2000 + b"\n", "nested too deeply"),
    ("50-MB", _big, "a study file is at most 1,048,576 bytes"),
    ("quick-not-a-table", small(quick=3), "key 'quick' must be a table of overrides"),
    ("quick-unknown-key", small(quick={"bogus": 1}), "with its [quick] overrides: key 'bogus' is not a known key"),
    ("quick-unknown-field", small(quick={"model.widht": 8}), "key 'model.widht' is not a known key"),
    ("quick-overrides-quick", small(quick={"quick.seeds": 1}), "overrides [quick] itself"),
    ("quick-into-a-string", small(quick={"name.x": 1}), "study.toml: with its [quick] overrides: quick key 'name.x'"),
    ("question-newline", small(question="Does it\nmatter?"), "must be one line of text"),
    ("name-is-a-path", small(name="../evil"), "not a path"),
    ("name-is-absolute", small(name="/etc/passwd"), "not a path"),
]


@pytest.mark.parametrize("content, needle", [r[1:] for r in STUDY_FILES], ids=[r[0] for r in STUDY_FILES])
@pytest.mark.parametrize("command", ["show", "run"])
def test_study_files(command, content, needle, tmp_path, capsys):
    path = tmp_path / "study.toml"
    content(path) if callable(content) else _write_study(path, content)
    store = tmp_path / "s.duckdb"
    err = expect(ponder([command, path, *(["--store", store] if command == "run" else [])], capsys), 2, needle)
    assert len(err) < 500 and not store.exists(), err


# -- levels: (id, overrides, exit code, text of the error line or of stdout) -------------------------

LEVELS = [
    ("width-floats-coerced", {"factors": {"model.width": [4.0, 8.0]}}, 0, "factor model.width: [4, 8]"),
    ("train-size-strings-coerced", {"factors": {"dataset.train_size": ["50", "100"]}}, 0,
     "factor dataset.train_size: [50, 100]"),
    ("train-size-string-below-batch", {"factors": {"dataset.train_size": ["5", "100"]}}, 2,
     "training.batch_size = 16 is larger than dataset.train_size = 5"),
    ("reference-of-coerced-level", {"factors": {"model.width": [4.0, 8.0]}, "reference": "4"}, 0, "[4, 8]"),
    ("reference-equal-as-a-number", {"factors": {"model.width": [4.0, 8.0]}, "reference": "4.0"}, 0, "[4, 8]"),
    ("reference-of-no-level", {"factors": {"model.width": [4.0, 8.0]}, "reference": "5"}, 2,
     "unknown reference level '5' (valid: 4, 8)"),
    ("reference-without-factors", {"factors": {}, "reference": "tanh"}, 2, "the study has no [factors]"),
    ("level-true-for-a-number", {"factors": {"model.depth": [True, 3]}}, 2,
     "true is not a value of model.depth; give a whole number"),
    ("reference-in-two-factors", {"factors": {"model.dropout": [0.0, 0.2], "dataset.label_noise": [0.0, 0.3]},
                                  "reference": "0"}, 2, "reference '0' is a level of 2 factors (model.dropout, "
     "dataset.label_noise); a reference must name a level of one factor only"),
    ("lr-not-a-number", {"factors": {"training.lr": ["x"]}}, 2, "unable to parse string as a number (found 'x')"),
    ("lr-duplicate-after-coercion", {"factors": {"training.lr": [1, 1.0]}}, 2, "repeats a level"),
    ("tune-duplicate-after-coercion", {"tune": {"training.lr": [0.1, "0.1"]}}, 2, "repeats a level"),
    ("epochs-fractional-level", {"factors": {"training.epochs": [2.5, 3]}}, 2, "fractional part (found 2.5)"),
    ("epochs-fractional-fixed", {"training__epochs": 2.5}, 2, "fractional part (found 2.5)"),
    ("shift-nan", {"evaluate": {"shift": {"noise": [math.nan, 0.1]}}}, 2, "levels must be finite numbers"),
    ("shift-inf", {"evaluate": {"shift": {"scaling": [math.inf]}}}, 2, "levels must be finite numbers"),
    ("linked-pair-too-short", {"factors": {"model.depth+model.width": [[1, 4], [2]]}}, 2,
     "[1] must be a list of 2 values, one per linked key (found [2])"),
    ("linked-level-not-a-pair", {"factors": {"model.depth+model.width": [1, 2]}}, 2, "must be a list of 2 values"),
    ("reference-names-no-level", {"reference": "tahn"}, 2, "unknown reference level 'tahn'; did you mean 'tanh'?"),
    ("focus-names-no-factor", {"focus": "model.activaton"}, 2, "did you mean 'model.activation'?"),
]


@pytest.mark.parametrize("overrides, code, needle", [r[1:] for r in LEVELS], ids=[r[0] for r in LEVELS])
def test_levels(overrides, code, needle, tmp_path, capsys):
    path = _write_study(tmp_path / "study.toml", small(**overrides))
    store = tmp_path / "s.duckdb"
    expect(ponder(["show", path], capsys), code, needle)
    if code == 2:
        expect(ponder(["run", path, "--store", store, "--no-report"], capsys), 2, needle)
        assert not store.exists()


def test_level_strings_are_coerced_and_run(tmp_path, capsys):
    path = _write_study(tmp_path / "study.toml", small(factors={"model.depth": ["1", "2"]}))
    store = tmp_path / "s.duckdb"
    expect(ponder(["run", path, "--store", store, "--no-report", "--threads", "1"], capsys), 0)
    with duckdb.connect(str(store), read_only=True) as con:
        configs = [json.loads(c) for (c,) in con.execute("SELECT config_json FROM runs WHERE status = 'ok'").fetchall()]
    assert sorted(c["model"]["depth"] for c in configs) == [1, 2]  # stored as the integers they mean


# -- stores: (id, how the user's file is made, text of the error line) ------------------------------

def _duckdb(*statements: str):
    def make(path: Path) -> None:
        with duckdb.connect(str(path)) as con:
            for stmt in statements:
                con.execute(stmt)
    return make


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers(id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'Ada')")
    con.commit()
    con.close()


_META = ("CREATE TABLE meta(key VARCHAR PRIMARY KEY, value VARCHAR)", "CREATE TABLE runs(run_id VARCHAR)")
STORES = [
    ("users-duckdb-customers", _duckdb("CREATE TABLE customers(id INT, name VARCHAR)",
                                       "INSERT INTO customers VALUES (1, 'Ada')"), "ponder did not write"),
    ("sqlite-file", _sqlite, "is not a DuckDB database"),
    ("text-file", lambda p: p.write_text("id,name\n1,Ada\n"), "is not a DuckDB database"),
    ("meta-without-version-row", _duckdb(*_META), "ponder did not write"),
    ("meta-version-not-integer", _duckdb(*_META, "INSERT INTO meta VALUES ('schema_version', 'four')"),
     "ponder did not write"),
    ("meta-version-null", _duckdb(*_META, "INSERT INTO meta VALUES ('schema_version', NULL)"), "ponder did not write"),
    ("meta-version-zero", _duckdb(*_META, "INSERT INTO meta VALUES ('schema_version', '0')"), "ponder did not write"),
    ("meta-without-key-column", _duckdb("CREATE TABLE meta(x INT)", "CREATE TABLE runs(y INT)"),
     "ponder did not write"),
    ("newer-schema", _duckdb(*_META, "INSERT INTO meta VALUES ('schema_version', '99')"), "newer than the"),
    ("old-version-missing-tables", _duckdb(*_META, "INSERT INTO meta VALUES ('schema_version', '1')"),
     "says schema version 1 but cannot be brought to"),
]


@pytest.mark.parametrize("make, needle", [r[1:] for r in STORES], ids=[r[0] for r in STORES])
@pytest.mark.parametrize("command", ["run", "report", "export"])
def test_stores(command, make, needle, tmp_path, capsys, monkeypatch):
    store = tmp_path / "mine.db"
    make(store)
    before = tree(tmp_path)
    opened: list[tuple[str, dict]] = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda path, **kw: opened.append((path, kw.get("config"))) or real(path, **kw))
    study = _write_study(tmp_path / "study.toml", small())
    argv = {"run": ["run", study, "--no-report"], "report": ["report", "h", "--out", tmp_path / "r"],
            "export": ["export", "h", "--out", tmp_path / "x"]}[command]
    expect(ponder([*argv, "--store", store], capsys), 2, needle)
    assert tree(tmp_path) == {**before, "study.toml": study.read_bytes()}  # byte-identical, no .wal beside it
    if needle == "is not a DuckDB database":
        assert opened == []  # refused before DuckDB (and any extension it could fetch) saw the file
    for _, config in opened:
        assert config["autoinstall_known_extensions"] is False and config["autoload_known_extensions"] is False


# -- output paths --------------------------------------------------------------------------------

def test_run_refuses_a_report_folder_with_the_users_index_before_training(tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<p>my own site</p>\xff")
    study, store = _write_study(tmp_path / "study.toml", small()), tmp_path / "s.duckdb"
    expect(ponder(["run", study, "--store", store, "--out", site], capsys), 2, "pass --force")
    assert tree(site) == {"index.html": b"<p>my own site</p>\xff"} and not store.exists()


def test_export_refuses_to_overwrite_the_users_file(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "h_runs.parquet").write_bytes(b"mine\x00")
    argv = ["export", "h", "--store", tmp_path / "none.duckdb", "--out", tmp_path / "x"]
    expect(ponder(argv, capsys), 2, "pass --force")
    assert tree(tmp_path / "x") == {"h_runs.parquet": b"mine\x00"}


# -- data: an npz named by dataset.name = "npz", options = {path = ...} -----------------------------

_X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
_Y = (_X[:, 0] > 0).astype(np.int64)
DATA = [
    ("empty-training-set", dict(x_train=_X[:0], y_train=_Y[:0], x_test=_X, y_test=_Y), "x_train is empty"),
    ("float-labels-not-integer", dict(x_train=_X, y_train=_Y + 0.5, x_test=_X, y_test=_Y), "non-integer values"),
    ("negative-labels", dict(x_train=_X, y_train=_Y - 1, x_test=_X, y_test=_Y), "negative labels"),
    ("lengths-differ", dict(x_train=_X, y_train=_Y[:10], x_test=_X, y_test=_Y), "differ in length"),
    ("missing-array", dict(x_train=_X, y_train=_Y, x_test=_X), "lacks the arrays ['y_test']"),
    ("not-a-zip", b"x_train,y_train\n", "not a zip archive"),
]


@pytest.mark.parametrize("arrays, needle", [r[1:] for r in DATA], ids=[r[0] for r in DATA])
def test_data(arrays, needle, tmp_path, capsys):
    data = tmp_path / "set.npz"
    data.write_bytes(arrays) if isinstance(arrays, bytes) else np.savez(data, **arrays)
    before = data.read_bytes()
    study = _write_study(tmp_path / "study.toml", small(dataset={"name": "npz", "options": {"path": str(data)}}))
    store = tmp_path / "s.duckdb"
    expect(ponder(["run", study, "--store", store, "--no-report", "--threads", "1"], capsys), 2, needle)
    assert data.read_bytes() == before
    if store.exists():  # the store may be opened before the data is read; nothing is trained or planned
        with duckdb.connect(str(store), read_only=True) as con:
            assert con.execute("SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM studies)").fetchone()[0] == 0


# -- markup and escaping: one tiny study whose question and levels hold markup of four languages ---

QUESTION = "Does <script>alert(1)</script> $x^$ or [/x] matter?"


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """The study's file, store and report folder, trained once; levels are npz paths in folders '$x^$' and '[/x]'."""
    tmp = tmp_path_factory.mktemp("markup")
    paths = []
    for folder in ("$x^$", "[/x]", "plain"):
        (tmp / folder).mkdir(parents=True)
        np.savez(tmp / folder / "d.npz", x_train=_X, y_train=_Y, x_test=_X, y_test=_Y)
        paths.append(str(tmp / folder / "d.npz"))
    doc = small(question=QUESTION, seeds=2, dataset={"name": "npz", "options": {"path": paths[0]}},
                factors={"dataset.options": [{"path": p} for p in paths]})
    return {"study": _write_study(tmp / "m.toml", doc), "store": tmp / "m.duckdb", "out": tmp / "reports",
            "paths": paths}


@pytest.fixture(scope="module")
def marked_run(marked):
    """(exit code, stdout, stderr) of ``ponder run`` on the marked study, with its report."""
    with pytest.MonkeyPatch.context() as mp:
        captured = []
        mp.setattr("sys.stdout", _Sink(captured, "out"))
        mp.setattr("sys.stderr", _Sink(captured, "err"))
        try:
            cli.main(["run", str(marked["study"]), "--store", str(marked["store"]), "--out", str(marked["out"]),
                      "--threads", "1"])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return (code, "".join(t for k, t in captured if k == "out"), "".join(t for k, t in captured if k == "err"))


class _Sink:
    """A text stream that keeps what is written (a module fixture cannot use capsys)."""

    def __init__(self, into: list, kind: str):
        self.into, self.kind = into, kind

    def write(self, text: str) -> int:
        self.into.append((self.kind, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_markup_levels_run_and_the_report_is_written(marked, marked_run):
    expect(marked_run, 0)
    report = marked["out"] / "h"
    assert (report / "index.html").is_file() and (report / "summary.md").is_file()
    for figure in ("final_metric.png", "learning_curves.png"):  # matplotlib drew '$x^$' as text
        assert (report / figure).stat().st_size > 1000
    assert any("[/x]" in line for line in (report / "index.html").read_text().splitlines())
    assert all(Path(p).is_file() for p in marked["paths"])


def test_markup_question_is_escaped_in_every_page(marked, marked_run):
    report = marked["out"] / "h"
    for page in (report / "index.html", marked["out"] / "index.html", report / "summary.md"):
        text = page.read_text()
        assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text, page


def test_markup_level_is_shown(marked, capsys):
    expect(ponder(["show", marked["study"]], capsys), 0, "[/x]")


def test_report_into_the_users_index_is_refused_then_forced(marked, marked_run, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<p>my own site</p>")
    (site / "notes.txt").write_bytes(b"mine \x00\xff")
    argv = ["report", "h", "--store", marked["store"], "--out", site]
    expect(ponder(argv, capsys), 2, "pass --force")
    assert tree(site) == {"index.html": b"<p>my own site</p>", "notes.txt": b"mine \x00\xff"}
    expect(ponder([*argv, "--force"], capsys), 0, "report:")
    assert 'href="h/index.html"' in (site / "index.html").read_text()
    assert (site / "notes.txt").read_bytes() == b"mine \x00\xff" and (site / "h" / "index.html").is_file()


def test_markup_in_the_markdown_summary(marked, marked_run, capsys):
    code, out, err = ponder(["report", "h", "--store", marked["store"], "--format", "md"], capsys)
    expect((code, out, err), 0)
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "\\[/x\\]" in out
