"""The missing wedge of electron tomography, as a mask on Fourier coefficients.

A tilt series samples, for each tilt angle, one central slice of the object's
3D Fourier transform (the projection-slice theorem). Tilting about one axis
over a limited range leaves a wedge of Fourier space unmeasured.

Conventions (shared by the forward model, the wedge-aware loss and the
wedge-compensated FSC):

* Volumes are indexed ``(z, y, x)`` (array axes 0, 1, 2, the order of mrc
  files); the beam is along ``z`` (axis 0) at zero tilt.
* The tilt axis is ``y`` (axis 1) by default, or ``x`` (axis 2). Call ``p`` the
  third axis (``x`` for a ``y`` tilt axis).
* A Fourier coefficient with frequencies ``(k_z, k_p)`` in the plane normal to
  the tilt axis has the *elevation* ``alpha = arctan(k_z / k_p)`` in
  (-90, 90] degrees (``k_p = 0`` gives 90: the beam direction). It is measured
  at tilt ``theta`` when ``alpha == theta``, so a continuous tilt range
  ``[lo, hi]`` measures exactly the coefficients with ``lo <= alpha <= hi``;
  the coefficients on the tilt axis (``k_z = k_p = 0``) are always measured.
  ``(k_z, k_p)`` and ``(-k_z, -k_p)`` have the same elevation, so the mask is
  Hermitian-symmetric and a masked real object stays real.
* With a tilt *increment*, only the slices at ``lo, lo + step, ..., hi`` are
  measured: a coefficient is kept when it lies within half a Fourier voxel of
  one of those central planes (the slices overlap at low frequency and leave
  gaps beyond the Crowther resolution, as in a real tilt series).

Masks are built for the half spectrum of :func:`numpy.fft.rfftn` (last axis
``n_x // 2 + 1`` long), as booleans.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

__all__ = [
    "MissingWedge",
    "check_tilt_ranges",
    "elevation_angles",
    "frequency_grids",
    "wedge_mask",
]


def _check_range(tilt_range, name="tilt_range"):
    try:
        lo, hi = (float(v) for v in tilt_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair (min, max) of angles in degrees; got "
            f"{tilt_range!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite; got {tilt_range!r}.")
    if lo < -90 or hi > 90:
        raise ValueError(
            f"{name} must lie within [-90, 90] degrees; got ({lo:g}, {hi:g})."
        )
    if lo > hi:
        raise ValueError(
            f"{name} is reversed: min {lo:g} > max {hi:g} degrees; give (min, max)."
        )
    return lo, hi


def check_tilt_ranges(tilt_ranges, n_samples, name="tilt_ranges"):
    """Per-sample tilt ranges as a float array of shape (n_samples, 2)."""
    try:
        arr = np.asarray(tilt_ranges, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be numbers of shape ({n_samples}, 2); got "
            f"{type(tilt_ranges).__name__}."
        ) from None
    if arr.shape == (2,):
        arr = np.broadcast_to(arr, (n_samples, 2))
    if arr.shape != (n_samples, 2):
        raise ValueError(
            f"{name} must have shape ({n_samples}, 2) (one (min, max) per sample) "
            f"or (2,); got shape {arr.shape}."
        )
    bad = ~np.isfinite(arr).all(axis=1)
    bad |= (arr[:, 0] < -90) | (arr[:, 1] > 90) | (arr[:, 0] > arr[:, 1])
    if bad.any():
        row = int(np.argmax(bad))
        _check_range(arr[row], f"{name}[{row}]")
    return np.ascontiguousarray(arr)


def frequency_grids(shape):
    """Frequencies (cycles per voxel) of the rfftn half spectrum, one per axis."""
    axes = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    return np.meshgrid(*axes, indexing="ij")


def elevation_angles(shape, tilt_axis=1):
    """Elevation (degrees, in (-90, 90]) of each coefficient of the half spectrum.

    Coefficients on the tilt axis itself (``k_z = k_p = 0``) get NaN: they are
    measured at every tilt.
    """
    grids = frequency_grids(shape)
    kz = grids[0]
    kp = grids[3 - tilt_axis]  # the in-plane axis that is not the tilt axis
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.degrees(np.arctan(kz / kp))
    alpha = np.where(kp == 0, 90.0, alpha)
    return np.where((kz == 0) & (kp == 0), np.nan, alpha)


def wedge_mask(shape, tilt_range=(-60.0, 60.0), *, tilt_axis=1, tilt_step=None):
    """Boolean mask of the measured coefficients of an rfftn half spectrum.

    Parameters
    ----------
    shape : tuple of 3 ints
        Volume shape ``(n_z, n_y, n_x)``.
    tilt_range : (float, float), default=(-60, 60)
        Lowest and highest tilt angle, degrees, within [-90, 90].
    tilt_axis : {1, 2}, default=1
        Array axis of the tilt axis (1 = y, 2 = x); the beam is along axis 0.
    tilt_step : float, default=None
        Tilt increment in degrees; None means continuous sampling.

    Returns
    -------
    mask : ndarray of bool, shape ``(n_z, n_y, n_x // 2 + 1)``

    Examples
    --------
    >>> import numpy as np
    >>> m = wedge_mask((16, 16, 16), (-60, 60))
    >>> m.shape, bool(m[0, 0, 0]), round(float(m.mean()), 2)
    ((16, 16, 9), True, 0.69)
    """
    lo, hi = _check_range(tilt_range)
    if len(shape) != 3:
        raise ValueError(
            f"A missing wedge needs 3D volumes; got objects of shape {tuple(shape)}."
        )
    if tilt_axis not in (1, 2):
        raise ValueError(
            f"tilt_axis must be 1 (y) or 2 (x); the beam is along axis 0; got "
            f"{tilt_axis!r}."
        )
    if tilt_step is None:
        alpha = elevation_angles(shape, tilt_axis)
        return np.isnan(alpha) | ((alpha >= lo - 1e-9) & (alpha <= hi + 1e-9))
    grids = frequency_grids(shape)
    kz = grids[0] * shape[0]  # Fourier voxel units
    kp = grids[3 - tilt_axis] * shape[3 - tilt_axis]
    tilts = np.radians(np.arange(lo, hi + 1e-9, float(tilt_step)))
    mask = np.zeros(kz.shape, dtype=bool)
    for theta in tilts:  # tens of tilts, each a vectorised pass over the spectrum
        mask |= np.abs(kz * np.cos(theta) - kp * np.sin(theta)) <= 0.5
    return mask


class MissingWedge(BaseEstimator):
    """The missing wedge of a single-axis tilt series.

    Used by :func:`skavae.datasets.simulate_subtomograms` (to remove the wedge),
    :class:`skavae.AffinityVAE` (``missing_wedge=``: the reconstruction loss
    compares only measured Fourier coefficients) and
    :class:`skavae.affinity.FSCAffinity` (``missing_wedge=``: correlation over
    the coefficients measured in both objects). See :mod:`skavae._wedge` for the
    geometry: beam along array axis 0 (z), tilt axis along axis 1 (y) by
    default.

    Parameters
    ----------
    tilt_range : (float, float), default=(-60.0, 60.0)
        Lowest and highest tilt, degrees, within [-90, 90].
    tilt_axis : {1, 2}, default=1
        Array axis of the tilt axis: 1 (y) or 2 (x).
    tilt_step : float, default=None
        Tilt increment in degrees (e.g. 3); None samples the range continuously.

    Examples
    --------
    >>> from skavae.datasets import MissingWedge
    >>> w = MissingWedge(tilt_range=(-60, 60), tilt_step=3)
    >>> w.mask((8, 8, 8)).shape
    (8, 8, 5)
    """

    _parameter_constraints: dict = {
        "tilt_range": ["array-like"],
        "tilt_axis": [Interval(Integral, 1, 2, closed="both")],
        "tilt_step": [None, Interval(Real, 0, 90, closed="right")],
    }

    def __init__(self, *, tilt_range=(-60.0, 60.0), tilt_axis=1, tilt_step=None):
        self.tilt_range = tilt_range
        self.tilt_axis = tilt_axis
        self.tilt_step = tilt_step

    def validate(self):
        """Check the parameters; return ``(lo, hi)``."""
        self._validate_params()
        return _check_range(self.tilt_range)

    def mask(self, shape, tilt_range=None):
        """Measured-coefficient mask of an rfftn half spectrum of ``shape``."""
        lo_hi = self.validate() if tilt_range is None else tilt_range
        return wedge_mask(
            tuple(shape), lo_hi, tilt_axis=int(self.tilt_axis), tilt_step=self.tilt_step
        )

    def masks(self, shape, tilt_ranges):
        """One mask per sample of ``tilt_ranges`` (shape (n, 2)), shared by value.

        Returns ``(unique_masks, index)``: ``unique_masks[index[i]]`` is the mask
        of sample ``i``. Tomograms are few, so their distinct ranges are too.
        """
        self.validate()
        ranges = check_tilt_ranges(tilt_ranges, len(tilt_ranges))
        uniq, index = np.unique(ranges, axis=0, return_inverse=True)
        masks = np.stack([self.mask(shape, tuple(r)) for r in uniq])
        return masks, index.reshape(-1)


def as_missing_wedge(value, name="missing_wedge"):
    """None, a MissingWedge, or a (min, max) tilt range -> MissingWedge or None."""
    if value is None or isinstance(value, MissingWedge):
        if value is not None:
            value.validate()
        return value
    if isinstance(value, str):
        raise ValueError(
            f"{name} must be None, a MissingWedge or a (min, max) tilt range in "
            f"degrees; got {value!r}."
        )
    _check_range(value, name)
    return MissingWedge(tilt_range=tuple(float(v) for v in value))
