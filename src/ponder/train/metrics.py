"""Evaluation during training: every model's loss and accuracy on its train, validation and test examples.

Train and validation examples are each model's own (its split, its possibly noisy training
labels; validation scores against the clean labels). The test set is shared by all models.
Nothing here draws random numbers, so evaluating never changes a run's later numbers.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from ponder.catalog.models import Layer
from ponder.train.conv import conv_logits, is_conv
from ponder.train.data import PopulationData
from ponder.train.engine import Params, forward

__all__ = ["EVAL_CHUNK", "FORWARD_CHUNK", "SPLITS", "evaluate", "inplace_activation"]

EVAL_CHUNK = 2048  # examples per summed block of an evaluation (the loss is summed over blocks of this size)
FORWARD_CHUNK = 512  # examples per forward pass inside a block: activations that stay in cache (logits bit-identical)
SPLITS = ("train", "val", "test")  # in the order their columns appear in a record's epoch row


def _split_size(data: PopulationData, split: str, subset: int | None = None) -> int:
    n = {"train": data.train_idx.shape[1], "val": data.val_idx.shape[1], "test": len(data.y_test)}[split]
    return n if subset is None or split != "train" else min(n, subset)


def _chunks(data: PopulationData, split: str, m: int, subset: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Inputs ``(M, C, *sample)`` and labels ``(M, C)`` of one split, EVAL_CHUNK examples at a time."""
    n = _split_size(data, split, subset)
    for start in range(0, n, EVAL_CHUNK):
        sl = slice(start, min(n, start + EVAL_CHUNK))
        if split == "test":  # one shared test set, seen by every model
            yield data.x_test[sl].unsqueeze(0).expand(m, *data.x_test[sl].shape), data.y_test[sl].unsqueeze(0).expand(m, -1)
        elif split == "train":  # each model's examples with its own (possibly noisy) labels
            idx = data.train_idx[:, sl]  # (M, C)
            yield data.x_pool[idx], data.labels.gather(1, idx)
        else:  # validation scores against the clean labels
            idx = data.val_idx[:, sl]  # (M, C)
            yield data.x_pool[idx], data.clean[idx]


def _logits(params: Params, layers: tuple[Layer, ...], act: Callable, x: torch.Tensor,
            act_name: str | None = None) -> torch.Tensor:
    """The block's logits, FORWARD_CHUNK examples at a time: each example's logits are what one pass over the whole
    block gives (models and examples never mix), and the loss is still summed over the whole block as before.
    CNNs on the CPU (given ``act_name``) go through the forward pass they train with (:func:`conv_logits`)."""
    if act_name is not None and x.device.type == "cpu" and is_conv(layers):
        one = lambda xs: conv_logits(params, layers, xs, act=act, act_name=act_name)  # noqa: E731
    else:
        one = lambda xs: forward(params, layers, xs, act)  # noqa: E731
    n = x.shape[1]
    if n <= FORWARD_CHUNK:
        return one(x)
    return torch.cat([one(x[:, s:s + FORWARD_CHUNK]) for s in range(0, n, FORWARD_CHUNK)], 1)


@torch.no_grad()
def _loss_and_accuracy(params: Params, layers: tuple[Layer, ...], act: Callable, loss_fn: Callable,
                       data: PopulationData, split: str, subset: int | None = None,
                       act_name: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy ``(M,)`` of every model on one split; NaN for an empty split."""
    m, n = params[0][0].shape[0], _split_size(data, split, subset)
    if n == 0:
        return (torch.full((m,), float("nan")),) * 2
    tot_loss, tot_acc = 0.0, 0.0
    for x, y in _chunks(data, split, m, subset):
        logits = _logits(params, layers, act, x, act_name)  # (M, C, classes)
        tot_loss = tot_loss + loss_fn(logits, y).sum(1)
        tot_acc = tot_acc + (logits.argmax(-1) == y).sum(1).to(logits.dtype)
    return (tot_loss / n).cpu(), (tot_acc / n).cpu()


def evaluate(params: Params, layers: tuple[Layer, ...], act: Callable, loss_fn: Callable,
             data: PopulationData, *, train_subset: int | None = None, act_name: str | None = None) -> list[dict[str, float]]:
    """One row per model: ``train_loss, train_acc, val_loss, val_acc, test_loss, test_acc``.

    Args:
        params: the population's per-layer ``(W, b)``, model axis first.
        act: the activation; an in-place one may be given (:func:`inplace_activation`), since the
            evaluation keeps no activation.
        loss_fn: the loss the models currently train on (per example, ``(M, B)``).
        data: the population's data.
        train_subset: score the training split on its first ``train_subset`` examples (per model).
        act_name: the activation's catalog name; with it, CNNs on the CPU are scored by the forward pass
            they train with (:func:`ponder.train.conv.conv_logits`), else by grouped convolutions.
    """
    cols: dict[str, torch.Tensor] = {}
    for split in SPLITS:
        cols[f"{split}_loss"], cols[f"{split}_acc"] = _loss_and_accuracy(params, layers, act, loss_fn, data, split,
                                                                         train_subset, act_name)
    return [{k: float(v[m]) for k, v in cols.items()} for m in range(params[0][0].shape[0])]


_INPLACE = {"threshold": lambda h: h.clamp_min_(0.0), "tanh": torch.Tensor.tanh_, "sigmoid": torch.Tensor.sigmoid_}


def inplace_activation(name: str, act: Callable) -> Callable:
    """The built-in activation ``name`` computed in place when its kind has an in-place kernel with the same bits
    (ReLU as ``clamp_min_(0)``, which is what ``torch.relu`` runs; ``tanh_``; ``sigmoid_``), else ``act``: a
    plugin's function is always called as it is, whatever kind it declares."""
    from ponder import registry

    entry = registry.get("activation", name)
    return act if entry.plugin else _INPLACE.get(entry.facts.backward, act)
