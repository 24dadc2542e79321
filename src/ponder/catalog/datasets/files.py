"""Loaders for local dataset files: MNIST IDX, CIFAR-10 binary batches and ``.npz``.

No loader ever unpickles; a missing, truncated or malformed file is refused with one sentence
naming the file and what was expected.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

from ponder.catalog.datasets.base import Pool
from ponder.errors import DataError
from ponder.registry import register

__all__ = ["read_idx", "read_cifar_batch", "read_npz_split"]

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_BYTES = 4 << 30  # 4 GiB: the most a dataset file may expand to in memory (checked before reading)


def _read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"dataset file {str(p)!r} does not exist")
    if p.stat().st_size > MAX_BYTES:
        raise DataError(f"dataset file {str(p)!r} is {p.stat().st_size:,} bytes, above the {MAX_BYTES:,} ponder reads")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
                raw = fh.read(MAX_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise DataError(f"dataset file {str(p)!r} is a damaged gzip file ({exc})") from None
        if len(raw) > MAX_BYTES:
            raise DataError(f"dataset file {str(p)!r} expands to more than {MAX_BYTES:,} bytes; ponder refuses it")
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Format: two zero bytes, a type byte, a dimension count, one big-endian uint32 per
    dimension, then the data in C order.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{str(path)!r} is not an IDX file (expected magic 0x00 0x00 <type> <ndim>)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{str(path)!r} is truncated: its header needs {header} bytes, the file has {len(raw)}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != need:
        raise DataError(f"{str(path)!r} has {len(raw)} bytes but its header {dims} needs {need}; the file is truncated or malformed")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a CIFAR-10 binary batch: records of 1 label byte and 3072 pixel bytes (3x32x32)."""
    raw = _read_bytes(path)
    rec = 1 + 3 * 32 * 32
    if len(raw) == 0 or len(raw) % rec:
        raise DataError(f"{str(path)!r} has {len(raw)} bytes, not a whole number of {rec}-byte CIFAR-10 records; the file is truncated or malformed")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, rec)
    labels = arr[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{str(path)!r} has labels above 9; it is not a CIFAR-10 batch")
    return arr[:, 1:].reshape(-1, 3, 32, 32), labels


def read_npz_split(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``x_train, y_train, x_test, y_test`` from an ``.npz`` without unpickling."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"dataset file {str(p)!r} does not exist")
    if not zipfile.is_zipfile(p):
        raise DataError(f"{str(p)!r} is not a readable npz file (not a zip archive)")
    _check_members(p)
    try:
        with np.load(p, allow_pickle=False) as data:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data.files]
            if missing:
                raise DataError(f"{str(p)!r} lacks the arrays {missing}; an npz dataset needs x_train, y_train, x_test, y_test")
            return {k: np.asarray(data[k]) for k in ("x_train", "y_train", "x_test", "y_test")}
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"{str(p)!r} holds object arrays, which ponder never unpickles ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError...
        raise DataError(f"{str(p)!r} is not a readable npz file ({type(exc).__name__})") from None


def _check_members(p: Path) -> None:
    """Refuse an archive whose members would expand beyond MAX_BYTES, before any is read."""
    try:
        with zipfile.ZipFile(p) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{str(p)!r} is not a readable npz file ({type(exc).__name__})") from None
    if total > MAX_BYTES:
        raise DataError(f"{str(p)!r} expands to {total:,} bytes, above the {MAX_BYTES:,} ponder reads; "
                        "store a smaller subset")


def _labels(path: str | Path, name: str, y: np.ndarray) -> np.ndarray:
    """Integer class labels 0..C-1, or one sentence: float labels are refused, never truncated."""
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{str(path)!r}: {name} must hold integer class labels, found non-integer values "
                            f"(dtype {y.dtype})")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{str(path)!r}: {name} must hold integer class labels, found dtype {y.dtype}")
    if y.ndim != 1:
        raise DataError(f"{str(path)!r}: {name} must be one label per example (1-D), found shape {y.shape}")
    if len(y) and y.min() < 0:
        raise DataError(f"{str(path)!r}: {name} has negative labels; classes are 0..C-1")
    return y.astype(np.int64)


def _nonempty(path: str | Path, **parts: np.ndarray) -> None:
    for name, arr in parts.items():
        if len(arr) == 0:
            raise DataError(f"{str(path)!r}: {name} is empty; a dataset needs training and test examples")


def _standardize(x_tr: np.ndarray, x_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x_tr = x_tr.astype(np.float32)
    x_te = x_te.astype(np.float32)
    mu, sd = float(x_tr.mean()), float(x_tr.std()) or 1.0
    return (x_tr - mu) / sd, (x_te - mu) / sd


@register("dataset", "mnist_idx", formula="MNIST-format IDX files from a local folder, standardized",
          source="LeCun's IDX format (train-images-idx3-ubyte[.gz] etc.)", cites="LeCun, Bottou, Bengio & Haffner 1998")
def mnist_idx(path: str) -> Pool:  # noqa: D417
    """MNIST (or Fashion-MNIST) from ``path``: the four IDX files, gzip-compressed or not.

    Pixels are standardized by the training mean and std; samples have shape (1, 28, 28).
    """
    folder = Path(path)

    def find(stem: str) -> Path:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise DataError(f"folder {str(folder)!r} has no {stem} (or {stem}.gz)")

    x_tr = read_idx(find("train-images-idx3-ubyte"))
    y_tr = _labels(folder, "train-labels-idx1-ubyte", read_idx(find("train-labels-idx1-ubyte")))
    x_te = read_idx(find("t10k-images-idx3-ubyte"))
    y_te = _labels(folder, "t10k-labels-idx1-ubyte", read_idx(find("t10k-labels-idx1-ubyte")))
    _nonempty(folder, train_images=x_tr, test_images=x_te)
    if x_tr.ndim != 3 or len(x_tr) != len(y_tr) or x_te.ndim != 3 or len(x_te) != len(y_te):
        raise DataError(f"folder {str(folder)!r}: image and label files do not match (images {x_tr.shape}, labels {y_tr.shape})")
    x_tr, x_te = _standardize(x_tr[:, None], x_te[:, None])
    return Pool(x_tr, y_tr, x_te, y_te, int(max(y_tr.max(), y_te.max())) + 1, "mnist_idx")


@register("dataset", "cifar10_bin", formula="CIFAR-10 binary batches from a local folder, standardized",
          source="CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin)", cites="Krizhevsky 2009")
def cifar10_bin(path: str) -> Pool:
    """CIFAR-10 from the binary batches in ``path``; samples have shape (3, 32, 32)."""
    folder = Path(path)
    batches = sorted(folder.glob("data_batch_*.bin"))
    if not batches:
        raise DataError(f"folder {str(folder)!r} has no data_batch_*.bin files")
    parts = [read_cifar_batch(b) for b in batches]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = read_cifar_batch(folder / "test_batch.bin")
    x_tr, x_te = _standardize(x_tr, x_te)
    return Pool(x_tr, y_tr, x_te, y_te, 10, "cifar10_bin")


@register("dataset", "npz", formula="x_train, y_train, x_test, y_test from a local .npz (no pickles)",
          source="numpy .npz archive", cites="Harris et al. 2020 (NumPy)")
def npz(path: str, standardize: bool = False) -> Pool:
    """Any classification set saved as an ``.npz`` with x_train, y_train, x_test, y_test.

    Labels must be integers 0..C-1; inputs keep their sample shape. ``standardize`` scales
    inputs by the training mean and std.
    """
    d = read_npz_split(path)
    for k in ("y_train", "y_test"):
        d[k] = _labels(path, k, d[k])
    _nonempty(path, x_train=d["x_train"], x_test=d["x_test"])
    if len(d["x_train"]) != len(d["y_train"]) or len(d["x_test"]) != len(d["y_test"]):
        raise DataError(f"{str(path)!r}: inputs and labels differ in length (x_train {len(d['x_train'])}, "
                        f"y_train {len(d['y_train'])}, x_test {len(d['x_test'])}, y_test {len(d['y_test'])})")
    x_tr, x_te = d["x_train"].astype(np.float32), d["x_test"].astype(np.float32)
    if standardize:
        x_tr, x_te = _standardize(x_tr, x_te)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataError(f"{str(path)!r}: x_train samples have shape {x_tr.shape[1:]} but x_test {x_te.shape[1:]}")
    n_classes = int(max(d["y_train"].max(initial=0), d["y_test"].max(initial=0))) + 1
    return Pool(x_tr, d["y_train"].astype(np.int64), x_te, d["y_test"].astype(np.int64), n_classes, "npz")
