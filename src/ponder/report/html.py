"""Write a study's report folder and the index of all reported studies."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from ponder.analysis import Analysis, analyze
from ponder.report.plots import (cd_diagram, final_metric, generalization_gap, interaction_heatmap, learning_curves,
                                 label_corruption, line_profiles, loss_theory, measured_phase, propagation, shift_curves,
                                 sparsity, stability_boxes, weight_histograms)
from ponder.store import Store

__all__ = ["write_report", "write_index", "summary_markdown"]

_ENV = Environment(loader=PackageLoader("ponder.report", "templates"), autoescape=select_autoescape(["html"]))


def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f}%"


def _p(v: float) -> str:
    return "–" if v != v else (f"{v:.2g}" if v >= 1e-4 else "<1e-4")


def summary_markdown(an: Analysis) -> str:
    """The answer and the results table as Markdown."""
    fmt = _pct if an.metric == "accuracy" else (lambda v: f"{v:.4f}")
    lines = [f"# {an.study['name']}", "", f"**Question.** {an.study['question']}", "", f"**Answer.** {an.answer}", ""]
    lines += [f"> warning: {w}" for w in an.warnings] + ([""] if an.warnings else [])
    lines += [f"| arm | rank | chosen | test {an.metric} | 95% CI | runs | diverged | did not train |",
              "|---|---|---|---|---|---|---|---|"]
    for a in sorted(an.arms, key=lambda a: a.rank):
        lines.append(f"| {a.arm} | {a.rank} | {json.dumps(a.tuned)} | {fmt(a.test.mean)} | {fmt(a.test.lo)} – {fmt(a.test.hi)} | "
                     f"{a.n_runs} | {a.n_diverged} | {a.n_chance} |")
    if an.conditions:
        lines += ["", f"## Interaction: {an.focus} across conditions", "", an.interaction, "",
                  "| " + an.focus.split(".", 1)[1] + " | " + " | ".join(c.label for c in an.conditions) + " |",
                  "|---|" + "---|" * len(an.conditions)]
        for lvl in dict.fromkeys(k for c in an.conditions for k in c.levels):
            cells = []
            for c in an.conditions:
                v = c.levels.get(lvl, float("nan"))
                cells.append(_pct(v) + (" (best)" if lvl == c.best else " *" if lvl in c.tied else ""))
            lines.append(f"| {lvl} | " + " | ".join(cells) + " |")
    lines += ["", f"Paired comparisons against '{an.reference}' (Holm-corrected):", "",
              "| arm | seeds | difference | t-test p | Wilcoxon p | Holm p | practical equivalence |", "|---|---|---|---|---|---|---|"]
    for c in an.comparisons:
        d = f"{100 * c.diff:+.1f} pts" if an.metric == "accuracy" else f"{c.diff:+.4f}"
        rope = an.ropes.get(c.other)
        verdict = "–" if rope is None else f"{rope.verdict} (P = {max(rope.p_worse, rope.p_equal, rope.p_better):.2f})"
        lines.append(f"| {c.other} | {c.n} | {d} | {_p(c.t_p)} | {_p(c.wilcoxon_p)} | {_p(c.p_holm)} | {verdict} |")
    lines += _extra_markdown(an)
    if an.ranking is not None:
        r = an.ranking
        lines += ["", f"Friedman over {r.n_blocks} blocks: p = {_p(r.p_value)}; Nemenyi critical difference {r.cd:.2f}.", "",
                  "| level | mean rank |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in sorted(r.mean_ranks.items(), key=lambda kv: kv[1])]
        if an.rope_groups:
            lines += ["", "Practically equivalent groups (ROPE): " + "; ".join("[" + ", ".join(g) + "]" for g in an.rope_groups)]
    return "\n".join(lines) + "\n"


def _shift_grid(an: Analysis) -> tuple[list, list]:
    """The input-shift table: columns (kind, level), rows (arm, {(kind, level): mean accuracy}, clean accuracy)."""
    if not len(an.shift):
        return [], []
    cols = list(dict.fromkeys(zip(an.shift["kind"], an.shift["level"])))
    rows = [(arm, {(k, l): m for k, l, m in zip(g["kind"], g["level"], g["mean"])}, g["clean"].iloc[0])
            for arm, g in an.shift.groupby("arm", sort=False)]
    return cols, rows


def _extra_markdown(an: Analysis) -> list[str]:
    """Tables for epochs to fit, input shift, the convexity probe, loss schedules and stability."""
    lines: list[str] = []
    if len(an.fit):
        lines += ["", "Epochs to fit the training labels (train accuracy >= 99%):", "",
                  "| arm | runs that fit | median epoch |", "|---|---|---|"]
        lines += [f"| {r.arm} | {r.fitted} of {r.runs} | {'–' if r.median_epoch != r.median_epoch else f'{r.median_epoch:g}'} |"
                  for r in an.fit.itertuples()]
    if len(an.shift):
        cols, rows = _shift_grid(an)
        lines += ["", "Test accuracy under input shift (mean over seeds):", "",
                  "| arm | clean | " + " | ".join(f"{k} {l:g}" for k, l in cols) + " |", "|---|---|" + "---|" * len(cols)]
        for arm, vals, clean in rows:
            lines.append(f"| {arm} | {_pct(clean)} | " + " | ".join(_pct(vals.get(c, float('nan'))) for c in cols) + " |")
    if len(an.convexity):
        lines += ["", "Convexity probe (loss along straight lines in weight space):", "",
                  "| arm | lines under their chord | monotone lines | mean rise above chord | pairs with a barrier | mean barrier |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r.arm} | {r.convex} of {r.lines} | {r.monotone} of {r.lines} | {100 * r.mean_gap:.2f}% | "
                  f"{r.barriers} of {r.pairs} | {100 * r.mean_barrier:.2f}% |" for r in an.convexity.itertuples()]
    for e in an.schedule:
        lines += ["", f"Fine-tuning '{e.schedule}' vs '{e.base}': {100 * e.diff:+.1f} points (95% CI {100 * e.lo:+.1f} to "
                      f"{100 * e.hi:+.1f}, {e.n} paired blocks, p = {_p(e.p)})."]
    if len(an.stability):
        lines += ["", "Stability over hyperparameter draws (each draw's mean over seeds):", "",
                  "| arm | draws | median | interquartile range | worst | best | draws that trained |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.arm} | {r.configs} | {_pct(r.median)} | {_pct(r.q25)} – {_pct(r.q75)} | {_pct(r.worst)} | {_pct(r.best)} | "
                  f"{r.trained} of {r.configs} |" for r in an.stability.itertuples()]
    return lines


def write_report(store: Store, name: str, out: str | Path = "reports", *, command: str | None = None) -> Path:
    """Write ``out/<name>/index.html``, figures and ``summary.md``; return the index path."""
    an = analyze(store, name)
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    figures = [
        {"file": learning_curves(an, folder / "learning_curves.png").name,
         "caption": "Train and test accuracy per epoch at each arm's chosen setting (mean over seeds, 95% CI band)."},
        {"file": final_metric(an, folder / "final_metric.png").name,
         "caption": "Final test metric per arm: mean with 95% CI; grey dots are individual seeds."},
    ]
    if an.conditions:
        figures.append({"file": interaction_heatmap(an, folder / "interaction.png").name,
                        "caption": f"Interaction: mean test accuracy of each {an.focus.split('.', 1)[1]} (rows) in each condition "
                                   "of the other factors (columns); '(best)' marks the best level, '*' the levels tied with it."})
        prop = propagation(an, folder / "propagation.png")
        if prop is not None:
            figures.append({"file": prop.name, "caption": "Signal propagation at initialization in the deepest networks: per-layer "
                            "pre-activation std and weight-gradient norm on a fixed probe batch (mean over seeds); dashed lines "
                            "are the mean-field prediction from each layer's measured sigma_w^2 and sigma_b^2."})
    factors = an.study["spec"].get("factors", {})
    figures.append({"file": generalization_gap(an, folder / "train_test.png").name,
                    "caption": "Final train accuracy (on the labels the model was trained on) and test accuracy per arm."})
    lc = label_corruption(an, folder / "label_corruption.png") if "dataset.label_noise" in factors else None
    if lc is not None:
        figures.append({"file": lc.name, "caption": "The label-corruption curve: final train accuracy on the labels trained on "
                        "and test accuracy on true labels, against the fraction of corrupted training labels."})
    if "training.loss" in factors:
        from ponder.theory.logits import gradient_ratio

        figures.append({"file": loss_theory(an, folder / "loss_gradients.png").name,
                        "caption": "Left: the gradient at the true logit as a function of the predicted probability of the "
                                   f"true class; at p = 0.01 cross-entropy's is {gradient_ratio(0.01):.0f} times squared "
                                   f"error's, at p = 0.5 {gradient_ratio(0.5):.1f} times. Right: measured output-layer "
                                   "gradient norms during training."})
    if "model.dropout" in factors or "model.activation" in factors:
        sp_fig = sparsity(an, folder / "sparsity.png")
        if sp_fig is not None:
            figures.append({"file": sp_fig.name, "caption": "Sparsity after training, measured on the probe batch without "
                            "dropout: exact zeros come from the activation (ReLU's deterministic zeros); dropout adds, "
                            "during training only, random zeros at its rate p."})
    sh = shift_curves(an, folder / "input_shift.png")
    if sh is not None:
        figures.append({"file": sh.name, "caption": "Lab vs real world: test accuracy as the test inputs move away from the "
                        "training distribution (models trained on true labels and original inputs; mean over seeds). "
                        "The first point of each line is the clean test set."})
    lp = line_profiles(an, folder / "loss_lines.png")
    if lp is not None:
        figures.append({"file": lp.name, "caption": "Convexity probe: mean training loss along straight lines in weight "
                        "space, divided by the loss at the higher end of each line. A loss convex in the weights stays "
                        "under the straight chord between the ends; a bump above it, or a barrier between two solutions, "
                        "shows it is not."})
    sb = stability_boxes(an, folder / "stability.png")
    if sb is not None:
        figures.append({"file": sb.name, "caption": "Stability: test accuracy over the random draws of the other "
                        "hyperparameters (each point a draw's mean over seeds), per condition; boxes sorted by median."})
    cd = cd_diagram(an, folder / "critical_difference.png")
    if cd is not None:
        figures.append({"file": cd.name, "caption": "Critical-difference diagram: mean rank of each level over blocks "
                        "(seeds x conditions); levels joined by a bar are not significantly different (Nemenyi)."})
    folklore = None
    if an.focus == "model.initializer" or list(an.study["spec"].get("factors", {}))[:1] == ["model.initializer"]:
        from ponder.theory.folklore import near_zero_table, verdict

        folklore = {"verdict": verdict(), "rows": near_zero_table()}
    if an.focus == "model.initializer":
        hist = weight_histograms(an, folder / "weight_histograms.png")
        figures.append({"file": hist.name, "caption": "Weights at initialization of a 64 x 64 hidden layer for each initializer "
                        "(one draw each; x axis in units of 1/sqrt(fan_in); the activation of the first condition)."})
        phase = measured_phase(an, folder / "phase.png")
        if phase is not None:
            figures.append({"file": phase.name, "caption": "Mean-field phase diagram of the activation, with each "
                            "initializer's measured sigma_w^2 at the deepest depth marked by whether it trained."})
    anchors = _anchors(an.study["name"])
    fmt = _pct if an.metric == "accuracy" else (lambda v: "–" if v != v else f"{v:.4f}")
    fmtd = (lambda v: "–" if v != v else f"{100 * v:+.1f} pts") if an.metric == "accuracy" else (lambda v: f"{v:+.4f}")
    envs = an.finals["env_json"].dropna()
    env = json.loads(envs.iloc[0]) if len(envs) else {}
    shift_cols, shift_rows = _shift_grid(an)
    html = _ENV.get_template("study.html").render(shift_cols=shift_cols, shift_rows=shift_rows, nan=float("nan"),
        study=an.study, spec=an.study["spec"], an=an, arms=sorted(an.arms, key=lambda a: a.rank), figures=figures,
        fmt=fmt, fmtd=fmtd, pct=_pct, p=_p, env=json.dumps(env), folklore=folklore, sigma=an.sigma_w2, anchors=anchors,
        command=command or f"ponder run {an.study['spec'].get('source') or name}{' --quick' if an.study['quick'] else ''} --store {store.path}")
    (folder / "index.html").write_text(html, encoding="utf-8")
    (folder / "summary.md").write_text(summary_markdown(an), encoding="utf-8")
    (folder / "table.tex").write_text(latex_table(an), encoding="utf-8")
    write_index(store, out)
    return folder / "index.html"


def _anchors(name: str) -> list[dict]:
    import tomllib
    from importlib import resources

    data = tomllib.loads(resources.files("ponder.report").joinpath("anchors.toml").read_text(encoding="utf-8"))
    return data.get(name, [])


def latex_table(an: Analysis) -> str:
    """The results table as a LaTeX tabular (booktabs), for papers."""
    def esc(t: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                     ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
            t = t.replace(a, b)
        return t

    scale = 100 if an.metric == "accuracy" else 1
    unit = " (\\%)" if an.metric == "accuracy" else ""
    lines = ["\\begin{tabular}{lrrrrr}", "\\toprule",
             f"arm & rank & test {esc(an.metric)}{unit} & 95\\% CI & diverged & did not train \\\\", "\\midrule"]
    for a in sorted(an.arms, key=lambda a: a.rank):
        lines.append(f"{esc(a.arm)} & {a.rank} & {scale * a.test.mean:.1f} & [{scale * a.test.lo:.1f}, {scale * a.test.hi:.1f}] & "
                     f"{a.n_diverged} & {a.n_chance} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_index(store: Store, out: str | Path = "reports") -> Path:
    """``out/index.html`` linking every study of the store that has a report folder."""
    rows = []
    for name in store.studies()["name"]:
        if (Path(out) / name / "index.html").exists():
            summary = (Path(out) / name / "summary.md").read_text(encoding="utf-8")
            answer = next((l.removeprefix("**Answer.** ") for l in summary.splitlines() if l.startswith("**Answer.**")), "")
            rows.append({"name": name, "href": f"{name}/index.html", "question": store.study(name)["question"], "answer": answer})
    path = Path(out) / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_ENV.get_template("index.html").render(studies=rows), encoding="utf-8")
    return path
