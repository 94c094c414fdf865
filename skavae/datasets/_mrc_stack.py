"""The lazy, memory-mapped stack of .mrc files behind :func:`load_mrc_folder`."""

from __future__ import annotations

import os

import numpy as np

from skavae._indexing import sample_index

__all__ = ["MRCStack"]


class MRCStack:
    """Array-like stack of same-shaped .mrc files, read lazily.

    Indexing the first axis (an int, slice, list or array of ints, or a
    boolean mask) reads those files' data from memory maps and returns a
    float32 :class:`numpy.ndarray`; further indices apply to each volume
    (``stack[i, 10:20]``). ``np.asarray(stack)`` reads everything.

    Parameters
    ----------
    paths : sequence of str
        Files, validated by :func:`load_mrc_folder`.
    offsets : sequence of int
        Byte offset of each file's data block.
    dtypes : sequence of numpy.dtype
        Stored data type of each file (with its byte order).
    shape : tuple of int
        Shape of one volume (array order, z-y-x).
    voxel_size : tuple of 3 float or None, default=None
        Voxel size (x, y, z) in angstroms shared by the files (None when the
        headers record none); the save functions write it into new headers.
    source_shapes : sequence of tuple of int, default=None
        Stored shape of each file's data when it differs from ``shape``: such
        a file is resampled to ``shape`` as it is read (linear interpolation,
        :func:`scipy.ndimage.zoom`; see ``resample`` of :func:`load_mrc_folder`).

    Attributes
    ----------
    paths : list of str
        The file of each object, in order (a ``.mrcs`` stack's file repeats,
        once per image).
    voxel_size : tuple of 3 float or None
        Voxel size (x, y, z) in angstroms, or None when unknown.
    shape : tuple of int
        ``(n_files, *volume_shape)``.
    dtype : numpy.dtype
        Always float32 (the dtype of what indexing returns).
    ndim : int
        ``1 + len(volume_shape)``.
    size : int
        Number of values, ``prod(shape)``.

    See Also
    --------
    load_mrc_folder : Builds a stack from a folder (use it, not the constructor).
    save_mrc_folder : Writes a folder that reads back as a stack.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from skavae.datasets import load_mrc_folder, save_mrc_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> X = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    >>> _ = save_mrc_folder(X, ["a", "a", "b", "b"], tmp.name)
    >>> stack, y = load_mrc_folder(tmp.name)
    >>> stack
    MRCStack(shape=(4, 8, 8), dtype=float32, files=4)
    >>> len(stack), stack.ndim, stack.size
    (4, 3, 256)
    >>> stack[[1, 3]].shape                  # reads two files
    (2, 8, 8)
    >>> float(stack[2, 0, 1])                # one value of the third image
    129.0
    >>> bool(np.array_equal(np.asarray(stack), X))
    True
    >>> tmp.cleanup()
    """

    dtype = np.dtype(np.float32)

    def __init__(
        self, paths, offsets, dtypes, shape, *, voxel_size=None, source_shapes=None
    ):
        self.paths = list(paths)
        self._offsets = [int(o) for o in offsets]
        self._dtypes = [np.dtype(d) for d in dtypes]
        self._volume_shape = tuple(int(s) for s in shape)
        self.voxel_size = (
            None if voxel_size is None else tuple(float(v) for v in voxel_size)
        )
        self._source_shapes = (
            None
            if source_shapes is None
            else [tuple(int(s) for s in shp) for shp in source_shapes]
        )

    @property
    def shape(self):
        """``(n_files, *volume_shape)``."""
        return (len(self.paths), *self._volume_shape)

    @property
    def ndim(self):
        """Number of array dimensions, ``1 + len(volume_shape)``."""
        return 1 + len(self._volume_shape)

    @property
    def size(self):
        """Number of values of the whole stack."""
        return int(np.prod(self.shape))

    def __len__(self):
        return len(self.paths)

    def __repr__(self):
        return f"MRCStack(shape={self.shape}, dtype=float32, files={len(self)})"

    def _read(self, i):
        path = self.paths[i]
        shape = self._volume_shape
        if self._source_shapes is not None:
            shape = self._source_shapes[i]
        need = self._offsets[i] + int(np.prod(shape)) * self._dtypes[i].itemsize
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise ValueError(
                f"{path!r} can no longer be read ({exc.strerror or exc}); it was "
                "moved or deleted after the folder was loaded."
            ) from None
        if size < need:
            raise ValueError(
                f"{path!r} is shorter than when it was loaded ({size} bytes, "
                f"{need} needed): it changed on disk; load the folder again."
            )
        data = np.memmap(
            path, dtype=self._dtypes[i], mode="r", offset=self._offsets[i], shape=shape
        )
        try:
            vol = np.array(data, dtype=np.float32)
        finally:
            del data
        if shape != self._volume_shape:
            from scipy.ndimage import zoom

            factors = np.divide(self._volume_shape, shape)
            vol = zoom(vol, factors, order=1, grid_mode=True, mode="nearest")
        return vol

    def __getitem__(self, key):
        idx, rest = sample_index(key, len(self), items="files", owner="an MRCStack")
        if np.ndim(idx) == 0:
            vol = self._read(idx)
            return vol[rest] if rest else vol
        out = np.empty((*idx.shape, *self._volume_shape), dtype=np.float32)
        for pos, i in np.ndenumerate(idx):
            out[pos] = self._read(int(i))
        return out[(slice(None),) * idx.ndim + rest] if rest else out

    def __iter__(self):
        for i in range(len(self)):
            yield self._read(i)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)
