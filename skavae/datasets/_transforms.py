"""Rotation and translation helpers shared by the 3D generators.

Conventions (used by :func:`~skavae.datasets.make_tetraminos` and
:func:`~skavae.datasets.make_proteins`):

* A volume ``V`` is indexed ``V[i0, i1, i2]``; a point has coordinates
  ``(p0, p1, p2)`` along those array axes, in voxels, and voxel ``i`` covers
  ``[i, i + 1)`` so its centre is at ``i + 0.5``. The centre of an ``n``-voxel
  grid is therefore at ``n / 2`` on every axis.
* ``angle_k`` (degrees) is a right-handed rotation *about array axis k*, that
  is in the plane of the two other axes. The three rotations are applied in the
  order axis 0, then axis 1, then axis 2: ``R = R2 @ R1 @ R0``.
* Cosines and sines of multiples of 90 degrees are exact (so a rotation by 360
  degrees is exactly the identity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def cos_sin(angles_deg):
    """Cosine and sine of angles in degrees, exact at multiples of 90 degrees."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    for v in (c, s):
        r = np.round(v)
        np.copyto(v, r, where=np.abs(v - r) < 1e-12)
    return c, s


def rotation_matrices_3d(angles_deg):
    """Rotation matrices for angles about array axes 0, 1 and 2.

    Parameters
    ----------
    angles_deg : array-like of shape (n, 3)
        Angles in degrees about axes 0, 1, 2, applied in that order.

    Returns
    -------
    R : ndarray of shape (n, 3, 3)
        ``R @ p`` rotates a column vector ``p`` (coordinates along array axes).

    Examples
    --------
    >>> import numpy as np
    >>> R = rotation_matrices_3d([[0, 0, 90]])
    >>> np.round(R[0] @ [1.0, 0.0, 0.0], 12)
    array([0., 1., 0.])
    """
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3)
    c, s = cos_sin(angles)
    n = len(angles)
    mats = []
    for k in range(3):
        i, j = (k + 1) % 3, (k + 2) % 3  # right-handed: axis i turns to axis j
        m = np.zeros((n, 3, 3))
        m[:, k, k] = 1.0
        m[:, i, i] = c[:, k]
        m[:, j, j] = c[:, k]
        m[:, j, i] = s[:, k]
        m[:, i, j] = -s[:, k]
        mats.append(m)
    return mats[2] @ mats[1] @ mats[0]


def sample_angles(n_samples, rng, *, angle_step=10.0, rotate=True):
    """Angles in {step, 2 step, ..., 360} degrees in 3 planes (zeros if not rotate)."""
    if not rotate:
        return np.zeros((n_samples, 3))
    n_steps = int(round(360.0 / angle_step))
    return rng.randint(1, n_steps + 1, size=(n_samples, 3)) * float(angle_step)


def check_rotate(rotate):
    """``rotate`` of the 3D generators: True/"grid", "uniform" or False."""
    if isinstance(rotate, (bool, np.bool_)):
        return "grid" if rotate else None
    if rotate in ("grid", "uniform"):
        return rotate
    raise ValueError(
        f"rotate must be True (or 'grid'), 'uniform' or False; got {rotate!r}."
    )


def sample_rotations(n_samples, rng, *, rotate="grid", angle_step=10.0):
    """Angles (n, 3) and rotation matrices (n, 3, 3) of random poses.

    ``rotate="grid"`` draws angles from {step, ..., 360} about the three array
    axes (the paper's poses); ``"uniform"`` draws rotations uniformly from SO(3)
    (Haar measure) and reports them as angles of the same convention; ``None``
    is the identity.
    """
    if rotate == "uniform":
        from scipy.spatial.transform import Rotation

        R = Rotation.random(n_samples, random_state=rng).as_matrix()
        return Rotation.from_matrix(R).as_euler("xyz", degrees=True), R
    angles = sample_angles(
        n_samples, rng, angle_step=angle_step, rotate=rotate is not None
    )
    return angles, rotation_matrices_3d(angles)


def sample_shifts(n_samples, max_shift, rng, ndim=3):
    """Uniform translations in [-max_shift, max_shift] voxels per axis."""
    if max_shift == 0:
        return np.zeros((n_samples, ndim))
    return rng.uniform(-max_shift, max_shift, size=(n_samples, ndim))


def pose_info(y, angles, shifts):
    """Per-sample info table: ``label``, ``angle_0..2`` and ``shift_0..2``."""
    info = pd.DataFrame({"label": y})
    for d in range(angles.shape[1]):
        info[f"angle_{d}"] = angles[:, d]
    for d in range(shifts.shape[1]):
        info[f"shift_{d}"] = shifts[:, d]
    return info


def splat_trilinear(points, weights, shape, out=None):
    """Accumulate weighted points onto a grid with trilinear weights.

    Parameters
    ----------
    points : ndarray of shape (n_volumes, n_points, 3)
        Coordinates in voxels (voxel ``i`` has its centre at ``i + 0.5``).
    weights : ndarray of shape (n_points,) or (n_volumes, n_points)
        Weight of each point; the sum of weights inside the grid is preserved.
    shape : tuple of 3 ints
        Grid shape.
    out : ndarray of shape (n_volumes, *shape), default=None
        Output buffer (float32); a new one if None.

    Returns
    -------
    out : ndarray of shape (n_volumes, *shape)
        Points falling (partly) outside the grid lose their outside share.
    """
    n_vol, n_pts, _ = points.shape
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape))
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (n_vol, n_pts))
    q = points - 0.5  # index coordinates: voxel centres at integers
    base = np.floor(q)
    frac = q - base
    base = base.astype(np.int64)
    # per axis, the lower and upper neighbour: index (clipped) and weight (zero
    # outside the grid), combined below into the eight corners
    index, weight = [], []
    for a in range(3):
        pair_index, pair_weight = [], []
        for d, w_d in ((0, 1.0 - frac[..., a]), (1, frac[..., a])):
            i = base[..., a] + d
            pair_index.append(np.clip(i, 0, shape[a] - 1))
            pair_weight.append(np.where((i >= 0) & (i < shape[a]), w_d, 0.0))
        index.append(pair_index)
        weight.append(pair_weight)
    offset = (size * np.arange(n_vol))[:, None]
    flat = np.empty((8, n_vol, n_pts), dtype=np.int64)
    vals = np.empty((8, n_vol, n_pts), dtype=np.float64)
    corner = 0
    for d0 in (0, 1):
        lin0 = index[0][d0] * shape[1]
        w0 = weight[0][d0] * w
        for d1 in (0, 1):
            lin1 = (lin0 + index[1][d1]) * shape[2] + offset
            w1 = w0 * weight[1][d1]
            for d2 in (0, 1):
                np.add(lin1, index[2][d2], out=flat[corner])
                np.multiply(w1, weight[2][d2], out=vals[corner])
                corner += 1
    acc = np.bincount(flat.ravel(), vals.ravel(), minlength=n_vol * size)
    acc = acc.reshape((n_vol, *shape))
    if out is None:
        return acc.astype(np.float32)
    out[...] = acc
    return out
