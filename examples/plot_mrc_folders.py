"""
Reading and writing folders of .mrc files
=========================================

Subtomograms usually come as one ``.mrc`` file per object. skavae reads a
folder of them with :func:`~skavae.datasets.load_mrc_folder`: the class label
is the file name up to its **last** underscore (``ribosome_0001.mrc`` →
``"ribosome"``, ``screw_right_00012.mrc`` → ``"screw_right"``), and the data
come back as a memory-mapped :class:`~skavae.datasets.MRCStack`, which
:meth:`~skavae.AffinityVAE.fit` streams batch by batch, so a folder larger
than memory can be used for training.
:func:`~skavae.datasets.save_mrc_folder` writes a folder with that rule.
"""

# %%
# Write a folder
# --------------
# Simulated tetraminos stand in for real subtomograms here (16³ volumes with
# 2.0 Å voxels); the same code reads a folder of experimental data.
import os
import tempfile
import time

import numpy as np

from skavae import AffinityVAE
from skavae.affinity import (
    FSCAffinity,
    class_affinity_matrix,
    read_affinity_csv,
    write_affinity_csv,
)
from skavae.datasets import load_mrc_folder, make_tetraminos, save_mrc_folder

X, y = make_tetraminos(
    n_samples=240, shapes=["I", "L", "O", "screw_right"], size=16, random_state=0
)
folder = tempfile.mkdtemp(prefix="skavae-mrc-")
paths = save_mrc_folder(X, y, folder, voxel_size=2.0)
names = sorted(os.listdir(folder))
print(f"wrote {len(paths)} files, e.g. {names[0]}, {names[-1]}")

# %%
# Read it back lazily
# -------------------
# Headers are checked up front; data are read only when indexed. With
# ``return_info=True`` a table gives each file's path and voxel size.
X_mrc, y_mrc, info = load_mrc_folder(folder, return_info=True)
print(X_mrc)
print("labels:", sorted(set(y_mrc.tolist())))
print(info.drop(columns="path").head(3).to_string())
batch = X_mrc[[0, 5, 7]]
print("a batch:", type(batch).__name__, batch.shape, batch.dtype)

# %%
# Train on the stack
# ------------------
# The model reads the files in batches: the stack is never loaded whole. A
# class-level FSC matrix is computed from members of each class (16 per
# class by default) with the voxel size from the headers, saved in the
# paper's CSV layout and read back, as one would with a matrix computed once
# for a data set.
voxel = float(info["voxel_size_x"].iloc[0])
affinity = class_affinity_matrix(X_mrc, y_mrc, FSCAffinity(voxel_size=voxel))
csv = os.path.join(folder, "affinity.csv")
write_affinity_csv(affinity, csv)
affinity = read_affinity_csv(csv)
print(affinity.round(2).to_string())

vae = AffinityVAE(latent_dims=4, affinity=affinity, max_epochs=5, random_state=0)
start = time.perf_counter()
vae.fit(X_mrc, y_mrc)
print(f"fit on the memory-mapped stack: {time.perf_counter() - start:.1f} s")
Z = vae.transform(X_mrc)
print("latents:", Z.shape)

# %%
# Decoded volumes can be written back as .mrc files, e.g. reconstructions
# for inspection in ChimeraX.
recon = vae.reconstruct(X_mrc[:4])
out = save_mrc_folder(recon, np.asarray(y_mrc[:4]), os.path.join(folder, "recon"))
print("wrote", [os.path.basename(p) for p in out])
