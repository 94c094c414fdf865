"""Writing volumes and subtomograms as MRC files."""

from __future__ import annotations

import os

import numpy as np

from skavae._files import atomic_path
from skavae.io._tomofiles import _CHUNK_VOXELS


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
