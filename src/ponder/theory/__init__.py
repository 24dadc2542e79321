"""Theory: what can be computed without training (mean-field signal propagation)."""

from ponder.theory.meanfield import MeanField, chi1, critical_sigma_w2, depth_scales, fixed_point_q, meanfield

__all__ = ["MeanField", "meanfield", "fixed_point_q", "chi1", "critical_sigma_w2", "depth_scales"]
