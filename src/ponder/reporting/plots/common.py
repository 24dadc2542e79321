"""What every figure shares: the Agg backend, the palette, line styles, saving, and labels.

User text (arm names, factor levels, condition labels) reaches matplotlib only through
:func:`ponder.escape.mpl`, here re-exported as :func:`text`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "ponder"  # SVG element ids from a fixed salt: the same figure, the same bytes
import matplotlib.pyplot as plt  # noqa: E402

from ponder.escape import mpl as text  # noqa: E402
from ponder.study.keys import short_key  # noqa: E402  (re-exported for the plots)

__all__ = ["PALETTE", "STYLES", "plt", "save", "style", "text", "short_key", "level_label", "settings_label"]

# Okabe & Ito 2008, "Color universal design": distinguishable under common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
STYLES = ["-", "--", ":", "-."]


def save(fig, path: Path, dpi: int) -> Path:
    """Write the figure as PNG (screen) and SVG (vector, for print) side by side, then close it.

    Args:
        fig: The matplotlib figure.
        path: The PNG path; the SVG gets the same stem.
        dpi: Resolution of the PNG.

    Returns:
        ``path``.
    """
    fig.savefig(path, dpi=dpi)
    fig.savefig(Path(path).with_suffix(".svg"), metadata={"Date": None})  # no timestamp: the same figure, the same bytes
    plt.close(fig)
    return path


def style(i: int) -> dict:
    """Colour and line style of the ``i``-th line: the palette first, then the next dash pattern."""
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": STYLES[(i // len(PALETTE)) % len(STYLES)]}


def level_label(value: Any) -> str:
    """A factor level as the analysis writes it in condition labels (floats as ``%g``)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_label(levels: dict[str, Any], *, exclude: str = "") -> str:
    """``"activation=tanh, depth=12"``: every setting but ``exclude``, short keys, in order.

    Args:
        levels: Dotted key -> value.
        exclude: A key to leave out (the one the figure draws along).

    Returns:
        The label, or ``"all"`` when nothing is left.
    """
    return ", ".join(f"{short_key(k)}={level_label(v)}" for k, v in levels.items() if k != exclude) or "all"
