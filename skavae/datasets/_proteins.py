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
Two sets of Protein Data Bank entries (PDB data are public domain) ship with
skavae; ``structures="all"`` gives both (33 classes, no id in common).

:data:`PROTEIN_IDS` (the default, ``structures=None``): twelve entries,
gzipped, as distributed with the test data of the MDAnalysisTests package:
adenylate kinase open ``4ake`` and closed ``1ake`` (two conformations of one
protein), the dimers ``1hvr`` (HIV-1 protease), ``1a28`` (progesterone
receptor) and ``19hc`` (nine-haem cytochrome c), the elongated five-chain
complex ``3pwp`` (HLA-A2/peptide/T-cell receptor), the beta barrel ``1osm``
(porin monomer) and single-chain proteins from compact to elongated:
``2xcj``, ``2cay``, ``1pdo``, ``3e8m`` and ``1dx5``. Radii of gyration span 12
to 38 angstroms; the default box (160 angstroms) holds them all.

:data:`ECOLI_PROTEIN_IDS` (``structures="ecoli"``): 21 abundant *E. coli*
machines (the "most abundant cytoplasmic proteins" idea of McGuffee & Elcock,
2010, that the affinity-VAE paper follows), from about 20 kDa to 0.85 MDa.
They ship as heavy atoms in one compressed array file, ``data/ecoli.npz``,
read without pickle and built from the deposited files by
``tools/make_ecoli_npz.py`` with the rules of :func:`read_atoms` (waters and
hydrogens dropped, HETATM records kept but flagged so ``include_hetatm=False``
still drops them, first alternate location only); ``data/README.md`` names
each file's source. ``include_hydrogens`` has no effect on them. Caveats:

* ``1oel`` is the GroEL 14-mer, built by applying the REMARK 350 BIOMT
  operators of the file, which holds one ring (the asymmetric unit);
* ``1a5t`` is the asymmetric unit as deposited, a monomer (the
  crystallographic dimer named in REMARK 350 is not applied);
* ``1pfk`` and ``1e58`` are wwPDB biological-assembly files whose MODEL blocks
  are the copies of the assembly: all are used (elsewhere only the first);
* ``3iyd`` is a coarse 19.8-angstrom EM model (many side chains truncated),
  ``6rku`` models only the gyrase cleavage core, ``1etu`` only the EF-Tu G
  domain, ``1dul`` a fragment of the SRP; ``2gls`` is the Salmonella enzyme, a
  close homologue of *E. coli* GlnA.

Large assemblies need large boxes. A structure fits (no cropping warning) when
the box half-width ``size * voxel_size / 2`` is at least its *radius* (largest
distance of an atom from the centre of mass) plus two Gaussian widths (4.5
angstroms at the default resolution of 10): the *box* column is that smallest
edge in angstroms. All 33 structures fit ``size=64, voxel_size=4.0`` or
``size=32, voxel_size=8.0`` (256 angstroms); the default box (160 angstroms)
crops the first seven rows.

====  ================================  ======  =====  ======  ====
id    molecule (as stored)               atoms    kDa  radius   box
====  ================================  ======  =====  ======  ====
1aon  GroEL-GroES-(ADP)7 chaperonin      58870    843     115   240
3iyd  RNA polymerase-CRP-DNA (EM)        35254    509     105   219
1oel  GroEL 14-mer (BIOMT)               53858    771      95   200
5a1a  beta-galactosidase tetramer        32920    470      91   192
2kho  DnaK (Hsp70)                        4501     64      80   169
2gls  glutamine synthetase 12-mer        43656    624      79   168
6rku  DNA gyrase core + DNA              15493    223      78   166
3ice  Rho hexamer + RNA                  19453    282      75   160
1gyt  aminopeptidase A hexamer           23112    332      74   157
1ecp  nucleoside phosphorylase 6-mer     10758    154      54   118
1pfk  phosphofructokinase tetramer       10036    145      51   112
1j59  CRP-cAMP dimer + DNA                4432     65      51   111
3bep  beta clamp dimer + DNA              6193     89      48   105
11as  asparagine synthetase dimer         5136     73      45   100
1fdo  formate dehydrogenase H             5678     82      43    96
1e58  phosphoglycerate mutase dimer       4016     57      43    95
1dul  SRP Ffh M domain + 4.5S RNA         1593     25      42    93
1a5t  clamp loader delta' (asym. unit)    2513     36      41    92
3rer  Hfq hexamer + RNA                   3193     46      37    83
1ggr  IIA-Glc-HPr complex (NMR)           1774     25      33    75
1etu  EF-Tu G domain + GDP                1395     20      30    70
====  ================================  ======  =====  ======  ====

*atoms* counts heavy atoms as stored, *kDa* is their mass times 1.08 (a rough
allowance for hydrogens), i.e. of what is modelled, not of the full sequence.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from skavae._checks import check_seed
from skavae.datasets._forward import apply_generator_options
from skavae.datasets._shipped import (
    ECOLI_PROTEIN_IDS,
    PROTEIN_IDS,
    _resolve_structures,
    load_atoms,
)
from skavae.datasets._transforms import (
    check_rotate,
    pose_info,
    sample_rotations,
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

__all__ = ["ECOLI_PROTEIN_IDS", "PROTEIN_IDS", "make_proteins"]

# a plain float, so that the rendered signature reads as a number
_MOLMAP_SIGMA_FACTOR = float(1.0 / (np.pi * np.sqrt(2.0)))
_TENT_VARIANCE = 1.0 / 6.0  # per-axis variance of trilinear splatting, voxel^2
_BATCH_ATOMS = 400_000  # atoms x volumes splatted at once
_BATCH_VOXELS = 8_000_000  # voxels filtered at once


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
    crowding=0,
    ctf=None,
    missing_wedge=None,
    snr=None,
    noise="white",
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

    The twelve default structures (:data:`PROTEIN_IDS`) are PDB entries from the
    test data of MDAnalysisTests (public domain): 19hc, 1a28, 1ake, 1dx5, 1hvr,
    1osm, 1pdo, 2cay, 2xcj, 3e8m, 3pwp, 4ake. The 21 *E. coli* structures
    (:data:`ECOLI_PROTEIN_IDS`, ``structures="ecoli"``) are abundant machines
    from 20 kDa (EF-Tu domain 1etu) to 0.85 MDa (GroEL-GroES 1aon), shipped as
    heavy atoms; the largest need a box edge of up to 240 angstroms. See
    :mod:`skavae.datasets._proteins` for their caveats and the box each needs.

    Parameters
    ----------
    n_samples : int, default=500
        Number of maps.
    structures : None, str, path-like, list or dict, default=None
        Structures to simulate; each one is a class. ``None`` means the twelve
        :data:`PROTEIN_IDS`, ``"ecoli"`` the 21 :data:`ECOLI_PROTEIN_IDS` and
        ``"all"`` both (33 classes); labels are the lower-case PDB ids. A
        shipped PDB id (e.g. ``"1ake"`` or ``"1aon"``), a PDB (``.pdb``,
        ``.ent``) or mmCIF (``.cif``, ``.mmcif``) file, optionally gzipped, or
        a folder of such files, or a list mixing these: labels are the file
        names without suffixes (``1ABC.cif.gz`` -> ``"1ABC"``). A dict maps
        labels of your choice to ids or files. The set names are recognised as
        plain strings only; pass a ``pathlib.Path`` for a folder of that
        name.
    size : int, default=64
        Maps are ``size**3`` voxels (at least 8).
    voxel_size : float, default=2.5
        Voxel edge in angstroms. The default box (160 angstroms) holds the
        twelve default structures in any orientation; the E. coli set needs up
        to 240 angstroms (e.g. ``voxel_size=4.0`` at ``size=64``). A warning
        says when atoms of a structure may come within two Gaussian widths of
        the box's faces (density beyond the box is lost).
    resolution : float, default=10.0
        Resolution in angstroms, as in Chimera's molmap.
    sigma_factor : float, default=1 / (pi * sqrt(2)) ~ 0.225
        Gaussian standard deviation as a fraction of the resolution (Chimera's
        molmap default).
    rotate : bool or {"grid", "uniform"}, default=True
        True (or ``"grid"``): angles drawn from the grid below about each of the
        three array axes, as in the paper. ``"uniform"``: rotations drawn
        uniformly from SO(3) (the coordinates are rotated exactly), reported
        as angles of the same convention. False: all angles are 0 (every map of
        a class equals its template).
    angle_step : float, default=10
        Angles are drawn from {angle_step, 2 angle_step, ..., 360} degrees; must
        divide 360.
    max_shift : float, default=0.0
        Translations drawn uniformly in ``[-max_shift, max_shift]`` voxels
        along each axis.
    include_hydrogens : bool, default=False
        Keep hydrogen atoms (some files have them, most do not; the shipped
        E. coli structures are stored without them).
    include_hetatm : bool, default=True
        Keep HETATM records other than water.
    crowding : int, default=0
        Neighbouring molecules entering each box (see
        :func:`simulate_subtomograms`).
    ctf : None, bool or CTF, default=None
        Contrast transfer function at ``voxel_size`` (``True``: 300 kV, Cs
        2.7 mm, amplitude contrast 0.07, 2-5 µm underfocus per particle,
        phase-flipped).
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
        ``shift_0``, ``shift_1``, ``shift_2`` (voxels), with ``test_size``,
        ``split``, and with a forward-model option the columns of
        :func:`simulate_subtomograms` (``snr``, ``defocus_um``, ``tilt_min``,
        ``tilt_max``, ...).
    templates : dict of str to ndarray of shape (size, size, size)
        Only if ``return_info``: each structure unrotated and centred, clean
        (no CTF, wedge or noise): the references for a class affinity matrix.

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
    >>> X, y = make_proteins(n_samples=66, structures="all", size=32,
    ...                      voxel_size=8.0, resolution=20.0, random_state=0)
    >>> len(set(y.tolist())), X.shape
    (33, (66, 32, 32, 32))
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    size = check_positive_int(size, "size", minimum=8)
    voxel_size = check_real(voxel_size, "voxel_size", low=0.0, low_inclusive=False)
    resolution = check_real(resolution, "resolution", low=0.0, low_inclusive=False)
    sigma_factor = check_real(
        sigma_factor, "sigma_factor", low=0.0, low_inclusive=False
    )
    rotate = check_rotate(rotate)
    angle_step = check_angle_step(angle_step)
    max_shift = check_real(max_shift, "max_shift", low=0.0, high=size / 2)
    test_size = check_test_size(test_size)
    pairs = _resolve_structures(structures)
    rng = check_seed(random_state)

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
    for label, source in pairs:
        coords, weights = load_atoms(
            source, include_hydrogens=include_hydrogens, include_hetatm=include_hetatm
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
    angles, rotations = sample_rotations(
        n_samples, rng, rotate=rotate, angle_step=angle_step
    )
    shifts = sample_shifts(n_samples, max_shift, rng)
    split = assign_split(class_index, test_size, rng)

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
    info = pose_info(y, angles, shifts) if return_info else None
    if return_info and split is not None:
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
    identity, no_shift = np.eye(3)[None], np.zeros((1, 3))
    templates = {
        label: _simulate(c, w, identity, no_shift, size, voxel_size, sigma_vox)[0]
        for label, (c, w) in zip(labels, atoms)
    }
    return X, y, info, templates
