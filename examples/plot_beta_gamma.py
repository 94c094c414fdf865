"""
Figures 8, 10 and 11: β-VAE versus affinity-VAE, and β and γ sweeps
===================================================================

A plain β-VAE (``gamma=0`` and no pose channel, ``pose_dims=0``) also
clusters rotated characters once β is large enough (the paper's Figure 10),
but nothing makes similar characters neighbours. Switching the affinity term
on (``gamma > 0``, Figure 11) pulls the clusters apart and orders them by
shape similarity. Figure 8 compares the two on the embeddings and on the
*proximity matrix*: the distances between class centres, scaled so that the
largest is 100.

Four models are trained on the same data:

==============  ====  =====  =========  ========================
model           β     γ      pose_dims  paper
==============  ====  =====  =========  ========================
β-VAE, β=1      1     0      0          Figure 10
β-VAE, β=5      5     0      0          Figures 8 (left), 10, 11
affinity, γ=2   5     2      1          Figure 11
affinity, γ=10  5     10     1          Figures 8 (right), 11
==============  ====  =====  =========  ========================
"""

# %%
# Data and affinity
# -----------------
# 1 200 rotated 32×32 characters, 12 epochs per model. The paper sweeps
# β = 1..5 and γ = 0, 1, 3, 4, 6, 10, 20 on 10 000 images of 64×64
# (``n_samples=10000, size=64, max_epochs=100``).
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from skavae import AffinityVAE
from skavae.affinity import MeanDifference, class_affinity_matrix
from skavae.datasets import make_alphanumeric
from skavae.evaluation import hard_knn_predict, proximity_matrix, separation_score
from skavae.plotting import plot_embedding, plot_proximity_matrix

X, y, info, templates = make_alphanumeric(
    n_samples=1200, size=32, test_size=0.25, return_info=True, random_state=0
)
train = (info["split"] == "train").to_numpy()
affinity = class_affinity_matrix(metric=MeanDifference(), templates=templates)
labels = list(affinity.index)

# %%
# Train the four models
# ---------------------
# Besides KNN accuracy and the separation score (distance between class
# centres over cluster spread), the table gives the Spearman correlation
# between the affinity of two classes and the distance of their centres:
# negative when similar characters sit close together.
settings = {
    "β-VAE, β=1": dict(beta=1.0, gamma=0.0, pose_dims=0),
    "β-VAE, β=5": dict(beta=5.0, gamma=0.0, pose_dims=0),
    "affinity, γ=2": dict(beta=5.0, gamma=2.0, pose_dims=1),
    "affinity, γ=10": dict(beta=5.0, gamma=10.0, pose_dims=1),
}
upper = np.triu_indices(len(labels), 1)
models, rows = {}, []
for name, params in settings.items():
    model = AffinityVAE(
        latent_dims=8,
        affinity=affinity if params["gamma"] > 0 else None,
        max_epochs=12,
        random_state=0,
        **params,
    )
    start = time.perf_counter()
    model.fit(X[train], y[train])
    seconds = time.perf_counter() - start
    Z_train, Z_test = model.transform(X[train]), model.transform(X[~train])
    distances = proximity_matrix(Z_test, y[~train]).loc[labels, labels]
    rho = spearmanr(affinity.to_numpy()[upper], distances.to_numpy()[upper])[0]
    models[name] = (model, Z_test, distances)
    rows.append(
        {
            "model": name,
            "fit s": seconds,
            "KNN accuracy": np.mean(
                hard_knn_predict(Z_train, y[train], Z_test) == y[~train]
            ),
            "separation": separation_score(Z_test, y[~train]),
            "Spearman(affinity, distance)": rho,
        }
    )
print(pd.DataFrame(rows).round(3).to_string(index=False))

# %%
# Figure 8: β-VAE against affinity-VAE
# ------------------------------------
# Top: t-SNE embeddings of the held-out latents. Bottom: proximity matrices
# (0-100). The printed lines compare the distance between the two most
# similar classes (highest affinity) with that between the two least similar.
fig, axes = plt.subplots(2, 2, figsize=(11, 10), layout="constrained")
for col, name in enumerate(["β-VAE, β=5", "affinity, γ=10"]):
    model, Z_test, distances = models[name]
    plot_embedding(Z_test, y[~train], method="tsne", ax=axes[0, col])
    axes[0, col].set_title(name)
    plot_proximity_matrix(distances, ax=axes[1, col])
order = np.argsort(affinity.to_numpy()[upper])
(a1, b1), (a2, b2) = [
    (labels[upper[0][k]], labels[upper[1][k]]) for k in order[[-1, 0]]
]
print(f"most similar: {a1}-{b1} (affinity {affinity.loc[a1, b1]:.2f}); ", end="")
print(f"least similar: {a2}-{b2} (affinity {affinity.loc[a2, b2]:.2f})")
for name in ["β-VAE, β=5", "affinity, γ=10"]:
    d = models[name][2]
    print(
        f"{name}: distance {a1}-{b1} {d.loc[a1, b1]:.0f}, {a2}-{b2} {d.loc[a2, b2]:.0f}"
    )

# %%
# Figures 10 and 11: the sweeps
# -----------------------------
# From left to right: β grows with γ = 0 (Figure 10), then γ grows at β = 5
# (Figure 11).
fig, axes = plt.subplots(1, 4, figsize=(18, 4.5), layout="constrained")
for ax, (name, (_model, Z_test, _)) in zip(axes, models.items()):
    plot_embedding(Z_test, y[~train], method="tsne", ax=ax)
    ax.set_title(name)
plt.show()
