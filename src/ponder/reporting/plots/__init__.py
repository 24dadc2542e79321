"""Figures for reports (matplotlib, Agg backend, a colour-blind-safe palette), one module per theme.

- :mod:`.training`: learning curves, final metric, train vs test, label corruption, loss theory, sparsity;
- :mod:`.initialization`: signal propagation, weight histograms and the phase diagram, grouped by the
  settings that change a network at initialization;
- :mod:`.statistics`: interaction heatmap, critical-difference diagram, stability over draws;
- :mod:`.evaluations`: accuracy under input shift, loss along lines in weight space.

Every figure function takes the analysis and a PNG path, writes the PNG and an SVG beside it,
and returns the path, or None when the study has nothing for it to show.
"""

from ponder.reporting.plots.common import PALETTE, STYLES
from ponder.reporting.plots.evaluations import line_profiles, shift_curves
from ponder.reporting.plots.initialization import (ALL_RUNS, init_groups, initializer_varies, meanfield_applies,
                                                measured_phase, phase_diagram, propagation, propagation_groups,
                                                weight_histograms)
from ponder.reporting.plots.statistics import cd_diagram, interaction_heatmap, stability_boxes
from ponder.reporting.plots.training import (final_metric, generalization_gap, label_corruption, learning_curves,
                                          loss_theory, sparsity)

__all__ = ["PALETTE", "STYLES", "learning_curves", "final_metric", "generalization_gap", "label_corruption",
           "loss_theory", "sparsity", "propagation", "weight_histograms", "measured_phase", "phase_diagram",
           "ALL_RUNS", "init_groups", "initializer_varies", "propagation_groups", "meanfield_applies",
           "interaction_heatmap", "cd_diagram", "stability_boxes", "shift_curves", "line_profiles"]
