"""Writing volumes and subtomograms as MRC files."""

from __future__ import annotations

import os

import numpy as np

from skavae._files import atomic_path
from skavae.io._tomofiles import _CHUNK_VOXELS


def write_volume(path, volume, *, voxel_size=None, overwrite=True):
    """Write one volume (or image) as a float32 ``.mrc`` file, atomically.

    For the volumes a run produces next to its PNG slices (decoded class
    centres, reconstructions, per-cluster averages): the voxel size goes into
    the header, so viewers (ChimeraX, IMOD) show them at physical scale.

    Parameters
    ----------
    path : str or path-like
        The file to write; its name ends in ``.mrc`` and does not start with
        ``.``. The folder must exist.
    volume : array-like of shape (D, H, W) or (H, W)
        Real, finite values within the float32 range.
    voxel_size : float or tuple of 3 floats, default=None
        Voxel size in angstroms, isotropic or (x, y, z); None writes 1 Å
        (mrcfile's default) unless ``volume`` has a ``voxel_size``.
    overwrite : bool, default=True
        Replace an existing file; if False, an existing file is an error.

    Returns
    -------
    path : str
        The file written.

    Examples
    --------
    >>> import os, tempfile, numpy as np, mrcfile
    >>> from skavae.io import write_volume
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = write_volume(os.path.join(tmp.name, "centre_0.mrc"),
    ...                     np.ones((4, 4, 4)), voxel_size=10.0)
    >>> with mrcfile.open(path) as mrc:
    ...     mrc.data.shape, float(mrc.voxel_size.x)
    ((4, 4, 4), 10.0)
    >>> tmp.cleanup()
    """
    from skavae.datasets._mrc import _check_voxel_size

    path = os.fspath(path)
    name = os.path.basename(path)
    if not name.lower().endswith(".mrc") or name.startswith("."):
        raise ValueError(
            f"{path!r}: the file name must end in .mrc and not start with '.'."
        )
    if not overwrite and os.path.exists(path):
        raise ValueError(f"{path!r} already exists; pass overwrite=True to replace it.")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{path!r}: the folder does not exist.")
    if voxel_size is None:
        voxel_size = getattr(volume, "voxel_size", None)
    vs = None if voxel_size is None else _check_voxel_size(voxel_size)
    data = np.asarray(volume)
    if data.dtype.kind not in "fiub" or data.ndim not in (2, 3) or 0 in data.shape:
        raise ValueError(
            f"{path!r}: the volume must be a real 2D or 3D array; got dtype "
            f"{data.dtype} and shape {data.shape}."
        )
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ValueError(f"{path!r}: the volume holds NaN or infinity.")
    if np.abs(data).max() > np.finfo(np.float32).max:
        raise ValueError(f"{path!r}: the volume has values beyond float32.")
    import mrcfile

    with atomic_path(path, suffix=".mrc.part") as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
            if vs is not None:
                mrc.voxel_size = vs
    return path


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
