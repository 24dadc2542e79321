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
def run(study: str = typer.Argument(..., help="A built-in study name, a .toml path, or 'all' (the five questions)."),
        store: str = STORE,
        out_dir: str = typer.Option("reports", "--out", help="Folder for reports."),
        quick: bool = typer.Option(False, "--quick", help="Apply the study's [quick] overrides."),
        seeds: Optional[int] = typer.Option(None, "--seeds", help="Override the number of seeds."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch intra-op threads (default: torch's)."),
        memory: Optional[float] = typer.Option(None, "--memory", help="Memory budget in GiB for one training chunk."),
        force: bool = typer.Option(False, "--force", help="Lift the soft limits on study size."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the report afterwards."),
        executor: str = typer.Option("local", "--executor", help="local (this process) or ray (Ray tasks)."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: start a local instance)."),
        cpus_per_task: Optional[float] = typer.Option(None, "--cpus-per-task", help="Ray: CPUs (and torch threads) per task (default 1)."),
        gpus_per_task: Optional[float] = typer.Option(None, "--gpus-per-task", help="Ray: GPUs per task (default 1 with --device cuda)."),
        retries: Optional[int] = typer.Option(None, "--retries", help="Ray: tries again per failed or killed task (default 2).")) -> None:
    """Train every run of STUDY the store does not have yet, then write its report."""
    import torch

    from ponder.api import load_study
    from ponder.executors import open_executor
    from ponder.executors.local import resolve_device
    from ponder.store import Store

    if threads is not None:
        if threads < 1:
            raise PonderError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    if executor == "local":  # a Ray driver needs no GPU of its own; the executor checks the cluster
        device = resolve_device(device)
    names = ALL_STUDIES if study == "all" else [study]
    specs = [load_study(name, quick=quick, seeds=seeds) for name in names]  # validate every study before training any
    with open_executor(executor, address=address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                       max_retries=retries) as ex, Store(store) as st:
        for spec in specs:
            _run_one(spec, st, store=store, out_dir=out_dir, quick=quick, device=device, memory=memory, force=force,
                     report=report, executor=ex)


ALL_STUDIES = ["init", "generalization", "loss", "relu_dropout", "activations"]  # one per question of the seed


def _run_one(spec, st, *, store: str, out_dir: str, quick: bool, device: str, memory, force: bool, report: bool,
             executor) -> None:
    from ponder.executors import run_study
    from ponder.report import write_report

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err, transient=False) as bar:
        task = bar.add_task(f"{spec.name}: runs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            res = run_study(spec, st, device=device, quick=quick, force=force, progress=progress,
                            memory=int(memory * 2**30) if memory else None, executor=executor)
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted: every finished population is kept in {store}; run the same command again to resume",
                      soft_wrap=True)
            raise typer.Exit(130)
    err.print(f"{spec.name}: {res.total} runs, {res.skipped} already in the store, {res.trained} trained, "
              f"{res.failed} failed, in {res.wall_s:.1f} s")
    for error, n in res.errors.items():
        err.print(f"  {n} runs failed: {error} (the same command retries them)", soft_wrap=True, markup=False,
                  highlight=False)
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
    for k, v in spec.search.items():
        if k not in ("draws", "seed"):
            out.print(f"  drawn  {k}: {json.dumps(v)} ({spec.search['draws']} draws, the same for every arm)")
    if spec.evaluate.config():
        out.print(f"  [evaluate] {json.dumps(spec.evaluate.config())}")
    arms = len({r.arm for r in runs})
    settings = len({r.tuned for r in runs})
    note = "" if len(runs) == arms * settings * spec.seeds else " (baselines skip the settings they do not use)"
    out.print(f"  {arms} arms x {settings} tuned settings x {spec.seeds} seeds = "
              f"{len(runs)} runs in {len(populations(runs))} populations{note}")


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


@app.command("init")
def init_cmd(name: str = typer.Argument(..., help="Catalog initializer, e.g. caffe.xavier or 'caffe.gaussian(std=0.01)'."),
             shape: Optional[str] = typer.Option(None, "--shape", help="Weight shape in PyTorch layout, e.g. 256,128."),
             layers: Optional[str] = typer.Option(None, "--layers", help="Layer sizes for a whole MLP, e.g. 40,100,100,10."),
             param: list[str] = typer.Option([], "--param", help="key=value, repeatable."),
             seed: int = typer.Option(0, "--seed"),
             activation: str = typer.Option("relu", "--activation", help="For initializers that depend on it (critical, orthogonal, lsuv)."),
             rng: Optional[str] = typer.Option(None, "--rng", help="opencv: draw with OpenCV's own RNG stream (bit-exact)."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON."),
             save: Optional[str] = typer.Option(None, "--save", help="Save the tensor (.npy) or all layers (.npz).")) -> None:
    """Draw an initializer and show its formula, the fans it used and sample statistics."""
    import numpy as np
    import torch

    from ponder.catalog.initializers.base import dense_forward, init_network, parse_init
    from ponder.rng import rng_for

    base, params = parse_init(name)
    for p in param:
        key, sep, value = p.partition("=")
        if not sep:
            raise PonderError(f"--param {p!r} is not key=value")
        params[key.strip()] = _literal(value.strip())
    if rng is not None:
        params["rng"] = rng
    entry = registry.get("initializer", base)
    if (shape is None) == (layers is None):
        raise PonderError("give exactly one of --shape (one weight) or --layers (a whole MLP)")
    if shape is not None:
        shapes = [_ints(shape, "--shape")]
        if entry.meta.get("network"):
            raise PonderError(f"{base!r} initializes a whole network; use --layers, e.g. --layers 40,100,10")
    else:
        sizes = _ints(layers, "--layers")
        if len(sizes) < 2:
            raise PonderError("--layers needs at least an input and an output size, e.g. 40,100,10")
        shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
    ctx = {"activation": activation}
    if "forward" in entry.meta.get("needs", ()):
        batch = torch.randn(256, shapes[0][1], generator=rng_for(seed, "cli-batch"), dtype=torch.float64)
        fwd = dense_forward(batch, registry.get("activation", activation).fn)
        ctx["forward"] = fwd
    drawn = init_network(base, shapes, generator=rng_for(seed, "init"), dtype=torch.float64, context=ctx, **params)
    rows = []
    for i, ((w, b), s) in enumerate(zip(drawn, shapes)):
        fan_in = int(np.prod(s[1:]))
        rows.append({"layer": i, "shape": list(s), "fan_in": fan_in, "fan_out": int(s[0] * np.prod(s[2:])),
                     "mean": float(w.mean()), "std": float(w.std()), "min": float(w.min()), "max": float(w.max()),
                     "sigma_w2": float(fan_in * w.pow(2).mean()), "bias_std": float(b.std()) if b.numel() > 1 else 0.0})
    if save:
        if save.endswith(".npz"):
            np.savez(save, **{f"W{i}": w.numpy() for i, (w, _) in enumerate(drawn)}, **{f"b{i}": b.numpy() for i, (_, b) in enumerate(drawn)})
        else:
            np.save(save, drawn[0][0].numpy())
    if as_json:
        print(json.dumps({"name": base, "params": params, "formula": entry.formula, "source": entry.source, "layers": rows}, indent=2))
        return
    out.print(f"[bold]{base}[/bold] {params or ''}: {entry.formula}", soft_wrap=True)
    out.print(f"source: {entry.source}; cites: {entry.cites}", soft_wrap=True)
    _emit([{k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows], "table")
    if save:
        out.print(f"saved: {save}")


def _ints(text: str, opt: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise PonderError(f"{opt} {text!r} must be comma-separated integers, e.g. 256,128") from None
    if not vals or any(v < 1 for v in vals):
        raise PonderError(f"{opt} {text!r} must hold positive sizes")
    return vals


def _literal(text: str):
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


theory_app = typer.Typer(help="Theory without training: mean field, phase diagrams, folklore checks.", no_args_is_help=True)
app.add_typer(theory_app, name="theory")


@theory_app.command("meanfield")
def theory_meanfield(activation: str = typer.Option("tanh", "--activation"),
                     sigma_w2: float = typer.Option(1.0, "--sigma-w2"),
                     sigma_b2: float = typer.Option(0.0, "--sigma-b2"),
                     as_json: bool = typer.Option(False, "--json")) -> None:
    """q*, chi_1, depth scales and phase for one (activation, sigma_w^2, sigma_b^2)."""
    from dataclasses import asdict

    from ponder.theory.meanfield import meanfield

    r = meanfield(activation, sigma_w2, sigma_b2)
    row = {**asdict(r), "phase": r.phase, "trainable_depth": r.trainable_depth}
    if as_json:
        print(json.dumps(row))
    else:
        _emit([{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}], "table")


@theory_app.command("critical")
def theory_critical(activation: str = typer.Option("tanh", "--activation"),
                    sigma_b2: float = typer.Option(0.0, "--sigma-b2")) -> None:
    """The sigma_w^2 that puts an activation at the edge of chaos (chi_1 = 1)."""
    from ponder.theory.meanfield import critical_sigma_w2

    out.print(f"{activation}: critical sigma_w^2 = {critical_sigma_w2(activation, sigma_b2):.6g} at sigma_b^2 = {sigma_b2:g}")


@theory_app.command("phase")
def theory_phase(activation: str = typer.Option("tanh", "--activation"),
                 sigma_b2: float = typer.Option(0.05, "--sigma-b2", help="sigma_b^2 of the depth-scale panel."),
                 path: str = typer.Option("phase.png", "--out", help="PNG file to write.")) -> None:
    """Draw the order/chaos phase diagram with the trainable-depth line 6 xi_c."""
    from ponder.report.plots import phase_diagram

    registry.get("activation", activation)
    out.print(f"phase diagram: {phase_diagram(activation, Path(path), sigma_b2=sigma_b2)}")


@theory_app.command("folklore")
def theory_folklore(k: float = typer.Option(0.25, "--k", help="Within k standard deviations of 0."),
                    fmt: str = typer.Option("table", "--format")) -> None:
    """Test "uniform random numbers put more weights near 0" for every initializer."""
    from ponder.theory.folklore import near_zero_table, verdict

    rows = [{"initializer": r.name, "law": r.law, "std": f"{r.std:.4g}", "sampled": f"{100 * r.sampled:.2f}%",
             "exact": "-" if r.exact is None else f"{100 * r.exact:.2f}%"} for r in near_zero_table(k)]
    _emit(rows, fmt)
    if fmt != "json":
        out.print(verdict(k), soft_wrap=True)


def main() -> None:
    """Console entry point: one line and exit code 2 for user errors."""
    debug = "--debug" in sys.argv
    try:
        rc = app(standalone_mode=False)  # an Exit raised inside a command comes back as its code
        if isinstance(rc, int) and rc:
            sys.exit(rc)
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
    except Exception as exc:  # usage errors of the command line (typer's own, or click's in older typer)
        usage, abort = _cli_exception_types()
        if isinstance(exc, usage):
            msg = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            err.print(f"error: {msg}", markup=False, highlight=False)
            sys.exit(2)
        if isinstance(exc, abort):
            sys.exit(130)
        raise


def _cli_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    usage: list[type] = []
    abort: list[type] = []
    try:
        from typer.exceptions import Abort, TyperException

        usage.append(TyperException)
        abort.append(Abort)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.exceptions.ClickException)
        abort.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(abort)
