"""A forward model of cryo-electron tomography: clean maps -> subtomograms.

:func:`simulate_subtomograms` applies, in this order and each only when asked:

1. **pose** — a uniform random rotation of SO(3) (a uniform angle in 2D) and a
   sub-voxel shift, by trilinear resampling about the box centre;
2. **crowding** — parts of neighbouring molecules (other objects of the stack,
   in random poses) whose centres lie between 0.6 and 0.9 box widths away,
   so that they enter the box from its faces;
3. **CTF** — the 3D CTF of a tilt series (a function of ``|k|``, see
   :mod:`skavae._ctf`), one defocus per particle, phase-flipped by default;
4. **missing wedge** — the Fourier coefficients no tilt measured are zeroed
   (see :mod:`skavae._wedge` for the geometry: beam along axis 0, tilt axis
   along axis 1 by default);
5. **noise** — Gaussian noise at a stated signal-to-noise ratio, white by
   default or confined to the measured wedge (``noise="wedge"``, as noise
   back-projected from the tilt images is).

Steps 3 and 4 are one batched real FFT pass over chunks of the stack.

The **SNR** of a sample is the variance of its noise-free box (after pose,
crowding, CTF and wedge, over all voxels of the box) divided by the variance
of the noise added to it. By default (``snr_mode="stack"``) the noise level is
one for the whole stack, as in one tomogram: the *mean* SNR over the stack is
the requested one and a small molecule gets a lower SNR than a large one.
``snr_mode="particle"`` sets every sample's own SNR instead; its noise level
then grows with the molecule's signal, which tells classes apart by the
noise alone - convenient for tests, unrealistic for benchmarks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.fft
import torch
from scipy.spatial.transform import Rotation

from skavae._checks import check_seed
from skavae._ctf import CTF
from skavae._wedge import as_missing_wedge, check_tilt_ranges
from skavae.datasets._validation import check_positive_int, check_real

__all__ = ["simulate_subtomograms"]

_CHUNK_VOXELS = 2**23  # voxels transformed at a time (32 MB of float32)


def random_rotations(n, ndim, rng):
    """Uniform random rotation matrices (Haar measure of SO(3), or SO(2))."""
    if ndim == 3:
        return Rotation.random(n, random_state=rng).as_matrix()
    theta = rng.uniform(0.0, 2 * np.pi, size=n)
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def euler_from_matrices(R):
    """Angles (degrees) about array axes 0, 1, 2 applied in that order.

    The convention of :func:`skavae.datasets._transforms.rotation_matrices_3d`,
    so that the info columns of grid and uniform poses mean the same thing.
    """
    return Rotation.from_matrix(R).as_euler("xyz", degrees=True)


def resample(volumes, rotations, shifts):
    """Rotate (about the box centre) then shift each object, trilinearly.

    ``rotations`` (n, d, d) rotate coordinates along array axes; ``shifts``
    (n, d) are in voxels. Voxels sampled from outside the box are 0.
    """
    X = torch.from_numpy(np.ascontiguousarray(volumes, dtype=np.float32))
    size = X.shape[1]
    R = torch.from_numpy(np.asarray(rotations, dtype=np.float32))
    t = torch.from_numpy(np.asarray(shifts, dtype=np.float32)) * (2.0 / size)
    # sample point q = R^T (p - t) in normalised coordinates; grid order is the
    # reverse of the array order (x, y, z)
    A = R.transpose(1, 2).flip(1).flip(2)
    b = -(A @ t.flip(1)[..., None])
    theta = torch.cat([A, b], dim=2)
    grid = torch.nn.functional.affine_grid(
        theta, (len(X), 1, *X.shape[1:]), align_corners=False
    )
    out = torch.nn.functional.grid_sample(
        X[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[:, 0].numpy()


def _check_ctf(ctf, voxel_size):
    if ctf is None or ctf is False:
        return None
    if ctf is True:
        ctf = CTF()
    if not isinstance(ctf, CTF):
        raise ValueError(f"ctf must be None, True or a CTF instance; got {ctf!r}.")
    ctf.defocus_range()
    if voxel_size is None:
        raise ValueError(
            "voxel_size (in Å) is needed to apply a CTF; give voxel_size=..."
        )
    return ctf


def simulate_subtomograms(
    X,
    *,
    voxel_size=None,
    rotate=False,
    max_shift=0.0,
    crowding=0,
    ctf=None,
    missing_wedge=None,
    tilt_ranges=None,
    snr=None,
    snr_mode="stack",
    noise="white",
    return_info=False,
    random_state=None,
):
    """Turn clean volumes (or images) into realistic cryo-ET subtomograms.

    Parameters
    ----------
    X : array-like of shape (n_samples, D, H, W) or (n_samples, H, W)
        Clean objects, centred in their boxes. Rotation needs square/cubic
        boxes.
    voxel_size : float, default=None
        Voxel (pixel) edge in Å; needed by the CTF.
    rotate : bool, default=False
        Rotate every object by a uniform random rotation of SO(3) (uniform
        in-plane angle for images) about the box centre.
    max_shift : float, default=0.0
        Shifts drawn uniformly in ``[-max_shift, max_shift]`` voxels per axis
        (sub-voxel shifts are trilinear).
    crowding : int, default=0
        Number of neighbouring molecules per box: other objects of ``X`` in
        random poses, centred 0.6-0.9 box widths away in a random direction,
        so that parts of them enter the box.
    ctf : None, bool or CTF, default=None
        The contrast transfer function (:class:`~skavae.datasets.CTF`);
        ``True`` means ``CTF()``: 300 kV, Cs 2.7 mm, amplitude contrast 0.07,
        underfocus uniform in 2-5 µm per particle, phase-flipped.
    missing_wedge : None, (float, float) or MissingWedge, default=None
        Tilt range in degrees (``(-60, 60)`` is typical) or a
        :class:`~skavae.datasets.MissingWedge` (tilt axis, tilt increment).
        3D only.
    tilt_ranges : array-like of shape (n_samples, 2), default=None
        Per-sample tilt ranges (particles from different tomograms), overriding
        the range of ``missing_wedge`` (its axis and increment still apply).
    snr : float, default=None
        Signal-to-noise ratio: variance of the noise-free box over the
        variance of the added noise (see ``snr_mode``). ``None`` adds no noise.
    snr_mode : {"stack", "particle"}, default="stack"
        ``"stack"``: one noise level for all samples, so that the mean of the
        per-sample signal variances over the noise variance is ``snr`` (one
        tomogram). ``"particle"``: each sample's own SNR is ``snr``.
    noise : {"white", "wedge"}, default="white"
        White Gaussian noise, or noise confined to the measured Fourier
        coefficients (needs ``missing_wedge``), as in a reconstructed tomogram.
    return_info : bool, default=False
        Also return a DataFrame with one row per sample.
    random_state : int, RandomState instance or None, default=None
        Controls poses, neighbours, defocus and noise.

    Returns
    -------
    X_out : ndarray of shape X.shape, float32
    info : pandas.DataFrame
        Only with ``return_info``: ``snr`` (of each sample: its signal
        variance over its noise variance), ``signal_var``, ``noise_sd``,
        ``defocus_um`` (NaN without CTF), ``tilt_min``, ``tilt_max`` (NaN
        without wedge), ``n_neighbours`` and, with ``rotate``/``max_shift``,
        ``angle_0..2`` (degrees about array axes 0, 1, 2 in that order; in 2D
        ``angle``) and ``shift_*`` (voxels).

    Raises
    ------
    ValueError
        For a parameter out of range (``snr <= 0``, a reversed tilt range or
        one outside [-90, 90], a non-positive defocus, a CTF without
        ``voxel_size``, a wedge for 2D images), naming it.

    See Also
    --------
    MissingWedge, CTF : The wedge and CTF models.
    make_proteins, make_tetraminos : Generators taking the same options.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.datasets import make_proteins, simulate_subtomograms
    >>> X, y = make_proteins(n_samples=8, size=24, voxel_size=6.0, random_state=0)
    >>> noisy, info = simulate_subtomograms(
    ...     X, voxel_size=6.0, ctf=True, missing_wedge=(-60, 60), snr=0.1,
    ...     return_info=True, random_state=0)
    >>> noisy.shape, noisy.dtype
    ((8, 24, 24, 24), dtype('float32'))
    >>> round(float(info["signal_var"].mean() / info["noise_sd"].iloc[0] ** 2), 6)
    0.1
    >>> info[["tilt_min", "tilt_max"]].iloc[0].tolist()
    [-60.0, 60.0]
    """
    X = np.asarray(X)
    if X.ndim not in (3, 4) or X.shape[0] == 0:
        raise ValueError(
            "X must be a non-empty stack of 2D images (n, H, W) or 3D volumes "
            f"(n, D, H, W); got shape {X.shape}."
        )
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}.")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")
    n, shape = X.shape[0], X.shape[1:]
    ndim = len(shape)
    if voxel_size is not None:
        voxel_size = check_real(voxel_size, "voxel_size", low=0.0, low_inclusive=False)
    if not isinstance(rotate, (bool, np.bool_)):
        raise ValueError(f"rotate must be True or False; got {rotate!r}.")
    max_shift = check_real(max_shift, "max_shift", low=0.0, high=min(shape) / 2)
    crowding = check_positive_int(crowding, "crowding", minimum=0)
    if crowding and n < 2:
        raise ValueError("crowding needs at least 2 objects in X (neighbours).")
    if (rotate or crowding) and len(set(shape)) != 1:
        raise ValueError(
            f"rotate and crowding need square or cubic boxes; got shape {shape}."
        )
    ctf = _check_ctf(ctf, voxel_size)
    if missing_wedge is None and tilt_ranges is not None:
        missing_wedge = (-60.0, 60.0)
    wedge = as_missing_wedge(missing_wedge)
    if wedge is not None and ndim != 3:
        raise ValueError(
            f"missing_wedge applies to 3D volumes; X holds {ndim}D images of shape "
            f"{shape}, where a tilt wedge has no meaning."
        )
    if snr is not None:
        snr = check_real(snr, "snr", low=0.0, low_inclusive=False)
    if snr_mode not in ("stack", "particle"):
        raise ValueError(f"snr_mode must be 'stack' or 'particle'; got {snr_mode!r}.")
    if noise not in ("white", "wedge"):
        raise ValueError(f"noise must be 'white' or 'wedge'; got {noise!r}.")
    if noise == "wedge" and wedge is None:
        raise ValueError("noise='wedge' needs a missing_wedge.")
    rng = check_seed(random_state)

    info = {}
    out = X.astype(np.float32, copy=True)
    if rotate or max_shift:
        R = (
            random_rotations(n, ndim, rng)
            if rotate
            else np.tile(np.eye(ndim), (n, 1, 1))
        )
        t = (
            rng.uniform(-max_shift, max_shift, size=(n, ndim))
            if max_shift
            else np.zeros((n, ndim))
        )
        out = _chunked(_resampler(out, R, t), n, shape)
        if rotate and ndim == 3:
            angles = euler_from_matrices(R)
            info.update({f"angle_{k}": angles[:, k] for k in range(3)})
        elif rotate:
            info["angle"] = np.degrees(np.arctan2(R[:, 1, 0], R[:, 0, 0]))
        info.update({f"shift_{k}": t[:, k] for k in range(ndim)})
    if crowding:
        clean = X.astype(np.float32, copy=False)
        for _ in range(int(crowding)):
            other = (np.arange(n) + rng.randint(1, n, size=n)) % n
            direction = rng.normal(size=(n, ndim))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            offset = direction * rng.uniform(0.6, 0.9, size=(n, 1)) * shape[0]
            out += _chunked(
                _resampler(clean, random_rotations(n, ndim, rng), offset, other),
                n,
                shape,
            )
    info["n_neighbours"] = np.full(n, int(crowding))

    defocus = ctf.sample_defocus(n, rng) if ctf is not None else None
    if wedge is not None:
        lo, hi = wedge.validate()
        ranges = (
            np.tile([lo, hi], (n, 1))
            if tilt_ranges is None
            else check_tilt_ranges(tilt_ranges, n)
        )
        masks, mask_index = wedge.masks(shape, ranges)
    if ctf is not None or wedge is not None:

        def fourier(s):
            F = scipy.fft.rfftn(out[s], axes=tuple(range(1, ndim + 1)), workers=-1)
            if ctf is not None:
                F *= ctf.transfer(shape, voxel_size, defocus[s])
            if wedge is not None:
                F *= masks[mask_index[s]]
            return scipy.fft.irfftn(
                F, s=shape, axes=tuple(range(1, ndim + 1)), workers=-1
            )

        out = _chunked(fourier, n, shape)
    info["defocus_um"] = defocus if defocus is not None else np.full(n, np.nan)
    info["tilt_min"] = ranges[:, 0] if wedge is not None else np.full(n, np.nan)
    info["tilt_max"] = ranges[:, 1] if wedge is not None else np.full(n, np.nan)

    signal_var = out.reshape(n, -1).var(axis=1, dtype=np.float64)
    if snr is not None:
        if snr_mode == "particle":
            noise_sd = np.sqrt(signal_var / snr)
        else:
            noise_sd = np.full(n, np.sqrt(signal_var.mean() / snr))
        gen = np.random.default_rng(rng.randint(2**32, size=4))
        wedge_noise = masks if noise == "wedge" else None

        def add_noise(s):
            eps = gen.standard_normal(size=(s.stop - s.start, *shape), dtype=np.float32)
            if wedge_noise is not None:
                axes = tuple(range(1, ndim + 1))
                F = scipy.fft.rfftn(eps, axes=axes, workers=-1)
                F *= wedge_noise[mask_index[s]]
                eps = scipy.fft.irfftn(F, s=shape, axes=axes, workers=-1)
                eps /= eps.reshape(len(eps), -1).std(axis=1).reshape(-1, *(1,) * ndim)
            return out[s] + eps * noise_sd[s].reshape(-1, *(1,) * ndim).astype(
                np.float32
            )

        out = _chunked(add_noise, n, shape)
    else:
        noise_sd = np.zeros(n)
    with np.errstate(divide="ignore"):
        info["snr"] = signal_var / noise_sd**2 if snr is not None else np.inf
    info["signal_var"] = signal_var
    info["noise_sd"] = noise_sd
    if not return_info:
        return out
    columns = ["snr", "signal_var", "noise_sd", "defocus_um", "tilt_min", "tilt_max"]
    columns += [c for c in info if c not in columns]
    return out, pd.DataFrame({c: info[c] for c in columns})


def _resampler(volumes, rotations, shifts, index=None):
    """``fn(slice)`` resampling the objects ``volumes[index[slice]]``."""

    def fn(s):
        idx = s if index is None else index[s]
        return resample(volumes[idx], rotations[s], shifts[s])

    return fn


def apply_generator_options(X, info, rng, *, voxel_size=None, **options):
    """The forward-model options of the generators, applied to their output.

    ``options`` are the keywords of :func:`simulate_subtomograms` that the
    generators share (``crowding``, ``ctf``, ``missing_wedge``, ``snr``,
    ``noise``); when none is set, ``X`` is returned unchanged. The per-sample
    columns are appended to ``info`` when it is not None.
    """
    active = {k: v for k, v in options.items() if v not in (None, 0, False)}
    active.pop("noise", None)
    if not active:
        return X, info
    seed = rng.randint(2**31 - 1)
    X, extra = simulate_subtomograms(
        X, voxel_size=voxel_size, return_info=True, random_state=seed, **options
    )
    if info is not None:
        for column in extra.columns:
            info[column] = extra[column].to_numpy()
    return X, info


def _chunked(fn, n, shape):
    """Apply ``fn(slice)`` over chunks of samples into one float32 array."""
    step = max(1, _CHUNK_VOXELS // int(np.prod(shape)))
    out = np.empty((n, *shape), dtype=np.float32)
    for start in range(0, n, step):
        s = slice(start, min(n, start + step))
        out[s] = fn(s)
    return out
