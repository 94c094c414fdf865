"""MRC headers of a folder's files and the voxel size they share."""

from __future__ import annotations

import numpy as np

__all__ = []


def _header(file):
    """Shape, dtype, data offset, voxel size and image count of one file."""
    import mrcfile

    try:
        with mrcfile.mmap(file, mode="r", permissive=False) as mrc:
            data = mrc.data
            if data is None:
                raise ValueError("it holds no data")
            vshape, dtype = tuple(data.shape), data.dtype
            offset = mrc.header.nbytes + int(mrc.header.nsymbt)
            vs = mrc.voxel_size
            voxel = (float(vs.x), float(vs.y), float(vs.z))
    except Exception as exc:  # noqa: BLE001 - any failure names the file
        raise ValueError(f"{file!r} is not a readable MRC file: {exc}") from None
    if dtype.kind == "c":
        raise ValueError(
            f"{file!r} holds complex (mode 4) data; skavae reads real maps only "
            "(store the real part or the amplitude)."
        )
    if not vshape or 0 in vshape:
        raise ValueError(f"{file!r} holds an empty data block {vshape}.")
    count = 1
    if file.lower().endswith(".mrcs") and len(vshape) == 3:
        count, vshape = vshape[0], vshape[1:]  # a stack of 2D images
    return {
        "path": file,
        "shape": vshape,
        "dtype": dtype,
        "offset": int(offset),
        "voxel": voxel,
        "count": int(count),
    }


def _same(a, b):
    return bool(np.allclose(a, b, rtol=1e-4, atol=1e-6))


def _common_voxel_size(heads, resample):
    """The folder's voxel size; mixed sizes are an error unless resampling."""
    first = heads[0]
    for head in heads[1:]:
        if not _same(head["voxel"], first["voxel"]):
            break
    else:
        return first["voxel"]
    if not resample:

        def fmt(v):
            return " × ".join(f"{x:g}" for x in v)

        raise ValueError(
            f"{head['path']!r} has voxel size {fmt(head['voxel'])} Å but "
            f"{first['path']!r} has {fmt(first['voxel'])} Å; all files of a folder "
            "need one voxel size. Resample them first, or pass resample=True "
            "(command line: --resample) to resample to the most common one."
        )
    sizes = [h["voxel"] for h in heads]
    if any(min(v) <= 0 for v in sizes):
        bad = next(h for h in heads if min(h["voxel"]) <= 0)
        raise ValueError(
            f"{bad['path']!r} records no voxel size (0 Å in its header), so the "
            "folder's mixed voxel sizes cannot be resampled."
        )
    counts = [sum(_same(v, w) for w in sizes) for v in sizes]
    return sizes[int(np.argmax(counts))]
