"""Classification losses.

Every loss takes logits ``z`` of shape ``(..., C)`` and integer targets of shape ``(...)`` and
returns the loss per example, shape ``(...)``. The prediction is ``argmax z`` for all of them,
so accuracy is comparable across losses.

Softmax and log-softmax run over the classes on a copy laid out classes-first on the CPU
(:func:`over_classes`): PyTorch's CPU kernels along a short last axis (10 classes) are 3-7x
slower than along an inner axis, and a study of small MLPs spent 15% of its time there. The
two layouts round differently in a few elements, so the entries that use it are at version 2
(new run ids for the runs that use them).
"""

from __future__ import annotations

from ponder.lazy import F, torch  # torch loads on first use: the catalog registers without it
from ponder.registry import register

__all__ = ["over_classes"]


def over_classes(fn, z: torch.Tensor) -> torch.Tensor:
    """``fn(z, dim=-1)`` (``F.softmax`` or ``F.log_softmax``) for logits ``(..., C)``; on the CPU computed on a
    contiguous copy with the classes before the examples, whose kernel is several times faster for few classes."""
    if z.dim() < 2 or z.device.type != "cpu":
        return fn(z, dim=-1)
    return fn(z.transpose(-1, -2).contiguous(), dim=-2).transpose(-1, -2)


@register("loss", "cross_entropy", formula="-log softmax(z)_y",
          source="negative log-likelihood of a softmax output",
          cites="Bridle 1990; Golik, Doetsch & Ney 2013", version="2")
def cross_entropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(z) against the one-hot target: -log p_y.

    Gradient at the logits: p - onehot(y), which stays large when the net is confidently wrong.
    """
    return -torch.gather(over_classes(F.log_softmax, z), -1, y.unsqueeze(-1)).squeeze(-1)


@register("loss", "squared_error_softmax", formula="1/2 sum_c (softmax(z)_c - onehot(y)_c)^2",
          source="squared error on softmax probabilities",
          cites="Golik, Doetsch & Ney 2013", version="2")
def squared_error_softmax(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Half the squared Euclidean distance between softmax(z) and the one-hot target.

    Its gradient at the logits carries the softmax Jacobian, so it vanishes when p_y -> 0
    (confidently wrong) as well as when p_y -> 1.
    """
    p = over_classes(F.softmax, z)
    target = F.one_hot(y, z.shape[-1]).to(z.dtype)
    return 0.5 * ((p - target) ** 2).sum(-1)


@register("loss", "squared_error", formula="1/2 sum_c (z_c - onehot(y)_c)^2",
          source="Caffe EuclideanLoss on raw outputs (the 'Euclidean' loss)",
          cites="Jia et al. 2014 (Caffe, euclidean_loss_layer)")
def squared_error(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Half the squared Euclidean distance between the raw outputs z and the one-hot target.

    This is Caffe's EuclideanLoss per example (1/2 ||z - y||^2); the gradient at the logits
    is z - onehot(y), linear in the error.
    """
    target = F.one_hot(y, z.shape[-1]).to(z.dtype)
    return 0.5 * ((z - target) ** 2).sum(-1)
