"""End to end through the `ponder` command: a tiny study into a temporary store."""

from __future__ import annotations

import subprocess
import sys

import json

import duckdb
import pandas as pd
import pytest

import ponder


def ponder_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ponder", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_run_rerun_report_export(tiny_study, tmp_path):
    store, reports = tmp_path / "s.duckdb", tmp_path / "reports"
    r = ponder_cli("run", tiny_study, "--store", store, "--out", reports)
    assert r.returncode == 0, r.stderr
    assert "12 runs, 0 already in the store, 12 trained, 0 failed" in r.stderr
    assert "seeds per arm" in r.stdout and "report:" in r.stdout
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("select count(*) from runs where status in ('ok', 'diverged')").fetchone()[0] == 12
        assert con.execute("select count(*) from epochs").fetchone()[0] == 12 * 4  # epochs 0..3
        assert con.execute("select count(distinct population) from runs").fetchone()[0] == 1
        finished_before = con.execute("select run_id, finished from runs order by run_id").fetchall()

    # Rerun: nothing is retrained.
    r = ponder_cli("run", tiny_study, "--store", store, "--out", reports)
    assert r.returncode == 0, r.stderr
    assert "12 runs, 12 already in the store, 0 trained" in r.stderr
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("select run_id, finished from runs order by run_id").fetchall() == finished_before

    # More seeds: only the new runs train.
    r = ponder_cli("run", tiny_study, "--store", store, "--out", reports, "--seeds", 4)
    assert "16 runs, 12 already in the store, 4 trained" in r.stderr
    headline = r.stdout.splitlines()[0]  # the headline first, then the answer

    html = (reports / "tiny" / "index.html").read_text()
    for part in ('id="headline"', "In detail.", "learning_curves.png", "final_metric.png", "Paired comparisons"):
        assert part in html

    # The printed answer is the analysis object's, which `report --format json` prints too.
    r = ponder_cli("report", "tiny", "--store", store, "--format", "json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["factors"][0]["factor"] == "model.initializer"
    assert {"headline", "answer", "factors", "interactions", "warnings"} <= set(out)
    assert out["factors"][0]["verdict"] in ("matters", "no evidence", "equivalent")
    assert json.loads((reports / "tiny" / "analysis.json").read_text())["headline"] == out["headline"]
    assert headline == json.loads((reports / "tiny" / "analysis.json").read_text())["headline"]

    # A mistyped --seeds that grows the plan more than tenfold is shown and refused without --yes.
    r = ponder_cli("run", tiny_study, "--store", store, "--out", reports, "--seeds", 50)
    assert r.returncode == 2 and "this plan has 200 runs, the stored one 16" in r.stderr and "--yes" in r.stderr
    assert (reports / "tiny" / "learning_curves.png").stat().st_size > 1000
    assert (reports / "tiny" / "summary.md").read_text().startswith("# tiny")
    assert 'href="tiny/index.html"' in (reports / "index.html").read_text()

    r = ponder_cli("report", "tiny", "--store", store, "--format", "md")
    assert r.returncode == 0 and "| arm | rank |" in r.stdout

    # The file now says 3 seeds, the store holds the study as last run (4): reported by name, refused by file.
    r = ponder_cli("report", tiny_study, "--store", store, "--format", "md")
    assert r.returncode == 2 and "differs from the study 'tiny' as" in r.stderr and "(seeds)" in r.stderr
    assert f"ponder run {tiny_study} --store {store}" in r.stderr
    edited = tmp_path / "edited.toml"
    edited.write_text(tiny_study.read_text().replace("seeds = 3", "seeds = 4").replace("question = \"Does",
                                                                                         "question = \"Now, does"))
    r = ponder_cli("report", edited, "--store", store, "--out", reports)
    assert r.returncode == 2 and "(question)" in r.stderr
    r = ponder_cli("report", edited, "--store", store, "--format", "json")
    assert r.returncode == 2  # json as well: never the stored version under the file's name

    r = ponder_cli("export", "tiny", "--store", store, "--format", "csv", "--out", tmp_path / "exp")
    assert r.returncode == 0, r.stderr
    runs = pd.read_csv(tmp_path / "exp" / "tiny_runs.csv")
    assert len(runs) == 16 and set(runs["status"]) <= {"ok", "diverged"}
    r = ponder_cli("export", "tiny", "--store", store, "--format", "parquet", "--out", tmp_path / "exp")
    assert pd.read_parquet(tmp_path / "exp" / "tiny_epochs.parquet")["epoch"].max() == 3

    df = ponder.results("tiny", store=store)
    assert len(df) == 16 and {"initializer", "lr", "seed", "test_acc", "status"} <= set(df.columns)


@pytest.mark.parametrize("args, needle", [
    (["run", "quikstart"], "did you mean 'quickstart'"),
    (["run", "nope.toml"], "does not exist"),
    (["list", "initialisers"], "did you mean 'initializers'"),
    (["report", "missing", "--store", "{store}"], "does not exist"),
    (["run", "quickstart", "--device", "tpu", "--store", "{store}"], "unknown device 'tpu'"),
    (["run", "quickstart", "--threads", "0", "--store", "{store}"], "--threads must be at least 1"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, args, needle):
    args = [a.replace("{store}", str(tmp_path / "x.duckdb")) for a in args]
    r = ponder_cli(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_bad_study_file_through_cli(tmp_path, tiny_study):
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_study.read_text().replace('activation = "tanh"', 'activation = "relu6"'))
    r = ponder_cli("run", bad, "--store", tmp_path / "s.duckdb")
    assert r.returncode == 2 and "bad.toml" in r.stderr and "unknown activation 'relu6'" in r.stderr
    assert not (tmp_path / "s.duckdb").exists() or duckdb.connect(str(tmp_path / "s.duckdb")).execute("select count(*) from runs").fetchone()[0] == 0


def test_list_and_show(tiny_study):
    r = ponder_cli("list", "initializers", "--format", "json")
    assert r.returncode == 0 and '"torch.default"' in r.stdout
    r = ponder_cli("list", "studies")
    assert "quickstart" in r.stdout
    r = ponder_cli("list", "initializers", "-p", "nguyen", "--format", "tsv")  # a plain word: names containing it
    assert r.returncode == 0 and [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == [
        "nguyen_widrow_1990", "opencv.nguyen_widrow"]
    r = ponder_cli("list", "initializers", "-p", "torch.x*", "--format", "tsv")  # a pattern: fnmatch, as before
    assert [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == ["torch.xavier_normal", "torch.xavier_uniform"]
    r = ponder_cli("list", "activations", "-p", "no-such", "--format", "json")
    assert r.returncode == 0 and r.stdout.strip() == "[]" and "no activations match 'no-such'" in r.stderr
    r = ponder_cli("show", tiny_study)
    assert r.returncode == 0 and "12 runs in 1 populations" in r.stdout
