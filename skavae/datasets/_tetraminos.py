"""3D tetraminos: shapes of four cubes joined face to face (paper section 2.5).

Shapes are defined analytically as sets of unit cubes (``TETRAMINO_SHAPES``),
scaled to ``cube_size`` voxels per cube edge. A volume is rasterised by mapping
every output voxel back into the shape's own frame (inverse rotation,
translation and elongation) and testing whether it falls inside a cube; each
voxel is sampled at 2 x 2 x 2 points, so rotated shapes get anti-aliased
partial-volume edges while an unrotated shape is exactly binary, with
``n_cubes * cube_size**3`` voxels equal to 1. No interpolation of a resampled
volume is involved, so a rotation by 360 degrees is exactly the identity.

The eight free tetracubes (distinct under rotation) are available: the five
flat ones I, L, O, S (= Z in 3D), T; the 3D "branch" (tripod); and the two
mirror-image "screws". The default training set is the six the paper uses
(morphologically different, non-chiral pair excluded): I, L, O, S, T, branch.
The unseen shape "EL" is a fused L and T: the L's row of three cubes with the
L's foot at one end and the T's stem on the middle cube pointing out of the L's
plane (five cubes), morphologically close to L and T.
"""

from __future__ import annotations

import numpy as np

from skavae._checks import check_seed
from skavae.datasets._forward import apply_generator_options
from skavae.datasets._transforms import (
    check_rotate,
    pose_info,
    sample_rotations,
    sample_shifts,
)
from skavae.datasets._validation import (
    assign_split,
    balanced_labels,
    check_angle_step,
    check_positive_int,
    check_real,
    check_test_size,
)

__all__ = [
    "TETRAMINO_SEEN",
    "TETRAMINO_SHAPES",
    "TETRAMINO_UNSEEN",
    "make_tetraminos",
]

#: Cube positions (in cube units, axes 0, 1, 2) of every available shape. Axis
#: 0 is each shape's long axis, along which ``elongation`` stretches it.
TETRAMINO_SHAPES = {
    "I": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)),
    "L": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 1, 0)),
    "O": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)),
    "S": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)),
    "T": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (1, 1, 0)),
    "branch": ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "screw_right": ((0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)),
    "screw_left": ((0, 0, 1), (1, 0, 1), (1, 1, 1), (1, 1, 0)),
    "EL": ((0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 1, 0), (1, 0, 1)),
}
#: The six morphologically different training shapes.
TETRAMINO_SEEN = ("I", "L", "O", "S", "T", "branch")
#: The unseen fused shape, close to L and T.
TETRAMINO_UNSEEN = ("EL",)

_SUPERSAMPLE = 2
_BATCH_POINTS = 4_000_000  # sample points rasterised at once (bounds memory)


def _check_shapes(shapes):
    if shapes is None or (isinstance(shapes, str) and shapes == "seen"):
        return list(TETRAMINO_SEEN)
    if isinstance(shapes, str) and shapes == "unseen":
        return list(TETRAMINO_UNSEEN)
    if isinstance(shapes, str) and shapes == "all":
        return list(TETRAMINO_SHAPES)
    if isinstance(shapes, str):
        shapes = [shapes]
    try:
        names = [str(s) for s in shapes]
    except TypeError:
        raise ValueError(
            "shapes must be 'seen', 'unseen', 'all', a shape name or a list of "
            f"names; got {shapes!r}."
        ) from None
    unknown = [s for s in names if s not in TETRAMINO_SHAPES]
    if unknown:
        raise ValueError(
            f"Unknown tetramino shapes {unknown}; choose among "
            f"{list(TETRAMINO_SHAPES)}."
        )
    if not names:
        raise ValueError("shapes is empty; choose at least one shape.")
    if len(set(names)) != len(names):
        raise ValueError(f"shapes has duplicates: {names}.")
    return names


def _occupancy(name):
    """Padded boolean cube grid of a shape (a border of empty cubes) and centroid."""
    cubes = np.asarray(TETRAMINO_SHAPES[name])
    cubes = cubes - cubes.min(axis=0)
    occ = np.zeros(tuple(cubes.max(axis=0) + 3), dtype=bool)
    occ[tuple((cubes + 1).T)] = True
    centroid = cubes.mean(axis=0) + 0.5  # in cube units, unpadded frame
    return occ, centroid


def _rasterise(name, cube_size, size, rotations, shifts, elongations):
    """Volumes of one shape for a batch of poses, shape (n, size, size, size).

    For each output sample point ``g`` (grid coordinates, voxel ``i`` spanning
    ``[i, i + 1)``), the shape-frame point is
    ``q = E^-1 R^T (g - pivot - t) + centroid`` and the point is inside when
    ``q`` falls in an occupied cube.
    """
    occ, centroid = _occupancy(name)
    c = float(cube_size)
    centroid_vox = centroid * c
    # place the centroid at the grid centre, snapped so that unrotated cube
    # faces lie on voxel boundaries (exactly binary templates)
    offset = np.round(size / 2.0 - centroid_vox)
    pivot = centroid_vox + offset
    s = _SUPERSAMPLE
    # only the sub-box that can hold the shape is sampled: a cube of width
    # ``width`` around the pivot (the whole grid if that is not smaller)
    cubes = np.argwhere(occ) - 1.0
    unit = np.array(np.meshgrid(*[[0, 1]] * 3)).reshape(3, -1).T
    corners = cubes[:, None, :] + unit
    stretch = np.array([elongations.max(), 1.0, 1.0])
    radius = np.linalg.norm((corners.reshape(-1, 3) - centroid) * c * stretch, axis=1)
    radius = radius.max()
    width = min(size, int(np.ceil(2 * radius)) + 2)
    g = ((np.arange(width * s) + 0.5) / s).astype(np.float32)
    n = len(rotations)
    out = np.zeros((n, size, size, size), dtype=np.float32)
    shape_pad = np.array(occ.shape)
    occ_flat = occ.ravel()
    per_volume = (width * s) ** 3
    step = max(1, _BATCH_POINTS // per_volume)
    for start in range(0, n, step):
        sl = slice(start, start + step)
        # A maps (g - pivot - t) to the shape frame, in cube units (+1 padding)
        A = np.swapaxes(rotations[sl], 1, 2) / c  # R^T, in cube units
        A[:, 0, :] /= elongations[sl, None]  # undo the stretch of axis 0
        origin = pivot + shifts[sl]  # (b, 3)
        if width == size:
            corner = np.zeros_like(origin)
        else:
            corner = np.floor(origin - width / 2.0)
        b0 = centroid + 1.0 + np.einsum("bij,bj->bi", A, corner - origin)
        A32 = A.astype(np.float32)
        b32 = b0.astype(np.float32)
        # cells beyond the padded grid clip onto its empty border: no bounds test
        idx = None
        for d in range(3):
            coord = (
                A32[:, d, 0, None, None, None] * g[None, :, None, None]
                + A32[:, d, 1, None, None, None] * g[None, None, :, None]
                + (
                    A32[:, d, 2, None, None, None] * g[None, None, None, :]
                    + b32[:, d, None, None, None]
                )
            )
            np.clip(coord, 0, shape_pad[d] - 1, out=coord)
            k = coord.astype(np.int32)  # truncation = floor on clipped values
            idx = k if idx is None else idx * shape_pad[d] + k
        hit = occ_flat[idx]
        b = hit.shape[0]
        vol = hit.reshape(b, width, s, width, s, width, s).sum(
            axis=(2, 4, 6), dtype=np.int32
        )
        vol = vol.astype(np.float32) / s**3
        for i in range(b):
            lo = corner[i].astype(np.int64)
            src, dst = [], []
            for d in range(3):
                a0, a1 = max(lo[d], 0), min(lo[d] + width, size)
                if a1 <= a0:
                    break
                dst.append(slice(a0, a1))
                src.append(slice(a0 - lo[d], a1 - lo[d]))
            else:
                out[start + i][tuple(dst)] = vol[i][tuple(src)]
    return out


def make_tetraminos(
    n_samples=1000,
    *,
    shapes=None,
    size=32,
    cube_size=None,
    rotate=True,
    angle_step=10,
    max_shift=0.0,
    elongation=0.0,
    voxel_size=None,
    crowding=0,
    ctf=None,
    missing_wedge=None,
    snr=None,
    noise="white",
    test_size=None,
    return_info=False,
    random_state=None,
):
    """Generate 3D volumes of rotated tetraminos (the paper's 3D toy data set).

    Each volume holds one shape made of unit cubes joined face to face, scaled
    to ``cube_size`` voxels per cube edge, with its centre of mass at the grid
    centre, rotated about it by angles drawn from {step, 2 step, ..., 360}
    degrees about each of the three array axes (see
    :mod:`skavae.datasets._transforms` for the convention), optionally elongated
    along the shape's long axis and translated. Classes are balanced (counts
    differ by at most one) and shuffled. Voxels hold the fraction of their
    2 x 2 x 2 sample points inside the shape, so unrotated shapes are exactly
    binary and rotated ones have partial-volume edges.

    Available shapes (:data:`TETRAMINO_SHAPES`): the eight free tetracubes
    ``"I"``, ``"L"``, ``"O"``, ``"S"``, ``"T"`` (flat), ``"branch"`` (the 3D
    tripod), ``"screw_right"`` and ``"screw_left"`` (3D, mirror images of each
    other), and ``"EL"``, five cubes fusing an L and a T (the L's row of three
    with the L's foot at one end and the T's stem on the middle cube, pointing
    out of the L's plane).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of volumes.
    shapes : {"seen", "unseen", "all"}, str or list of str, default=None
        Classes to draw. ``None`` or ``"seen"`` is the paper-like training set
        I, L, O, S, T, branch (:data:`TETRAMINO_SEEN`); ``"unseen"`` is
        ``["EL"]`` (:data:`TETRAMINO_UNSEEN`); ``"all"`` every shape.
    size : int, default=32
        Volumes are ``size**3`` voxels (at least 4).
    cube_size : int, default=None
        Edge of one cube in voxels; ``None`` means ``max(1, size // 6)`` (5 at
        ``size=32``), which keeps every shape rotated inside the box with room
        for a few voxels of translation. Parts of a shape pushed out of the box
        by large cubes, shifts or elongations are cropped.
    rotate : bool or {"grid", "uniform"}, default=True
        True (or ``"grid"``): angles drawn from the grid below about each of the
        three array axes, as in the paper. ``"uniform"``: rotations drawn
        uniformly from SO(3), reported as angles of the same convention. False:
        all angles are 0.
    angle_step : float, default=10
        Angles are drawn from {angle_step, 2 angle_step, ..., 360} degrees; must
        divide 360.
    max_shift : float, default=0.0
        Translations are drawn uniformly in ``[-max_shift, max_shift]`` voxels
        along each axis (applied after rotation).
    elongation : float, default=0.0
        Elongation factors are drawn uniformly in ``[1, 1 + elongation]`` and
        stretch the shape along its own long axis (before rotation).
    voxel_size : float, default=None
        Voxel edge in Å, needed only by ``ctf``.
    crowding : int, default=0
        Neighbouring molecules entering each box (see
        :func:`simulate_subtomograms`).
    ctf : None, bool or CTF, default=None
        Contrast transfer function (``True``: 300 kV, Cs 2.7 mm, amplitude
        contrast 0.07, 2-5 µm underfocus per particle, phase-flipped).
    missing_wedge : None, (float, float) or MissingWedge, default=None
        Tilt range in degrees, e.g. ``(-60, 60)`` (beam along axis 0, tilt
        axis along axis 1), or a :class:`MissingWedge`.
    snr : float, default=None
        Signal-to-noise ratio: variance of the noise-free box over the variance
        of the added Gaussian noise, one noise level for the whole stack (its
        mean SNR is ``snr``; see :func:`simulate_subtomograms`). None adds no
        noise.
    noise : {"white", "wedge"}, default="white"
        White noise, or noise confined to the measured wedge.
    test_size : float, default=None
        If given, ``info`` gets a stratified ``split`` column with a fraction
        ``test_size`` of each class marked ``"test"``, the others ``"train"``.
    return_info : bool, default=False
        Also return the per-sample DataFrame and the class templates.
    random_state : int, RandomState instance or None, default=None
        Controls labels, angles, shifts, elongations and split.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size, size), dtype float32
        Occupancy in [0, 1].
    y : ndarray of shape (n_samples,), dtype str
        Shape name of each volume.
    info : pandas.DataFrame
        Only if ``return_info``: columns ``label``, ``angle_0``, ``angle_1``,
        ``angle_2`` (degrees about array axes 0, 1, 2, applied in that order),
        ``shift_0``, ``shift_1``, ``shift_2`` (voxels), ``elongation`` (factor),
        ``seen`` (one of :data:`TETRAMINO_SEEN`), with ``test_size``,
        ``split``, and with a forward-model option the columns of
        :func:`simulate_subtomograms` (``snr``, ``defocus_um``, ``tilt_min``,
        ``tilt_max``, ...).
    templates : dict of str to ndarray of shape (size, size, size)
        Only if ``return_info``: each class unrotated, unshifted and not
        elongated; binary, with ``n_cubes * cube_size**3`` ones.

    See Also
    --------
    make_alphanumeric : The paper's 2D data set.
    make_proteins : Density maps of real structures.
    save_mrc_folder : Write the volumes as .mrc files.

    Examples
    --------
    >>> from skavae.datasets import make_tetraminos
    >>> X, y, info, templates = make_tetraminos(
    ...     n_samples=4, size=16, return_info=True, random_state=0)
    >>> X.shape, X.dtype
    ((4, 16, 16, 16), dtype('float32'))
    >>> sorted(templates)
    ['I', 'L', 'O', 'S', 'T', 'branch']
    >>> int(templates["L"].sum())  # 4 cubes of 2**3 voxels
    32
    >>> info.columns.tolist()[:4]
    ['label', 'angle_0', 'angle_1', 'angle_2']
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    size = check_positive_int(size, "size", minimum=4)
    names = _check_shapes(shapes)
    if cube_size is None:
        cube_size = max(1, size // 6)
    cube_size = check_positive_int(cube_size, "cube_size")
    if 4 * cube_size > size:
        raise ValueError(
            f"cube_size={cube_size} is too large for size={size}: a row of four "
            "cubes must fit in the box (4 * cube_size <= size)."
        )
    rotate = check_rotate(rotate)
    angle_step = check_angle_step(angle_step)
    max_shift = check_real(max_shift, "max_shift", low=0.0, high=size / 2)
    elongation = check_real(elongation, "elongation", low=0.0, high=3.0)
    test_size = check_test_size(test_size)
    rng = check_seed(random_state)

    class_index = balanced_labels(n_samples, len(names), rng)
    angles, rotations = sample_rotations(
        n_samples, rng, rotate=rotate, angle_step=angle_step
    )
    shifts = sample_shifts(n_samples, max_shift, rng)
    factors = (
        rng.uniform(1.0, 1.0 + elongation, size=n_samples)
        if elongation > 0
        else np.ones(n_samples)
    )
    split = assign_split(class_index, test_size, rng)

    X = np.empty((n_samples, size, size, size), dtype=np.float32)
    for k, name in enumerate(names):
        members = np.flatnonzero(class_index == k)
        if len(members):
            X[members] = _rasterise(
                name,
                cube_size,
                size,
                rotations[members],
                shifts[members],
                factors[members],
            )
    y = np.asarray(names)[class_index]
    info = pose_info(y, angles, shifts) if return_info else None
    if return_info:
        info["elongation"] = factors
        info["seen"] = np.isin(y, TETRAMINO_SEEN)
        if split is not None:
            info["split"] = split
    X, info = apply_generator_options(
        X,
        info,
        rng,
        voxel_size=voxel_size,
        crowding=crowding,
        ctf=ctf,
        missing_wedge=missing_wedge,
        snr=snr,
        noise=noise,
    )
    if not return_info:
        return X, y
    identity = np.eye(3)[None]
    no_shift, no_stretch = np.zeros((1, 3)), np.ones(1)
    templates = {
        name: _rasterise(name, cube_size, size, identity, no_shift, no_stretch)[0]
        for name in names
    }
    return X, y, info, templates
