"""Fourier shell (3D) / ring (2D) correlation as an all-pairs affinity.

The Fourier shell correlation of two objects in shell ``k`` (paper eq. 4) is

.. math::

    FSC_k(x, y) = \\frac{\\mathrm{Re} \\sum_{q \\in k} F_x(q) F_y(q)^*}
                       {\\sqrt{\\sum_{q \\in k} |F_x(q)|^2 \\sum_{q \\in k} |F_y(q)|^2}}

and the affinity is its mean over shells weighted by the number of Fourier
coefficients ``n_k`` in each shell (Brown et al. 2015):
``A(x, y) = sum_k n_k FSC_k / sum_k n_k``.

Because that mean is linear in the per-shell correlations, and each per-shell
correlation is the inner product of two shell-normalised coefficient vectors,
the whole affinity is **one** real inner product between per-object feature
vectors::

    phi_x[q] = sqrt(h_q * n_k / sum n) * F_x(q) / ||F_x||_k      (q in shell k)
    A(x, y)  = Re <phi_x, phi_y> = [Re phi_x, Im phi_x] . [Re phi_y, Im phi_y]

where ``h_q`` is the Hermitian weight of coefficient ``q`` in the real-FFT half
spectrum (2 for a coefficient whose conjugate twin lies in the omitted half, 1
on the planes ``q_last = 0`` and ``q_last = N/2`` that hold both twins). So each
object is Fourier-transformed once, and all shells of all pairs come from a
single chunked matrix product (BLAS), with no loop over pairs or shells.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.fft
from sklearn.utils._param_validation import Interval, StrOptions

from skavae._validation import Count
from skavae._wedge import MissingWedge, as_missing_wedge, check_tilt_ranges
from skavae.affinity._base import Affinity, _as_pair

__all__ = ["FSCAffinity"]

#: A shell whose power is below this fraction of the object's total power is
#: treated as empty (its correlation is 0 instead of a ratio of round-off).
_EMPTY_SHELL_RTOL = 1e-20

#: Voxels Fourier-transformed at a time inside a block.
_FFT_BATCH_VOXELS = 2**19


class FSCAffinity(Affinity):
    """Shell-weighted mean Fourier shell/ring correlation between objects.

    Fourier shell correlation (FSC) for 3D volumes, Fourier ring correlation
    (FRC) for 2D images and the analogous band correlation for 1D signals,
    chosen by the rank of the objects. Per pair of objects, the correlation of
    their Fourier coefficients is computed in each shell of spatial frequency
    (paper eq. 4) and reduced to one number by the mean over shells weighted by
    the number of Fourier coefficients in each shell (Brown et al. 2015, as in
    the paper). The DC term (shell 0, the mean intensity) is excluded, so the
    affinity does not depend on the offset or the (positive) scale of each
    object's intensities: normalising the inputs is neither needed nor offered.

    Only shells up to a resolution cut are used. The outer shells hold most of
    the coefficients (their count grows as ``k**2`` in 3D) and, for data of
    limited resolution, no signal: averaging up to Nyquist drives every
    off-diagonal value to about 0. The default cut is half the Nyquist
    frequency (a resolution of 4 voxels, 0.25 cycles per voxel), which suits
    maps sampled at 3-4 voxels per resolution element, e.g. 10 Å maps on a
    2.5-3.3 Å grid; set ``resolution`` (with ``voxel_size``) or ``max_shell``
    to the resolution of your data.

    FSC compares Fourier coefficients at the same frequency, so it depends on
    the orientation (and position) of the objects: two copies of one object in
    different poses generally score low. Compare objects in one frame, as the
    paper does with one template per class (see
    :func:`~skavae.affinity.class_affinity_matrix` with ``templates``);
    ``center=True`` removes differences in position (not in orientation).

    Parameters
    ----------
    resolution : float, default=None
        Highest resolution included, in the units of ``voxel_size`` (e.g. Å):
        shells whose frequency exceeds ``voxel_size / resolution`` cycles per
        voxel are left out. ``None`` means ``4 * voxel_size`` (half Nyquist),
        but at least shell 1 for objects under 4 voxels across.
        Must be at least ``2 * voxel_size`` (Nyquist). Exclusive with
        ``max_shell``.
    voxel_size : float, default=1.0
        Size of a voxel (pixel) in the units of ``resolution``.
    max_shell : int, default=None
        Index of the outermost shell included (shell ``k`` holds frequencies
        within half a shell width of ``k * shell_width / n`` cycles per voxel,
        ``n`` the smallest edge of the box). Overrides the resolution cut;
        exclusive with ``resolution``.
    shell_width : float, default=1.0
        Width of a shell in Fourier voxels (units of ``1 / n`` cycles per
        voxel).
    weighting : {"count", "uniform"}, default="count"
        Weight of each shell in the mean: the number of Fourier coefficients
        in the shell (Brown et al. 2015, the paper's choice), or equal weights.
    center : bool, default=False
        If True, each object is translated (by an exact, sub-voxel Fourier
        phase shift, periodic) so that the centre of mass of its above-mean
        intensities lies at the centre of the box before comparison.
    missing_wedge : None, (float, float) or MissingWedge, default=None
        Wedge compensation (3D): the correlation of each shell runs only over
        the Fourier coefficients measured in *both* objects (the constrained
        correlation of subtomogram averaging), and shells are weighted by the
        number of such coefficients. With a wedge common to all objects (in
        their frame) this is one inner product, as without a wedge; per-object
        tilt ranges are given to the call: ``metric(X, Y, tilt_ranges=...,
        tilt_ranges_y=...)``.
    chunk_size : int, default=256
        Objects transformed, and rows of the output computed, per block.
        Memory is the output matrix plus ``(n_x + n_y) * 2 * n_coef`` float64
        features (``n_coef`` = 1388 for 32³ volumes at the default cut) plus
        one block.

    See Also
    --------
    SOAPAffinity : Rotation-invariant shape similarity.
    MeanDifference : Real-space mean absolute difference.
    class_affinity_matrix : Class-level matrix from templates or members.

    Notes
    -----
    The result is clipped to [-1, 1]; ``metric(X)`` is symmetric with a unit
    diagonal. A shell with no power in an object (e.g. every shell of a
    constant image) contributes 0 to its correlations. Each object is
    Fourier-transformed once with :func:`scipy.fft.rfftn` (use
    ``scipy.fft.set_workers`` to thread it); the pairwise part is one matrix
    product per block.

    References
    ----------
    Brown, A., Long, F., Nicholls, R. A., Toots, J., Emsley, P. & Murshudov, G.
    (2015). Tools for macromolecular model building and refinement into
    electron cryo-microscopy reconstructions. Acta Cryst. D71, 136-153.

    Examples
    --------
    A smoothed block volume, a noisy copy and a translated copy:

    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from skavae.affinity import FSCAffinity
    >>> rng = np.random.default_rng(0)
    >>> x = np.zeros((16, 16, 16))
    >>> x[4:12, 6:10, 5:9] = 1.0
    >>> x[4:7, 6:13, 5:9] = 1.0
    >>> x = ndimage.gaussian_filter(x, 1.0)
    >>> X = np.stack([x, x + 0.1 * rng.normal(size=x.shape), np.roll(x, 2, axis=0)])
    >>> FSCAffinity()(X).round(2)
    array([[1.  , 0.75, 0.21],
           [0.75, 1.  , 0.25],
           [0.21, 0.25, 1.  ]])

    Centring removes the translation; averaging up to Nyquist lets the noisy
    outer shells swamp the signal:

    >>> float(FSCAffinity(center=True)(X)[0, 2].round(2))
    1.0
    >>> float(FSCAffinity(resolution=2.0)(X)[0, 1].round(2))
    0.16
    """

    _supported_ndims = (1, 2, 3)

    _parameter_constraints: dict = {
        **Affinity._parameter_constraints,
        "resolution": [None, Interval(Real, 0, None, closed="neither")],
        "voxel_size": [Interval(Real, 0, None, closed="neither")],
        "max_shell": [None, Count(1)],
        "shell_width": [Interval(Real, 0, None, closed="neither")],
        "weighting": [StrOptions({"count", "uniform"})],
        "center": ["boolean"],
    }

    def __init__(
        self,
        *,
        resolution=None,
        voxel_size=1.0,
        max_shell=None,
        shell_width=1.0,
        weighting="count",
        center=False,
        chunk_size=256,
        missing_wedge=None,
    ):
        self.resolution = resolution
        self.voxel_size = voxel_size
        self.max_shell = max_shell
        self.shell_width = shell_width
        self.weighting = weighting
        self.center = center
        self.chunk_size = chunk_size
        self.missing_wedge = missing_wedge

    def __call__(self, X, Y=None, *, tilt_ranges=None, tilt_ranges_y=None):
        """Similarity matrix between the objects of ``X`` and ``Y``.

        Parameters
        ----------
        X : array-like of shape (n_x, ...)
            Stack of objects.
        Y : array-like of shape (n_y, ...), default=None
            Second stack; ``None`` means ``Y = X``.
        tilt_ranges, tilt_ranges_y : array-like of shape (n, 2), default=None
            Per-object tilt ranges (degrees) of ``X`` and ``Y`` for wedge
            compensation with a wedge that differs between objects (the axis
            and increment come from ``missing_wedge``, default
            ``MissingWedge()``). 3D only.

        Returns
        -------
        S : ndarray of shape (n_x, n_y)
            Similarities in [-1, 1].
        """
        if tilt_ranges is None and tilt_ranges_y is None:
            return super().__call__(X, Y)
        return self._compensated(X, Y, tilt_ranges, tilt_ranges_y)

    # ------------------------------------------------------------------ setup
    def _check_params(self):
        self._validate_params()
        if self.resolution is not None and self.max_shell is not None:
            raise ValueError(
                "Give either resolution or max_shell, not both; got "
                f"resolution={self.resolution!r}, max_shell={self.max_shell!r}."
            )

    def _prepare(self, X, Y, common_wedge=True):
        self._check_params()
        shape = X.shape[1:]
        n_ref = min(shape)
        width = float(self.shell_width)
        nyquist_shell = int(np.floor(n_ref / (2.0 * width) + 1e-9))
        if self.max_shell is not None:
            if self.max_shell > nyquist_shell:
                raise ValueError(
                    f"max_shell={self.max_shell} is beyond the Nyquist shell "
                    f"{nyquist_shell} of objects of shape {shape} with "
                    f"shell_width={self.shell_width}."
                )
            max_shell = int(self.max_shell)
        else:
            resolution = (
                4.0 * self.voxel_size if self.resolution is None else self.resolution
            )
            if resolution < 2.0 * self.voxel_size * (1 - 1e-9):
                raise ValueError(
                    f"resolution={resolution} is finer than Nyquist (2 * voxel_size "
                    f"= {2.0 * self.voxel_size})."
                )
            f_max = float(self.voxel_size) / float(resolution)
            max_shell = min(int(np.floor(f_max * n_ref / width + 1e-9)), nyquist_shell)
            if self.resolution is None:  # tiny objects: keep at least shell 1
                max_shell = max(max_shell, min(1, nyquist_shell))
        if max_shell < 1:
            raise ValueError(
                f"The resolution cut leaves no shell between DC and the cut for "
                f"objects of shape {shape}: shell 1 is at a resolution of "
                f"{n_ref * self.voxel_size / width:.4g} (units of voxel_size); give "
                "a resolution value at least that small, or a max_shell."
            )

        # Frequencies (cycles per voxel) of the rfftn half spectrum.
        axes_f = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
        grids = np.meshgrid(*axes_f, indexing="ij")
        radius = np.sqrt(sum(g**2 for g in grids)).ravel()
        shell = np.rint(radius * n_ref / width).astype(np.int64)
        # Hermitian weight: coefficients off the self-conjugate planes stand for
        # themselves and their conjugate twin in the omitted half.
        n_last = shape[-1]
        last = np.arange(n_last // 2 + 1)
        h_last = np.where((last == 0) | (2 * last == n_last), 1.0, 2.0)
        herm = np.broadcast_to(h_last, grids[0].shape).ravel()

        in_band = (shell >= 1) & (shell <= max_shell)
        wedge = as_missing_wedge(self.missing_wedge)
        if wedge is not None and common_wedge:
            if len(shape) != 3:
                raise ValueError(
                    f"missing_wedge applies to 3D volumes; got objects of shape "
                    f"{shape}."
                )
            in_band &= wedge.mask(shape).ravel()
        keep = np.flatnonzero(in_band)
        keep = keep[np.argsort(shell[keep], kind="stable")]
        shell_k = shell[keep]
        shells, starts, inverse = np.unique(
            shell_k, return_index=True, return_inverse=True
        )
        counts = np.bincount(inverse, weights=herm[keep])  # full-spectrum counts
        if self.weighting == "count":
            w_shell = counts / counts.sum()
        else:
            w_shell = np.full(len(shells), 1.0 / len(shells))
        freqs = np.stack([g.ravel()[keep] for g in grids], axis=1)
        return {
            "keep": keep,
            "herm": herm[keep],
            "starts": starts,
            "inverse": inverse,
            "coef_scale": np.sqrt(herm[keep] * w_shell[inverse]),
            "freqs": freqs,
            "n_voxels": int(np.prod(shape)),
            "shells": shells,
            "counts": counts,
        }

    # --------------------------------------------------------------- features
    def _embed(self, A, state):
        n_coef = len(state["keep"])
        out = np.empty((len(A), 2 * n_coef))
        # Transform a few objects at a time: the transient spectra stay a few MB
        # (reused by the allocator instead of freshly mapped for every block).
        step = max(1, _FFT_BATCH_VOXELS // state["n_voxels"])
        for s in range(0, len(A), step):
            G = self._shell_normalised_spectra(A[s : s + step], state)
            out[s : s + step, :n_coef] = G.real
            out[s : s + step, n_coef:] = G.imag
        return out

    def _shell_normalised_spectra(self, A, state):
        A = np.asarray(A, dtype=np.float64)
        axes = tuple(range(1, A.ndim))
        F = scipy.fft.rfftn(A, axes=axes).reshape(len(A), -1)[:, state["keep"]]
        if self.center:
            F *= self._centring_phase(A, state)
        power = state["herm"] * (F.real**2 + F.imag**2)
        shell_power = np.add.reduceat(power, state["starts"], axis=1)
        # Parseval: the full spectrum's power is N * sum(x^2).
        flat = A.reshape(len(A), -1)
        total = state["n_voxels"] * np.einsum("ij,ij->i", flat, flat)
        empty = shell_power <= _EMPTY_SHELL_RTOL * total[:, None]
        inv_norm = np.where(
            empty, 0.0, 1.0 / np.sqrt(np.where(empty, 1.0, shell_power))
        )
        return F * (inv_norm[:, state["inverse"]] * state["coef_scale"])

    @staticmethod
    def _centring_phase(A, state):
        """Phase factors moving each object's centre of mass to the box centre."""
        shape = A.shape[1:]
        flat = A.reshape(len(A), -1)
        mass = np.clip(flat - flat.mean(axis=1, keepdims=True), 0.0, None)
        total = mass.sum(axis=1)
        coords = np.indices(shape).reshape(len(shape), -1).astype(np.float64)
        com = (mass @ coords.T) / np.where(total > 0, total, 1.0)[:, None]
        box_centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
        shift = np.where(total[:, None] > 0, box_centre - com, 0.0)
        return np.exp(-2j * np.pi * (shift @ state["freqs"].T))

    def _pairwise_block(self, A, B, state):
        return A @ B.T

    # ------------------------------------------------------- per-object wedges
    def _compensated(self, X, Y, tilt_ranges, tilt_ranges_y):
        """Constrained correlation with a wedge per object (one pass per shell)."""
        X, Y, Y_is_X = _as_pair(X, Y)
        shape = X.shape[1:]
        if len(shape) != 3:
            raise ValueError(
                f"tilt_ranges apply to 3D volumes; got objects of shape {shape}."
            )
        for A, name in ((X, "X"), (Y, "Y")):
            if not np.isfinite(A).all():
                raise ValueError(f"{name} contains NaN or infinity.")
        wedge = as_missing_wedge(self.missing_wedge) or MissingWedge()
        lo_hi = wedge.validate()
        rx = (
            np.tile(lo_hi, (len(X), 1))
            if tilt_ranges is None
            else check_tilt_ranges(tilt_ranges, len(X), "tilt_ranges")
        )
        if Y_is_X:
            ry = rx
        elif tilt_ranges_y is None:
            ry = np.tile(lo_hi, (len(Y), 1))
        else:
            ry = check_tilt_ranges(tilt_ranges_y, len(Y), "tilt_ranges_y")
        state = self._prepare(X, Y, common_wedge=False)
        keep, herm = state["keep"], state["herm"]

        def spectra(A, ranges):
            masks, index = wedge.masks(shape, ranges)
            M = masks.reshape(len(masks), -1)[:, keep][index].astype(np.float64)
            A = np.asarray(A, dtype=np.float64)
            F = scipy.fft.rfftn(A, axes=(1, 2, 3)).reshape(len(A), -1)[:, keep]
            if self.center:
                F = F * self._centring_phase(A, state)
            return F * M, M

        FX, MX = spectra(X, rx)
        FY, MY = (FX, MX) if Y_is_X else spectra(Y, ry)
        bounds = list(state["starts"]) + [len(keep)]
        total = np.zeros((len(X), len(Y)))
        weight = np.zeros((len(X), len(Y)))
        for k in range(len(state["shells"])):  # a handful of shells, not pairs
            sl = slice(bounds[k], bounds[k + 1])
            h = herm[sl]
            fx, fy, mx, my = FX[:, sl], FY[:, sl], MX[:, sl], MY[:, sl]
            num = (fx.real * h) @ fy.real.T + (fx.imag * h) @ fy.imag.T
            px = (fx.real**2 + fx.imag**2) * h
            py = (fy.real**2 + fy.imag**2) * h
            den = (px @ my.T) * (mx @ py.T)
            count = (mx * h) @ my.T
            ok = den > 0
            fsc = np.where(ok, num / np.sqrt(np.where(ok, den, 1.0)), 0.0)
            w = count if self.weighting == "count" else (count > 0).astype(float)
            total += w * fsc
            weight += w
        out = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), 0.0)
        np.clip(out, -1.0, 1.0, out=out)
        if Y_is_X:
            np.fill_diagonal(out, 1.0)
        return out
