"""Input checks of the estimator: arrays, out-of-core array-likes, labels, metrics."""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import issparse

FLOAT_DTYPES = [np.float32, np.float64]


def check_finite(X, chunk=4096):
    """ValueError naming the first sample with NaN/inf or beyond float32."""
    limit = np.finfo(np.float32).max
    for start in range(0, len(X), chunk):
        flat = X[start : start + chunk].reshape(min(chunk, len(X) - start), -1)
        bad = ~np.isfinite(flat).all(1)
        if bad.any():
            raise ValueError(
                "Input X contains NaN or infinity (first in sample "
                f"{start + int(np.flatnonzero(bad)[0])}); AffinityVAE needs finite "
                "values."
            )
        if flat.dtype == np.float64:
            big = np.abs(flat).max(1) > limit
            if big.any():
                raise ValueError(
                    f"Input X has values beyond the float32 range (±{limit:.3g}) in "
                    f"sample {start + int(np.flatnonzero(big)[0])}; the network "
                    "computes in float32, rescale the data."
                )


def class_labels(y):
    """Sorted unique labels; a clear error for labels of mixed types."""
    try:
        return np.unique(y)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in np.asarray(y, dtype=object)})
        raise ValueError(
            f"y mixes labels of different types ({', '.join(kinds)}); use one type, "
            "e.g. all strings."
        ) from None


def output_dtype(X):
    """Latents come back in the input's float dtype (float32 for integers)."""
    return np.float64 if np.dtype(X.dtype) == np.float64 else np.float32


def is_lazy_array(X):
    """True for out-of-core array-likes (MRCStack, h5py, zarr, dask arrays).

    They expose ``shape``, ``dtype`` and ``__getitem__`` and are read batch by
    batch instead of being converted to one in-memory array.
    """
    if isinstance(X, np.memmap):  # np.load(..., mmap_mode="r") and friends
        return True
    return (
        not isinstance(X, (np.ndarray, list, tuple))
        and not torch.is_tensor(X)
        and not issparse(X)
        and not hasattr(X, "iloc")
        and all(hasattr(X, a) for a in ("shape", "dtype", "__getitem__", "__len__"))
    )


def checked_metric(metric):
    """Wrap a user metric so that a malformed result is a clear error."""

    def checked(A, B=None):
        values = np.asarray(metric(A, B) if B is not None else metric(A))
        shape = (len(A), len(A if B is None else B))
        name = getattr(metric, "__name__", type(metric).__name__)
        if values.shape != shape:
            raise ValueError(
                f"The affinity metric {name} returned an array of shape "
                f"{values.shape}; expected {shape}."
            )
        if values.dtype.kind not in "fiu" or not np.isfinite(values).all():
            raise ValueError(f"The affinity metric {name} returned non-finite values.")
        if values.min() < -1 - 1e-6 or values.max() > 1 + 1e-6:
            raise ValueError(
                f"The affinity metric {name} returned values in "
                f"[{values.min():.4g}, {values.max():.4g}]; similarities must lie "
                "in [-1, 1]."
            )
        return np.clip(values, -1.0, 1.0)

    return checked
