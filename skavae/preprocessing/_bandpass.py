"""Fourier band-pass filtering and per-particle normalisation of subtomograms."""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.fft
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skavae._ctf import radial_frequency

__all__ = ["BandPassFilter"]

_CHUNK_VOXELS = 2**23


def bandpass_weights(shape, voxel_size, lowpass, highpass, edge):
    """Raised-cosine band-pass on an rfftn half spectrum of ``shape``.

    Frequencies up to ``1 / lowpass`` (and above ``1 / highpass``) pass with
    weight 1; the weight falls to 0 over ``edge`` Fourier voxels (cosine).
    """
    f = radial_frequency(shape, voxel_size)  # 1/Å
    width = float(edge) / (min(shape) * float(voxel_size))  # 1/Å
    w = np.ones_like(f)
    if lowpass is not None:
        x = np.clip((f - 1.0 / lowpass) / width, 0.0, 1.0)
        w *= 0.5 * (1.0 + np.cos(np.pi * x))
    if highpass is not None:
        x = np.clip((1.0 / highpass - f) / width, 0.0, 1.0)
        w *= 0.5 * (1.0 + np.cos(np.pi * x))
    return w


class BandPassFilter(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Band-pass filter in Å, then optional per-particle normalisation.

    Subtomograms have white-ish noise up to Nyquist while the signal of a
    molecule at tomographic resolution lives at low spatial frequency: a
    low-pass at the data's resolution removes most of the noise variance
    (at 5 Å voxels, a 20 Å low-pass keeps 7 % of the Fourier coefficients of a
    32³ box). A high-pass removes the slow background of a tomogram. Each
    object is then optionally normalised to zero mean and unit variance, as
    subtomogram pipelines do, so that particles of different contrast weigh
    alike. Stateless: ``fit`` only records the input shape.

    Parameters
    ----------
    voxel_size : float, default=1.0
        Voxel (pixel) edge in Å.
    lowpass : float, default=None
        Resolution in Å above which frequencies are removed (e.g. 20); None
        keeps all.
    highpass : float, default=None
        Resolution in Å below which frequencies are removed (e.g. 200); None
        keeps all (DC included).
    edge : float, default=2.0
        Width of the raised-cosine edges in Fourier voxels.
    normalize : bool, default=True
        Subtract each object's mean and divide by its standard deviation.

    Attributes
    ----------
    n_features_in_ : int
        Size of the objects' first axis (scikit-learn's convention; the values
        per object of a 2D table).
    input_shape_ : tuple of int
        Shape of one object.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.preprocessing import BandPassFilter
    >>> X = np.random.RandomState(0).normal(size=(4, 16, 16, 16))
    >>> Xf = BandPassFilter(voxel_size=5.0, lowpass=20.0).fit_transform(X)
    >>> Xf.shape, bool(np.allclose(Xf.reshape(4, -1).std(1), 1.0))
    ((4, 16, 16, 16), True)
    """

    _parameter_constraints: dict = {
        "voxel_size": [Interval(Real, 0, None, closed="neither")],
        "lowpass": [None, Interval(Real, 0, None, closed="neither")],
        "highpass": [None, Interval(Real, 0, None, closed="neither")],
        "edge": [Interval(Real, 0, None, closed="left")],
        "normalize": ["boolean"],
    }

    def __init__(
        self, *, voxel_size=1.0, lowpass=None, highpass=None, edge=2.0, normalize=True
    ):
        self.voxel_size = voxel_size
        self.lowpass = lowpass
        self.highpass = highpass
        self.edge = edge
        self.normalize = normalize

    def _check(self, X, reset):
        X = validate_data(
            self, X, reset=reset, allow_nd=True, dtype=[np.float64, np.float32]
        )
        if reset:
            self.input_shape_ = X.shape[1:]
        elif X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X holds objects of shape {X.shape[1:]}; this filter was fitted on "
                f"{self.input_shape_}."
            )
        return X

    def fit(self, X, y=None):
        """Record the shape of the objects; returns self."""
        self._validate_params()
        if (
            self.lowpass is not None
            and self.highpass is not None
            and self.highpass <= self.lowpass
        ):
            raise ValueError(
                f"highpass ({self.highpass} Å) must be a coarser resolution than "
                f"lowpass ({self.lowpass} Å)."
            )
        if self.lowpass is not None and self.lowpass < 2 * self.voxel_size:
            raise ValueError(
                f"lowpass={self.lowpass} Å is finer than Nyquist (2 * voxel_size = "
                f"{2 * self.voxel_size} Å)."
            )
        self._check(X, reset=True)
        return self

    def transform(self, X):
        """Filtered (and normalised) objects, same shape, float32 or float64."""
        check_is_fitted(self, "input_shape_")
        X = self._check(X, reset=False)
        dtype = np.float64 if X.dtype == np.float64 else np.float32
        shape = self.input_shape_
        axes = tuple(range(1, len(shape) + 1))
        filtering = self.lowpass is not None or self.highpass is not None
        w = (
            bandpass_weights(
                shape, self.voxel_size, self.lowpass, self.highpass, self.edge
            )
            if filtering
            else None
        )
        out = np.empty(X.shape, dtype=dtype)
        step = max(1, _CHUNK_VOXELS // max(1, int(np.prod(shape))))
        for start in range(0, len(X), step):
            block = X[start : start + step].astype(dtype, copy=True)
            if w is not None:
                F = scipy.fft.rfftn(block, axes=axes, workers=-1)
                F *= w
                block = scipy.fft.irfftn(F, s=shape, axes=axes, workers=-1)
            if self.normalize:
                flat = block.reshape(len(block), -1)
                flat -= flat.mean(axis=1, keepdims=True)
                sd = flat.std(axis=1, keepdims=True)
                flat /= np.where(sd > 0, sd, 1.0)
                block = flat.reshape(block.shape)
            out[start : start + step] = block
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
