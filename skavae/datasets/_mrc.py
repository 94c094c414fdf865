"""Folders of .mrc files: lazy, memory-mapped loading and atomic saving.

Naming rule
-----------
One object per file, its class label in the file name: ``<label>_<id>.mrc``.
The label is the file name without its suffix up to the **last** underscore
(``ribosome_0001.mrc`` -> ``"ribosome"``, ``screw_right_00012.mrc`` ->
``"screw_right"``); a name without underscore is a label on its own
(``1ake.mrc`` -> ``"1ake"``). :func:`save_mrc_folder` writes
``<label>_<index>.mrc`` so the rule reads its labels back. Pass ``label_func``
to :func:`load_mrc_folder` for another rule.

Memory
------
:func:`load_mrc_folder` checks every header with :mod:`mrcfile` (memory-mapped,
so no data is read), then returns an :class:`MRCStack`: an array-like of shape
``(n_files, *volume_shape)`` that memory-maps and reads only the files an index
asks for, so a folder larger than memory can be streamed in batches
(``X[batch_indices]``). No file stays open between accesses, so folders of any
number of files work.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import pandas as pd

from skavae._files import atomic_path

__all__ = ["MRCStack", "load_mrc_folder", "save_mrc_folder"]


def _label_from_name(name):
    stem = os.path.splitext(name)[0]
    label, sep, _ = stem.rpartition("_")
    return label if sep and label else stem


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

    Attributes
    ----------
    paths : list of str
        One file per object, in order.
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

    def __init__(self, paths, offsets, dtypes, shape):
        self.paths = list(paths)
        self._offsets = [int(o) for o in offsets]
        self._dtypes = [np.dtype(d) for d in dtypes]
        self._volume_shape = tuple(int(s) for s in shape)

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
        data = np.memmap(
            self.paths[i],
            dtype=self._dtypes[i],
            mode="r",
            offset=self._offsets[i],
            shape=self._volume_shape,
        )
        try:
            return np.array(data, dtype=np.float32)
        finally:
            del data

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        n = len(self)
        if isinstance(key, (Integral, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} files.")
            vol = self._read(i % n)
            return vol[rest] if rest else vol
        if isinstance(key, slice):
            idx = np.arange(n)[key]
        else:
            idx = np.asarray(key)
            if idx.size == 0:
                idx = idx.astype(np.intp)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(
                        f"boolean index of shape {idx.shape} does not match {n} files."
                    )
                idx = np.flatnonzero(idx)
            elif idx.dtype.kind not in "iu":
                raise IndexError(f"cannot index an MRCStack with {key!r}.")
            if idx.size and (idx.max() >= n or idx.min() < -n):
                raise IndexError(f"index out of range for {n} files.")
            idx = idx % n if idx.size else idx.astype(np.intp)
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


def _list_files(path, suffixes):
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a folder.")
    names = sorted(
        f
        for f in os.listdir(path)
        if f.lower().endswith(suffixes)
        and not f.startswith(".")
        and os.path.isfile(os.path.join(path, f))
    )
    if not names:
        raise ValueError(
            f"Folder {path!r} holds no {' or '.join(suffixes)} files; it is empty "
            "or the files have other suffixes."
        )
    return names


def _check_symlinks(path, names, follow_symlinks):
    """Refuse symbolic links that lead outside the folder (unless followed)."""
    if follow_symlinks:
        return
    folder = os.path.realpath(path)
    for name in names:
        file = os.path.join(path, name)
        if not os.path.islink(file):
            continue
        target = os.path.realpath(file)
        if os.path.commonpath([folder, target]) != folder:
            raise ValueError(
                f"{file!r} is a symbolic link to {target!r}, outside the folder "
                f"{path!r}; pass follow_symlinks=True (command line: "
                "--follow-symlinks) to read files that links lead to outside it."
            )


def load_mrc_folder(
    path,
    *,
    mmap=True,
    label_func=None,
    suffixes=(".mrc", ".map"),
    return_info=False,
    follow_symlinks=False,
):
    """Load a folder of .mrc files, one object per file, labels from file names.

    Parameters
    ----------
    path : str or path-like
        Folder of files named ``<label>_<id>.mrc`` (see :mod:`skavae.datasets._mrc`
        for the rule), all holding volumes (or images) of one shape. Files are
        taken in sorted name order; hidden files are ignored.
    mmap : bool, default=True
        If True, ``X`` is an :class:`MRCStack` that reads files on indexing
        (folders larger than memory stream in batches); if False, all data are
        read into one float32 array.
    label_func : callable, default=None
        ``label_func(file_name) -> label`` replacing the naming rule.
    suffixes : tuple of str, default=(".mrc", ".map")
        File name suffixes to load (case-insensitive).
    return_info : bool, default=False
        Also return a DataFrame with columns ``label``, ``path``,
        ``voxel_size_x``, ``voxel_size_y``, ``voxel_size_z`` (angstroms).
    follow_symlinks : bool, default=False
        Read files through symbolic links whose target lies outside the folder.
        By default such a link raises a ValueError (a folder of links could
        otherwise make a program read any file its user can); links to files
        inside the folder are always read.

    Returns
    -------
    X : MRCStack or ndarray of shape (n_files, D, H, W) or (n_files, H, W)
        The objects, in the files' array order (z, y, x), as float32.
    y : ndarray of shape (n_files,), dtype str
        Labels.
    info : pandas.DataFrame
        Only if ``return_info``.

    Raises
    ------
    ValueError
        If the folder does not exist or holds no matching file, a file is
        not a valid MRC file or its data shape differs from the first file's,
        or a file is a symbolic link that leads outside the folder (without
        ``follow_symlinks``); the message names the file.

    See Also
    --------
    save_mrc_folder : Write a folder that reads back with the same labels.
    MRCStack : The lazy stack returned with ``mmap=True``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from skavae.datasets import load_mrc_folder, save_mrc_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> X = np.random.RandomState(0).rand(3, 4, 4, 4).astype(np.float32)
    >>> paths = save_mrc_folder(X, ["a", "b", "a"], tmp.name, voxel_size=2.0)
    >>> X2, y2 = load_mrc_folder(tmp.name)
    >>> X2.shape, y2.tolist()
    ((3, 4, 4, 4), ['a', 'a', 'b'])
    >>> bool(np.array_equal(X2[[0, 2]], X[[0, 1]]))
    True
    >>> tmp.cleanup()
    """
    import mrcfile

    path = os.fspath(path)
    if isinstance(suffixes, str):
        suffixes = (suffixes,)
    suffixes = tuple(s.lower() for s in suffixes)
    if label_func is not None and not callable(label_func):
        raise ValueError(f"label_func must be callable; got {label_func!r}.")
    names = _list_files(path, suffixes)
    _check_symlinks(path, names, follow_symlinks)
    paths, offsets, dtypes, voxels = [], [], [], []
    shape = None
    first = None
    for name in names:
        file = os.path.join(path, name)
        try:
            with mrcfile.mmap(file, mode="r", permissive=False) as mrc:
                data = mrc.data
                if data is None:
                    raise ValueError("it holds no data")
                vshape, dtype = tuple(data.shape), data.dtype
                offset = mrc.header.nbytes + int(mrc.header.nsymbt)
                vs = mrc.voxel_size
                voxels.append((float(vs.x), float(vs.y), float(vs.z)))
        except Exception as exc:  # noqa: BLE001 - any failure names the file
            raise ValueError(f"{file!r} is not a readable MRC file: {exc}") from None
        if not vshape or 0 in vshape:
            raise ValueError(f"{file!r} holds an empty data block {vshape}.")
        if shape is None:
            shape, first = vshape, file
        elif vshape != shape:
            raise ValueError(
                f"{file!r} holds data of shape {vshape} but {first!r} holds "
                f"{shape}; all files of a folder must have one shape."
            )
        paths.append(file)
        offsets.append(int(offset))
        dtypes.append(dtype)
    labeller = label_func if label_func is not None else _label_from_name
    y = np.asarray([str(labeller(name)) for name in names])
    X = MRCStack(paths, offsets, dtypes, shape)
    if not mmap:
        X = X[:]
    if not return_info:
        return X, y
    voxels = np.asarray(voxels)
    info = pd.DataFrame(
        {
            "label": y,
            "path": paths,
            "voxel_size_x": voxels[:, 0],
            "voxel_size_y": voxels[:, 1],
            "voxel_size_z": voxels[:, 2],
        }
    )
    return X, y, info


def _check_voxel_size(voxel_size):
    if isinstance(voxel_size, Real) and not isinstance(voxel_size, bool):
        values = (float(voxel_size),) * 3
    else:
        try:
            values = tuple(float(v) for v in voxel_size)
        except (TypeError, ValueError):
            values = ()
        if len(values) != 3:
            raise ValueError(
                "voxel_size must be a number or (x, y, z) in angstroms; got "
                f"{voxel_size!r}."
            )
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"voxel_size must be positive; got {voxel_size!r}.")
    return values


def _check_label(label):
    text = str(label)
    if not text or text in (".", "..") or any(c in text for c in "/\\\0"):
        raise ValueError(
            f"Label {label!r} cannot be part of a file name (empty, '.', '..' or "
            "holding a path separator)."
        )
    return text


def save_mrc_folder(X, y, path, *, voxel_size=1.0, overwrite=False):
    """Write one .mrc file per object, named ``<label>_<index>.mrc``.

    Each file is written to a temporary file in the destination folder and
    renamed into place (:func:`os.replace`), so an interrupted save never
    leaves a partial ``.mrc`` file (permissions follow the umask);
    :func:`load_mrc_folder` reads the folder back with the same labels.

    Parameters
    ----------
    X : array-like of shape (n_samples, D, H, W) or (n_samples, H, W)
        Volumes or images (stored as float32, mode 2).
    y : array-like of shape (n_samples,)
        Labels (turned into strings; no path separators).
    path : str or path-like
        Destination folder, created if missing.
    voxel_size : float or tuple of 3 floats, default=1.0
        Voxel size in angstroms, isotropic or (x, y, z).
    overwrite : bool, default=False
        Replace existing files of the same names; if False, an existing file
        raises a ValueError before anything is written.

    Returns
    -------
    paths : list of str
        The files written, in the order of ``X``.

    See Also
    --------
    load_mrc_folder : Read the folder back.

    Examples
    --------
    >>> import os, tempfile, numpy as np, mrcfile
    >>> from skavae.datasets import save_mrc_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> paths = save_mrc_folder(np.zeros((2, 3, 3, 3)), ["L", "T"], tmp.name,
    ...                         voxel_size=4.0)
    >>> [os.path.basename(p) for p in paths]
    ['L_00000.mrc', 'T_00001.mrc']
    >>> with mrcfile.open(paths[0]) as mrc:
    ...     float(mrc.voxel_size.x)
    4.0
    >>> tmp.cleanup()
    """
    import mrcfile

    n = len(X)
    labels = [_check_label(lab) for lab in np.asarray(y, dtype=object).ravel()]
    if len(labels) != n:
        raise ValueError(f"X has {n} objects but y has {len(labels)} labels.")
    if n == 0:
        raise ValueError("X is empty: nothing to save.")
    vs = _check_voxel_size(voxel_size)
    limit = float(np.finfo(np.float32).max)
    for i in range(n):  # validate everything before writing anything
        obj = np.asarray(X[i])
        if obj.dtype.kind not in "fiub":
            raise ValueError(
                f"Object {i} has dtype {obj.dtype}; .mrc files hold real numbers."
            )
        if obj.dtype.kind == "f" and obj.size:
            finite = obj[np.isfinite(obj)]  # NaN/inf are stored as they are
            if finite.size and np.abs(finite).max() > limit:
                raise ValueError(
                    f"Object {i} has values beyond the float32 range of .mrc files."
                )
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    width = max(5, len(str(n - 1)))
    names = [f"{lab}_{i:0{width}d}.mrc" for i, lab in enumerate(labels)]
    targets = [os.path.join(path, name) for name in names]
    if not overwrite:
        existing = [t for t in targets if os.path.exists(t)]
        if existing:
            raise ValueError(
                f"{existing[0]!r} already exists ({len(existing)} of the files to "
                "write do); pass overwrite=True to replace them."
            )
    for i, target in enumerate(targets):
        data = np.asarray(X[i], dtype=np.float32)
        if data.ndim not in (2, 3):
            raise ValueError(
                f"Object {i} has shape {data.shape}; .mrc files hold 2D images or "
                "3D volumes."
            )
        # temporary file, renamed into place; permissions from the umask
        with atomic_path(target, suffix=".mrc.part") as tmp:
            with mrcfile.new(tmp, overwrite=True) as mrc:
                mrc.set_data(np.ascontiguousarray(data))
                mrc.voxel_size = vs
    return targets
