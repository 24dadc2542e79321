"""Hostile input at the command line: every bad option is one sentence and exit code 2, before any work.

Each case runs ``ponder.cli.main(argv)`` in this process (no subprocess, nothing timed): a user
error must give exit code 2 and one line on stderr starting ``error:``, never a traceback; any
other exception exit code 1 and one sentence naming a log file that holds the traceback.
"""

from __future__ import annotations

import inspect
import re
import tempfile
from pathlib import Path

import pytest

from ponder import cli
from ponder.commands import checks, console, study as study_cmds


def ponder(argv, capsys) -> tuple[int, str, str]:
    """``ponder ARGV`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(a) for a in argv])
        raise SystemExit(0)  # main returns normally on success
    captured = capsys.readouterr()
    return exit_.value.code or 0, captured.out, captured.err


@pytest.fixture
def place(tmp_path):
    """Paths for the cases: a regular file, a missing folder, a store that must stay uncreated."""
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "taken.npy").write_bytes(b"a user's file")
    return {"{file}": str(tmp_path / "file"), "{missing}": str(tmp_path / "missing"), "{tmp}": str(tmp_path),
            "{taken}": str(tmp_path / "taken.npy"), "{store}": str(tmp_path / "s.duckdb")}


# (argv, text the one error line must hold). {file} is a regular file, {missing} a missing folder,
# {taken} an existing .npy file, {tmp} an empty-ish folder; run/report/export get a --store that must stay unmade.
USER_ERRORS = [
    (["run", "quickstart", "--threads", "100000"], "--threads must be at most"),
    (["run", "quickstart", "--threads", "0"], "--threads must be at least 1, got 0"),
    (["run", "quickstart", "--threads", "-3"], "--threads must be at least 1"),
    (["run", "quickstart", "--memory", "nan"], "--memory must be a finite number, got nan"),
    (["run", "quickstart", "--memory", "inf"], "--memory must be a finite number, got inf"),
    (["run", "quickstart", "--memory", "0"], "--memory must be more than 0 GiB"),
    (["run", "quickstart", "--memory", "-1"], "--memory must be more than 0 GiB"),
    (["run", "quickstart", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["run", "quickstart", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "quickstart", "--executor", "rey"], "unknown executor 'rey'; did you mean 'ray'?"),
    (["run", "quickstart", "--cpus-per-task", "nan", "--executor", "ray"], "--cpus-per-task must be a finite number"),
    (["run", "quickstart", "--out", "{file}"], "is a file, not a folder"),
    (["run", "quickstart", "--out", "{file}/reports"], "cannot be made"),
    (["run", "quickstart", "--threads", "abc"], "'--threads'"),
    (["run"], "Missing argument"),
    (["run", "quickstart", "--bogus"], "--bogus"),
    (["show", "quickstart", "--seeds", "0"], "--seeds must be at least 1"),
    (["list", "initialisers"], "did you mean 'initializers'?"),
    (["list", "studies", "--format", "xml"], "unknown --format 'xml'"),
    (["report", "tiny", "--out", "{file}/r"], "cannot be made"),
    (["report", "tiny", "--format", "pdf"], "unknown --format 'pdf'"),
    (["export", "tiny", "--format", "xls"], "unknown --format 'xls'"),
    (["export", "tiny", "--out", "{file}"], "is a file, not a folder"),
    (["theory", "critical", "--sigma-b2", "nan"], "--sigma-b2 must be a finite number, got nan"),
    (["theory", "critical", "--sigma-b2", "-1"], "--sigma-b2 must be at least 0"),
    (["theory", "meanfield", "--sigma-w2", "inf"], "--sigma-w2 must be a finite number, got inf"),
    (["theory", "meanfield", "--sigma-w2", "0"], "--sigma-w2 must be more than 0"),
    (["theory", "meanfield", "--sigma-w2", "1e9"], "--sigma-w2 must be at most 1000"),
    (["theory", "meanfield", "--sigma-b2", "-inf"], "--sigma-b2 must be a finite number"),
    (["theory", "phase", "--out", "{missing}/p.png"], "does not exist; create it first"),
    (["theory", "phase", "--out", "{tmp}"], "must name a .png file"),
    (["theory", "phase", "--sigma-b2", "nan", "--out", "{tmp}/p.png"], "--sigma-b2 must be a finite number"),
    (["theory", "folklore", "--k", "0"], "--k must be more than 0"),
    (["theory", "folklore", "--k", "nan"], "--k must be a finite number"),
    (["init", "caffe.xavier", "--shape", "100000,100000"], "above the cap of 50,000,000"),
    (["init", "caffe.xavier", "--layers", "100000,100000,10"], "above the cap of 50,000,000"),
    (["init", "caffe.xavier", "--layers", ",".join(["2"] * 1002)], "1,001 layers, above the cap of 1,000"),
    (["init", "caffe.xavier", "--shape", "4,x"], "must be comma-separated integers"),
    (["init", "caffe.gaussian", "--shape", "4,4", "--param", "sd=2"], "no parameter 'sd'; did you mean 'std'?"),
    (["init", "torch.kaiming_normal", "--shape", "4,4", "--rng", "numpy"], "unknown --rng 'numpy' (choose from opencv"),
    (["init", "torch.kaiming_normal", "--shape", "4,4", "--rng", "opencv"], "--rng applies to the OpenCV initializers"),
    (["init", "torch.kaiming_normal", "--shape", "4,4", "--activation", "tahn"], "unknown activation 'tahn'; did you mean"),
    (["init", "caffe.xavier", "--shape", "4,4", "--save", "{missing}/w.npy"], "does not exist; create it first"),
    (["init", "caffe.xavier", "--shape", "4,4", "--save", "{taken}"], "exists already; pass --force"),
]


@pytest.mark.parametrize("argv, needle", USER_ERRORS, ids=[" ".join(a)[:60] for a, _ in USER_ERRORS])
def test_user_error_is_one_line_and_exit_2(argv, needle, place, capsys):
    argv = [_fill(a, place) for a in argv]
    if argv[0] in ("run", "report", "export"):
        argv += ["--store", place["{store}"]]
    code, _, err = ponder(argv, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not Path(place["{store}"]).exists()  # refused before any work: no store was made


def _fill(arg: str, place: dict[str, str]) -> str:
    for key, value in place.items():
        arg = arg.replace(key, value)
    return arg


@pytest.mark.parametrize("content, needle", [
    (b'name = "caf\xe9"\n', "is not UTF-8 text"),
    (b"x = " + b"[" * 2000 + b"]" * 2000 + b"\n", "nested too deeply"),
    (b"x = " + b"{a=" * 2000 + b"1" + b"}" * 2000 + b"\n", "nested too deeply"),
], ids=["latin-1", "deep-arrays", "deep-tables"])
@pytest.mark.parametrize("command", ["show", "run"])
def test_hostile_study_file_is_one_line(command, content, needle, capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    code, _, err = ponder([command, bad, *(["--store", tmp_path / "s.duckdb"] if command == "run" else [])], capsys)
    assert code == 2 and err.startswith("error: ") and "bad.toml" in err and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s.duckdb").exists()


def test_threads_cap_is_the_cpus_this_process_may_use(capsys, tmp_path):
    n = checks.cpus_available()
    code, _, err = ponder(["run", "quickstart", "--threads", n + 1, "--store", tmp_path / "s.duckdb"], capsys)
    assert code == 2 and f"--threads must be at most {n} (the CPUs this process may use), got {n + 1}" in err


@pytest.mark.parametrize("threads, expected", [(None, "all"), ("1", 1)])
def test_threads_set_torch_when_training_starts(threads, expected, monkeypatch, capsys, tmp_path, tiny_study):
    """``--threads`` (default: the CPUs this process may use) reaches torch before the first chunk trains; a rerun
    with nothing to train never sets it (nor loads torch for it)."""
    import torch

    import ponder.train.chunk as chunk

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    real = chunk.train_chunk

    def first_set(runs, **kw):
        assert calls, "a chunk trained before --threads reached torch"
        return real(runs, **kw)

    monkeypatch.setattr(chunk, "train_chunk", first_set)
    argv = ["run", str(tiny_study), "--store", tmp_path / "s.duckdb", "--out", tmp_path / "r", "--no-report"]
    argv += ["--threads", threads] if threads else []
    code, _, err = ponder(argv, capsys)
    assert code == 0, err
    assert calls == [checks.cpus_available() if expected == "all" else expected]
    code, _, err = ponder(argv, capsys)
    assert code == 0 and "0 trained" in err and calls == [checks.cpus_available() if expected == "all" else expected]


def test_threads_belong_to_the_local_executor(capsys, tmp_path):
    code, _, err = ponder(["run", "quickstart", "--executor", "ray", "--threads", "1", "--store", tmp_path / "s.duckdb"],
                          capsys)
    assert code == 2 and "--threads sets the torch threads of the local executor" in err and "--cpus-per-task" in err


def test_run_device_defaults_to_auto():
    assert inspect.signature(cli.run).parameters["device"].default.default == "auto"


def test_internal_error_names_a_log_with_the_traceback(monkeypatch, capsys, tmp_path):
    def boom():
        raise RuntimeError("boom happened\nsecond line")

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(study_cmds, "builtin_questions", boom)
    code, _, err = ponder(["list", "studies"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    m = re.fullmatch(r"internal error: RuntimeError: boom happened; the traceback is in (\S+)\n", err)
    assert m, err
    log = Path(m.group(1))
    assert log.parent == tmp_path / "state" / "ponder" / "logs"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom happened" in text and "in boom" in text


def test_internal_error_log_falls_back_to_the_temp_folder(monkeypatch, capsys, tmp_path):
    (tmp_path / "state").write_text("a file where the state folder should be")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(study_cmds, "builtin_questions", lambda: {}.pop("x"))  # a KeyError of our own making
    code, _, err = ponder(["list", "studies"], capsys)
    assert code == 1 and "internal error: KeyError: 'x'; the traceback is in " in err, err
    log = Path(err.strip().rsplit(" ", 1)[-1])
    assert log.parent == tmp_path / "tmp" / "ponder-logs" and "KeyError" in log.read_text()


def test_debug_re_raises(monkeypatch, capsys):
    monkeypatch.setattr(study_cmds, "builtin_questions", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["--debug", "list", "studies"])
    from ponder.errors import PonderError

    with pytest.raises(PonderError):
        cli.main(["--debug", "run", "quickstart", "--threads", "0"])


def test_export_refuses_to_overwrite_and_leaves_the_file_alone(capsys, tmp_path):
    (tmp_path / "exp").mkdir()
    mine = tmp_path / "exp" / "tiny_epochs.csv"
    mine.write_bytes(b"my own data\x00\xff")
    argv = ["export", "tiny", "--store", tmp_path / "none.duckdb", "--format", "csv", "--out", tmp_path / "exp"]
    code, out, err = ponder(argv, capsys)
    assert code == 2 and "already holds tiny_epochs.csv; pass --force" in err, err
    assert mine.read_bytes() == b"my own data\x00\xff" and out == ""
    code, _, err = ponder([*argv, "--force"], capsys)  # --force lifts the refusal; the missing store stops it next
    assert code == 2 and "does not exist" in err and mine.read_bytes() == b"my own data\x00\xff"


def test_export_checks_the_names_store_export_writes(tiny_study, tmp_path):
    from ponder.store import Store
    from ponder.study import expand, load_study

    spec = load_study(tiny_study)
    with Store(":memory:") as st:
        st.save_plan(name=spec.name, question=spec.question, spec=spec.model_dump(), source=spec.source, quick=False,
                     runs=expand(spec))
        written = st.export(spec.name, tmp_path / "e", "csv")
    assert sorted(p.name for p in written) == sorted(f"tiny_{t}.csv" for t in study_cmds.EXPORT_TABLES)


def test_init_save_refuses_an_existing_file_without_force(capsys, tmp_path):
    target = tmp_path / "w.npy"
    target.write_bytes(b"keep me")
    code, _, err = ponder(["init", "caffe.xavier", "--shape", "4,4", "--save", target], capsys)
    assert code == 2 and "exists already" in err and target.read_bytes() == b"keep me"
    code, out, err = ponder(["init", "caffe.xavier", "--shape", "4,4", "--save", tmp_path / "w", "--force"], capsys)
    assert code == 0, err
    assert f"saved: {target}" in out and target.read_bytes() != b"keep me"  # numpy adds .npy: that file is checked


def test_show_prints_brackets_literally(tiny_study, capsys):
    tiny_study.write_text(tiny_study.read_text().replace("Does the initializer matter", "Does [/x] or [bold]x[/bold] matter"))
    code, out, err = ponder(["show", tiny_study], capsys)
    assert code == 0, err
    assert "Does [/x] or [bold]x[/bold] matter" in out
    assert "  [dataset] {" in out and "  [model] {" in out and "  [training] {" in out


@pytest.mark.parametrize("text", ["[/x]", "[dataset]", "[bold]b[/bold]", ":smile:", "[link=x]y"])
def test_console_prints_text_as_written(text, capsys):
    console.out.print(f"answer {text}", soft_wrap=True)  # as _run_one prints the answer
    console.err.print(f"  2 runs failed: {text}")
    console.say(f": {text}", bold="name")
    captured = capsys.readouterr()
    assert captured.out == f"answer {text}\nname: {text}\n" and captured.err == f"  2 runs failed: {text}\n"


def test_list_in_a_pipe_is_tsv_with_whole_names(capsys):
    code, out, _ = ponder(["list", "studies"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "name\tquestion"
    questions = study_cmds.builtin_questions()
    assert {tuple(line.split("\t")) for line in lines[1:]} == set(questions.items())
    assert max(len(line) for line in lines) > 80  # nothing cut at 80 columns


def test_list_json_and_pattern(capsys):
    import json

    code, out, _ = ponder(["list", "studies", "--format", "json", "--pattern", "quick*"], capsys)
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["quickstart"]


def test_bare_ponder_shows_help_with_exit_2(capsys):
    code, out, err = ponder([], capsys)
    assert code == 2 and "Usage" in out + err and "error:" not in err


def test_ctrl_c_while_the_report_is_written_says_what_is_kept(monkeypatch, capsys, tmp_path, tiny_study):
    """Interrupted after training, while the report is written: one sentence, exit 130, every run stored, and the
    same command writes the report without training."""
    from ponder import reporting

    real = reporting.write_report

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(reporting, "write_report", interrupted)
    argv = ["run", str(tiny_study), "--store", tmp_path / "s.duckdb", "--out", tmp_path / "r"]
    code, _, err = ponder(argv, capsys)
    assert code == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"interrupted while writing the report: every run is kept in "
                                            f"{tmp_path / 's.duckdb'}; run the same command again to write it")
    monkeypatch.setattr(reporting, "write_report", real)
    code, out, err = ponder(argv, capsys)
    assert code == 0 and "12 already in the store, 0 trained" in err and "report:" in out
