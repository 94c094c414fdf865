"""
Figures 4 and 13: tetraminos without affinity, with mean difference and with FSC
================================================================================

Three affinity-VAEs are trained on the same rotated 3D tetraminos; they differ
only in the affinity that organises the latent space: none (``gamma=0``), the
mean voxel difference (:class:`~skavae.affinity.MeanDifference`) and the
Fourier shell correlation (:class:`~skavae.affinity.FSCAffinity`), both
computed on one unrotated template per shape. The t-SNE embeddings are shown
side by side, as in the paper's Figure 13, with a thumbnail of each shape at
the centre of its cluster (Figure 4). The fused shape "EL" is never seen in
training: where does each model place it?
"""

# %%
# Data
# ----
# The paper uses 32³ volumes and 1 000 tetraminos; this example uses 24³
# volumes (cubes of 4 voxels) and 480 training shapes, 15 epochs per model
# (``size=32, n_samples=1000, max_epochs=100`` is the paper's scale).
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, MeanDifference, class_affinity_matrix
from skavae.datasets import TETRAMINO_SEEN, make_tetraminos
from skavae.evaluation import latent_map_report
from skavae.plotting import plot_embedding

X, y, info, templates = make_tetraminos(
    n_samples=600, size=24, test_size=0.2, return_info=True, random_state=0
)
train = (info["split"] == "train").to_numpy()
X_unseen, y_unseen, _, unseen_templates = make_tetraminos(
    n_samples=60, shapes="unseen", size=24, return_info=True, random_state=1
)
print(f"{train.sum()} training, {(~train).sum()} test, {len(X_unseen)} unseen volumes")

# %%
# The two affinity matrices
# -------------------------
# Both metrics compare the templates in one frame (they depend on
# orientation). The matrices include the unseen "EL" here only to show which
# seen shape each metric finds closest to it; training uses the seen rows.
all_templates = {**templates, **unseen_templates}
metrics = {"mean difference": MeanDifference(), "FSC": FSCAffinity()}
matrices = {
    name: class_affinity_matrix(metric=metric, templates=all_templates)
    for name, metric in metrics.items()
}
closest = pd.DataFrame(
    {name: A.loc["EL", list(TETRAMINO_SEEN)] for name, A in matrices.items()}
)
print("affinity of EL with each seen shape:")
print(closest.round(3).to_string())

# %%
# Train three models
# ------------------
seen = list(TETRAMINO_SEEN)
settings = {
    "no affinity": dict(affinity=None, gamma=0.0),
    "mean difference": dict(affinity=matrices["mean difference"].loc[seen, seen]),
    "FSC": dict(affinity=matrices["FSC"].loc[seen, seen]),
}
models, rows = {}, []
for name, params in settings.items():
    params = {"gamma": 2.0, **params}
    model = AffinityVAE(
        latent_dims=8, beta=1.0, max_epochs=15, random_state=0, **params
    )
    start = time.perf_counter()
    model.fit(X[train], y[train])
    seconds = time.perf_counter() - start
    models[name] = model
    report = latent_map_report(
        model,
        X[train],
        y[train],
        X_unseen,
        y_unseen,
        X_test=X[~train],
        y_test=y[~train],
    )
    rows.append(
        {
            "model": name,
            "fit s": seconds,
            "KNN accuracy": report.attrs["accuracy"],
            "separation": report.attrs["separation_score"],
            "EL read as": report.loc["EL", "predicted_class"],
            "EL nearest centre": report.loc["EL", "nearest_seen_class"],
        }
    )
print(pd.DataFrame(rows).round(3).to_string(index=False))

# %%
# t-SNE side by side
# ------------------
# Training points are faint, test points opaque, unseen EL drawn as crosses;
# thumbnails are maximum projections of the volumes.
fig, axes = plt.subplots(1, 3, figsize=(21, 6.5), layout="constrained")
X_all = np.concatenate([X[train], X[~train], X_unseen])
y_all = np.concatenate([y[train], y[~train], y_unseen])
split = ["train"] * train.sum() + ["test"] * (~train).sum() + ["test"] * len(X_unseen)
for ax, (name, model) in zip(axes, models.items()):
    plot_embedding(
        X_all,
        y_all,
        model=model,
        method="tsne",
        seen_classes=seen,
        split=split,
        thumbnails=True,
        projection="max",
        ax=ax,
    )
    ax.set_title(name, pad=40)
plt.show()
