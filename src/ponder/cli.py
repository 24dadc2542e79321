"""The ``ponder`` command: thin wrappers over the library, registered in one table.

``run`` lives here; the other commands live in :mod:`ponder.commands` (one module per group) and
are listed in :data:`COMMANDS`. Every option is range-checked before a command does any work
(:mod:`ponder.commands.checks`). Errors go through one boundary (:mod:`ponder.commands.boundary`):
a user error is one line ``error: ...`` and exit code 2; any other exception is one sentence that
names a log file holding the traceback, and exit code 1; ``--debug`` shows the traceback instead.

Importing this module loads typer and nothing heavy (no torch, catalog, study package or rich
progress): each command imports what it needs, so ``ponder --help`` starts at once.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ponder.commands import atlas, checks, study as study_cmds, theory
from ponder.commands.boundary import exit_code_for
from ponder.commands.console import err, out, say
from ponder.errors import PonderError

__all__ = ["app", "main", "run", "ALL_STUDIES", "COMMANDS", "THEORY_COMMANDS"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ponder answers deep-learning design questions with controlled, repeatable experiments.")
theory_app = typer.Typer(help="Theory without training: mean field, phase diagrams, folklore checks.",
                         no_args_is_help=True)

ALL_STUDIES = ["init", "generalization", "loss", "relu_dropout", "activations"]  # one per question of the seed
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "ray")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")) -> None:
    """The --debug flag is read by the error boundary in :func:`main` (from the arguments)."""


def run(study: str = typer.Argument(..., help="A built-in study name, a .toml path, or 'all' (the five questions)."),
        store: str = study_cmds.STORE,
        out_dir: str = typer.Option("reports", "--out", help="Folder for reports (made if missing)."),
        quick: bool = typer.Option(False, "--quick", help="Apply the study's [quick] overrides."),
        seeds: Optional[int] = typer.Option(None, "--seeds", help="Override the number of seeds (1 or more)."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when this machine has it, else CPU), cpu or cuda."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch intra-op threads for training in this "
                                              "process, from 1 to the CPUs it may use (default: all the CPUs available "
                                              "to this process, by its CPU affinity)."),
        memory: Optional[float] = typer.Option(None, "--memory", help="Memory budget in GiB for one training chunk (more than 0)."),
        force: bool = typer.Option(False, "--force", help="Lift the soft limits on study size and write into report folders ponder did not create."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write the report afterwards."),
        executor: str = typer.Option("local", "--executor", help="local (this process) or ray (Ray tasks)."),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: start a local instance)."),
        cpus_per_task: Optional[float] = typer.Option(None, "--cpus-per-task", help="Ray: CPUs (and torch threads) per task (default 1)."),
        gpus_per_task: Optional[float] = typer.Option(None, "--gpus-per-task", help="Ray: GPUs per task (default 1 with --device cuda)."),
        retries: Optional[int] = typer.Option(None, "--retries", help="Ray: tries again per failed or killed task (default 2)."),
        plugin: list[str] = typer.Option([], "--plugin", help="A module registering your own components (repeatable)."),
        yes: bool = typer.Option(False, "--yes", help="Run a plan that grows the stored one more than tenfold without asking.")) -> None:
    """Train every run of STUDY the store does not have yet, then write its report."""
    _check_run_options(seeds=seeds, device=device, threads=threads, memory=memory, executor=executor,
                       out_dir=out_dir if report else None, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task)
    from ponder.executors import open_executor
    from ponder.store import Store
    from ponder.study import load_study

    names = ALL_STUDIES if study == "all" else [study]
    specs = [load_study(name, quick=quick, seeds=seeds, plugins=plugin) for name in names]  # validate all before training
    if report:  # a report folder ponder may not write is refused now, not after training
        from ponder.reporting.ownership import check_report_target

        for spec in specs:
            check_report_target(Path(out_dir), Path(out_dir) / spec.name, force=force)
    with open_executor(executor, device=device, address=address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                       max_retries=retries, threads=None if executor == "ray" else threads or checks.cpus_available()
                       ) as ex, Store(store) as st:
        if device == "auto":  # the local executor settles it (loading torch) only when there is something to train
            announce = lambda dev: say(f"device: {dev} (--device auto)", to_err=True)  # noqa: E731
            if hasattr(ex, "on_device"):
                ex.on_device = announce
            else:
                announce(ex.device)
        for spec in specs:
            _confirm_growth(spec, st, quick=quick, yes=yes or force)
            _run_one(spec, st, store=store, out_dir=out_dir, quick=quick, memory=memory, force=force,
                     report=report, executor=ex)


def _check_run_options(*, seeds: Optional[int], device: str, threads: Optional[int], memory: Optional[float],
                       executor: str, out_dir: Optional[str], cpus_per_task: Optional[float],
                       gpus_per_task: Optional[float]) -> None:
    """Refuse out-of-range options of ``run`` before anything is loaded or trained."""
    checks.integer("--seeds", seeds, lo=1)
    checks.choice("device", device, DEVICES)
    checks.integer("--threads", threads, lo=1, hi=checks.cpus_available(), why="the CPUs this process may use")
    checks.number("--memory", memory, above=0.0, unit=" GiB")
    checks.choice("executor", executor, EXECUTORS)
    if executor == "ray" and threads is not None:
        raise PonderError("--threads sets the torch threads of the local executor; Ray tasks take theirs from "
                          "--cpus-per-task (drop --threads)")
    checks.number("--cpus-per-task", cpus_per_task, above=0.0)
    checks.number("--gpus-per-task", gpus_per_task, lo=0.0)
    if out_dir is not None:
        checks.writable_folder("--out", out_dir)


class _PlainProgress:
    """Progress as plain lines on stderr when it is not a terminal: at most one every 10 s, and the last."""

    def __init__(self, name: str, *, enabled: bool, every_s: float = 10.0):
        import time

        self.name, self.enabled, self.every_s, self.clock = name, enabled, every_s, time.monotonic
        self.t0 = self.last = self.clock()
        self.shown = -1

    def update(self, done: int, total: int) -> None:
        now = self.clock()
        if not self.enabled or done == self.shown or (now - self.last < self.every_s and done < total):
            return
        self.last, self.shown = now, done
        rate = done / max(now - self.t0, 1e-9)
        eta = f", about {(total - done) / rate:.0f} s left" if 0 < done < total else ""
        err.print(f"{self.name}: {done:,}/{total:,} model-epochs ({100 * done / max(total, 1):.0f}%){eta}")


def _confirm_growth(spec, st, *, quick: bool, yes: bool) -> None:
    """A plan more than ten times the stored plan of the same study and mode is shown and needs --yes
    (or a yes at the prompt in a terminal): a mistyped --seeds 50 must not start a thousand runs."""
    from ponder.study import expand

    stored = st.plan_size(spec.name, quick=quick)
    new = len(expand(spec))
    if yes or not stored or new <= 10 * stored:
        return
    what = f"{spec.name}{' --quick' if quick else ''}: this plan has {new:,} runs, the stored one {stored:,}"
    if sys.stdin.isatty() and sys.stderr.isatty():
        if typer.confirm(f"{what}; train them?", default=False, err=True):
            return
        raise typer.Exit(1)
    from ponder.errors import LimitError

    raise LimitError(f"{what} (more than ten times as many); pass --yes to run it")


def _run_one(spec, st, *, store: str, out_dir: str, quick: bool, memory, force: bool, report: bool,
             executor) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ponder.reporting import write_report
    from ponder.runner import run_study

    with Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err.console, transient=False,
                  disable=not err.console.is_terminal) as bar:
        task = bar.add_task(f"{spec.name}: model-epochs", total=None)
        lines = _PlainProgress(spec.name, enabled=not err.console.is_terminal)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            lines.update(done, total)

        try:
            res = run_study(spec, st, quick=quick, force=force, progress=progress,
                            memory=int(memory * 2**30) if memory else None, executor=executor)
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"interrupted: every finished population is kept in {store}; run the same command again to resume")
            raise typer.Exit(130)
    err.print(f"{spec.name}: {res.total} runs, {res.skipped} already in the store, {res.trained} trained, "
              f"{res.failed} failed, in {res.wall_s:.1f} s")
    for error, n in res.errors.items():
        err.print(f"  {n} runs failed: {error} (the same command retries them)")
    if report:
        try:
            path = write_report(st, spec.name, out_dir, command=shlex.join(["ponder", *sys.argv[1:]]), force=force)
        except KeyboardInterrupt:
            err.print(f"interrupted while writing the report: every run is kept in {store}; run the same command "
                      "again to write it")
            raise typer.Exit(130)
        stored = st.analysis(spec.name)  # the analysis object write_report kept with the study
        if stored is not None:
            out.print(stored[1]["headline"], soft_wrap=True)
            out.print("")
            out.print(stored[1]["answer"], soft_wrap=True)
        out.print(f"report: {path}")


# The command table: (name, function). Each function is a thin wrapper over the library.
COMMANDS = [("run", run), ("list", study_cmds.list_), ("show", study_cmds.show), ("report", study_cmds.report),
            ("export", study_cmds.export), ("init", atlas.init_cmd)]
THEORY_COMMANDS = [("meanfield", theory.meanfield), ("critical", theory.critical), ("phase", theory.phase),
                   ("folklore", theory.folklore)]
for _name, _fn in COMMANDS:
    app.command(_name)(_fn)
for _name, _fn in THEORY_COMMANDS:
    theory_app.command(_name)(_fn)
app.add_typer(theory_app, name="theory")


def share_cpus() -> None:
    """Make idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose.

    By default an idle OpenMP worker spins for a while before it sleeps, which is fastest for one
    process alone but collapses when two processes share the cores: each one's spinning threads take
    the CPU the other one's working threads need (two quickstart --quick runs started together on 2 cores took
    45-48 s, against about 28 s one after the other). Measured alone, the passive policy cost nothing
    distinguishable from noise (docs/performance.md). It takes effect only if torch (libgomp) is not
    loaded yet, which is the case in the ``ponder`` command.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: run the command line ``argv`` (default: ``sys.argv[1:]``) and exit.

    Exit codes: 0 done; 1 an internal error (its traceback is in a log file); 2 a user error
    (one line on stderr); 130 interrupted. ``--debug`` re-raises instead.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    share_cpus()
    try:
        rc = app(args=args, prog_name="ponder", standalone_mode=False)  # an Exit inside a command comes back as its code
    except BaseException as exc:  # noqa: BLE001  (the one boundary: every exception is reported here)
        code = exit_code_for(exc, debug="--debug" in args)
        if code is None:
            raise
        sys.exit(code)
    if isinstance(rc, int) and rc:
        sys.exit(rc)
