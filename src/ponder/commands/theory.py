"""``ponder theory``: mean field, the edge of chaos, phase diagrams and the near-zero folklore."""

from __future__ import annotations

import json

import typer

from ponder.commands import checks
from ponder.commands.console import TABLE_FORMATS, emit, say
from ponder.errors import PonderError

__all__ = ["meanfield", "critical", "phase", "folklore", "SIGMA_MAX"]

# sigma_w^2 and sigma_b^2 are refused outside (0, SIGMA_MAX] and [0, SIGMA_MAX]: the mean-field solver
# is exercised up to there (critical_sigma_w2 searches sigma_w^2 in [1e-3, 1000]); larger values
# overflow it, and sigma_w^2 = 0 has no depth scales.
SIGMA_MAX = 1000.0
ACTIVATION = typer.Option("tanh", "--activation", help="Activation name (ponder list activations).")


def _sigma_w2(value: float) -> None:
    checks.number("--sigma-w2", value, above=0.0, hi=SIGMA_MAX)


def _sigma_b2(value: float) -> None:
    checks.number("--sigma-b2", value, lo=0.0, hi=SIGMA_MAX)


def meanfield(activation: str = ACTIVATION,
              sigma_w2: float = typer.Option(1.0, "--sigma-w2", help=f"Weight variance times fan_in, in (0, {SIGMA_MAX:g}]."),
              sigma_b2: float = typer.Option(0.0, "--sigma-b2", help=f"Bias variance, in [0, {SIGMA_MAX:g}]."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """q*, chi_1, depth scales and phase for one (activation, sigma_w^2, sigma_b^2)."""
    _sigma_w2(sigma_w2)
    _sigma_b2(sigma_b2)
    from dataclasses import asdict

    from ponder.theory.meanfield import meanfield as solve

    r = solve(activation, sigma_w2, sigma_b2)
    row = {**asdict(r), "phase": r.phase, "trainable_depth": r.trainable_depth}
    if as_json:
        print(json.dumps(row))
    else:
        emit([{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}], "auto")


def critical(activation: str = ACTIVATION,
             sigma_b2: float = typer.Option(0.0, "--sigma-b2", help=f"Bias variance, in [0, {SIGMA_MAX:g}].")) -> None:
    """The sigma_w^2 that puts an activation at the edge of chaos (chi_1 = 1)."""
    _sigma_b2(sigma_b2)
    from ponder.theory.meanfield import critical_sigma_w2

    say(f"{activation}: critical sigma_w^2 = {critical_sigma_w2(activation, sigma_b2):.6g} at sigma_b^2 = {sigma_b2:g}")


def phase(activation: str = ACTIVATION,
          sigma_b2: float = typer.Option(0.05, "--sigma-b2", help=f"sigma_b^2 of the depth-scale panel, in [0, {SIGMA_MAX:g}]."),
          path: str = typer.Option("phase.png", "--out", help="PNG file to write (and an SVG beside it); its folder must exist."),
          force: bool = typer.Option(False, "--force", help="Let --out (and the SVG beside it) replace existing files.")) -> None:
    """Draw the order/chaos phase diagram with the trainable-depth line 6 xi_c."""
    _sigma_b2(sigma_b2)
    if not path.lower().endswith(".png"):
        raise PonderError(f"--out {path!r} must name a .png file (an .svg is written beside it)")
    checks.file_target("--out", path, force=force)
    checks.file_target("--out", path[:-4] + ".svg", force=force)  # the SVG beside it is written too
    from pathlib import Path

    from ponder import registry
    from ponder.reporting.plots import phase_diagram

    registry.get("activation", activation)
    say(f"phase diagram: {phase_diagram(activation, Path(path), sigma_b2=sigma_b2)}")


def folklore(k: float = typer.Option(0.25, "--k", help="Within k standard deviations of 0 (more than 0)."),
             fmt: str = typer.Option("auto", "--format", help="auto, table, tsv or json.")) -> None:
    """Test "uniform random numbers put more weights near 0" for every initializer."""
    checks.number("--k", k, above=0.0)
    checks.choice("--format", fmt, TABLE_FORMATS)
    from ponder.catalog.folklore import near_zero_table, verdict

    rows = [{"initializer": r.name, "law": r.law, "std": f"{r.std:.4g}", "sampled": f"{100 * r.sampled:.2f}%",
             "exact": "-" if r.exact is None else f"{100 * r.exact:.2f}%"} for r in near_zero_table(k)]
    emit(rows, fmt)
    if fmt != "json":
        say(verdict(k))
