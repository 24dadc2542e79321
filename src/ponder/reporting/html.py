"""Write a study's report folder: index.html, figures, summary.md and table.tex, then the reports index.

HTML comes only from the Jinja templates in ``templates/``, which autoescape every value; no
HTML is assembled in Python. Markdown and LaTeX writers escape through :mod:`ponder.escape`.
"""

from __future__ import annotations

import json
from pathlib import Path

from typing import TYPE_CHECKING

from ponder import __version__
from ponder.analysis import fingerprint as analysis_fingerprint
from ponder.analysis.answer import UNTESTED
from ponder.errors import PonderError
from ponder.reporting import memo
from ponder.reporting.index import write_index
from ponder.reporting.latex import latex_table
from ponder.reporting.markdown import summary_markdown
from ponder.reporting.ownership import check_report_target, claim
from ponder.reporting.render import render
from ponder.reporting.tables import pct, pval, shift_grid
from ponder.study.keys import varied_keys

if TYPE_CHECKING:
    from ponder.analysis import Analysis
    from ponder.store import Store

__all__ = ["write_report", "write_index", "summary_markdown", "latex_table", "study_html"]

def write_report(store: Store, name: str, out: str | Path = "reports", *, command: str | None = None,
                 force: bool = False, analysis: Analysis | None = None) -> Path:
    """Write ``out/<name>/`` (index.html, figures, summary.md, table.tex, analysis.json) and merge the study into
    ``out/index.html``.

    The folders are checked before any analysis: ponder writes only into folders it created or
    marked (see :mod:`ponder.reporting.ownership`) and that can be written.

    Args:
        store: The results store.
        name: The study's name in the store.
        out: The top-level reports folder.
        command: The command that reproduces the study, shown on the page; by default a
            ``ponder run`` line built from the study's source.
        force: Write into a non-empty study folder or an ``out`` with an ``index.html`` that
            ponder did not write; their other files are left alone.
        analysis: The study's analysis when the caller already has it (not computed again).

    Returns:
        The path of the study's ``index.html``.

    Raises:
        PonderError: A target folder is not ponder's (and not ``force``) or cannot be written,
            or the study has no finished runs.
        NotFound: The study is not in the store.
    """
    out = Path(out)
    if Path(name).name != name or name in ("", ".", ".."):
        raise PonderError(f"study name {name!r} is not a folder name; report a study by its name in the store")
    folder = out / name
    check_report_target(out, folder, force=force)
    fingerprint = analysis_fingerprint(store, name)
    kept = _unchanged(folder, fingerprint)
    if kept is not None:  # nothing the report shows has changed since it was written
        stored = store.analysis(name)
        if not store.read_only and (stored is None or stored[0] != fingerprint):  # e.g. written from a read-only store
            store.save_analysis(name, fingerprint, {k: v for k, v in kept.items() if k not in ("fingerprint", "ponder")})
        write_index(out, entry={"name": name, "question": kept["question"], "answer": kept["headline"]}, force=force)
        return folder / "index.html"
    an, folklore, figures = _parts(store, name, folder, fingerprint, analysis)
    command = command or _default_command(an, store)
    payload = an.to_json()
    outputs = {"index.html": study_html(an, figures=figures, command=command, folklore=folklore),
               "summary.md": summary_markdown(an),
               "table.tex": latex_table(an),
               "analysis.json": json.dumps({**payload, "fingerprint": fingerprint, "ponder": __version__}, indent=2,
                                           allow_nan=False) + "\n"}
    for file, text in outputs.items():
        (folder / file).write_text(text, encoding="utf-8")
    if not store.read_only:  # the analysis is kept with the study
        store.save_analysis(name, fingerprint, payload)
    write_index(out, entry={"name": name, "question": an.study["question"], "answer": an.headline}, force=force)
    return folder / "index.html"


def _parts(store: Store, name: str, folder: Path, fingerprint: str, analysis: Analysis | None):
    """(analysis, folklore table, figures drawn into ``folder``): copied from what a report of the same study state
    kept (:mod:`ponder.reporting.memo`), else computed and kept. Claims ``folder`` before writing into it."""
    key = memo.memo_key(fingerprint)
    entry = memo.load(key)  # this study state reported before (into any folder): its analysis and figures
    if entry is not None:
        claim(folder, kind="study", study=name)
        try:
            figures = memo.restore_figures(entry, folder)
        except OSError:  # the entry went away meanwhile (pruned by another report): computed below
            pass
        else:
            return (analysis if analysis is not None else entry["analysis"]), entry["folklore"], figures
    from ponder.analysis import analyze  # the statistics and figure libraries load only when a report is made
    from ponder.reporting.figures import draw_figures

    an = analysis if analysis is not None else analyze(store, name)
    claim(folder, kind="study", study=name)
    folklore = _folklore(an)  # before the figures: it loads torch here, once, and the forked figure workers inherit it
    figures = draw_figures(an, folder)
    memo.save(key, an, folklore, figures, folder)
    return an, folklore, figures


def _unchanged(folder: Path, fingerprint: str) -> dict | None:
    """The written analysis when the folder's report was made by this ponder from the same runs, else None."""
    try:
        kept = json.loads((folder / "analysis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if kept.get("fingerprint") != fingerprint or kept.get("ponder") != __version__:
        return None
    return kept if (folder / "index.html").is_file() and (folder / "summary.md").is_file() else None


def fixed_settings(spec: dict) -> dict[str, dict]:
    """The dataset, model and training settings every run shares: the study file's values less the keys that a
    factor varies, or that are tuned or searched per arm (those are in the design table, not fixed)."""
    varied = varied_keys(spec.get("factors", {}))
    varied |= set(spec.get("tune", {})) | {k for k in spec.get("search", {}) if k not in ("draws", "seed")}
    return {section: {k: v for k, v in spec.get(section, {}).items() if f"{section}.{k}" not in varied}
            for section in ("dataset", "model", "training")}


def _default_command(an: Analysis, store: Store) -> str:
    import shlex

    source = an.study["spec"].get("source") or an.study["name"]
    return shlex.join(["ponder", "run", str(source), *(["--quick"] if an.study["quick"] else []), "--store", str(store.path)])


_COMPUTE = object()  # study_html's folklore when the caller has none: computed there


def study_html(an: Analysis, *, figures: list[dict[str, str]], command: str, folklore: dict | None | object = _COMPUTE
               ) -> str:
    """The study page.

    Args:
        an: The study's analysis.
        figures: ``{"file", "caption"}`` per figure, in page order.
        command: The command that reproduces the study.
        folklore: The near-zero folklore table (None: the study has none) when the caller has it, else computed here.

    Returns:
        The page's HTML.
    """
    fmt = pct if an.metric == "accuracy" else (lambda v: "–" if v != v else f"{v:.4f}")
    fmtd = (lambda v: "–" if v != v else f"{100 * v:+.1f} pts") if an.metric == "accuracy" else (lambda v: f"{v:+.4f}")
    envs = an.finals["env_json"].dropna()
    env = json.loads(envs.iloc[0]) if len(envs) else {}
    shift_cols, shift_rows = shift_grid(an)
    return render("study.html", fixed=fixed_settings(an.study["spec"]), untested=UNTESTED, shift_cols=shift_cols, shift_rows=shift_rows, nan=float("nan"), study=an.study,
                  spec=an.study["spec"], an=an, arms=sorted(an.arms, key=lambda a: a.rank), figures=figures, fmt=fmt,
                  fmtd=fmtd, pct=pct, p=pval, env=json.dumps(env), folklore=_folklore(an) if folklore is _COMPUTE else folklore, sigma=an.sigma_w2,
                  anchors=_anchors(an.study["name"]), command=command)


def _folklore(an: Analysis) -> dict | None:
    """The near-zero folklore table, for studies that compare initializers."""
    from ponder.reporting import plots

    if not plots.initializer_varies(an):
        return None
    import dataclasses

    from ponder.catalog.folklore import near_zero_table, verdict

    return {"verdict": verdict(), "rows": [dataclasses.asdict(row) for row in near_zero_table()]}  # plain data: kept
    # with the report (reporting.memo) and read back without loading the catalog (torch)


def _anchors(name: str) -> list[dict]:
    """Published findings to read the study against, from ``anchors.toml``."""
    import tomllib
    from importlib import resources

    data = tomllib.loads(resources.files("ponder.reporting").joinpath("anchors.toml").read_text(encoding="utf-8"))
    return data.get(name, [])
