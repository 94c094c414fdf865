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

import contextlib
import mmap
import os
import warnings
from numbers import Integral

import numpy as np
import pandas as pd

from skavae._files import atomic_path
from skavae.io._particles import (
    _check_binning,
    _check_pixel_size,
    particle_labels,
    read_particles,
    tomo_stem,
)

__all__ = ["SubtomogramStack", "extract_subtomograms"]

TOMOGRAM_SUFFIXES = (".mrc", ".rec", ".map", ".st", ".ali")
#: voxels cut per memory map: the map is released after each chunk, so the
#: pages it touched leave the process's resident memory
_CHUNK_VOXELS = 2**21
#: pages (4 KiB) one map may touch: a box touches up to box**2 pages (one per
#: row of voxels), so at most _PAGE_BUDGET // box**2 boxes are cut per map
#: (8 boxes of 32**3: 32 MiB of mapped pages at most)
_PAGE_BUDGET = 2**13
_MEAN_CHUNK_BYTES = 2**26  # bytes read at a time to compute a tomogram's mean


def tomogram_header(path):
    """Shape, dtype, data offset, voxel size and header mean of an MRC file."""
    import mrcfile

    path = os.fspath(path)
    try:
        with mrcfile.mmap(path, mode="r", permissive=False) as mrc:
            data = mrc.data
            if data is None:
                raise ValueError("it holds no data")
            shape, dtype = tuple(int(s) for s in data.shape), data.dtype
            offset = int(mrc.header.nbytes + int(mrc.header.nsymbt))
            vs = mrc.voxel_size
            voxel = (float(vs.z), float(vs.y), float(vs.x))
            h = mrc.header
            dmin, dmax = float(h.dmin), float(h.dmax)
            dmean, rms = float(h.dmean), float(h.rms)
    except ValueError as exc:
        if str(exc) == "it holds no data":
            raise ValueError(f"{path}: the MRC file holds no data.") from None
        raise ValueError(
            f"{path}: not a readable MRC file ({' '.join(str(exc).split())})."
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure names the file
        raise ValueError(
            f"{path}: not a readable MRC file ({' '.join(str(exc).split())})."
        ) from None
    if len(shape) != 3:
        raise ValueError(f"{path}: holds data of shape {shape}, not a 3D tomogram.")
    # mrcfile marks unset statistics with dmax < dmin and rms < 0
    mean = dmean if (dmax >= dmin and rms >= 0 and np.isfinite(dmean)) else None
    if mean is not None and dmin == dmax == dmean == 0 and rms == 0:
        mean = None  # an all-zero header says nothing
    return {
        "path": os.path.abspath(path),
        "shape": shape,
        "dtype": np.dtype(dtype).str,
        "offset": offset,
        "voxel_size": voxel,
        "mean": mean,
    }


def _stream_mean(info):
    """Mean of a tomogram, read in chunks without a memory map."""
    dtype = np.dtype(info["dtype"])
    n = int(np.prod(info["shape"]))
    step = max(1, _MEAN_CHUNK_BYTES // dtype.itemsize)
    total, done = 0.0, 0
    with open(info["path"], "rb") as fh:
        fh.seek(info["offset"])
        while done < n:
            chunk = np.fromfile(fh, dtype=dtype, count=min(step, n - done))
            if not len(chunk):
                raise ValueError(f"{info['path']}: the data block is truncated.")
            total += float(chunk.sum(dtype=np.float64))
            done += len(chunk)
    return total / n


def _tomogram_files(tomograms):
    """``{name: path}`` of a dict, a folder or a single file (name = stem)."""
    if isinstance(tomograms, dict):
        files = {str(k): os.fspath(v) for k, v in tomograms.items()}
        for name, path in files.items():
            if not os.path.isfile(path):
                raise ValueError(f"{path}: no such tomogram (for {name!r}).")
        return files, None
    path = os.fspath(tomograms)
    if os.path.isdir(path):
        names = sorted(
            f
            for f in os.listdir(path)
            if f.lower().endswith(TOMOGRAM_SUFFIXES)
            and not f.startswith(".")
            and os.path.isfile(os.path.join(path, f))
        )
        if not names:
            raise ValueError(
                f"{path}: the folder holds no tomogram "
                f"({', '.join(TOMOGRAM_SUFFIXES)} files)."
            )
        return {tomo_stem(f): os.path.join(path, f) for f in names}, path
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such tomogram file or folder.")
    return {tomo_stem(path): path}, "single"


def _match(name, files):
    """The file key for a particle's tomogram name (exact, else unique prefix)."""
    if name in files:
        return name
    hits = [
        k
        for k in files
        if k.startswith(name) and len(k) > len(name) and not k[len(name)].isalnum()
    ]
    return hits[0] if len(hits) == 1 else None


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
    if isinstance(box, bool) or not isinstance(box, Integral) or box < 2:
        raise ValueError(f"box must be an integer >= 2 (voxels); got {box!r}.")
    return int(box)


def _tilt_ranges(particles, tilt_range, names):
    n = len(particles)
    if tilt_range is None:
        if {"tilt_min", "tilt_max"} <= set(particles.columns):
            return particles[["tilt_min", "tilt_max"]].to_numpy(np.float64)
        return np.full((n, 2), np.nan)
    if isinstance(tilt_range, dict):
        table = {str(k): v for k, v in tilt_range.items()}
        out = np.full((n, 2), np.nan)
        for i, name in enumerate(names):
            if name in table:
                out[i] = table[name]
        return out
    lo, hi = (float(v) for v in tilt_range)
    return np.tile([lo, hi], (n, 1))


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
        Tilt range (degrees) of every tomogram, or a dict ``tomo_name ->
        (min, max)``; default: the particles' ``tilt_min``/``tilt_max``
        columns when they have them (skavae's simulated tomograms do), else
        unknown (``stack.tilt_ranges`` is None).

    Returns
    -------
    stack : SubtomogramStack
        Lazy array-like of shape ``(n, box, box, box)``, float32.

    Raises
    ------
    ValueError
        For a tomogram name without file, a particle centred outside its
        tomogram, a box larger than a tomogram, an unreadable tomogram or a
        bad option; the message names the file, row or option.

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
    used = np.unique(tomo_index)
    for k in used:
        shape = infos[k]["shape"]
        if box > min(shape):
            raise ValueError(
                f"{infos[k]['path']}: box {box} is larger than the tomogram "
                f"(shape z, y, x = {shape}); give a smaller --box."
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
    corner = centre - box // 2
    crosses = ((corner < 0) | (corner + box > shapes)).any(axis=1)
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
        table, tomo_index, corner = table[keep], tomo_index[keep], corner[keep]
        crosses = crosses[keep]
        if not len(table):
            raise ValueError(
                f"every particle's {box}-voxel box crosses its tomogram's edge; "
                "use edge='pad' or a smaller box."
            )
    for k in np.unique(tomo_index[crosses]):
        if infos[k]["mean"] is None:
            infos[k]["mean"] = _stream_mean(infos[k])
    table = table.copy()
    table.attrs = dict(particles.attrs)
    table["tomogram"] = [infos[k]["path"] for k in tomo_index]
    header_ps = np.array([infos[k]["voxel_size"][2] for k in tomo_index])
    if "pixel_size" in table.columns:
        ps = table["pixel_size"].to_numpy(np.float64)
        known = np.isfinite(ps) & (header_ps > 0)
        off = known & (np.abs(ps - header_ps) > 0.01 * ps)
        if off.any():
            i = int(np.argmax(off))
            warnings.warn(
                f"particle row {_row_label(table, i)}: the particle list gives a "
                f"pixel size of {ps[i]:g} Å but {table['tomogram'].iloc[i]} has "
                f"{header_ps[i]:g} Å; check binning.",
                UserWarning,
                stacklevel=2,
            )
        ps = np.where(np.isfinite(ps), ps, np.where(header_ps > 0, header_ps, np.nan))
    else:
        ps = np.where(header_ps > 0, header_ps, np.nan)
    table["pixel_size"] = ps
    tilts = _tilt_ranges(table, tilt_range, table["tomo_name"].tolist())
    table["tilt_min"], table["tilt_max"] = tilts[:, 0], tilts[:, 1]
    return SubtomogramStack(
        infos, table, tomo_index, corner, box, normalize=normalize, dropped=dropped
    )


def _row_label(table, i):
    """1-based row of the particle list of position ``i`` of ``table``."""
    label = table.index[i]
    return str(int(label) + 1) if isinstance(label, (int, np.integer)) else str(label)


class SubtomogramStack:
    """Array-like of subtomograms cut on demand from memory-mapped tomograms.

    Indexing the first axis (an int, slice, list or array of ints, or a
    boolean mask) cuts those particles, tomogram by tomogram, from memory maps
    that are released after each chunk, and returns a float32
    :class:`numpy.ndarray`; further indices apply to each box. It pickles
    (paths and coordinates only), so worker processes can read it. Build it
    with :func:`extract_subtomograms`.

    Attributes
    ----------
    particles : pandas.DataFrame
        One row per subtomogram: the particle list's rows (index: their row
        in the list, 0-based) with ``tomogram`` (file), ``pixel_size`` (Å),
        ``tilt_min`` and ``tilt_max``; ``write_particles`` writes it back.
    tilt_ranges : ndarray of shape (n, 2) or None
        Per-particle tilt ranges for ``AffinityVAE.fit(..., tilt_ranges=)``;
        None when unknown.
    dropped : pandas.DataFrame
        Rows left out by ``edge="drop"``, with a ``reason`` column.
    box : int
        Edge of the subtomograms, voxels.
    shape : tuple of int
        ``(n, box, box, box)``.
    dtype : numpy.dtype
        float32.
    ids : list of str
        ``<particle list>#<row>`` of every subtomogram (row 0-based).

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> import numpy as np, mrcfile, pandas as pd
    >>> from skavae.io import extract_subtomograms
    >>> tmp = tempfile.mkdtemp()
    >>> path = os.path.join(tmp, "t.mrc")
    >>> with mrcfile.new(path) as mrc:
    ...     mrc.set_data(np.ones((16, 16, 16), np.float32))
    >>> p = pd.DataFrame({"tomo_name": [None] * 3, "x": [8.0, 8.0, 9.0],
    ...                   "y": [8.0] * 3, "z": [8.0] * 3})
    >>> stack = extract_subtomograms(path, p, box=4)
    >>> stack[1:].shape, stack[[0, 2]].dtype, len(stack)
    ((2, 4, 4, 4), dtype('float32'), 3)
    >>> pickle.loads(pickle.dumps(stack))[0].sum()
    np.float32(64.0)
    """

    dtype = np.dtype(np.float32)

    def __init__(
        self, tomograms, particles, tomo_index, corners, box, *, normalize, dropped
    ):
        self._tomograms = [dict(t) for t in tomograms]
        self.particles = particles
        self._tomo_index = np.asarray(tomo_index, dtype=np.intp)
        self._corners = np.asarray(corners, dtype=np.int64)
        self.box = int(box)
        self.normalize = bool(normalize)
        self.dropped = dropped

    # ---------------------------------------------------------- array protocol
    @property
    def shape(self):
        """``(n_particles, box, box, box)``."""
        return (len(self._corners), self.box, self.box, self.box)

    @property
    def ndim(self):
        """4."""
        return 4

    @property
    def size(self):
        """Number of values of the whole stack."""
        return int(np.prod(self.shape))

    def __len__(self):
        return len(self._corners)

    def __repr__(self):
        used = len(np.unique(self._tomo_index))
        return f"SubtomogramStack(shape={self.shape}, dtype=float32, tomograms={used})"

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        n = len(self)
        if isinstance(key, (Integral, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} particles.")
            out = self._cut(np.array([i % n]))[0]
            return out[rest] if rest else out
        if isinstance(key, slice):
            idx = np.arange(n)[key]
        else:
            idx = np.asarray(key)
            if idx.size == 0:
                idx = idx.astype(np.intp)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(
                        f"boolean index of shape {idx.shape} does not match {n} "
                        "particles."
                    )
                idx = np.flatnonzero(idx)
            elif idx.dtype.kind not in "iu":
                raise IndexError(f"cannot index a SubtomogramStack with {key!r}.")
            if idx.size and (idx.max() >= n or idx.min() < -n):
                raise IndexError(f"index out of range for {n} particles.")
            idx = idx % n if idx.size else idx.astype(np.intp)
        flat = idx.reshape(-1)
        out = self._cut(flat).reshape(*idx.shape, *self.shape[1:])
        return out[(slice(None),) * idx.ndim + rest] if rest else out

    def __iter__(self):
        step = max(1, _CHUNK_VOXELS // self.box**3)
        for start in range(0, len(self), step):
            yield from self._cut(np.arange(start, min(len(self), start + step)))

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    # ---------------------------------------------------------------- metadata
    @property
    def tilt_ranges(self):
        """Per-particle ``(tilt_min, tilt_max)``, or None when any is unknown."""
        ranges = self.particles[["tilt_min", "tilt_max"]].to_numpy(np.float64)
        return ranges if np.isfinite(ranges).all() else None

    @property
    def ids(self):
        """``<particle list>#<row>`` of every subtomogram."""
        source = self.particles.attrs.get("skavae_source") or "particles"
        return [f"{source}#{i}" for i in self.particles.index]

    @property
    def voxel_size(self):
        """Pixel size (Å) of the subtomograms, NaN when unknown."""
        ps = self.particles["pixel_size"].to_numpy(np.float64)
        return float(np.nanmedian(ps)) if np.isfinite(ps).any() else float("nan")

    def labels(self, column=None):
        """Class labels of the subtomograms (strings), or None without any.

        ``column`` names a column of :attr:`particles`; by default
        ``class_name`` if present, else ``class``.
        """
        return particle_labels(self.particles, column)

    # ----------------------------------------------------------------- cutting
    def _cut(self, idx):
        """Boxes of the particles ``idx`` (1-D), tomogram by tomogram."""
        b = self.box
        out = np.empty((len(idx), b, b, b), dtype=np.float32)
        if not len(idx):
            return out
        t = self._tomo_index[idx]
        step = max(1, min(_CHUNK_VOXELS // b**3, _PAGE_BUDGET // b**2))
        for k in np.unique(t):
            info = self._tomograms[k]
            where = np.flatnonzero(t == k)
            for start in range(0, len(where), step):
                part = where[start : start + step]
                with _mapped(info) as data:
                    out[part] = gather_boxes(
                        data, self._corners[idx[part]], b, info["mean"]
                    )
        if self.normalize:
            flat = out.reshape(len(out), -1)
            mean = flat.mean(axis=1, dtype=np.float64, keepdims=True)
            std = flat.std(axis=1, dtype=np.float64, keepdims=True)
            std[std == 0] = 1.0
            flat -= mean.astype(np.float32)
            flat /= std.astype(np.float32)
        return out


def gather_boxes(data, corners, box, fill):
    """Boxes of ``data`` (z, y, x) at ``corners`` (m, 3), one fancy index.

    Voxels outside ``data`` get ``fill``. Only the voxels of the boxes are
    read, so ``data`` may be a memory map of any size.
    """
    shape = np.asarray(data.shape)
    ar = np.arange(box)
    axes = [corners[:, a, None] + ar for a in range(3)]  # (m, box) each
    valid = [(i >= 0) & (i < shape[a]) for a, i in enumerate(axes)]
    clipped = [np.clip(i, 0, shape[a] - 1) for a, i in enumerate(axes)]
    vals = data[
        clipped[0][:, :, None, None],
        clipped[1][:, None, :, None],
        clipped[2][:, None, None, :],
    ].astype(np.float32, copy=False)
    inside = (
        valid[0][:, :, None, None]
        & valid[1][:, None, :, None]
        & valid[2][:, None, None, :]
    )
    if not inside.all():
        vals[~inside] = np.float32(fill)
    return vals


@contextlib.contextmanager
def _mapped(info):
    """Read-only memory map of a tomogram's data, unmapped on exit.

    The map is advised for random access (``MADV_RANDOM``): the kernel then
    reads only the pages a box touches instead of reading ahead around each,
    which keeps both the time and the resident memory of a cut small.
    """
    with open(info["path"], "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        if hasattr(mm, "madvise") and hasattr(mmap, "MADV_RANDOM"):
            mm.madvise(mmap.MADV_RANDOM)
        data = np.ndarray(
            tuple(info["shape"]),
            dtype=np.dtype(info["dtype"]),
            buffer=mm,
            offset=info["offset"],
        )
        try:
            yield data
        finally:
            del data
    finally:
        mm.close()


def write_mrc(path, data, *, voxel_size=None):
    """Write one volume as float32 MRC atomically (voxel size in the header)."""
    import mrcfile

    with atomic_path(path, suffix=".mrc.part") as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
            if voxel_size is not None and np.isfinite(voxel_size):
                mrc.voxel_size = float(voxel_size)


def write_subtomograms(stack, folder, *, labels=None, overwrite=False, progress=None):
    """Write every subtomogram as ``<label>_<row>.mrc`` (atomically).

    Files are named so that :func:`skavae.datasets.load_mrc_folder` reads the
    labels back (``particle`` without labels); the voxel size goes into the
    headers. Returns the paths written.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    labels = stack.labels() if labels is None else labels
    rows = stack.particles.index
    width = max(6, len(str(max(int(r) for r in rows))) if len(rows) else 6)
    names = [
        f"{_file_label(labels[i] if labels is not None else 'particle')}_"
        f"{int(r):0{width}d}.mrc"
        for i, r in enumerate(rows)
    ]
    paths = [os.path.join(folder, name) for name in names]
    if not overwrite:
        existing = [p for p in paths if os.path.exists(p)]
        if existing:
            raise ValueError(
                f"{existing[0]}: already exists ({len(existing)} of the files to "
                "write do); pass --overwrite to replace them."
            )
    voxel = stack.voxel_size
    step = max(1, _CHUNK_VOXELS // stack.box**3)
    for start in range(0, len(stack), step):
        batch = stack[start : start + step]
        for j, vol in enumerate(batch):
            write_mrc(paths[start + j], vol, voxel_size=voxel)
        if progress is not None:
            progress(len(batch))
    return paths


def _file_label(label):
    text = "".join(c if c.isalnum() or c in "-._" else "-" for c in str(label))
    return text.strip(".") or "particle"
