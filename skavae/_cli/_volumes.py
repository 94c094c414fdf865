"""``.mrc`` outputs of ``skavae evaluate`` for volumes: class centres, averages.

Next to the PNG slices, a run on 3D data writes, into ``OUT/volumes/``:

- ``<class>_centre.mrc``: the decoded centre of each class of the latent map
  (the model's decoder applied to the mean latent of the class; the pose
  code is the training mean, ``pose_mean_``);
- ``<class>_average.mrc``: the voxel-wise mean of the input volumes of each
  class (each cluster, without labels).

Every file is written atomically by :func:`skavae.io.write_volume` with the
voxel size of the data in its header.
"""

from __future__ import annotations

import os

import numpy as np

from skavae._cli._common import progress

FOLDER = "volumes"


def file_stem(label):
    """A label as part of a file name: path separators and the like become ``-``."""
    text = "".join(c if c.isalnum() or c in "-._+" else "-" for c in str(label))
    return text.strip(".") or "class"


def class_averages(X, groups, *, chunk=64, quiet=False):
    """``{group: mean volume}`` of a (lazy) stack, read chunk by chunk."""
    groups = np.asarray(groups).astype(str)
    names = sorted(set(groups.tolist()))
    index = {g: k for k, g in enumerate(names)}
    codes = np.array([index[g] for g in groups])
    sums = np.zeros((len(names), *X.shape[1:]), dtype=np.float64)
    counts = np.bincount(codes, minlength=len(names))
    with progress(desc="averaging", total=len(X), unit="file", quiet=quiet) as bar:
        for start in range(0, len(X), chunk):
            stop = min(start + chunk, len(X))
            batch = np.asarray(X[start:stop], dtype=np.float64)
            np.add.at(sums, codes[start:stop], batch)
            bar.update(stop - start)
    return {g: sums[k] / counts[k] for g, k in index.items()}


def write_volumes(out, model, X, groups, centres, *, voxel_size, quiet=False):
    """Write ``OUT/volumes/<group>_centre.mrc`` and ``<group>_average.mrc``.

    Parameters
    ----------
    out : str
        The results folder.
    model : AffinityVAE
        A fitted model of 3D data.
    X : array-like of shape (n_samples, D, H, W)
        The input volumes (a lazy stack is read chunk by chunk).
    groups : array-like of shape (n_samples,)
        The class (or cluster) of each volume: one average per group.
    centres : dict
        ``{name: latent vector}``: one decoded centre per entry.
    voxel_size : float, tuple of 3 floats or None
        Voxel size in Å for the headers (None: 1 Å).

    Returns
    -------
    written : list of str
        The files written, relative to ``out``.
    """
    from skavae.io import write_volume

    folder = os.path.join(out, FOLDER)
    os.makedirs(folder, exist_ok=True)
    if voxel_size is not None and min(np.ravel(voxel_size)) <= 0:
        voxel_size = None  # headers recorded none: mrcfile's default, 1 Å
    written = []
    if centres:
        names = list(centres)
        Z = np.stack([np.asarray(centres[n], dtype=np.float32) for n in names])
        decoded = np.asarray(model.inverse_transform(Z))
        for name, volume in zip(names, decoded):
            file = f"{file_stem(name)}_centre.mrc"
            write_volume(os.path.join(folder, file), volume, voxel_size=voxel_size)
            written.append(f"{FOLDER}/{file}")
    for name, volume in class_averages(X, groups, quiet=quiet).items():
        file = f"{file_stem(name)}_average.mrc"
        write_volume(os.path.join(folder, file), volume, voxel_size=voxel_size)
        written.append(f"{FOLDER}/{file}")
    return written


def class_centres(Z, y):
    """``{class: mean latent}`` of a labelled latent map, classes sorted."""
    y = np.asarray(y).astype(str)
    return {c: Z[y == c].mean(axis=0) for c in sorted(set(y.tolist()))}


def summarise(written):
    """``["volumes/ (n .mrc files)"]`` for the "Wrote ..." line of a command."""
    return [f"{FOLDER}/ ({len(written)} .mrc files)"] if written else []
