"""The classic pipeline the seed contrasts with deep networks: fixed features and a linear model.

- ``hog_svm``: histograms of oriented gradients (scikit-image's ``hog``) and a linear support
  vector machine (scikit-learn's ``LinearSVC``, one-vs-rest, C = 1). Images are described
  directly; a 1-D signal is first drawn as a line plot (a binary image, one column per sample),
  so the orientations HOG histograms are the slopes of the curve.
- ``logreg``: multinomial logistic regression on the raw, standardized inputs (scikit-learn's
  ``LogisticRegression``, L2, C = 1).

They train on exactly the examples and (possibly corrupted) labels of the neural runs with the
same seed and are evaluated on the same validation and test sets, so they are arms like any
other. They have no epochs: one row at the final epoch records train, validation and test
accuracy (and log loss for ``logreg``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ponder.train.data import PopulationData

__all__ = ["features", "fit_predict", "render_signals"]

PLOT_HEIGHT = 32  # rows of the image a 1-D signal is drawn into


def render_signals(x: np.ndarray, lo: float, hi: float, height: int = PLOT_HEIGHT) -> np.ndarray:
    """Draw each signal of ``x`` (N, L) as a binary line plot (N, height, L); values lo..hi span the rows."""
    from skimage.draw import line

    n, length = x.shape
    rows = np.clip(np.round((hi - x) / max(hi - lo, 1e-12) * (height - 1)), 0, height - 1).astype(np.int64)
    out = np.zeros((n, height, length), dtype=np.float32)
    for i in range(n):
        for j in range(length - 1):
            rr, cc = line(rows[i, j], j, rows[i, j + 1], j + 1)
            out[i, rr, cc] = 1.0
    return out


def features(arch: str, x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The fixed features of ``arch`` for inputs ``x`` (N, *sample); ``ref`` (the training pool) fixes the scale."""
    if arch == "logreg":
        flat, rflat = x.reshape(len(x), -1), ref.reshape(len(ref), -1)
        mu, sd = rflat.mean(0), rflat.std(0)
        return (flat - mu) / np.where(sd > 0, sd, 1.0)
    from skimage.feature import hog

    if x.ndim == 3:  # (N, C, L) signals: one plot per channel, stacked vertically
        lo, hi = np.percentile(ref, 1), np.percentile(ref, 99)
        imgs = np.concatenate([render_signals(x[:, c], lo, hi) for c in range(x.shape[1])], axis=1)
        channel_axis = None
    elif x.ndim == 4:  # (N, C, H, W) images
        imgs = x if x.shape[1] > 1 else x[:, 0]
        channel_axis = 0 if x.shape[1] > 1 else None
    else:
        from ponder.errors import SpecError

        raise SpecError(f"model.arch = 'hog_svm' needs signals or images, these inputs have shape {tuple(x.shape[1:])}; "
                        "use 'logreg' or an MLP")
    side = min(imgs.shape[-2], imgs.shape[-1])
    cell = max(2, side // 4)
    return np.stack([hog(im, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                         channel_axis=channel_axis) for im in imgs]).astype(np.float64)


def fit_predict(arch: str, data: PopulationData, seeds: list[int], *, feature_fn: Callable[[np.ndarray], np.ndarray]):
    """Fit one model per row of ``data`` and return (epoch metrics per model, predict).

    ``predict(x)`` maps inputs (N, *sample) to predicted labels (M, N), for shift evaluation.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.svm import LinearSVC

    f_pool = feature_fn(data.x_pool.cpu().numpy())
    f_test = feature_fn(data.x_test.cpu().numpy())
    labels, clean = data.labels.cpu().numpy(), data.clean.cpu().numpy()
    y_test = data.y_test.cpu().numpy()
    classes = np.arange(data.n_classes)
    fitted, metrics = [], []
    for m, seed in enumerate(seeds):
        tr, va = data.train_idx[m].cpu().numpy(), data.val_idx[m].cpu().numpy()
        est = (LinearSVC(C=1.0, random_state=seed, max_iter=2000) if arch == "hog_svm"
               else LogisticRegression(C=1.0, max_iter=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # random labels cannot be fit; that is the finding
            est.fit(f_pool[tr], labels[m, tr])
        row = {}
        for split, f, y in (("train", f_pool[tr], labels[m, tr]), ("val", f_pool[va], clean[va]), ("test", f_test, y_test)):
            if len(y) == 0:
                row[f"{split}_acc"] = row[f"{split}_loss"] = float("nan")
                continue
            row[f"{split}_acc"] = float(np.mean(est.predict(f) == y))
            if arch == "logreg":
                proba = np.zeros((len(y), len(classes)))
                proba[:, est.classes_] = est.predict_proba(f)
                proba = np.clip(proba, 1e-12, 1)
                row[f"{split}_loss"] = float(log_loss(y, proba / proba.sum(1, keepdims=True), labels=classes))
            else:
                row[f"{split}_loss"] = float("nan")  # a linear SVM has no probabilistic loss
        fitted.append(est)
        metrics.append(row)

    def predict(x: torch.Tensor) -> torch.Tensor:
        f = feature_fn(x.cpu().numpy())
        return torch.as_tensor(np.stack([est.predict(f) for est in fitted]))

    return metrics, predict
