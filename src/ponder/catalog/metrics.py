"""Metrics: what a study measures on each trained model, with their direction declared.

A metric maps a model's logits ``(N, C)`` and the true labels ``(N,)`` to one number. ``direction``
says which way is better (``max`` for accuracy, ``min`` for loss and calibration error); it is
declared, never guessed from the name. ``accuracy`` and ``loss`` are measured every epoch by the
training loop; the others are measured on the validation and test sets of each trained model
(validation to choose the tuned setting, test for the answer).
"""

from __future__ import annotations

import math

from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.registry import register

__all__ = ["ECE_BINS", "expected_calibration_error"]

ECE_BINS = 15  # equal-width confidence bins, as in Guo et al. 2017


@register("metric", "accuracy", formula="mean(argmax logits == y)", direction="max", bounds=(0.0, 1.0),
          source="fraction of correct predictions", cites="(standard)")
def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose highest logit is the true class."""
    return float((logits.argmax(-1) == y).double().mean())


@register("metric", "loss", formula="the study's training loss on the split", direction="min", bounds=(0.0, math.inf),
          source="the loss the model trains on", cites="(standard)")
def loss(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Cross-entropy of the softmax of the logits (the training loss itself is logged every epoch)."""
    return float(torch.nn.functional.cross_entropy(logits.double(), y))


@register("metric", "ece", formula="sum_b |B_b|/N |acc(B_b) - conf(B_b)|, 15 equal-width confidence bins",
          direction="min", bounds=(0.0, 1.0), source="expected calibration error of the softmax confidence",
          cites="Naeini, Cooper & Hauskrecht 2015; Guo, Pleiss, Sun & Weinberger 2017")
def expected_calibration_error(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Expected calibration error: the gap between confidence (max softmax) and accuracy, averaged over
    15 equal-width confidence bins weighted by their share of examples."""
    p = torch.softmax(logits.double(), dim=-1)
    conf, pred = p.max(-1)
    correct = (pred == y).double()
    bins = torch.clamp((conf * ECE_BINS).long(), max=ECE_BINS - 1)
    total = torch.zeros((), dtype=torch.float64)
    for b in range(ECE_BINS):
        sel = bins == b
        if bool(sel.any()):
            total += sel.double().mean() * (correct[sel].mean() - conf[sel].mean()).abs()
    return float(total)


def _class_accuracies(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    pred = logits.argmax(-1)
    classes = torch.unique(y)
    return torch.stack([(pred[y == c] == c).double().mean() for c in classes])


@register("metric", "balanced_accuracy", formula="mean over classes c of acc(y = c)", direction="max",
          bounds=(0.0, 1.0),
          source="per-class accuracy, averaged over the classes present", cites="Brodersen et al. 2010")
def balanced_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Per-class accuracy averaged over the classes present: every class counts the same."""
    return float(_class_accuracies(logits, y).mean())


@register("metric", "worst_class_accuracy", formula="min over classes c of acc(y = c)", direction="max",
          bounds=(0.0, 1.0),
          source="per-class accuracy, its minimum", cites="Sagawa et al. 2020 (worst-group accuracy)")
def worst_class_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The accuracy of the class the model gets most wrong."""
    return float(_class_accuracies(logits, y).min())
