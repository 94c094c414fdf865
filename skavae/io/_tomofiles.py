"""Tomogram files: headers, memory maps and boxes cut from them."""

from __future__ import annotations

import contextlib
import mmap
import os

import numpy as np

from skavae.io._columns import tomo_stem

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
