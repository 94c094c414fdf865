"""Simulated density maps of real proteins (paper section 2.5).

Maps are simulated as Chimera's ``molmap`` does: every atom contributes a 3D
Gaussian whose weight is its atomic number and whose standard deviation is
``sigma = sigma_factor * resolution``, with Chimera's default
``sigma_factor = 1 / (pi * sqrt(2)) ~ 0.225`` (so 2.25 angstroms at the default
10 angstrom resolution); B-factors are ignored, as in the paper. Values are in
electrons per cubic angstrom: ``map.sum() * voxel_size**3`` is the number of
electrons of the atoms in the box.

For speed the coordinates are rotated (no interpolation of a resampled
volume), splatted onto the grid with trilinear weights (which keeps the total
weight and the centre of mass exactly) and blurred with a separable Gaussian
filter whose variance is reduced by the trilinear spread (1/6 voxel^2 per
axis), so each atom ends up as a Gaussian of the requested width.

Shipped structures
------------------
Twelve Protein Data Bank entries (PDB data are public domain), gzipped, as
distributed with the test data of the MDAnalysisTests package: adenylate
kinase open ``4ake`` and closed ``1ake`` (two conformations of one protein),
the dimers ``1hvr`` (HIV-1 protease), ``1a28`` (progesterone receptor) and
``19hc`` (nine-haem cytochrome c), the elongated five-chain complex ``3pwp``
(HLA-A2/peptide/T-cell receptor), the beta barrel ``1osm`` (porin monomer) and
single-chain proteins from compact to elongated: ``2xcj``, ``2cay``, ``1pdo``,
``3e8m`` and ``1dx5``. Radii of gyration span 12 to 38 angstroms.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.utils import check_random_state

from skavae.datasets._pdb import is_structure_file, read_atoms, structure_label
from skavae.datasets._transforms import (
    pose_info,
    rotation_matrices_3d,
    sample_angles,
    sample_shifts,
    splat_trilinear,
)
from skavae.datasets._validation import (
    assign_split,
    balanced_labels,
    check_angle_step,
    check_positive_int,
    check_real,
    check_test_size,
)

__all__ = ["PROTEIN_IDS", "make_proteins"]

_DATA_DIR = Path(__file__).parent / "data"

#: PDB ids of the structures shipped with skavae (see the module docstring).
PROTEIN_IDS = (
    "19hc",
    "1a28",
    "1ake",
    "1dx5",
    "1hvr",
    "1osm",
    "1pdo",
    "2cay",
    "2xcj",
    "3e8m",
    "3pwp",
    "4ake",
)

_MOLMAP_SIGMA_FACTOR = 1.0 / (np.pi * np.sqrt(2.0))
_TENT_VARIANCE = 1.0 / 6.0  # per-axis variance of trilinear splatting, voxel^2
_BATCH_ATOMS = 400_000  # atoms x volumes splatted at once
_BATCH_VOXELS = 8_000_000  # voxels filtered at once


def _shipped_path(pdb_id):
    return _DATA_DIR / f"{pdb_id.lower()}.pdb.gz"


def _expand(entry):
    """(label, path) pairs for one entry: a shipped id, a file or a folder."""
    if isinstance(entry, (str, os.PathLike)):
        text = os.fspath(entry)
        if os.path.isdir(text):
            files = sorted(
                f
                for f in os.listdir(text)
                if is_structure_file(f) and os.path.isfile(os.path.join(text, f))
            )
            if not files:
                raise ValueError(
                    f"Folder {text!r} holds no .pdb, .ent, .cif or .mmcif files "
                    "(optionally gzipped)."
                )
            return [(structure_label(f), os.path.join(text, f)) for f in files]
        if os.path.isfile(text):
            return [(structure_label(text), text)]
        if text.lower() in PROTEIN_IDS:
            return [(text.lower(), os.fspath(_shipped_path(text)))]
        raise ValueError(
            f"{text!r} is neither a shipped PDB id ({', '.join(PROTEIN_IDS)}), "
            "an existing structure file nor a folder."
        )
    raise ValueError(
        f"A structure must be a PDB id, a file or a folder path; got {entry!r}."
    )


def _resolve_structures(structures):
    """List of (label, path) pairs, labels unique."""
    if structures is None:
        pairs = [(i, os.fspath(_shipped_path(i))) for i in PROTEIN_IDS]
    elif isinstance(structures, dict):
        pairs = []
        for label, entry in structures.items():
            found = _expand(entry)
            if len(found) != 1:
                raise ValueError(
                    f"structures[{label!r}] must name one structure; {entry!r} "
                    f"holds {len(found)}."
                )
            pairs.append((str(label), found[0][1]))
    elif isinstance(structures, (str, os.PathLike)):
        pairs = _expand(structures)
    else:
        try:
            entries = list(structures)
        except TypeError:
            raise ValueError(
                "structures must be None, a PDB id, a path, a list of those or a "
                f"dict label -> path; got {structures!r}."
            ) from None
        pairs = [pair for entry in entries for pair in _expand(entry)]
    if not pairs:
        raise ValueError("structures is empty; give at least one structure.")
    labels = [label for label, _ in pairs]
    duplicated = sorted({lab for lab in labels if labels.count(lab) > 1})
    if duplicated:
        raise ValueError(
            f"Several structures share the labels {duplicated}; pass a dict "
            "label -> path to name them."
        )
    return pairs


def _simulate(coords, weights, rotations, shifts, size, voxel_size, sigma_vox):
    """Maps of one structure (coordinates centred, in angstroms, z-y-x order)."""
    n = len(rotations)
    out = np.empty((n, size, size, size), dtype=np.float32)
    filter_sigma = np.sqrt(max(sigma_vox**2 - _TENT_VARIANCE, 0.0))
    step = max(1, min(_BATCH_ATOMS // len(coords), _BATCH_VOXELS // size**3))
    centre = size / 2.0
    # density is zero beyond the atoms' reach plus the filter's support, so only
    # that sub-box is filtered (zero padding makes it exactly equivalent)
    reach = np.linalg.norm(coords, axis=1).max() / voxel_size
    reach += 1 + np.ceil(4.0 * filter_sigma) + np.abs(shifts).max(initial=0.0)
    lo = int(max(0, np.floor(centre - reach)))
    hi = int(min(size, np.ceil(centre + reach)))
    box = (slice(None), *(slice(lo, hi),) * 3)
    for start in range(0, n, step):
        sl = slice(start, start + step)
        pts = np.einsum("bij,nj->bni", rotations[sl], coords) / voxel_size
        pts += centre + shifts[sl][:, None, :]
        vol = splat_trilinear(pts, weights, (size, size, size))
        if filter_sigma > 0:
            vol[box] = ndimage.gaussian_filter(
                vol[box],
                sigma=(0, filter_sigma, filter_sigma, filter_sigma),
                mode="constant",
                truncate=4.0,
            )
        out[sl] = vol / voxel_size**3
    return out


def make_proteins(
    n_samples=500,
    *,
    structures=None,
    size=64,
    voxel_size=2.5,
    resolution=10.0,
    sigma_factor=_MOLMAP_SIGMA_FACTOR,
    rotate=True,
    angle_step=10,
    max_shift=0.0,
    include_hydrogens=False,
    include_hetatm=True,
    test_size=None,
    return_info=False,
    random_state=None,
):
    """Generate density maps simulated from atomic structures, in random poses.

    Every map is a molmap-like simulation (one Gaussian per atom weighted by its
    atomic number, width set by ``resolution``) of one structure, centred on the
    map's centre of mass (the grid centre, ``size / 2`` in voxel coordinates)
    and rotated about it by angles drawn from {step, 2 step, ..., 360} degrees
    about each of the three array axes, as :func:`make_tetraminos`. Array axes
    0, 1, 2 are the structure's z, y, x axes, the order of mrc files, so a map
    saved with :func:`save_mrc_folder` has the right hand. Classes are balanced
    (counts differ by at most one) and shuffled. Waters are skipped; all chains
    and, by default, HETATM records (ligands, haems, ions) are kept; only the
    first model and the first alternate location are used.

    The twelve shipped structures (:data:`PROTEIN_IDS`) are PDB entries from the
    test data of MDAnalysisTests (public domain): 19hc, 1a28, 1ake, 1dx5, 1hvr,
    1osm, 1pdo, 2cay, 2xcj, 3e8m, 3pwp, 4ake; see :mod:`skavae.datasets._proteins`.

    Parameters
    ----------
    n_samples : int, default=500
        Number of maps.
    structures : None, str, path-like, list or dict, default=None
        Structures to simulate; each one is a class. ``None`` means the twelve
        shipped ones. A shipped PDB id (e.g. ``"1ake"``), a PDB (``.pdb``,
        ``.ent``) or mmCIF (``.cif``, ``.mmcif``) file, optionally gzipped, or
        a folder of such files, or a list mixing these: labels are the file
        names without suffixes (``1ABC.cif.gz`` -> ``"1ABC"``). A dict maps
        labels of your choice to ids or files.
    size : int, default=64
        Maps are ``size**3`` voxels (at least 8).
    voxel_size : float, default=2.5
        Voxel edge in angstroms. The default box (160 angstroms) holds every
        shipped structure in any orientation; a warning says when atoms of a
        structure may come within two Gaussian widths of the box's faces
        (density beyond the box is lost).
    resolution : float, default=10.0
        Resolution in angstroms, as in Chimera's molmap.
    sigma_factor : float, default=1 / (pi * sqrt(2)) ~ 0.225
        Gaussian standard deviation as a fraction of the resolution (Chimera's
        molmap default).
    rotate : bool, default=True
        If False, all angles are 0 (every map of a class equals its template).
    angle_step : float, default=10
        Angles are drawn from {angle_step, 2 angle_step, ..., 360} degrees; must
        divide 360.
    max_shift : float, default=0.0
        Translations drawn uniformly in ``[-max_shift, max_shift]`` voxels
        along each axis.
    include_hydrogens : bool, default=False
        Keep hydrogen atoms (some files have them, most do not).
    include_hetatm : bool, default=True
        Keep HETATM records other than water.
    test_size : float, default=None
        If given, ``info`` gets a stratified ``split`` column with a fraction
        ``test_size`` of each class marked ``"test"``, the others ``"train"``.
    return_info : bool, default=False
        Also return the per-sample DataFrame and the class templates.
    random_state : int, RandomState instance or None, default=None
        Controls labels, angles, shifts and split.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size, size), dtype float32
        Densities in electrons per cubic angstrom.
    y : ndarray of shape (n_samples,), dtype str
        Structure label of each map.
    info : pandas.DataFrame
        Only if ``return_info``: columns ``label``, ``angle_0``, ``angle_1``,
        ``angle_2`` (degrees about array axes 0, 1, 2, applied in that order),
        ``shift_0``, ``shift_1``, ``shift_2`` (voxels) and, with ``test_size``,
        ``split``.
    templates : dict of str to ndarray of shape (size, size, size)
        Only if ``return_info``: each structure unrotated and centred.

    Raises
    ------
    ValueError
        For an invalid parameter or a structure that cannot be found or read.

    See Also
    --------
    make_tetraminos : Synthetic 3D shapes.
    save_mrc_folder : Write the maps as .mrc files.
    skavae.affinity.FSCAffinity : Affinity of maps (give it ``voxel_size``).

    Examples
    --------
    >>> from skavae.datasets import make_proteins
    >>> X, y = make_proteins(n_samples=4, structures=["1ake", "4ake"], size=24,
    ...                      voxel_size=4.0, random_state=0)
    >>> X.shape, X.dtype, sorted(set(y.tolist()))
    ((4, 24, 24, 24), dtype('float32'), ['1ake', '4ake'])
    >>> X, y, info, templates = make_proteins(
    ...     n_samples=2, structures="2xcj", size=24, voxel_size=4.0,
    ...     return_info=True, random_state=0)
    >>> list(templates), info.columns.tolist()[:2]
    (['2xcj'], ['label', 'angle_0'])
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    size = check_positive_int(size, "size", minimum=8)
    voxel_size = check_real(voxel_size, "voxel_size", low=0.0, low_inclusive=False)
    resolution = check_real(resolution, "resolution", low=0.0, low_inclusive=False)
    sigma_factor = check_real(
        sigma_factor, "sigma_factor", low=0.0, low_inclusive=False
    )
    if not isinstance(rotate, (bool, np.bool_)):
        raise ValueError(f"rotate must be True or False; got {rotate!r}.")
    angle_step = check_angle_step(angle_step)
    max_shift = check_real(max_shift, "max_shift", low=0.0, high=size / 2)
    test_size = check_test_size(test_size)
    pairs = _resolve_structures(structures)
    rng = check_random_state(random_state)

    sigma_vox = sigma_factor * resolution / voxel_size
    if sigma_vox**2 < _TENT_VARIANCE:
        warnings.warn(
            f"voxel_size={voxel_size} is coarse for resolution={resolution}: "
            f"the Gaussian width ({sigma_vox:.2f} voxel) is below the spread of "
            "trilinear splatting, so maps are blurrier than requested.",
            UserWarning,
            stacklevel=2,
        )
    atoms = []
    for label, path in pairs:
        coords, weights = read_atoms(
            path, include_hydrogens=include_hydrogens, include_hetatm=include_hetatm
        )
        centre = (coords * weights[:, None]).sum(axis=0) / weights.sum()
        coords = (coords - centre)[:, ::-1]  # x, y, z -> array axes z, y, x
        reach = np.linalg.norm(coords, axis=1).max() / voxel_size
        reach += 2 * sigma_vox + np.sqrt(3) * max_shift
        if reach > size / 2:
            warnings.warn(
                f"Structure {label!r} reaches {reach * voxel_size:.0f} angstroms "
                f"from its centre but the box half-width is "
                f"{size * voxel_size / 2:.0f}: parts of some maps are cropped. "
                "Increase size or voxel_size.",
                UserWarning,
                stacklevel=2,
            )
        atoms.append((coords, weights))

    class_index = balanced_labels(n_samples, len(pairs), rng)
    angles = sample_angles(n_samples, rng, angle_step=angle_step, rotate=rotate)
    shifts = sample_shifts(n_samples, max_shift, rng)
    split = assign_split(class_index, test_size, rng)
    rotations = rotation_matrices_3d(angles)

    X = np.empty((n_samples, size, size, size), dtype=np.float32)
    for k, (coords, weights) in enumerate(atoms):
        members = np.flatnonzero(class_index == k)
        if len(members):
            X[members] = _simulate(
                coords,
                weights,
                rotations[members],
                shifts[members],
                size,
                voxel_size,
                sigma_vox,
            )
    labels = [label for label, _ in pairs]
    y = np.asarray(labels)[class_index]
    if not return_info:
        return X, y
    info = pose_info(y, angles, shifts)
    if split is not None:
        info["split"] = split
    identity, no_shift = np.eye(3)[None], np.zeros((1, 3))
    templates = {
        label: _simulate(c, w, identity, no_shift, size, voxel_size, sigma_vox)[0]
        for label, (c, w) in zip(labels, atoms)
    }
    return X, y, info, templates
