"""Folders of .mrc files: lazy, memory-mapped loading and atomic saving.

Naming rule
-----------
One object per file, its class label in the file name: ``<label>_<id>.mrc``.
The label is the file name without its suffix up to the **last** underscore
(``ribosome_0001.mrc`` -> ``"ribosome"``, ``screw_right_00012.mrc`` ->
``"screw_right"``); a name without underscore is a label on its own
(``1ake.mrc`` -> ``"1ake"``). :func:`save_mrc_folder` writes
``<label>_<index>.mrc`` so the rule reads its labels back. Pass
``label_regex``, ``classes`` (a CSV table ``file,label``), ``label_func`` or
``unlabelled=True`` to :func:`load_mrc_folder` for other names
(:mod:`skavae.datasets._mrc_labels`); a warning says when the rule gives one
class per file.

Physical units
--------------
The voxel size comes from the MRC headers and is kept in
``MRCStack.voxel_size``; a folder of mixed voxel sizes is refused (the error
names two files and their sizes) unless ``resample=True`` resamples every file
to the most common one as it is read. :func:`save_mrc_folder` writes the
stack's voxel size into the new headers.

Stacks of images
----------------
A ``.mrcs`` file holds many 2D particles: :func:`load_mrc_folder` with
``suffixes=(".mrcs",)`` reads each image as one object, and
:func:`skavae.datasets.save_mrcs` writes one such file.

Memory
------
:func:`load_mrc_folder` checks every header with :mod:`mrcfile` (memory-mapped,
so no data is read), then returns an :class:`MRCStack`: an array-like of shape
``(n_files, *volume_shape)`` that memory-maps and reads only the files an index
asks for, so a folder larger than memory can be streamed in batches
(``X[batch_indices]``). No file stays open between accesses, so folders of any
number of files work. A file that changed on disk after loading (shorter,
moved) is an error naming it when it is read; a fit names the file of a
sample holding NaN or infinity.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from numbers import Real

import numpy as np
import pandas as pd

from skavae._files import file_mode, naming
from skavae.datasets._mrc_headers import _common_voxel_size, _header, _same
from skavae.datasets._mrc_labels import file_labels
from skavae.datasets._mrc_stack import MRCStack

__all__ = ["MRCStack", "load_mrc_folder", "save_mrc_folder"]

#: temporary files of a save (hidden, never read); left by a killed save
_PART_PREFIX, _PART_SUFFIX = ".tmp-", ".mrc.part"


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
    label_regex=None,
    classes=None,
    unlabelled=False,
    unlisted="error",
    resample=False,
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
        File name suffixes to load (case-insensitive). A ``.mrcs`` file (add
        ``".mrcs"``) is a stack of 2D images: each image is one object, all
        with the file's label.
    return_info : bool, default=False
        Also return a DataFrame with columns ``label``, ``path``,
        ``voxel_size_x``, ``voxel_size_y``, ``voxel_size_z`` (angstroms).
    follow_symlinks : bool, default=False
        Read files through symbolic links whose target lies outside the folder.
        By default such a link raises a ValueError (a folder of links could
        otherwise make a program read any file its user can); links to files
        inside the folder are always read.
    label_regex : str, default=None
        Regular expression searched in each file stem; its group ``label``
        (or its first group) is the label, e.g. ``r"^([^_]+)_"`` for
        ``1BXN_m0_156_Th0.mrc`` -> ``"1BXN"``. A file it does not match is an
        error naming the file.
    classes : str, path-like, dict or DataFrame, default=None
        Table of labels, a CSV file with columns ``file`` (name, with or
        without suffix) and ``label``, or a dict ``{file: label}``.
    unlabelled : bool, default=False
        Load without labels: ``y`` is None (fit without labels and evaluate
        by clustering the latents).
    unlisted : {"error", "skip"}, default="error"
        What to do with a file missing from ``classes``: raise a ValueError
        naming it, or leave it out.
    resample : bool, default=False
        Files of different voxel sizes are an error naming two of them; with
        True, each file is resampled, as it is read, to the most common voxel
        size of the folder (ties: the first file's) by linear interpolation
        (:func:`scipy.ndimage.zoom`, order 1, grid mode: the physical extent
        is kept). A file whose resampled shape differs from the others' is an
        error. Resampling by a large factor aliases; prefer a dedicated tool
        (Fourier cropping) for that.

    Returns
    -------
    X : MRCStack or ndarray of shape (n_files, D, H, W) or (n_files, H, W)
        The objects, in the files' array order (z, y, x), as float32.
    y : ndarray of shape (n_files,), dtype str, or None
        Labels (None with ``unlabelled=True``). A warning is raised when more
        than half of the files are the only member of their class (see
        :mod:`skavae.datasets._mrc_labels`).
    info : pandas.DataFrame
        Only if ``return_info``.

    Raises
    ------
    ValueError
        If the folder does not exist or holds no matching file, a file is
        not a valid MRC file, holds complex (mode 4) data, its data shape or
        voxel size differs from the first file's (without ``resample``),
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
    path = os.fspath(path)
    if isinstance(suffixes, str):
        suffixes = (suffixes,)
    suffixes = tuple(s.lower() for s in suffixes)
    names = _list_files(path, suffixes)
    _check_symlinks(path, names, follow_symlinks)
    y_files, keep = file_labels(
        names,
        label_func=label_func,
        label_regex=label_regex,
        classes=classes,
        unlabelled=unlabelled,
        unlisted=unlisted,
    )
    names = [n for n, k in zip(names, keep) if k]
    heads = [_header(os.path.join(path, name)) for name in names]
    target = _common_voxel_size(heads, True) if resample else None
    shape, first = None, None
    for head in heads:
        vshape = head["shape"]
        if resample and head["voxel"] != target:
            zoom = np.divide(head["voxel"][::-1], target[::-1])
            vshape = tuple(
                int(round(s * z)) for s, z in zip(vshape, zoom[-len(vshape) :])
            )
        if shape is None:
            shape, first, first_head = vshape, head["path"], head
        elif vshape != shape:
            if (
                not resample
                and min(head["voxel"] + first_head["voxel"]) > 0
                and not _same(head["voxel"], first_head["voxel"])
            ):
                _common_voxel_size([first_head, head], False)  # the real reason
            extra = " after resampling" if resample else ""
            raise ValueError(
                f"{head['path']!r} holds data of shape {vshape}{extra} but {first!r} "
                f"holds {shape}; all files of a folder must have one shape."
            )
    if not resample:
        target = _common_voxel_size(heads, False)
    paths, offsets, dtypes, y, source_shapes, voxels = [], [], [], [], [], []
    for k, head in enumerate(heads):
        step = int(np.prod(head["shape"])) * head["dtype"].itemsize
        for j in range(head["count"]):
            paths.append(head["path"])
            offsets.append(head["offset"] + j * step)
            dtypes.append(head["dtype"])
            source_shapes.append(head["shape"])
            voxels.append(head["voxel"])
            if y_files is not None:
                y.append(y_files[k])
    y = np.asarray(y, dtype=str) if y_files is not None else None
    X = MRCStack(
        paths,
        offsets,
        dtypes,
        shape,
        voxel_size=target if any(target) else None,
        source_shapes=source_shapes if resample else None,
    )
    if not mmap:
        X = X[:]
    if not return_info:
        return X, y
    voxels = np.asarray(voxels, dtype=float).reshape(-1, 3)
    info = pd.DataFrame(
        {
            "label": y if y is not None else [None] * len(paths),
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
    if not text or text.startswith(".") or any(c in text for c in "/\\\0"):
        raise ValueError(
            f"Label {label!r} cannot be part of a file name (empty, starting "
            "with '.', which makes a hidden file that is never read back, or "
            "holding a path separator)."
        )
    return text


def save_mrc_folder(X, y, path, *, voxel_size=None, overwrite=False):
    """Write one .mrc file per object, named ``<label>_<index>.mrc``.

    Every object and label is validated before anything is written. The
    files are written to hidden temporary files (``.tmp-*.mrc.part``) in the
    destination folder and renamed into place (:func:`os.replace`) only when
    all of them are written, so a failed save leaves no new ``.mrc`` file and
    an interrupted one no partial file (permissions follow the umask).
    Temporary files left by a killed save are removed by the next save into
    the folder (two saves into one folder at the same time are not supported)
    and never read by :func:`load_mrc_folder`, which reads the folder back
    with the same labels.

    Parameters
    ----------
    X : array-like of shape (n_samples, D, H, W) or (n_samples, H, W)
        Volumes or images (stored as float32, mode 2).
    y : array-like of shape (n_samples,)
        Labels (turned into strings; no path separators).
    path : str or path-like
        Destination folder, created if missing.
    voxel_size : float or tuple of 3 floats, default=None
        Voxel size in angstroms, isotropic or (x, y, z); None takes
        ``X.voxel_size`` when ``X`` has one (an :class:`MRCStack` read from a
        folder), else 1.0.
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
    if voxel_size is None:
        voxel_size = getattr(X, "voxel_size", None) or 1.0
    vs = _check_voxel_size(voxel_size)
    limit = float(np.finfo(np.float32).max)
    for i in range(n):  # validate everything before writing anything
        obj = np.asarray(X[i])
        if obj.dtype.kind not in "fiub":
            raise ValueError(
                f"Object {i} has dtype {obj.dtype}; .mrc files hold real numbers."
            )
        if obj.ndim not in (2, 3):
            raise ValueError(
                f"Object {i} has shape {obj.shape}; .mrc files hold 2D images or "
                "3D volumes."
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
    _remove_stale_parts(path)
    temps, renamed = [], []
    try:
        for i in range(n):
            fd, tmp = tempfile.mkstemp(
                prefix=_PART_PREFIX, suffix=_PART_SUFFIX, dir=path
            )
            os.close(fd)
            temps.append(tmp)
            try:
                with mrcfile.new(tmp, overwrite=True) as mrc:
                    mrc.set_data(np.ascontiguousarray(X[i], dtype=np.float32))
                    mrc.voxel_size = vs
            except OSError as exc:
                if exc.filename not in (None, tmp):
                    raise
                raise naming(exc, targets[i]) from exc
        mode = file_mode()
        for tmp, target in zip(temps, targets):  # all written: move into place
            os.chmod(tmp, mode)
            new = not os.path.exists(target)
            os.replace(tmp, target)
            if new:
                renamed.append(target)
    except BaseException:
        for file in temps + renamed:  # leave no new file of a failed save
            with contextlib.suppress(OSError):
                os.unlink(file)
        raise
    return targets


def _remove_stale_parts(folder):
    """Delete the temporary files a killed save left in ``folder``."""
    for name in os.listdir(folder):
        if name.startswith(_PART_PREFIX) and name.endswith(_PART_SUFFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
