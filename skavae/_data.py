"""The data layer of the estimator: input checks, standardisation, batches.

Everything that touches the objects ``X`` on their way to the network lives
here:

* :func:`check_X` validates an array (or an out-of-core array-like, see
  :func:`is_lazy_array`) and finds the spatial shape of one object;
* :func:`standardisation` and :func:`check_finite` read the values once, in
  chunks of bounded memory, in float64: NaN, infinities and values beyond the
  float32 range (the network's precision) are refused there, naming the first
  sample, and the mean and standard deviation are computed with per-chunk
  two-pass moments merged by Chan et al.'s formula, so a large offset (cryo-EM
  maps at 1e8) loses no precision. A fit reads the values for these checks
  once; streamed batches of a fitted model are checked as they are read;
* :class:`BatchSource` serves standardised float32 batches: an in-memory
  array is indexed batch by batch, anything else (memory maps, lazily loaded
  folders) is read batch by batch in file order, so a data set larger than
  memory can be trained on. Data wider than float32 are centred in float64
  before the cast; the caller's data are never modified.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import clone
from sklearn.utils.validation import (
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from skavae._wedge import MissingWedge, as_missing_wedge, check_tilt_ranges

FLOAT_DTYPES = [np.float32, np.float64]
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_CHUNK_VALUES = 2**16  # values per chunk of a scan: 512 KiB of float64
# dtypes whose values float32 holds exactly: centred in float32, on the device
_NARROW = {np.dtype(t) for t in (np.float32, np.float16, np.int8, np.uint8)}
_NARROW |= {np.dtype(np.int16), np.dtype(np.uint16), np.dtype(bool)}


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


def output_dtype(X):
    """Latents come back in the input's float dtype (float32 for integers)."""
    return np.float64 if np.dtype(X.dtype) == np.float64 else np.float32


def resolve_device(device):
    """``"auto"`` → CUDA when available, else CPU; anything else as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device: {exc}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return dev


# ------------------------------------------------------------------ checking X
def _spatial_shape(X_shape, input_shape):
    """Spatial shape of one object of an array of shape ``X_shape``."""
    if len(X_shape) > 4:
        raise ValueError(
            "X must be (n_samples, n_features), (n_samples, H, W) or "
            f"(n_samples, D, H, W); got an array with {len(X_shape)} dimensions, "
            f"shape {tuple(X_shape)}."
        )
    if input_shape is None:
        return tuple(int(s) for s in X_shape[1:])
    shape = tuple(input_shape)
    if not 1 <= len(shape) <= 3 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(
            f"input_shape must be a tuple of 1 to 3 positive integers; got {shape!r}."
        )
    if len(X_shape) == 2:
        if math.prod(shape) != X_shape[1]:
            raise ValueError(
                f"input_shape={shape} holds {math.prod(shape)} values but X "
                f"has {X_shape[1]} features per sample."
            )
        return shape
    if tuple(X_shape[1:]) != shape:
        raise ValueError(
            f"X holds objects of shape {tuple(X_shape[1:])} but input_shape={shape}."
        )
    return shape


def _check_fitted_shape(shape, fitted, flat_input):
    """Clear errors for objects of another shape than the fitted ``fitted``."""
    if shape is None or len(shape) < 2:
        return
    if len(shape) > 2 and tuple(shape[1:]) != fitted:
        raise ValueError(
            f"X holds objects of shape {tuple(shape[1:])}, but this "
            f"AffinityVAE was fitted on objects of shape {fitted}."
        )
    if len(shape) == 2 and len(fitted) > 1 and not flat_input:
        raise ValueError(
            f"X has shape {tuple(shape)}: flat rows, but this AffinityVAE was "
            f"fitted on objects of shape {fitted}; pass X.reshape(-1, "
            f"{', '.join(map(str, fitted))}) (or fit with input_shape={fitted} "
            "to use flat rows)."
        )


def _check_lazy(estimator, X, y, *, reset):
    """Validate an out-of-core array-like without reading it."""
    shape = tuple(X.shape)
    if np.dtype(X.dtype).kind not in "fiu":
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}.")
    if len(shape) < 2:
        raise ValueError(
            f"Expected an array of objects with ndim >= 2; got shape {shape}."
        )
    minimum = 2 if reset else 1
    if shape[0] < minimum:
        raise ValueError(
            f"Found array with {shape[0]} sample(s) (shape={shape}) while a "
            f"minimum of {minimum} is required."
        )
    validate_data(estimator, X, skip_check_array=True, reset=reset)
    if y is not None:
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
    return X, y


def _check_missing_labels(y):
    """Missing labels (NaN, None) name their first row (numpy only says NaN)."""
    import pandas as pd

    labels = np.asarray(y, dtype=object)
    if labels.ndim == 1 and len(labels):
        missing = pd.isna(labels)
        if missing.any():
            raise ValueError(
                f"y holds missing labels (NaN or None), first at row "
                f"{int(np.argmax(missing))} ({int(missing.sum())} in all); every "
                "object needs a class, or fit without y."
            )


def _stack_object_array(X):
    """A 1-D object array (or a list) of arrays as one stack.

    Objects of two shapes are refused with both shapes named, instead of
    numpy's "inhomogeneous shape" message.
    """
    if isinstance(X, (list, tuple)):
        kind = f"a {type(X).__name__} of arrays"
    elif isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1:
        kind = "an object array of arrays"
    else:
        return X
    try:
        shapes = [np.shape(x) for x in X]
    except ValueError:  # ragged nested lists inside one object
        shapes = None
    if not shapes or not shapes[0]:
        return X  # not arrays: scikit-learn's message
    for k, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise ValueError(
                f"X is {kind} of different shapes: object 0 has shape "
                f"{shapes[0]}, object {k} has shape {shape}; every object must "
                "have one shape."
            )
    if isinstance(X, np.ndarray):
        return np.stack([np.asarray(x) for x in X])
    return X


def check_X(estimator, X, y=None, *, reset, values=True):
    """Validate ``X`` (and ``y``) for ``estimator``; return them and the shape.

    Parameters
    ----------
    estimator : AffinityVAE
        Sets or checks ``n_features_in_`` (and ``feature_names_in_``);
        ``input_shape`` and, when not ``reset``, the fitted ``input_shape_``
        are read from it.
    X : array-like or out-of-core array-like
    y : array-like of shape (n_samples,), default=None
    reset : bool
        True in a first fit (at least 2 samples), False for a fitted model.
    values : bool, default=True
        Check an in-memory ``X``'s values now (:func:`check_finite`); False
        when the caller reads them anyway (a fit's :func:`standardisation`).
        Out-of-core data are not read here.

    Returns
    -------
    X, y, spatial_shape
    """
    if y is not None:
        _check_missing_labels(y)
    if not reset:
        _check_fitted_shape(
            getattr(X, "shape", None),
            estimator.input_shape_,
            getattr(estimator, "_flat_input", False),
        )
    if is_lazy_array(X):
        X, y = _check_lazy(estimator, X, y, reset=reset)
    else:
        X = _stack_object_array(X)
        kwargs = dict(
            reset=reset,
            dtype=FLOAT_DTYPES,
            allow_nd=True,
            ensure_min_samples=2 if reset else 1,
            ensure_all_finite=False,
        )
        if y is None:
            X = validate_data(estimator, X, **kwargs)
        else:
            X, y = validate_data(estimator, X, y, **kwargs)
        if values:
            check_finite(X)
    spatial = _spatial_shape(X.shape, estimator.input_shape)
    if not reset and spatial != estimator.input_shape_:
        raise ValueError(
            f"X holds objects of shape {spatial}, but this AffinityVAE was "
            f"fitted on objects of shape {estimator.input_shape_}."
        )
    return X, y, spatial


def measured_support(missing_wedge, spatial, n, tilt_ranges=None, *, turns=False):
    """Per-sample measured-coefficient masks ``(masks, index)``, or None.

    With ``turns`` (training with 90° turns about the beam axis) a third
    item holds the same masks about the other tilt axis, where a turned
    sample's wedge lies (see :mod:`skavae._augment`).
    """
    wedge = as_missing_wedge(missing_wedge)
    if wedge is None and tilt_ranges is None:
        return None
    if len(spatial) != 3:
        raise ValueError(
            f"missing_wedge applies to 3D volumes; the data are {len(spatial)}D "
            f"objects of shape {spatial}, where a tilt wedge has no meaning."
        )
    wedge = wedge if wedge is not None else MissingWedge()
    if tilt_ranges is not None:
        tilt_ranges = check_tilt_ranges(tilt_ranges, n, "tilt_ranges")
    support = _masks(wedge, spatial, n, tilt_ranges)
    if not turns:
        return support
    other = clone(wedge).set_params(tilt_axis=3 - int(wedge.tilt_axis))
    return (*support, _masks(other, spatial, n, tilt_ranges)[0])


def _masks(wedge, spatial, n, tilt_ranges):
    if tilt_ranges is None:
        return wedge.mask(spatial)[None], np.zeros(n, dtype=np.int64)
    return wedge.masks(spatial, tilt_ranges)


# ------------------------------------------------------------------- values
def _check_block(flat, samples, paths=None):
    """Refuse NaN/inf and values beyond float32 in the rows ``flat``.

    ``samples[i]`` is the sample number of row ``i``, for the message, and
    ``paths[sample]`` its file (an MRCStack's ``paths``), when given.
    """
    bad = ~np.isfinite(flat).all(1)
    if bad.any():
        i = samples[np.flatnonzero(bad)[0]]
        where = f", file {paths[i]!r}" if paths is not None else ""
        raise ValueError(
            f"Input X contains NaN or infinity (sample {i}{where}); AffinityVAE "
            "needs finite values."
        )
    if flat.dtype.kind == "f" and flat.dtype.itemsize > 4:
        big = np.abs(flat).max(1) > _FLOAT32_MAX
        if big.any():
            raise ValueError(
                f"Input X has values beyond the float32 range (±{_FLOAT32_MAX:.3g}) "
                f"in sample {samples[np.flatnonzero(big)[0]]}; the network "
                "computes in float32, rescale the data."
            )


def _scan(X, moments):
    """One chunked pass over ``X``: check it; mean and std when ``moments``."""
    rows = max(1, _CHUNK_VALUES // max(1, math.prod(X.shape[1:])))
    mean, m2, count = 0.0, 0.0, 0
    for start in range(0, len(X), rows):
        block = np.asarray(X[start : start + rows])
        flat = block.reshape(len(block), -1)
        _check_block(flat, range(start, start + len(flat)), getattr(X, "paths", None))
        if not moments:
            continue
        values = flat.astype(np.float64).ravel()  # a copy of our own
        n = values.size
        block_mean = float(values.mean())
        values -= block_mean
        block_m2 = float(np.dot(values, values))
        delta, total = block_mean - mean, count + n
        mean += delta * n / total
        m2 += block_m2 + delta * delta * count * n / total
        count = total
        del block, flat, values  # free before the next chunk is read
    return mean, m2, count


def check_finite(X):
    """ValueError naming the first sample with NaN/inf or beyond float32."""
    _scan(X, moments=False)


def standardisation(X):
    """Mean and standard deviation of all values of ``X``, checked as read.

    Streamed in chunks of bounded memory, in float64, with per-chunk two-pass
    moments merged by Chan et al.'s formula: stable for any offset. Raises the
    errors of :func:`check_finite`. A zero standard deviation is returned as 1.
    """
    mean, m2, count = _scan(X, moments=True)
    std = math.sqrt(max(m2 / max(count, 1), 0.0))
    return mean, (std if std > 1e-12 * max(1.0, abs(mean)) else 1.0)


def make_batches(indices, batch_size, generator=None):
    """Split ``indices`` (shuffled when a generator is given) into batches.

    Batches have nearly equal sizes and at least 2 members (batch norm and the
    pairwise affinity loss need pairs) whenever ``len(indices) >= 2``.
    """
    indices = np.asarray(indices)
    n = len(indices)
    if n == 0:
        return []
    if generator is not None:
        indices = indices[torch.randperm(n, generator=generator).numpy()]
    n_batches = max(1, math.ceil(n / batch_size))
    if n // n_batches < 2:
        n_batches = max(1, n // 2)
    return np.array_split(indices, n_batches)


class BatchSource:
    """Serves standardised float32 batches of shape (B, 1, *input_shape).

    Parameters
    ----------
    X : ndarray, memmap or indexable array-like of shape (n, ...)
        The objects; row ``i`` is reshaped to ``input_shape``.
    input_shape : tuple of int
        Spatial shape of one object.
    mean, scale : float
        Standardisation: the network sees ``(x - mean) / scale``.
    wedge : tuple (masks, index) or (masks, index, turned), default=None
        Measured Fourier coefficients of each sample: ``masks`` (U, *half)
        boolean rfftn half spectra, ``index[i]`` the mask of sample ``i``;
        ``turned`` the masks of samples turned by 90° about the beam axis.
        None means every coefficient is measured.
    checked : bool, default=False
        The values were checked already (by a fit's scan); otherwise every
        batch is checked for NaN and infinities as it is read.

    Attributes
    ----------
    in_memory : bool
        ``X`` is an in-memory array (not a memory map or an array-like read
        from files).
    """

    def __init__(self, X, input_shape, mean, scale, wedge=None, checked=False):
        self.X = X
        self.input_shape = tuple(input_shape)
        self.mean = float(mean)
        self.scale = float(scale)
        self.checked = checked
        self.in_memory = type(X) is np.ndarray  # a np.memmap is streamed
        self._masks = self._mask_index = self._turned = None
        if wedge is not None:
            self._masks = torch.as_tensor(np.asarray(wedge[0]), dtype=torch.bool)
            self._mask_index = torch.as_tensor(np.asarray(wedge[1]), dtype=torch.long)
            if len(wedge) > 2:
                self._turned = torch.as_tensor(np.asarray(wedge[2]), dtype=torch.bool)

    def __len__(self):
        return len(self.X)

    def raw(self, idx):
        """The objects ``idx`` (in that order) as a numpy array, unstandardised."""
        idx = np.asarray(idx)
        if self.in_memory:
            return self.X[idx]
        order = np.argsort(idx)  # memory maps read fastest in file order
        rows = np.asarray(self.X[idx[order]])
        return rows[np.argsort(order)]

    def support(self, idx, device, swapped=None):
        """Measured-coefficient masks of the batch ``idx``, or None (all).

        ``swapped`` (bool per sample, from :func:`~skavae._augment.augment_batch`)
        marks the samples turned by 90° about the beam axis, whose wedge now
        lies about the other tilt axis.
        """
        if self._masks is None:
            return None
        index = self._mask_index[torch.as_tensor(idx)]
        masks = self._masks[index]
        if swapped is not None and self._turned is not None:
            turned = self._turned[index]
            swapped = swapped.cpu().reshape(-1, *([1] * (masks.ndim - 1)))
            masks = torch.where(swapped, turned, masks)
        return masks.to(device)

    def get(self, idx, device):
        """Standardised batch ``idx`` on ``device``."""
        rows = np.asarray(self.raw(idx))
        if not self.checked:
            _check_block(rows.reshape(len(rows), -1), np.asarray(idx).tolist())
        shape = (len(idx), 1, *self.input_shape)
        if rows.dtype in _NARROW:  # exact in float32: centred on the device
            with warnings.catch_warnings():
                # read-only rows (views of read-only memory maps) are only read
                warnings.filterwarnings("ignore", message="The given NumPy array")
                batch = torch.from_numpy(np.asarray(rows, dtype=np.float32))
            batch = batch.reshape(shape).to(device)
            return (batch - self.mean) / self.scale
        centred = (rows.astype(np.float64) - self.mean) / self.scale
        return torch.from_numpy(centred.astype(np.float32)).reshape(shape).to(device)
