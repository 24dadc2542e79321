"""The report's figures as data: which file, which function draws it, when it applies, its caption.

:data:`FIGURES` lists every figure in page order; :func:`draw_figures` draws those that apply to
a study. A figure function may still return None when the study recorded nothing for it (no
layer statistics, no evaluations); the figure is then left out of the page.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ponder.analysis import Analysis
from ponder.analysis.answer import UNTESTED
from ponder.reporting import plots
from ponder.study.keys import short_key

__all__ = ["Figure", "FIGURES", "draw_figures"]


@dataclass(frozen=True)
class Figure:
    """One figure of the report.

    Attributes:
        file: PNG file name inside the study folder (an SVG goes beside it).
        draw: ``draw(an, path) -> path | None``.
        caption: The caption, or a function of the analysis that writes it.
        applies: Whether the figure is drawn for this study.
        cost: Its rough drawing time relative to a plain figure; the costliest are handed out first
            when figures are drawn in parallel.
    """

    file: str
    draw: Callable[[Analysis, Path], Path | None]
    caption: str | Callable[[Analysis], str]
    applies: Callable[[Analysis], bool] = lambda an: True
    cost: int = 1


def _factors(an: Analysis) -> dict:
    return an.study["spec"].get("factors", {})


def _interaction_caption(an: Analysis) -> str:
    return (f"Interaction: mean test accuracy of each {short_key(an.focus)} (rows) in each condition of the other "
            "factors (columns); '(best)' marks the best level, '*' the levels tied with it"
            + (f", '?' the levels {UNTESTED}." if any(c.untested for c in an.conditions) else "."))


def _propagation_caption(an: Analysis) -> str:
    text = ("Signal propagation at initialization in the deepest networks: per-layer pre-activation std and "
            "weight-gradient norm on a fixed probe batch, mean over seeds")
    if plots.propagation_groups(an) == [plots.ALL_RUNS]:
        text += "; one line for all runs, since no setting that changes the network at initialization varies."
    else:
        text += (" and over the settings that cannot change a network at initialization (optimizer, learning rate, loss); "
                 "one line per setting that can (initializer, width, architecture).")
    if plots.meanfield_applies(an):
        text += " Dotted lines are the mean-field prediction from each layer's measured sigma_w^2 and sigma_b^2."
    return text


def _loss_caption(an: Analysis) -> str:
    from ponder.theory.logits import gradient_ratio

    return ("Left: the gradient at the true logit as a function of the predicted probability of the true class; at "
            f"p = 0.01 cross-entropy's is {gradient_ratio(0.01):.0f} times squared error's, at p = 0.5 "
            f"{gradient_ratio(0.5):.1f} times. Right: measured output-layer gradient norms during training.")


FIGURES: tuple[Figure, ...] = (
    Figure("learning_curves.png", plots.learning_curves,
           "Train and test accuracy per epoch at each arm's chosen setting (mean over seeds, 95% CI band)."),
    Figure("final_metric.png", plots.final_metric,
           "Final test metric per arm: mean with 95% CI; grey dots are individual seeds."),
    Figure("interaction.png", plots.interaction_heatmap, _interaction_caption, lambda an: bool(an.conditions)),
    Figure("propagation.png", plots.propagation, _propagation_caption, cost=4),
    Figure("train_test.png", plots.generalization_gap,
           "Final train accuracy (on the labels the model was trained on) and test accuracy per arm."),
    Figure("label_corruption.png", plots.label_corruption,
           "The label-corruption curve: final train accuracy on the labels trained on and test accuracy on true "
           "labels, against the fraction of corrupted training labels.", lambda an: "dataset.label_noise" in _factors(an)),
    Figure("loss_gradients.png", plots.loss_theory, _loss_caption, lambda an: "training.loss" in _factors(an)),
    Figure("sparsity.png", plots.sparsity,
           "Sparsity after training, measured on the probe batch without dropout: exact zeros come from the activation "
           "(ReLU's deterministic zeros); dropout adds, during training only, random zeros at its rate p.",
           lambda an: bool({"model.dropout", "model.activation"} & set(_factors(an)))),
    Figure("input_shift.png", plots.shift_curves,
           "Lab vs real world: test accuracy as the test inputs move away from the training distribution (models "
           "trained on true labels and original inputs; mean over seeds). The first point of each line is the clean "
           "test set."),
    Figure("loss_lines.png", plots.line_profiles,
           "Convexity probe: mean training loss along straight lines in weight space, divided by the loss at the higher "
           "end of each line. A loss convex in the weights stays under the straight chord between the ends; a bump above "
           "it, or a barrier between two solutions, shows it is not."),
    Figure("stability.png", plots.stability_boxes,
           "Stability: test accuracy over the random draws of the other hyperparameters (each point a draw's mean over "
           "seeds), per condition; boxes sorted by median."),
    Figure("critical_difference.png", plots.cd_diagram,
           "Critical-difference diagram: mean rank of each level over blocks (seeds x conditions); levels joined by a "
           "bar are not significantly different (Nemenyi)."),
    Figure("weight_histograms.png", plots.weight_histograms,
           "Weights at initialization of a 64 x 64 hidden layer for each initializer (one draw each; x axis in units of "
           "1/sqrt(fan_in)); a panel per activation too where data-dependent initializers could differ.",
           plots.initializer_varies, cost=3),
    Figure("phase.png", plots.measured_phase,
           "Mean-field phase diagram of the activation of the deepest dense networks, with each initializer's measured "
           "sigma_w^2 (mean over hidden layers and seeds) marked by whether it trained.", plots.initializer_varies, cost=3),
)


def draw_figures(an: Analysis, folder: Path, *, workers: int | None = None) -> list[dict[str, str]]:
    """Draw every figure of :data:`FIGURES` that applies to the study.

    Args:
        an: The study's analysis.
        folder: The study's report folder.
        workers: Processes drawing at once (default: one per CPU this process may use, at most 4, on
            Linux, where workers are forked with the analysis; 1 draws here, one after another).

    Returns:
        ``{"file", "caption"}`` per drawn figure, in page order.
    """
    todo = [fig for fig in FIGURES if fig.applies(an)]
    n = min(_default_workers() if workers is None else workers, len(todo))
    results = _draw_forked(todo, an, folder, n) if n > 1 else [_draw_one(fig, an, folder) for fig in todo]
    drawn = []
    for fig, (name, error) in zip(todo, results):
        if error is not None:  # a plugin component not loaded in this process: the figure says so
            drawn.append({"file": "", "caption": f"{fig.file} not drawn: {error} (load the study's plugins)"})
        elif name is not None:
            drawn.append({"file": name, "caption": fig.caption(an) if callable(fig.caption) else fig.caption})
    return drawn


def _draw_one(fig: Figure, an: Analysis, folder: Path) -> tuple[str | None, str | None]:
    """(file name or None when the study recorded nothing for it, error when a catalog entry is missing)."""
    from ponder.errors import CatalogError

    try:
        path = fig.draw(an, folder / fig.file)
    except CatalogError as exc:
        return None, str(exc)
    return (path.name if path is not None else None), None


def _default_workers() -> int:
    if sys.platform != "linux":  # forking is the cheap way to share the analysis; elsewhere draw in turn
        return 1
    return min(4, len(os.sched_getaffinity(0)))


_JOB: tuple[list[Figure], Analysis, Path] | None = None  # a worker's job, set by its initializer (one per process)


def _worker_start(todo: list[Figure], an: Analysis, folder: Path) -> None:
    """In a forked worker: keep the job (inherited from the parent at fork, never pickled) and, when torch is
    loaded, use one thread, as DataLoader workers do: a forked child must not use the parent's OpenMP pool."""
    import signal

    global _JOB
    _JOB = (todo, an, folder)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the workers)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _draw_at(i: int) -> tuple[str | None, str | None]:
    todo, an, folder = _JOB
    return _draw_one(todo[i], an, folder)


def _draw_forked(todo: list[Figure], an: Analysis, folder: Path, n: int) -> list[tuple[str | None, str | None]]:
    """Draw ``todo`` in ``n`` forked processes, the costliest first; the results in ``todo``'s order.

    Each figure is a separate task (matplotlib's drawing is Python-bound: threads would not overlap).
    The job reaches the workers as their initializer's arguments, which a fork passes by memory,
    so only indices, file names and errors cross between processes; a worker that dies raises
    ``BrokenProcessPool`` here instead of hanging.

    Ctrl-C (SIGINT) while they draw stops the workers and raises ``KeyboardInterrupt`` here once the
    pool has noticed: a KeyboardInterrupt raised at an arbitrary point of the pool's own queue code
    can leave a lock held and every process waiting on it (seen: a report interrupted for good).
    """
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    order = sorted(range(len(todo)), key=lambda i: -todo[i].cost)
    interrupted: list[int] = []

    def stop(signum, frame) -> None:  # runs in this thread between bytecodes: no exception raised mid-queue-call
        interrupted.append(signum)
        for child in multiprocessing.active_children():
            child.terminate()

    previous = signal.getsignal(signal.SIGINT)
    main = threading.current_thread() is threading.main_thread() and previous is not signal.SIG_IGN
    if main:  # (a process told to ignore Ctrl-C, e.g. started in the background by a shell, keeps ignoring it)
        signal.signal(signal.SIGINT, stop)
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start,
                                 initargs=(todo, an, folder)) as pool:
            done = dict(zip(order, pool.map(_draw_at, order)))
    except BrokenProcessPool:
        if not interrupted:
            raise
    finally:
        if main:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if interrupted:
        raise KeyboardInterrupt
    return [done[i] for i in range(len(todo))]
