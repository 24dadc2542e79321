"""summary.md: the answer and the results tables as Markdown.

Every user string (study name, question, answer, warnings, arm names, levels) goes through
:func:`ponder.escape.md` in text and :func:`ponder.escape.md_cell` in table cells, so it stays
on its own line and cannot forge markup, such as a second ``**Answer.**`` line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json

from ponder.analysis.answer import UNTESTED
from ponder.escape import md, md_cell
from ponder.reporting.tables import pct, pval, shift_grid
from ponder.study.keys import short_key

if TYPE_CHECKING:
    from ponder.analysis import Analysis

__all__ = ["summary_markdown"]


def _row(*cells: object) -> str:
    """One table row; the caller escapes user text, numbers pass through."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _header(*names: str) -> list[str]:
    return [_row(*names), "|" + "---|" * len(names)]


def summary_markdown(an: Analysis) -> str:
    """The answer and the results tables as Markdown.

    Args:
        an: The study's analysis.

    Returns:
        The Markdown document; its one line starting with ``**Answer.**`` holds the answer.
    """
    fmt = pct if an.metric == "accuracy" else (lambda v: f"{v:.4f}")
    lines = [f"# {md(an.study['name'])}", "", f"**Question.** {md(an.study['question'])}", "",
             f"**Headline.** {md(an.headline)}", "", f"**Answer.** {md(an.answer)}", ""]
    lines += [f"> warning: {md(w)}" for w in an.warnings] + ([""] if an.warnings else [])
    lines += _header("arm", "rank", "chosen", f"test {md_cell(an.metric)}", "95% CI", "runs", "diverged", "did not train")
    for a in sorted(an.arms, key=lambda a: a.rank):
        lines.append(_row(md_cell(a.arm), a.rank, md_cell(json.dumps(a.tuned)), fmt(a.test.mean),
                          f"{fmt(a.test.lo)} – {fmt(a.test.hi)}" if a.test.lo == a.test.lo else "–", a.n_runs, a.n_diverged, a.n_chance))
    lines += _interaction(an) + _comparisons(an) + _extra_markdown(an) + _ranking(an)
    return "\n".join(lines) + "\n"


def _interaction(an: Analysis) -> list[str]:
    """The focus factor's mean accuracy per condition, with the best and its ties marked."""
    if not an.conditions:
        return []
    lines = ["", f"## Interaction: {md(an.focus)} across conditions", "", md(an.interaction), ""]
    lines += _header(md_cell(short_key(an.focus)), *(md_cell(c.label) for c in an.conditions))
    for lvl in dict.fromkeys(k for c in an.conditions for k in c.levels):
        cells = [f"{pct(c.levels.get(lvl, float('nan')))} {md_cell(c.mark(lvl))}".rstrip() for c in an.conditions]
        lines.append(_row(md_cell(lvl), *cells))
    untested = f"; ?: {UNTESTED}" if any(c.untested for c in an.conditions) else ""
    return lines + ["", f"(best): highest mean; \\*: not significantly worse than the best in that column (seed-paired "
                        f"t-test, Holm-corrected within the column){untested}."]


def _comparisons(an: Analysis) -> list[str]:
    """Paired comparisons of every arm against the reference."""
    several = len(an.reference_arms) > 1
    where = ", within each condition of the other factors" if several else ""
    lines = ["", f"Paired comparisons against '{md(an.reference)}'{where} (Holm-corrected):", ""]
    lines += _header("arm", *(["against"] if several else []), "seeds", "difference", "t-test p", "Wilcoxon p", "Holm p",
                     "practical equivalence")
    for c in an.comparisons:
        d = f"{100 * c.diff:+.1f} pts" if an.metric == "accuracy" else f"{c.diff:+.4f}"
        rope = an.ropes.get(c.other)
        verdict = "–" if rope is None else f"{md_cell(rope.verdict)} (P = {max(rope.p_worse, rope.p_equal, rope.p_better):.2f})"
        lines.append(_row(md_cell(c.other), *([md_cell(c.ref)] if several else []), c.n, d, pval(c.t_p),
                          pval(c.wilcoxon_p), pval(c.p_holm), verdict))
    return lines


def _ranking(an: Analysis) -> list[str]:
    """Friedman's test, the mean ranks and the groups of practically equivalent levels."""
    r = an.ranking
    if r is None:
        return []
    lines = ["", f"Friedman over {r.n_blocks} blocks: p = {pval(r.p_value)}; Nemenyi critical difference {r.cd:.2f}.", ""]
    lines += _header("level", "mean rank")
    lines += [_row(md_cell(k), f"{v:.2f}") for k, v in sorted(r.mean_ranks.items(), key=lambda kv: kv[1])]
    if an.rope_groups:
        groups = "; ".join("\\[" + ", ".join(md(x) for x in g) + "\\]" for g in an.rope_groups)
        lines += ["", f"Practically equivalent groups (ROPE): {groups}"]
    return lines


def _extra_markdown(an: Analysis) -> list[str]:
    """Tables for epochs to fit, input shift, the convexity probe, loss schedules and stability."""
    lines: list[str] = []
    if len(an.fit):
        lines += ["", "Epochs to fit the training labels (train accuracy >= 99%):", ""]
        lines += _header("arm", "runs that fit", "median epoch")
        lines += [_row(md_cell(r.arm), f"{r.fitted} of {r.runs}",
                       "–" if r.median_epoch != r.median_epoch else f"{r.median_epoch:g}") for r in an.fit.itertuples()]
    if len(an.shift):
        cols, rows = shift_grid(an)
        lines += ["", "Test accuracy under input shift (mean over seeds):", ""]
        lines += _header("arm", "clean", *(f"{md_cell(k)} {l:g}" for k, l in cols))
        lines += [_row(md_cell(arm), pct(clean), *(pct(vals.get(c, float("nan"))) for c in cols)) for arm, vals, clean in rows]
    if len(an.convexity):
        lines += ["", "Convexity probe (loss along straight lines in weight space):", ""]
        lines += _header("arm", "lines under their chord", "monotone lines", "mean rise above chord", "pairs with a barrier",
                         "mean barrier")
        lines += [_row(md_cell(r.arm), f"{r.convex} of {r.lines}", f"{r.monotone} of {r.lines}", f"{100 * r.mean_gap:.2f}%",
                       f"{r.barriers} of {r.pairs}", f"{100 * r.mean_barrier:.2f}%") for r in an.convexity.itertuples()]
    for e in an.schedule:
        lines += ["", f"Fine-tuning '{md(e.schedule)}' vs '{md(e.base)}': {100 * e.diff:+.1f} points (95% CI {100 * e.lo:+.1f} "
                      f"to {100 * e.hi:+.1f}, {e.n} paired blocks, p = {pval(e.p)})."]
    if len(an.stability):
        lines += ["", "Stability over hyperparameter draws (each draw's mean over seeds):", ""]
        lines += _header("arm", "draws", "median", "interquartile range", "worst", "best", "draws that trained")
        lines += [_row(md_cell(r.arm), r.configs, pct(r.median), f"{pct(r.q25)} – {pct(r.q75)}", pct(r.worst), pct(r.best),
                       f"{r.trained} of {r.configs}") for r in an.stability.itertuples()]
    return lines
