"""The ``ponder`` command: thin wrappers over the library.

Every user error is a PonderError, printed as one line on stderr with exit code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import webbrowser
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ponder import registry
from ponder.errors import PonderError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ponder answers deep-learning design questions with controlled, repeatable experiments.")
out = Console()
err = Console(stderr=True)
_STATE = {"debug": False}

STORE = typer.Option("ponder.duckdb", "--store", help="DuckDB results file.")
KIND_PLURAL = {"initializers": "initializer", "activations": "activation", "losses": "loss", "datasets": "dataset",
               "models": "model"}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")) -> None:
    _STATE["debug"] = debug


@app.command()
def run(study: str = typer.Argument(..., help="A built-in study name or a .toml path."),
        store: str = STORE,
        out_dir: str = typer.Option("reports", "--out", help="Folder for reports."),
        quick: bool = typer.Option(False, "--quick", help="Apply the study's [quick] overrides."),
        seeds: Optional[int] = typer.Option(None, "--seeds", help="Override the number of seeds."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch intra-op threads (default: torch's)."),
        memory: Optional[float] = typer.Option(None, "--memory", help="Memory budget in GiB for one training chunk."),
        force: bool = typer.Option(False, "--force", help="Lift the soft limits on study size."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the report afterwards.")) -> None:
    """Train every run of STUDY the store does not have yet, then write its report."""
    import torch

    from ponder.api import load_study
    from ponder.executors import run_study
    from ponder.executors.local import resolve_device
    from ponder.report import write_report
    from ponder.store import Store

    if threads is not None:
        if threads < 1:
            raise PonderError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    spec = load_study(study, quick=quick, seeds=seeds)
    device = resolve_device(device)
    with Store(store) as st, Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False) as bar:
        task = bar.add_task(f"{spec.name}: runs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            res = run_study(spec, st, device=device, quick=quick, force=force, progress=progress,
                            memory=int(memory * 2**30) if memory else None)
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted: every finished population is kept in {store}; run the same command again to resume")
            raise typer.Exit(130)
        bar.stop()
        err.print(f"{spec.name}: {res.total} runs, {res.skipped} already in the store, {res.trained} trained, "
                  f"{res.failed} failed, in {res.wall_s:.1f} s")
        if report:
            path = write_report(st, spec.name, out_dir, command=" ".join(["ponder", *sys.argv[1:]]))
            summary = (path.parent / "summary.md").read_text()
            answer = next(l.removeprefix("**Answer.** ") for l in summary.splitlines() if l.startswith("**Answer.**"))
            out.print(answer, soft_wrap=True)
            out.print(f"report: {path}")


@app.command("list")
def list_(what: str = typer.Argument("studies", help="studies, initializers, activations, losses, datasets or models."),
          pattern: str = typer.Option("*", "--pattern", "-p", help="fnmatch pattern on names."),
          fmt: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """List built-in studies or catalog entries."""
    from ponder.study.spec import builtin_studies

    if what == "studies":
        rows = [{"name": k, "question": v} for k, v in builtin_studies().items()]
    elif what in KIND_PLURAL:
        rows = [{"name": e.name, "formula": e.formula, "source": e.source, "cites": e.cites}
                for e in registry.entries(KIND_PLURAL[what], pattern)]
    else:
        near = registry.closest(what, ["studies", *KIND_PLURAL])
        raise PonderError(f"cannot list {what!r}" + (f"; did you mean {near[0]!r}?" if near else "")
                          + f" (choose from studies, {', '.join(KIND_PLURAL)})")
    _emit(rows, fmt)


def _emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    if fmt != "table":
        raise PonderError(f"unknown --format {fmt!r}; use table or json")
    table = Table(show_lines=False)
    for col in (rows[0] if rows else {"name": ""}):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    out.print(table)


@app.command()
def show(study: str = typer.Argument(..., help="A built-in study name or a .toml path."),
         quick: bool = typer.Option(False, "--quick"),
         seeds: Optional[int] = typer.Option(None, "--seeds")) -> None:
    """Show a study's design: settings, factors, tuning, and how many runs and populations it makes."""
    from ponder.api import load_study
    from ponder.study import expand, populations

    spec = load_study(study, quick=quick, seeds=seeds)
    runs = expand(spec)
    out.print(f"[bold]{spec.name}[/bold]: {spec.question}")
    for section in ("dataset", "model", "training"):
        out.print(f"  [{section}] {json.dumps(getattr(spec, section).model_dump())}")
    for k, v in spec.factors.items():
        out.print(f"  factor {k}: {v}")
    for k, v in spec.tune.items():
        out.print(f"  tuned  {k}: {v}")
    arms = len({r.arm for r in runs})
    out.print(f"  {arms} arms x {max(1, len(runs) // max(1, arms * spec.seeds))} tuned settings x {spec.seeds} seeds = "
              f"{len(runs)} runs in {len(populations(runs))} populations")


@app.command()
def report(study: str = typer.Argument(..., help="Study name in the store."),
           store: str = STORE,
           out_dir: str = typer.Option("reports", "--out"),
           fmt: str = typer.Option("html", "--format", help="html (folder with figures) or md (summary only)."),
           open_: bool = typer.Option(False, "--open", help="Open the report in the default browser.")) -> None:
    """Write (or rewrite) a study's report from the store."""
    from ponder.analysis import analyze
    from ponder.report import write_report
    from ponder.report.html import summary_markdown
    from ponder.store import Store

    with Store(store, read_only=True) as st:
        if fmt == "md":
            print(summary_markdown(analyze(st, _study_name(study))), end="")
            return
        if fmt != "html":
            raise PonderError(f"unknown --format {fmt!r}; use html or md")
        path = write_report(st, _study_name(study), out_dir)
    out.print(f"report: {path}")
    if open_:
        webbrowser.open(path.resolve().as_uri())


def _study_name(study: str) -> str:
    # Accept a .toml path too: the store knows studies by name.
    if study.endswith(".toml"):
        from ponder.api import load_study

        return load_study(study).name
    return study


@app.command()
def export(study: str = typer.Argument(..., help="Study name in the store."),
           store: str = STORE,
           fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
           out_dir: str = typer.Option("export", "--out", help="Folder for the files.")) -> None:
    """Export a study's runs, epochs and per-layer records as Parquet or CSV."""
    from ponder.store import Store

    with Store(store, read_only=True) as st:
        for p in st.export(_study_name(study), out_dir, fmt):
            out.print(str(p))


def main() -> None:
    """Console entry point: one line and exit code 2 for user errors."""
    debug = "--debug" in sys.argv
    try:
        app(standalone_mode=False)
    except PonderError as exc:
        if debug:
            raise
        err.print(f"error: {exc}", soft_wrap=True, markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            err.print(f"error: {exc.format_message()}", markup=False, highlight=False)
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
