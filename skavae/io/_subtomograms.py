"""The lazy stack of subtomograms returned by :func:`extract_subtomograms`."""

from __future__ import annotations

import numpy as np

from skavae._indexing import sample_index
from skavae.io._particles import particle_labels
from skavae.io._tomofiles import _CHUNK_VOXELS, _PAGE_BUDGET, _mapped, gather_boxes

__all__ = ["SubtomogramStack"]


def _row_label(table, i):
    """1-based row of the particle list of position ``i`` of ``table``."""
    label = table.index[i]
    return str(int(label) + 1) if isinstance(label, (int, np.integer)) else str(label)


class SubtomogramStack:
    """Array-like of subtomograms cut on demand from memory-mapped tomograms.

    Indexing the first axis (an int, slice, list or array of ints, or a
    boolean mask) cuts those particles, tomogram by tomogram, from memory maps
    that are released after each chunk, and returns a float32
    :class:`numpy.ndarray`; further indices apply to each box. A box holding
    NaN or infinity raises a ValueError naming its tomogram and particle row
    when it is read (so a fit streaming batches names them). It pickles
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
        self,
        tomograms,
        particles,
        tomo_index,
        corners,
        box,
        *,
        normalize,
        dropped,
        voxel_size=None,
    ):
        self._tomograms = [dict(t) for t in tomograms]
        self.particles = particles
        self._tomo_index = np.asarray(tomo_index, dtype=np.intp)
        self._corners = np.asarray(corners, dtype=np.int64)
        self.box = int(box)
        self.normalize = bool(normalize)
        self.dropped = dropped
        self._voxel_size = voxel_size

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
        idx, rest = sample_index(
            key, len(self), items="particles", owner="a SubtomogramStack"
        )
        if np.ndim(idx) == 0:
            out = self._cut(np.array([idx]))[0]
            return out[rest] if rest else out
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
        """Pixel size (Å) of the subtomograms, NaN when unknown.

        ``target_pixel_size`` when the boxes were resampled to it, else the
        tomograms' (median over the particles).
        """
        if self._voxel_size is not None:
            return float(self._voxel_size)
        ps = self.particles["pixel_size"].to_numpy(np.float64)
        return float(np.nanmedian(ps)) if np.isfinite(ps).any() else float("nan")

    def labels(self, column=None):
        """Class labels of the subtomograms (strings), or None without any.

        ``column`` names a column of :attr:`particles`; by default
        ``class_name`` if present, else ``class``.
        """
        return particle_labels(self.particles, column)

    # ----------------------------------------------------------------- cutting
    def _check_finite(self, boxes, info, rows):
        """ValueError naming the tomogram and particle row of a box with NaN/inf.

        ``boxes`` are the boxes just cut from ``info``'s tomogram for the
        particles ``rows`` (positions in :attr:`particles`).
        """
        finite = np.isfinite(boxes).reshape(len(boxes), -1)
        bad = ~finite.all(axis=1)
        if not bad.any():
            return
        i = int(np.argmax(bad))
        count = int(finite.shape[1] - finite[i].sum())
        fill = info["mean"]
        why = (
            f" (its mean, {fill}, pads the boxes crossing its edge)"
            if fill is not None and not np.isfinite(fill)
            else ""
        )
        raise ValueError(
            f"{info['path']}: the box of particle row "
            f"{_row_label(self.particles, int(rows[i]))} holds {count} NaN or "
            f"infinite voxels{why}; {int(bad.sum())} of {len(boxes)} boxes read "
            "do. Fix or mask the tomogram (e.g. replace them by its mean)."
        )

    def _cut(self, idx):
        """Boxes of the particles ``idx`` (1-D), tomogram by tomogram."""
        b = self.box
        out = np.empty((len(idx), b, b, b), dtype=np.float32)
        if not len(idx):
            return out
        t = self._tomo_index[idx]
        for k in np.unique(t):
            info = self._tomograms[k]
            n = info.get("cut", b)  # the edge cut from the tomogram
            step = max(1, min(_CHUNK_VOXELS // n**3, _PAGE_BUDGET // n**2))
            where = np.flatnonzero(t == k)
            for start in range(0, len(where), step):
                part = where[start : start + step]
                with _mapped(info) as data:
                    boxes = gather_boxes(
                        data, self._corners[idx[part]], n, info["mean"]
                    )
                self._check_finite(boxes, info, idx[part])
                out[part] = _resample(boxes, info.get("weights"))
        if self.normalize:
            flat = out.reshape(len(out), -1)
            mean = flat.mean(axis=1, dtype=np.float64, keepdims=True)
            std = flat.std(axis=1, dtype=np.float64, keepdims=True)
            std[std == 0] = 1.0
            flat -= mean.astype(np.float32)
            flat /= std.astype(np.float32)
        return out


def _resample(boxes, weights):
    """``boxes`` (m, n, n, n) resampled by the (box, n) matrix along each axis."""
    if weights is None:
        return boxes
    w = weights.T
    out = boxes @ w  # (m, z, y, i): x resampled
    out = out.swapaxes(2, 3) @ w  # (m, z, i, j): y
    out = out.swapaxes(1, 3) @ w  # (m, j, i, k): z
    return out.transpose(0, 3, 1, 2)  # (m, k, j, i) = (z, y, x)
