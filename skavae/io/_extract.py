"""Subtomograms cut lazily from memory-mapped tomograms.

:func:`extract_subtomograms` checks the particle list against the tomograms'
headers (nothing of the data is read) and returns a :class:`SubtomogramStack`,
an array-like of shape ``(n_particles, box, box, box)`` that cuts the
particles an index asks for, and only those, from memory maps of the
tomograms: a tomogram larger than memory is fine, and an estimator streaming
batches (``stack[batch_indices]``) keeps only one batch in memory.

Geometry
--------
Tomograms are ``(z, y, x)`` arrays (the order of MRC files); a particle at
``(x, y, z)`` tomogram pixels is the box whose voxel ``(box // 2,) * 3`` is the
tomogram voxel ``(round(z), round(y), round(x))``, RELION's box centre.

Edges
-----
``edge="pad"`` fills the part of a box outside the tomogram with the
tomogram's mean (from the MRC header when it records one, else computed once
by streaming the file); ``edge="drop"`` leaves such particles out and lists
them in ``stack.dropped`` (their rows and why). A particle whose centre lies
outside its tomogram is an error either way (usually coordinates in other
units or at another binning).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from skavae._checks import check_int, check_real
from skavae._wedge import _check_range
from skavae.io._columns import _check_binning, _check_pixel_size
from skavae.io._mrcout import write_mrc, write_subtomograms
from skavae.io._particles import read_particles
from skavae.io._subtomograms import SubtomogramStack, _row_label
from skavae.io._tomofiles import (
    _match,
    _stream_mean,
    _tomogram_files,
    gather_boxes,
    tomogram_header,
)

__all__ = [
    "SubtomogramStack",
    "extract_subtomograms",
    "gather_boxes",
    "write_mrc",
    "write_subtomograms",
]


def _assign(particles, files, where):
    """Index into ``keys`` of each particle's tomogram; errors name the rows."""
    keys = list(files)
    names = particles["tomo_name"].tolist()
    if where == "single":
        distinct = {n for n in names if n is not None}
        if len(distinct) <= 1:
            return keys, np.zeros(len(names), dtype=np.intp)
    lookup = {}
    out = np.empty(len(names), dtype=np.intp)
    for name in dict.fromkeys(names):
        if name is None:
            key = keys[0] if len(keys) == 1 else None
            if key is None:
                row = names.index(None)
                raise ValueError(
                    f"particle row {row + 1} names no tomogram and there are "
                    f"{len(keys)} tomograms; give a dict name -> file."
                )
        else:
            key = _match(str(name), files)
        if key is None:
            rows = [i + 1 for i, n in enumerate(names) if n == name]
            shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            place = f"in {where}" if where not in (None, "single") else "given"
            raise ValueError(
                f"tomogram {name!r} of particle rows {shown} has no file {place} "
                f"(tomograms: {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''})."
            )
        lookup[name] = keys.index(key)
    for i, name in enumerate(names):
        out[i] = lookup[name]
    return keys, out


def _check_box(box):
    return check_int(box, "box", low=2, unit="voxels")


def _tilt_ranges(particles, tilt_range, names):
    """Per-particle (min, max): ``tilt_range`` when given, else the columns."""
    n = len(particles)
    if tilt_range is None:
        if {"tilt_min", "tilt_max"} <= set(particles.columns):
            return particles[["tilt_min", "tilt_max"]].to_numpy(np.float64)
        return np.full((n, 2), np.nan)
    if isinstance(tilt_range, dict):
        table = {
            str(k): _check_range(v, f"tilt_range[{k!r}]") for k, v in tilt_range.items()
        }
        out = np.full((n, 2), np.nan)
        for i, name in enumerate(names):
            if name in table:
                out[i] = table[name]
        return out
    return np.tile(_check_range(tilt_range), (n, 1))


def extract_subtomograms(
    tomograms,
    particles,
    box=32,
    *,
    edge="pad",
    normalize=False,
    pixel_size=None,
    binning=1,
    tilt_range=None,
    target_pixel_size=None,
):
    """Subtomograms of a particle list, cut lazily from memory-mapped tomograms.

    Parameters
    ----------
    tomograms : path-like, dict or folder
        One MRC tomogram (``.mrc``, ``.rec``, ``.map``), a folder of them
        (matched to the particles' ``tomo_name`` by file name without suffix,
        or by a unique prefix followed by ``_`` or ``.``) or a dict
        ``tomo_name -> path``. With one file, a list naming one tomogram (or
        none) is taken whole; otherwise only the rows naming that file.
    particles : pandas.DataFrame or path-like
        From :func:`read_particles`, or a particle list to read (then
        ``pixel_size`` and ``binning`` are passed on, and the tomograms'
        shapes serve RELION 5's centred coordinates).
    box : int, default=32
        Edge of the cubic subtomograms, voxels.
    edge : {"pad", "drop"}, default="pad"
        ``"pad"``: the part of a box outside its tomogram is filled with the
        tomogram's mean. ``"drop"``: such particles are left out (a warning
        says how many; ``stack.dropped`` lists their rows).
    normalize : bool, default=False
        Scale every subtomogram to mean 0 and standard deviation 1.
    pixel_size : float, default=None
        Å per pixel of the coordinates (see :func:`read_particles`), only when
        ``particles`` is a path.
    binning : float, default=1
        Coordinate pixels per tomogram pixel, only when ``particles`` is a path.
    tilt_range : (float, float) or dict, default=None
        Tilt range (degrees, min <= max within [-90, 90]) of every tomogram,
        or a dict ``tomo_name -> (min, max)``; when given it replaces the
        particles' ``tilt_min``/``tilt_max`` columns. Default: those columns
        when the list has them (skavae's simulated tomograms do), else
        unknown (``stack.tilt_ranges`` is None).

    target_pixel_size : float, default=None
        Å per voxel of the subtomograms. Each box then covers
        ``box * target_pixel_size`` Å around its particle, cut at the
        tomogram's pixel size and resampled to ``box`` voxels (Gaussian
        anti-aliasing of ``sigma = (f - 1) / 2`` tomogram voxels when
        shrinking by ``f = target / pixel size``, then cubic B-spline
        interpolation as :func:`scipy.ndimage.zoom`, on the exact grid: the
        box's voxel ``box // 2`` stays on the particle); ``stack.voxel_size``
        is the target. Default: the tomogram's pixel size, no resampling.
        Each tomogram needs a known pixel size (header or list).

    Returns
    -------
    stack : SubtomogramStack
        Lazy array-like of shape ``(n, box, box, box)``, float32.

    Raises
    ------
    ValueError
        For a tomogram name without file, a particle centred outside its
        tomogram, a box larger than a tomogram, an unreadable tomogram or a
        bad option; the message names the file, row or option. Indexing the
        stack raises a ValueError naming the tomogram and the particle row
        when a box read holds NaN or infinity (nothing is read before).

    See Also
    --------
    read_particles : The particle lists read.
    SubtomogramStack : The array-like returned.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, mrcfile, pandas as pd
    >>> from skavae.io import extract_subtomograms
    >>> tmp = tempfile.mkdtemp()
    >>> tomo = np.arange(32 * 48 * 64, dtype=np.float32).reshape(32, 48, 64)
    >>> with mrcfile.new(os.path.join(tmp, "TS_01.mrc")) as mrc:
    ...     mrc.set_data(tomo)
    ...     mrc.voxel_size = 10.0
    >>> particles = pd.DataFrame({"tomo_name": ["TS_01", "TS_01"],
    ...                           "x": [20.0, 2.0], "y": [24.0, 24.0],
    ...                           "z": [16.0, 16.0], "class_name": ["a", "b"]})
    >>> stack = extract_subtomograms(tmp, particles, box=8,
    ...                              tilt_range=(-60, 60))
    >>> stack
    SubtomogramStack(shape=(2, 8, 8, 8), dtype=float32, tomograms=1)
    >>> bool(np.array_equal(stack[0], tomo[12:20, 20:28, 16:24]))
    True
    >>> float(stack[1, 0, 0, 0]) == float(tomo.mean())   # padded with the mean
    True
    >>> stack.tilt_ranges[0].tolist(), stack.labels().tolist()
    ([-60.0, 60.0], ['a', 'b'])
    """
    box = _check_box(box)
    if edge not in ("pad", "drop"):
        raise ValueError(f"edge must be 'pad' or 'drop'; got {edge!r}.")
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(f"normalize must be True or False; got {normalize!r}.")
    pixel_size = _check_pixel_size(pixel_size)
    binning = _check_binning(binning)
    if target_pixel_size is not None:
        target_pixel_size = check_real(
            target_pixel_size, "target_pixel_size", low=0, low_inclusive=False
        )
    files, where = _tomogram_files(tomograms)
    headers = {}

    def header(key):
        if key not in headers:
            headers[key] = tomogram_header(files[key])
        return headers[key]

    if not isinstance(particles, pd.DataFrame):

        def shape_of(name):  # RELION 5 centred coordinates need the shapes
            key = next(iter(files)) if where == "single" else None
            key = key or (_match(str(name), files) if name is not None else None)
            if key is None and len(files) == 1:
                key = next(iter(files))
            return None if key is None else header(key)["shape"]

        particles = read_particles(
            particles, pixel_size=pixel_size, binning=binning, tomogram_shape=shape_of
        )
    for column in ("tomo_name", "x", "y", "z"):
        if column not in particles.columns:
            raise ValueError(
                f"the particle table has no {column!r} column (read it with "
                "read_particles)."
            )
    if not len(particles):
        raise ValueError("the particle list is empty.")
    table = particles.copy()
    table.attrs = dict(particles.attrs)
    if where == "single":
        names = {n for n in table["tomo_name"] if n is not None}
        if len(names) > 1:  # keep the rows naming the one file
            stem = next(iter(files))
            mask = np.array([n is not None and _match(str(n), files) == stem
                             for n in table["tomo_name"]])  # fmt: skip
            if not mask.any():
                raise ValueError(
                    f"no particle row names the tomogram {stem!r} (they name "
                    f"{', '.join(sorted(map(str, names))[:6])}); give a folder or "
                    "a dict name -> file."
                )
            table = table[mask]
    keys, tomo_index = _assign(table, files, where)
    infos = [header(k) for k in keys]
    table = table.copy()
    table.attrs = dict(particles.attrs)
    table["tomogram"] = [infos[k]["path"] for k in tomo_index]
    table["pixel_size"] = _pixel_sizes(table, infos, tomo_index)
    for k in np.unique(tomo_index):
        infos[k].update(
            _geometry(box, target_pixel_size, infos[k], table, tomo_index == k)
        )
    xyz = table[["x", "y", "z"]].to_numpy(np.float64)
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        row = _row_label(table, int(np.argmax(bad)))
        raise ValueError(f"particle row {row} has no position.")
    centre = np.rint(xyz[:, ::-1]).astype(np.int64)  # (z, y, x) voxels
    shapes = np.array([infos[k]["shape"] for k in tomo_index], dtype=np.int64)
    outside = ((centre < 0) | (centre >= shapes)).any(axis=1)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(
            f"particle row {_row_label(table, i)} at x, y, z = "
            f"{', '.join(f'{v:g}' for v in xyz[i])} pixels lies outside its tomogram "
            f"{infos[tomo_index[i]]['path']} (z, y, x shape "
            f"{tuple(int(s) for s in shapes[i])}); check binning and pixel size."
        )
    reach = np.array([infos[k]["reach"] for k in tomo_index], dtype=np.int64)
    cut = np.array([infos[k]["cut"] for k in tomo_index], dtype=np.int64)[:, None]
    corner = centre + np.array([infos[k]["start"] for k in tomo_index])[:, None]
    crosses = ((centre + reach[:, :1] < 0) | (centre + reach[:, 1:] >= shapes)).any(
        axis=1
    )
    dropped = table.iloc[:0].assign(reason=pd.Series(dtype=object))
    if edge == "drop" and crosses.any():
        rows = np.flatnonzero(crosses)
        dropped = table.iloc[rows].assign(reason="the box crosses the tomogram's edge")
        shown = ", ".join(_row_label(table, i) for i in rows[:8])
        warnings.warn(
            f"dropped {len(rows)} of {len(table)} particles whose {box}-voxel box "
            f"crosses the tomogram's edge (rows {shown}"
            f"{', ...' if len(rows) > 8 else ''}); see stack.dropped.",
            UserWarning,
            stacklevel=2,
        )
        keep = ~crosses
        table, tomo_index, corner, cut = (
            table[keep],
            tomo_index[keep],
            corner[keep],
            cut[keep],
        )
        shapes = shapes[keep]
        if not len(table):
            raise ValueError(
                f"every particle's {box}-voxel box crosses its tomogram's edge; "
                "use edge='pad' or a smaller box."
            )
    padded = ((corner < 0) | (corner + cut > shapes)).any(axis=1)
    for k in np.unique(tomo_index[padded]):
        if infos[k]["mean"] is None:
            infos[k]["mean"] = _stream_mean(infos[k])
    tilts = _tilt_ranges(table, tilt_range, table["tomo_name"].tolist())
    table["tilt_min"], table["tilt_max"] = tilts[:, 0], tilts[:, 1]
    return SubtomogramStack(
        infos,
        table,
        tomo_index,
        corner,
        box,
        normalize=normalize,
        dropped=dropped,
        voxel_size=target_pixel_size,
    )


def _pixel_sizes(table, infos, tomo_index):
    """Å per tomogram pixel of each row: the list's, else the header's (or NaN).

    Warns when the two differ by more than 1 %.
    """
    header_ps = np.array([infos[k]["voxel_size"][2] for k in tomo_index])
    header_ps = np.where(header_ps > 0, header_ps, np.nan)
    if "pixel_size" not in table.columns:
        return header_ps
    ps = table["pixel_size"].to_numpy(np.float64)
    off = np.isfinite(ps) & np.isfinite(header_ps)
    off &= np.abs(ps - np.where(off, header_ps, 0.0)) > 0.01 * ps
    if off.any():
        i = int(np.argmax(off))
        warnings.warn(
            f"particle row {_row_label(table, i)}: the particle list gives a "
            f"pixel size of {ps[i]:g} Å but {table['tomogram'].iloc[i]} has "
            f"{header_ps[i]:g} Å; check binning.",
            UserWarning,
            stacklevel=3,
        )
    return np.where(np.isfinite(ps), ps, header_ps)


def _geometry(box, target, info, table, rows):
    """How the boxes of one tomogram are cut: its entries of the stack's info.

    ``start``: offset of a cut's first voxel from the particle's centre voxel;
    ``cut``: the cut's edge (voxels of the tomogram); ``reach``: the offsets of
    the first and last voxel the box covers (``edge="drop"`` tests them);
    ``weights``: None, or the ``(box, cut)`` matrix that resamples a cut to the
    box along each axis (``target_pixel_size``).
    """
    plain = {"start": -(box // 2), "cut": box, "weights": None}
    plain["reach"] = (plain["start"], plain["start"] + box - 1)
    if target is None:
        info_ = plain
    else:
        pixel = np.unique(table["pixel_size"].to_numpy(np.float64)[rows])
        if len(pixel) != 1 or not np.isfinite(pixel[0]):
            what = (
                "records none and the particle list gives none (give pixel_size=, "
                "--pixel-size)"
                if not np.isfinite(pixel).any()
                else f"differs between its particles ({', '.join(map(str, pixel[:4]))})"
            )
            raise ValueError(
                f"{info['path']}: target_pixel_size needs the tomogram's pixel "
                f"size, which {what}."
            )
        factor = target / float(pixel[0])
        info_ = plain if abs(factor - 1) < 1e-6 else _resampling(box, factor)
    span = info_["reach"][1] - info_["reach"][0] + 1
    if span > min(info["shape"]):
        covers = "" if info_["weights"] is None else f" (covering {span} voxels)"
        raise ValueError(
            f"{info['path']}: box {box}{covers} is larger than the tomogram "
            f"(shape z, y, x = {info['shape']}); give a smaller --box."
        )
    return info_


def _resampling(box, factor):
    """The cut and the per-axis matrix that resample it to ``box`` voxels.

    Output voxel ``i`` lies ``(i - box // 2) * factor`` tomogram voxels from
    the particle's centre. When shrinking (``factor > 1``) a Gaussian of
    ``sigma = (factor - 1) / 2`` voxels low-passes first (anti-aliasing, as
    :func:`skimage.transform.rescale`); then cubic B-spline interpolation,
    the one :func:`scipy.ndimage.zoom` uses. Both are separable, so one
    ``(box, cut)`` matrix applied along each axis does the whole resampling;
    the cut has a margin so that no filter reaches past it.
    """
    from scipy import ndimage

    offsets = (np.arange(box) - box // 2) * factor
    sigma = max(0.0, (factor - 1.0) / 2.0)
    margin = int(3.0 * sigma + 0.5) + 4  # the Gaussian's reach, the spline's tail
    reach = (int(np.floor(offsets[0])), int(np.ceil(offsets[-1])))
    start = reach[0] - margin
    cut = reach[1] + margin - start + 1
    basis = np.eye(cut)
    if sigma > 0:
        basis = ndimage.gaussian_filter1d(basis, sigma, axis=0, truncate=3.0)
    basis = ndimage.spline_filter1d(basis, order=3, axis=0, mode="mirror")
    grid = offsets - start
    weights = np.stack(
        [
            ndimage.map_coordinates(basis[:, j], [grid], order=3, prefilter=False,
                                    mode="mirror")
            for j in range(cut)
        ],
        axis=1,
    )  # fmt: skip
    return {
        "start": start,
        "cut": cut,
        "reach": reach,
        "weights": weights.astype(np.float32),
    }
