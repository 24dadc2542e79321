"""Gradients of the classification losses at the logits, as a function of the predicted
probability of the true class (Golik, Doetsch & Ney 2013).

With C classes, true class y and the remaining mass 1 - p spread evenly over the others
(q = (1 - p) / (C - 1)):

- cross-entropy: dL/dz = p - onehot(y); |dL/dz_y| = 1 - p, large when the net is confidently wrong;
- squared error on softmax outputs, L = 1/2 sum_c (p_c - t_c)^2:
  dL/dz_k = p_k [(p_k - t_k) - sum_c (p_c - t_c) p_c], which vanishes as p -> 0 as well as p -> 1;
- squared error on raw outputs: dL/dz = z - onehot(y), linear in the logits and independent of p.

All values are computed, never tabulated.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logit_gradients", "gradient_ratio"]


def logit_gradients(p: np.ndarray, n_classes: int = 10) -> dict[str, np.ndarray]:
    """|dL/dz_y| and the full gradient norm ||dL/dz|| for cross-entropy and squared error on softmax, at p_y = p."""
    p = np.asarray(p, float)
    q = (1 - p) / (n_classes - 1)
    probs = np.stack([p] + [q] * (n_classes - 1), axis=-1)  # (..., C), class 0 is the true class
    target = np.zeros(n_classes)
    target[0] = 1.0
    ce = probs - target
    err = probs - target
    inner = (err * probs).sum(-1, keepdims=True)
    se = probs * (err - inner)
    return {"cross_entropy_true": np.abs(ce[..., 0]), "cross_entropy_norm": np.linalg.norm(ce, axis=-1),
            "squared_error_softmax_true": np.abs(se[..., 0]), "squared_error_softmax_norm": np.linalg.norm(se, axis=-1)}


def gradient_ratio(p: float, n_classes: int = 10) -> float:
    """How many times larger cross-entropy's true-logit gradient is than squared error's, at p_y = p."""
    g = logit_gradients(np.array([p]), n_classes)
    return float(g["cross_entropy_true"][0] / g["squared_error_softmax_true"][0])
