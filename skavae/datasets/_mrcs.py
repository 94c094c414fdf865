"""One ``.mrcs`` file: a stack of 2D particle images (RELION's format)."""

from __future__ import annotations

import os

import numpy as np

from skavae._files import atomic_path

__all__ = ["save_mrcs"]


def save_mrcs(X, path, *, voxel_size=None, overwrite=False):
    """Write 2D images as one ``.mrcs`` image stack (mode 2, float32), atomically.

    Parameters
    ----------
    X : array-like of shape (n_images, H, W)
        The images.
    path : str or path-like
        The file to write (its name ends in ``.mrcs``; the folder must exist).
    voxel_size : float or tuple of 3 floats, default=None
        Pixel size in angstroms; None takes ``X.voxel_size`` when ``X`` has
        one, else 1.0.
    overwrite : bool, default=False
        Replace an existing file.

    Returns
    -------
    path : str
        The file written.

    See Also
    --------
    load_mrc_folder : Reads ``.mrcs`` files (``suffixes=(".mrcs",)``), one
        object per image.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from skavae.datasets import load_mrc_folder, save_mrcs
    >>> tmp = tempfile.TemporaryDirectory()
    >>> X = np.arange(5 * 4 * 4, dtype=np.float32).reshape(5, 4, 4)
    >>> _ = save_mrcs(X, os.path.join(tmp.name, "ribo_a.mrcs"), voxel_size=2.5)
    >>> stack, y = load_mrc_folder(tmp.name, suffixes=(".mrcs",))
    >>> stack.shape, y.tolist(), stack.voxel_size
    ((5, 4, 4), ['ribo', 'ribo', 'ribo', 'ribo', 'ribo'], (2.5, 2.5, 2.5))
    >>> bool(np.array_equal(stack[:], X))
    True
    >>> tmp.cleanup()
    """
    import mrcfile

    from skavae.datasets._mrc import _check_voxel_size

    path = os.fspath(path)
    name = os.path.basename(path)
    if not name.lower().endswith(".mrcs") or name.startswith("."):
        raise ValueError(
            f"{path!r}: an image stack's file name ends in .mrcs and does not "
            "start with '.' (hidden files are never read back)."
        )
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path!r} already exists; pass overwrite=True to replace it.")
    if voxel_size is None:
        voxel_size = getattr(X, "voxel_size", None) or 1.0
    vs = _check_voxel_size(voxel_size)
    data = np.asarray(X)
    if data.dtype.kind not in "fiub" or data.ndim != 3 or 0 in data.shape:
        raise ValueError(
            f"X must be real images of shape (n_images, H, W); got dtype "
            f"{data.dtype} and shape {data.shape}."
        )
    with atomic_path(path, suffix=".mrcs.part") as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
            mrc.set_image_stack()
            mrc.voxel_size = vs
    return path
