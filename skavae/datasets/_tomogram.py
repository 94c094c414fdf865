"""A synthetic tomogram with ground truth: molecules placed in a crowded slab.

:func:`make_tomogram` places molecules of the shipped structures at random,
non-overlapping positions (each molecule entirely inside the tomogram) in
uniform random orientations (Haar measure of SO(3)), renders them as
:func:`make_proteins` does (one Gaussian per atom weighted by its atomic
number, in electrons per Å³; positive contrast, as after the usual contrast
inversion of tomograms), then applies the forward model of
:func:`simulate_subtomograms` to the whole tomogram: one CTF (one defocus) and
one missing wedge (the tilt range) per tomogram, then noise.

Ground truth
------------
One row per molecule: ``x``, ``y``, ``z`` in tomogram pixels (0-based; the
centre of mass of the structure), ``class`` (1-based number in the sorted
order of the labels, the order of a fitted model's ``classes_``),
``class_name`` (PDB id), ``rot``, ``tilt``, ``psi``
(RELION's ZYZ Euler angles: the rotation that turns the structure as stored
into the molecule in the tomogram is
``euler_to_matrix([rot, tilt, psi])``, see :mod:`skavae.io._euler`),
``pixel_size``, ``tilt_min``, ``tilt_max``, ``defocus_um`` and
``radius_px`` (reach of the molecule in voxels).

Distractors
-----------
``fiducials`` gold beads and ``vesicles`` membrane vesicles can be added as
things a picker or classifier must not take for molecules. A bead is a solid
ball (default 100 Å across, the usual 10 nm gold) of ten times the highest
density of the rendered molecules; a vesicle is a spherical lipid bilayer,
a shell 40 Å thick (two Gaussian leaflets of the molecules' highest
density, 30 Å apart) of outer radius drawn uniformly in 150-300 Å (capped at
a third of the tomogram's smallest side). Both are placed with the molecules
by the same non-overlapping random addition (the vesicles first, then the
beads, then the molecules; molecules never sit inside a vesicle), blurred
to the map resolution, and go through the same CTF, wedge and noise. They
are not particles: ``particles`` lists only the molecules, and
``particles.attrs["skavae_distractors"]`` counts them.

SNR
---
``snr`` is the mean variance of the noise-free ``box``-voxel boxes centred on
the molecules over the variance of the added noise: the SNR of the
subtomograms one cuts, as for :func:`simulate_subtomograms` (the variance of
the mostly empty tomogram would give a much lower figure).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.transform import Rotation

from skavae._checks import check_int, check_seed
from skavae._ctf import CTF
from skavae._wedge import MissingWedge
from skavae.datasets._shipped import load_atoms
from skavae.datasets._transforms import splat_trilinear
from skavae.datasets._validation import check_positive_int, check_real

__all__ = ["TOMOGRAM_STRUCTURES", "make_tomogram"]

#: Default molecules of :func:`make_tomogram`: six shipped E. coli machines
#: from 46 kDa to 0.84 MDa, different in size and shape at 10 Å per voxel.
TOMOGRAM_STRUCTURES = ("1aon", "5a1a", "2gls", "1gyt", "1ecp", "3rer")

_BATCH_ATOMS = 400_000  # atoms x molecules splatted at once
_TENT_VARIANCE = 1.0 / 6.0  # per-axis variance of trilinear splatting, voxel^2
_SIGMA_FACTOR = float(1.0 / (np.pi * np.sqrt(2.0)))  # Chimera molmap
_MAX_TRIES = 2000  # candidate positions per molecule


def _structures(structures):
    from skavae.datasets._shipped import _resolve_structures

    if structures is None:
        structures = list(TOMOGRAM_STRUCTURES)
    return _resolve_structures(structures)


def _check_shape(shape):
    try:
        values = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        values = ()
    if (
        len(values) != 3
        or any(v < 8 for v in values)
        or any(float(v) != float(s) for v, s in zip(values, shape))
    ):
        raise ValueError(
            f"shape must be 3 integers (nz, ny, nx), each at least 8; got {shape!r}."
        )
    return values


def _wedge(tilt_range):
    if tilt_range is None:
        return None
    if isinstance(tilt_range, MissingWedge):
        return tilt_range
    return MissingWedge(tilt_range=tuple(float(v) for v in tilt_range))


def _place(radii, shape, gap, rng):
    """Centres (z, y, x voxels) without overlap, each molecule inside ``shape``."""
    n = len(radii)
    centres = np.empty((n, 3))
    lo = radii[:, None] + 0.5
    hi = np.asarray(shape, dtype=np.float64)[None, :] - 1.5 - radii[:, None]
    if (hi < lo).any():
        k = int(np.flatnonzero((hi < lo).any(axis=1))[0])
        raise ValueError(
            f"a molecule of radius {radii[k]:.1f} voxels does not fit in a "
            f"tomogram of shape {tuple(shape)}."
        )
    for i in range(n):  # random sequential addition, a vectorised check each
        tries = rng.uniform(lo[i], hi[i], size=(_MAX_TRIES, 3))
        if i:
            d = np.linalg.norm(tries[:, None, :] - centres[None, :i], axis=2)
            ok = (d >= radii[None, :i] + radii[i] + gap).all(axis=1)
        else:
            ok = np.ones(_MAX_TRIES, dtype=bool)
        if not ok.any():
            raise ValueError(
                f"only {i} of {n} molecules fit without overlap in a tomogram of "
                f"shape {tuple(shape)}; ask for fewer particles or a larger "
                "tomogram."
            )
        centres[i] = tries[int(np.argmax(ok))]
    return centres


def _render(atoms, rotations, centres, shape, voxel_size, sigma_vox, out):
    """Add molecules of one structure into ``out`` (z, y, x), in place.

    ``atoms`` are (coords in Å about the centre of mass, z-y-x order, weights);
    ``rotations`` act on (x, y, z) vectors; ``centres`` are z, y, x voxels.
    """
    coords, weights = atoms
    filter_sigma = np.sqrt(max(sigma_vox**2 - _TENT_VARIANCE, 0.0))
    reach = np.linalg.norm(coords, axis=1).max() / voxel_size
    half = int(np.ceil(reach + 4 * filter_sigma + 2))
    side = 2 * half + 1
    step = max(1, _BATCH_ATOMS // len(coords))
    P = np.eye(3)[::-1]  # x, y, z <-> z, y, x
    for start in range(0, len(rotations), step):
        R = P @ rotations[start : start + step] @ P  # in z, y, x order
        c = centres[start : start + step]
        corner = np.floor(c).astype(np.int64) - half
        pts = np.einsum("bij,nj->bni", R, coords) / voxel_size
        pts += (c - corner)[:, None, :] + 0.5  # splat voxel centres at i + 0.5
        boxes = splat_trilinear(pts, weights, (side, side, side))
        if filter_sigma > 0:
            boxes = ndimage.gaussian_filter(
                boxes,
                sigma=(0, filter_sigma, filter_sigma, filter_sigma),
                mode="constant",
                truncate=4.0,
            )
        boxes /= voxel_size**3
        for k in range(len(boxes)):  # add each box, clipped to the tomogram
            lo = np.maximum(corner[k], 0)
            hi = np.minimum(corner[k] + side, shape)
            src = tuple(slice(a - b, e - b) for a, e, b in zip(lo, hi, corner[k]))
            dst = tuple(slice(a, e) for a, e in zip(lo, hi))
            out[dst] += boxes[k][src]


def _template(atoms, box, voxel_size, sigma_vox):
    """The structure unrotated, centred on voxel ``box // 2`` (extraction's)."""
    out = np.zeros((box, box, box), dtype=np.float32)
    centre = np.full((1, 3), float(box // 2))
    _render(atoms, np.eye(3)[None], centre, (box,) * 3, voxel_size, sigma_vox, out)
    return out


def make_tomogram(
    shape=(128, 256, 256),
    *,
    n_particles=100,
    structures=None,
    voxel_size=10.0,
    resolution=None,
    gap=1.0,
    tilt_range=(-60.0, 60.0),
    ctf=True,
    snr=0.5,
    noise="white",
    box=32,
    name="tomo",
    fiducials=0,
    vesicles=0,
    fiducial_diameter=100.0,
    return_templates=False,
    random_state=None,
):
    """A tomogram of molecules in random poses, with the ground-truth particles.

    Parameters
    ----------
    shape : tuple of 3 ints, default=(128, 256, 256)
        ``(nz, ny, nx)`` voxels (beam along z). The default, 1.28 x 2.56 x
        2.56 µm at 10 Å, takes a few seconds; 64 x 128 x 128 with 30
        particles is the tiny version of the tests.
    n_particles : int, default=100
        Molecules, classes drawn in turn (counts differ by at most one).
    structures : list, default=None
        As in :func:`make_proteins` (shipped PDB ids, files, ...); default
        :data:`TOMOGRAM_STRUCTURES`, six E. coli machines.
    voxel_size : float, default=10.0
        Å per voxel.
    resolution : float, default=None
        Resolution of the maps in Å (molmap's); default ``2 * voxel_size``.
    gap : float, default=1.0
        Smallest distance, in voxels, between the reaches of two molecules.
    tilt_range : (float, float), MissingWedge or None, default=(-60, 60)
        Tilt range of the tilt series (degrees): the missing wedge of the
        tomogram (tilt axis y). None: no wedge.
    ctf : bool or CTF, default=True
        The CTF of the tilt series (``True``: ``CTF()``, one defocus drawn in
        2-5 µm, phase-flipped); False: none.
    snr : float or None, default=0.5
        Signal-to-noise ratio of ``box``-voxel subtomograms (see
        :mod:`skavae.datasets._tomogram`); None adds no noise.
    noise : {"white", "wedge"}, default="white"
        White Gaussian noise or noise confined to the measured wedge.
    box : int, default=32
        Box of the SNR definition and of the templates.
    name : str, default="tomo"
        The ``tomo_name`` of the particles.
    fiducials : int, default=0
        Gold beads added as distractors (see :mod:`skavae.datasets._tomogram`,
        "Distractors"); not particles.
    vesicles : int, default=0
        Membrane vesicles added as distractors; not particles.
    fiducial_diameter : float, default=100.0
        Diameter of a gold bead in Å.
    return_templates : bool, default=False
        Also return the clean templates (``box``-voxel maps of each structure
        unrotated, centred on voxel ``box // 2``) and the noise-free tomogram.
    random_state : int, RandomState instance or None, default=None
        Controls classes, positions, orientations, defocus and noise.

    Returns
    -------
    tomogram : ndarray of shape ``shape``, float32
        Axes z, y, x.
    particles : pandas.DataFrame
        The ground truth, one row per molecule (see
        :mod:`skavae.datasets._tomogram`); :func:`skavae.io.write_particles`
        writes it as a RELION STAR file.
    templates : dict of str to ndarray
        Only with ``return_templates``.
    clean : ndarray of shape ``shape``
        Only with ``return_templates``: the tomogram before CTF, wedge and
        noise.

    Raises
    ------
    ValueError
        For a bad parameter, or when the molecules do not fit without overlap.

    See Also
    --------
    skavae.io.extract_subtomograms : Cut the particles out again.
    simulate_subtomograms : The forward model, per subtomogram.

    Examples
    --------
    >>> from skavae.datasets import make_tomogram
    >>> tomo, particles = make_tomogram((32, 64, 64), n_particles=4,
    ...                                 structures=["1ecp", "3rer"],
    ...                                 random_state=0)
    >>> tomo.shape, tomo.dtype
    ((32, 64, 64), dtype('float32'))
    >>> particles[["class", "class_name"]].value_counts().sort_index().tolist()
    [2, 2]
    >>> sorted(particles.columns)[:6]
    ['class', 'class_name', 'defocus_um', 'pixel_size', 'psi', 'radius_px']
    """
    shape = _check_shape(shape)
    n_particles = check_positive_int(n_particles, "n_particles")
    voxel_size = check_real(voxel_size, "voxel_size", low=0.0, low_inclusive=False)
    if resolution is None:
        resolution = 2.0 * voxel_size
    resolution = check_real(resolution, "resolution", low=0.0, low_inclusive=False)
    gap = check_real(gap, "gap", low=0.0)
    box = check_int(box, "box", low=4)
    if box > min(shape):
        raise ValueError(f"box {box} is larger than the tomogram {shape}.")
    if noise not in ("white", "wedge"):
        raise ValueError(f"noise must be 'white' or 'wedge'; got {noise!r}.")
    wedge = _wedge(tilt_range)
    if noise == "wedge" and wedge is None:
        raise ValueError("noise='wedge' needs a tilt_range.")
    if ctf is True:
        ctf = CTF()
    elif ctf is False or ctf is None:
        ctf = None
    elif not isinstance(ctf, CTF):
        raise ValueError(f"ctf must be True, False or a CTF; got {ctf!r}.")
    if snr is not None:
        snr = check_real(snr, "snr", low=0.0, low_inclusive=False)
    pairs = _structures(structures)
    rng = check_seed(random_state)
    fiducials = check_int(fiducials, "fiducials", low=0)
    vesicles = check_int(vesicles, "vesicles", low=0)
    fiducial_diameter = check_real(
        fiducial_diameter, "fiducial_diameter", low=0.0, low_inclusive=False
    )

    sigma_vox = _SIGMA_FACTOR * resolution / voxel_size
    atoms, radii = [], []
    for _, source in pairs:
        coords, weights = load_atoms(source)
        centre = (coords * weights[:, None]).sum(axis=0) / weights.sum()
        coords = (coords - centre)[:, ::-1]  # x, y, z -> array axes z, y, x
        atoms.append((coords, weights))
        radii.append(np.linalg.norm(coords, axis=1).max() / voxel_size + sigma_vox)
    radii = np.asarray(radii)
    labels = [label for label, _ in pairs]
    number = np.argsort(np.argsort(labels)) + 1  # 1-based, sorted label order
    cls = rng.permutation(np.arange(n_particles) % len(pairs))
    extra = _distractor_radii(fiducials, vesicles, fiducial_diameter, shape,
                              voxel_size, sigma_vox, rng)  # fmt: skip
    centres = _place(np.concatenate([extra, radii[cls]]), shape, gap, rng)
    others, centres = centres[: len(extra)], centres[len(extra) :]
    rotations = Rotation.random(n_particles, random_state=rng).as_matrix()

    clean = np.zeros(shape, dtype=np.float32)
    for k in range(len(pairs)):
        members = np.flatnonzero(cls == k)
        if len(members):
            _render(atoms[k], rotations[members], centres[members], shape,
                    voxel_size, sigma_vox, clean)  # fmt: skip
    if len(extra):
        _render_distractors(clean, others, extra, vesicles, sigma_vox, voxel_size)

    tomogram, defocus = _forward(clean, wedge, ctf, voxel_size, rng)
    from skavae.io._extract import gather_boxes

    corners = np.rint(centres).astype(np.int64) - box // 2
    boxes = gather_boxes(tomogram, corners, box, float(tomogram.mean()))
    signal_var = float(boxes.reshape(len(boxes), -1).var(axis=1).mean())
    if snr is not None:
        noise_sd = np.sqrt(signal_var / snr)
        eps = np.random.default_rng(rng.randint(2**32, size=4)).standard_normal(
            size=shape, dtype=np.float32
        )
        if noise == "wedge":
            eps = _filter(eps, wedge, None, voxel_size, None)
            eps /= eps.std()
        tomogram = tomogram + eps * np.float32(noise_sd)
    else:
        noise_sd = 0.0

    from skavae.io._euler import matrix_to_euler

    angles = matrix_to_euler(rotations)
    lo, hi = wedge.validate() if wedge is not None else (np.nan, np.nan)
    particles = pd.DataFrame(
        {
            "tomo_name": pd.Series([str(name)] * n_particles, dtype=object),
            "x": centres[:, 2],
            "y": centres[:, 1],
            "z": centres[:, 0],
            "class": number[cls],
            "class_name": np.asarray(labels)[cls],
            "rot": angles[:, 0],
            "tilt": angles[:, 1],
            "psi": angles[:, 2],
            "pixel_size": np.full(n_particles, voxel_size),
            "tilt_min": np.full(n_particles, lo),
            "tilt_max": np.full(n_particles, hi),
            "defocus_um": np.full(n_particles, defocus),
            "radius_px": radii[cls],
        }
    )
    particles.attrs = {
        "skavae_snr": snr,
        "skavae_signal_var": signal_var,
        "skavae_noise_sd": float(noise_sd),
        "skavae_distractors": {"fiducials": fiducials, "vesicles": vesicles},
    }
    tomogram = np.ascontiguousarray(tomogram, dtype=np.float32)
    if not return_templates:
        return tomogram, particles
    templates = {
        label: _template(a, box, voxel_size, sigma_vox)
        for label, a in zip(labels, atoms)
    }
    return tomogram, particles, templates, clean


#: A lipid bilayer: two leaflets (head groups) this far apart, Å, and the
#: thickness of the whole membrane
_LEAFLET_SEPARATION = 30.0
_MEMBRANE_THICKNESS = 40.0
_GOLD_CONTRAST = 10.0  # bead density over the molecules' highest density


def _distractor_radii(fiducials, vesicles, diameter, shape, voxel_size, sigma, rng):
    """Reach (voxels) of the vesicles (drawn) then the beads, for ``_place``."""
    if not (fiducials or vesicles):
        return np.empty(0)  # no draw: the same tomogram as without the options
    top = min(300.0, min(shape) * voxel_size / 3)
    outer = rng.uniform(min(150.0, top), top, size=vesicles) / voxel_size
    bead = np.full(fiducials, diameter / 2 / voxel_size)
    return np.concatenate([outer, bead]) + 2 * sigma


def _render_distractors(clean, centres, reach, n_vesicles, sigma, voxel_size):
    """Add vesicles (first ``n_vesicles``) and gold beads into ``clean``."""
    peak = float(clean.max()) if clean.size and clean.max() > 0 else 1.0
    shape = np.asarray(clean.shape)
    half_gap = _LEAFLET_SEPARATION / 2 / voxel_size
    leaflet = max(sigma, (_MEMBRANE_THICKNESS - _LEAFLET_SEPARATION) / 4 / voxel_size)
    for k, (c, r) in enumerate(zip(centres, reach)):
        lo = np.maximum(np.floor(c - r).astype(int) - 1, 0)
        hi = np.minimum(np.ceil(c + r).astype(int) + 2, shape)
        grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        d = np.sqrt(sum((g + 0.0 - ci) ** 2 for g, ci in zip(grid, c)))
        inner = r - 2 * sigma  # reach = body + 2 sigma of blur
        if k < n_vesicles:  # bilayer: two Gaussian leaflets about the mid-plane
            mid = inner - _MEMBRANE_THICKNESS / 2 / voxel_size
            value = sum(
                np.exp(-0.5 * ((d - mid - s) / leaflet) ** 2)
                for s in (-half_gap, half_gap)
            )
            value *= peak
        else:  # a solid ball with a soft edge at the map resolution
            from scipy.special import erfc

            value = 0.5 * erfc((d - inner) / (np.sqrt(2) * max(sigma, 0.5)))
            value *= _GOLD_CONTRAST * peak
        clean[tuple(slice(a, b) for a, b in zip(lo, hi))] += value.astype(np.float32)


def _filter(volume, wedge, ctf, voxel_size, defocus):
    """``volume`` through the CTF (one defocus) and the wedge, by one FFT."""
    import scipy.fft

    F = scipy.fft.rfftn(volume, workers=-1)
    if ctf is not None:
        F *= ctf.transfer(volume.shape, voxel_size, [defocus])[0]
    if wedge is not None:
        F *= wedge.mask(volume.shape)
    return scipy.fft.irfftn(F, s=volume.shape, workers=-1).astype(np.float32)


def _forward(clean, wedge, ctf, voxel_size, rng):
    """CTF and missing wedge of one tilt series applied to the whole tomogram."""
    if ctf is None and wedge is None:
        return clean.copy(), np.nan
    defocus = float(ctf.sample_defocus(1, rng)[0]) if ctf is not None else np.nan
    return _filter(clean, wedge, ctf, voxel_size, defocus), defocus
