"""The report's figures as data: which file, which function draws it, when it applies, its caption.

:data:`FIGURES` lists every figure in page order; :func:`draw_figures` draws those that apply to
a study. A figure function may still return None when the study recorded nothing for it (no
layer statistics, no evaluations); the figure is then left out of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ponder.analysis import Analysis
from ponder.reporting import plots

__all__ = ["Figure", "FIGURES", "draw_figures"]


@dataclass(frozen=True)
class Figure:
    """One figure of the report.

    Attributes:
        file: PNG file name inside the study folder (an SVG goes beside it).
        draw: ``draw(an, path) -> path | None``.
        caption: The caption, or a function of the analysis that writes it.
        applies: Whether the figure is drawn for this study.
    """

    file: str
    draw: Callable[[Analysis, Path], Path | None]
    caption: str | Callable[[Analysis], str]
    applies: Callable[[Analysis], bool] = lambda an: True


def _factors(an: Analysis) -> dict:
    return an.study["spec"].get("factors", {})


def _interaction_caption(an: Analysis) -> str:
    return (f"Interaction: mean test accuracy of each {an.focus.split('.', 1)[-1]} (rows) in each condition of the other "
            "factors (columns); '(best)' marks the best level, '*' the levels tied with it.")


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
    Figure("propagation.png", plots.propagation, _propagation_caption),
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
           plots.initializer_varies),
    Figure("phase.png", plots.measured_phase,
           "Mean-field phase diagram of the activation of the deepest dense networks, with each initializer's measured "
           "sigma_w^2 (mean over hidden layers and seeds) marked by whether it trained.", plots.initializer_varies),
)


def draw_figures(an: Analysis, folder: Path) -> list[dict[str, str]]:
    """Draw every figure of :data:`FIGURES` that applies to the study.

    Args:
        an: The study's analysis.
        folder: The study's report folder.

    Returns:
        ``{"file", "caption"}`` per drawn figure, in page order.
    """
    from ponder.errors import CatalogError

    drawn = []
    for fig in FIGURES:
        try:
            path = fig.draw(an, folder / fig.file) if fig.applies(an) else None
        except CatalogError as exc:  # a plugin component not loaded in this process: the figure says so
            drawn.append({"file": "", "caption": f"{fig.file} not drawn: {exc} (load the study's plugins)"})
            continue
        if path is not None:
            caption = fig.caption(an) if callable(fig.caption) else fig.caption
            drawn.append({"file": path.name, "caption": caption})
    return drawn
