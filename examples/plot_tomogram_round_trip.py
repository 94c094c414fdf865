"""
From tomograms to classes and back
==================================

Real subtomograms live in tomograms, their positions in particle lists. This
example runs the whole round trip on synthetic tomograms with ground truth:

1. :func:`~skavae.datasets.make_tomogram` simulates tomograms of six *E. coli*
   machines in random positions and orientations, with a ±60° missing wedge,
   a CTF and noise, and returns the ground-truth particle list;
2. :func:`~skavae.io.extract_subtomograms` cuts the particles out *lazily*
   (a batch is cut only when the model asks for it) from the training
   tomograms, and :class:`~skavae.AffinityVAE` learns a latent map from them,
   with the missing-wedge-aware loss;
3. the particles of a held-out tomogram are classified on that map, written
   back as a RELION STAR file with :func:`~skavae.io.write_particles`, and
   compared with the ground truth.

The command line does the same with ``skavae simulate tomogram``, ``skavae
fit --particles`` and ``skavae evaluate --particles`` (see the user guide,
"Working with tomograms").
"""

# %%
# Three tomograms with ground truth
# ---------------------------------
# 128 × 256 × 256 voxels of 10 Å (the defaults), 100 molecules each, tilt
# ±60°, one CTF per tomogram (defocus drawn in 2-5 µm, phase-flipped) and
# noise at SNR 0.5 on 32-voxel boxes. Two train, the third is held out: the
# setting of the slow test ``test_end_to_end_default_tomograms``, which runs
# the same round trip through the command line.
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import make_tomogram
from skavae.io import (
    extract_subtomograms,
    read_particles,
    write_particles,
    write_volume,
)

start = time.perf_counter()
tomograms, lists = {}, []
for seed in range(3):
    name = f"tomo_{seed:03d}"
    out = make_tomogram(
        (128, 256, 256),
        n_particles=100,
        name=name,
        random_state=seed,
        return_templates=seed == 0,
    )
    if seed == 0:
        tomo, particles, templates, _ = out
    else:
        tomo, particles = out
    tomograms[name] = tomo
    lists.append(particles)
print(f"simulated 3 tomograms in {time.perf_counter() - start:.1f} s")
print(lists[0][["tomo_name", "x", "y", "z", "class_name", "rot", "tilt", "psi"]].head())

# %%
# One slice of a tomogram
# -----------------------
# The central slab of the held-out tomogram (10 slices summed), with its
# molecules within 12 voxels of it circled in the colour of their true class.
held_out = lists[2]
classes = sorted(templates)
colours = dict(zip(classes, plt.cm.tab10.colors))
z0 = tomograms["tomo_002"].shape[0] // 2
slab = tomograms["tomo_002"][z0 - 5 : z0 + 5].sum(axis=0)
fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(slab, cmap="gray")
near = np.abs(held_out["z"] - z0) < 12
for _, row in held_out[near].iterrows():
    ax.add_patch(
        plt.Circle(
            (row["x"], row["y"]),
            10,
            fill=False,
            lw=1.5,
            color=colours[row["class_name"]],
        )
    )
for c in classes:
    ax.plot([], [], "o", mfc="none", color=colours[c], label=c)
ax.legend(loc="upper right", fontsize=8, title="true class")
ax.set_title("held-out tomogram, central slab")
ax.set_axis_off()

# %%
# Cut the training particles and fit
# ----------------------------------
# The training tomograms are written as MRC files (as a user's would be) and
# the particle list as a STAR file; :func:`~skavae.io.extract_subtomograms`
# memory-maps the tomograms and carries each particle's tilt range along, so
# the fit knows the missing wedge. The class affinity is the FSC between the
# clean templates.
work = tempfile.mkdtemp()
for name, tomo in tomograms.items():
    write_volume(os.path.join(work, f"{name}.mrc"), tomo, voxel_size=10.0)
train_star = os.path.join(work, "train.star")
write_particles(train_star, pd.concat(lists[:2], ignore_index=True))
train = read_particles(train_star)
stack = extract_subtomograms(work, train, box=32)
print(
    f"{len(stack)} training subtomograms of {stack.shape[1:]} voxels, "
    f"tilt ranges known: {stack.tilt_ranges is not None}"
)

A = class_affinity_matrix(metric=FSCAffinity(voxel_size=10.0), templates=templates)
model = AffinityVAE(
    latent_dims=8,
    affinity=A,
    missing_wedge=(-60, 60),
    max_epochs=40,
    random_state=0,
)
start = time.perf_counter()
model.fit(stack, train["class_name"].to_numpy())
print(f"fitted {model.n_iter_} epochs in {time.perf_counter() - start:.0f} s")

# %%
# Classify the held-out tomogram and write the result back
# --------------------------------------------------------
# Hard KNN (k=5) on the training latents. The output STAR keeps every input
# column and adds the prediction; the true class is kept next to it here only
# because the ground truth is known.
test = held_out.copy()
test_stack = extract_subtomograms(work, test, box=32)
knn = KNeighborsClassifier(5).fit(model.transform(stack), train["class_name"])
predicted = knn.predict(model.transform(test_stack))
accuracy = float(np.mean(predicted == test["class_name"].to_numpy()))
print(
    f"held-out tomogram: {accuracy:.2f} of {len(test)} particles get their "
    f"true class (chance {1 / len(classes):.2f})"
)
test["predicted"] = predicted
out_star = os.path.join(work, "classified.star")
write_particles(out_star, test)
print(read_particles(out_star)[["x", "y", "z", "class_name", "predicted"]].head())

# %%
# Which structures are confused
# -----------------------------
# Rows: true class; columns: predicted; the cells off the diagonal are the
# particles the map mixes up.
table = pd.crosstab(test["class_name"], test["predicted"]).reindex(
    index=classes, columns=classes, fill_value=0
)
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(table.to_numpy(), cmap="Blues")
ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
ax.set_yticks(range(len(classes)), classes)
for i in range(len(classes)):
    for j in range(len(classes)):
        ax.text(j, i, table.iat[i, j], ha="center", va="center", fontsize=8)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title(f"held-out tomogram, accuracy {accuracy:.2f}")
fig.tight_layout()
plt.show()
