"""table.tex: the results table as a LaTeX tabular (booktabs), for papers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ponder.escape import latex

if TYPE_CHECKING:
    from ponder.analysis import Analysis

__all__ = ["latex_table"]


def latex_table(an: Analysis) -> str:
    """The results table as a LaTeX tabular (booktabs); arm names and the metric go through :func:`ponder.escape.latex`.

    Args:
        an: The study's analysis.

    Returns:
        The ``tabular`` environment, ready for ``\\input``.
    """
    scale = 100 if an.metric == "accuracy" else 1
    unit = " (\\%)" if an.metric == "accuracy" else ""
    lines = ["\\begin{tabular}{lrrrrr}", "\\toprule",
             f"arm & rank & test {latex(an.metric)}{unit} & 95\\% CI & diverged & did not train \\\\", "\\midrule"]
    for a in sorted(an.arms, key=lambda a: a.rank):
        lines.append(f"{latex(a.arm)} & {a.rank} & {scale * a.test.mean:.1f} & [{scale * a.test.lo:.1f}, "
                     f"{scale * a.test.hi:.1f}] & {a.n_diverged} & {a.n_chance} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
