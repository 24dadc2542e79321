"""``ponder list``, ``show``, ``report`` and ``export``: studies and catalog entries, read only."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ponder.commands import checks
from ponder.commands.console import TABLE_FORMATS, emit, say

__all__ = ["list_", "show", "report", "export", "study_name", "builtin_questions", "KIND_PLURAL", "STORE",
           "EXPORT_TABLES"]

STORE = typer.Option("ponder.duckdb", "--store", help="DuckDB results file.")
FORMAT = typer.Option("auto", "--format", help="auto (a table on a terminal, tab-separated values in a pipe), "
                                               "table, tsv or json.")
KIND_PLURAL = {"initializers": "initializer", "activations": "activation", "losses": "loss", "datasets": "dataset", "metrics": "metric",
               "models": "model"}
EXPORT_TABLES = ("runs", "epochs", "layers", "evals")  # the files Store.export writes: {study}_{table}.{fmt}


def builtin_questions() -> dict[str, str]:
    """Built-in study names and their questions, read without importing the study package (and torch)."""
    import tomllib
    from importlib import resources

    files = sorted((f for f in resources.files("ponder.studies").iterdir() if f.name.endswith(".toml")),
                   key=lambda f: f.name)
    return {f.name[:-5]: str(tomllib.loads(f.read_text(encoding="utf-8")).get("question", "")) for f in files}


PLUGIN = typer.Option([], "--plugin", help="A module registering your own components (repeatable).")


def list_(what: str = typer.Argument("studies", help="studies, initializers, activations, losses, datasets, models "
                                     "or metrics."),
          pattern: str = typer.Option("*", "--pattern", "-p", help="Names containing this text, or an fnmatch "
                                      "pattern (with *, ? or [...])."),
          fmt: str = FORMAT, plugin: list[str] = PLUGIN) -> None:
    """List built-in studies or catalog entries (with a plugin's entries, marked as such)."""
    checks.choice("--format", fmt, TABLE_FORMATS)
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"  # a plain word: names containing it
    if plugin:
        from pathlib import Path

        from ponder.plugins import load_plugins

        load_plugins(plugin, base=Path.cwd())
    if what == "studies":
        from fnmatch import fnmatchcase

        rows = [{"name": k, "question": v} for k, v in builtin_questions().items() if fnmatchcase(k, glob)]
    elif what in KIND_PLURAL:
        from ponder import registry

        rows = [{"name": e.name, "formula": e.formula, "source": e.source or f"plugin {e.fn.__module__}",
                 "cites": e.cites} for e in registry.entries(KIND_PLURAL[what], glob)]
    else:
        checks.choice("kind", what, ["studies", *KIND_PLURAL])  # always raises here
    if not rows:
        say(f"no {what} match '{pattern}' (ponder list {what} shows them all)", to_err=True)
    emit(rows, fmt)


def show(study: str = typer.Argument(..., help="A built-in study name or a .toml path."),
         quick: bool = typer.Option(False, "--quick", help="Apply the study's [quick] overrides."),
         seeds: Optional[int] = typer.Option(None, "--seeds", help="Override the number of seeds (1 or more)."),
         plugin: list[str] = PLUGIN) -> None:
    """Show a study's design: settings, factors, tuning, and how many runs and populations it makes."""
    checks.integer("--seeds", seeds, lo=1)
    from ponder.study import expand, load_study, populations

    spec = load_study(study, quick=quick, seeds=seeds, plugins=plugin)
    runs = expand(spec)
    say(f": {spec.question}", bold=spec.name)
    for section in ("dataset", "model", "training"):
        say(f"  [{section}] {json.dumps(getattr(spec, section).model_dump())}")
    for k, v in spec.factors.items():
        say(f"  factor {k}: {v}")
    for k, v in spec.tune.items():
        say(f"  tuned  {k}: {v}")
    for k, v in spec.search.items():
        if k not in ("draws", "seed"):
            say(f"  drawn  {k}: {json.dumps(v)} ({spec.search['draws']} draws, the same for every arm)")
    if spec.evaluate.config():
        say(f"  [evaluate] {json.dumps(spec.evaluate.config())}")
    arms = len({r.arm.label for r in runs})
    settings = len({json.dumps(r.tuned, sort_keys=True, default=str) for r in runs})
    note = "" if len(runs) == arms * settings * spec.seeds else " (baselines skip the settings they do not use)"
    say(f"  {arms} arms x {settings} tuned settings x {spec.seeds} seeds = "
        f"{len(runs)} runs in {len(populations(runs))} populations{note}")


def report(study: str = typer.Argument(..., help="Study name in the store, or its .toml file."),
           store: str = STORE,
           out_dir: str = typer.Option("reports", "--out", help="Folder for reports (made if missing)."),
           fmt: str = typer.Option("html", "--format", help="html (folder with figures), md (summary only) or json "
                                   "(the analysis object: headline, answer, factors, interactions, warnings)."),
           force: bool = typer.Option(False, "--force", help="Write into a report folder ponder did not create."),
           open_: bool = typer.Option(False, "--open", help="Open the report in the default browser.")) -> None:
    """Write (or rewrite) a study's report from the store; a report whose inputs have not changed is kept."""
    checks.choice("--format", fmt, ("html", "md", "json"))
    if fmt == "html":
        checks.writable_folder("--out", out_dir)
    name = study_name(study)
    from ponder.store import Store

    with Store(store, read_only=True) as st:
        if study.endswith(".toml"):  # the report reads the stored version: refuse a file that now says otherwise
            from ponder.study.stored import check_stored

            check_stored(study, st.study(name), store=str(st.path))
        if fmt in ("md", "json"):
            _print_analysis(st, name, fmt)
            return
        from ponder.reporting import write_report

        path = write_report(st, name, out_dir, force=force)
    say(f"report: {path}")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def _print_analysis(st, name: str, fmt: str) -> None:
    """The analysis as JSON (the stored one when the study's runs have not changed) or as Markdown."""
    import json

    from ponder.analysis import fingerprint

    stored = st.analysis(name) if fmt == "json" else None
    if stored is not None and stored[0] == fingerprint(st, name):
        print(json.dumps(stored[1], indent=2))
        return
    from ponder.analysis import analyze

    an = analyze(st, name)
    if fmt == "json":
        print(json.dumps(an.to_json(), indent=2, allow_nan=False))
        return
    from ponder.reporting.html import summary_markdown

    print(summary_markdown(an), end="")


def study_name(study: str) -> str:
    """The store knows studies by name; a .toml path gives the name written in it."""
    if not study.endswith(".toml"):
        return study
    from ponder.study import load_study

    return load_study(study).name


def export(study: str = typer.Argument(..., help="Study name in the store, or its .toml file."),
           store: str = STORE,
           fmt: str = typer.Option("parquet", "--format", help="parquet, csv or mlflow (an MLflow file store in --out: "
                                   "one run per trained run; needs ponder[mlflow])."),
           out_dir: str = typer.Option("export", "--out", help="Folder for the files (made if missing)."),
           force: bool = typer.Option(False, "--force", help="Replace files of an earlier export (mlflow: write into "
                                      "a non-empty folder, replacing the study's earlier runs there).")) -> None:
    """Export a study's runs, epochs, per-layer records and evaluations as Parquet or CSV, or its runs to MLflow."""
    checks.choice("--format", fmt, ("parquet", "csv", "mlflow"))
    name = study_name(study)
    if fmt == "mlflow":
        _export_mlflow(name, store, out_dir, force=force)
        return
    checks.new_files("--out", out_dir, [f"{name}_{table}.{fmt}" for table in EXPORT_TABLES], force=force)
    from ponder.store import Store

    with Store(store, read_only=True) as st:
        for p in st.export(name, out_dir, fmt):
            say(str(p))


def _export_mlflow(name: str, store: str, out_dir: str, *, force: bool) -> None:
    """``ponder export --format mlflow``: the study's runs into the MLflow file store ``out_dir``."""
    checks.writable_folder("--out", out_dir)
    from ponder.export.mlflow import check_target, export_mlflow, ui_command
    from ponder.store import Store

    check_target(out_dir, force=force)
    with Store(store, read_only=True) as st:
        done = export_mlflow(st, name, out_dir, force=force)
    pending = f", {done.skipped} pending runs skipped" if done.skipped else ""
    say(f"mlflow: {done.runs} runs of {name} in {done.uri} (experiment {done.experiment_id}{pending})")
    say(f"open it with: {ui_command(out_dir)}")
