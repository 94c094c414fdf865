"""
From clean maps to realistic subtomograms
=========================================

Real subtomograms are noisy (SNR about 0.1), miss a wedge of Fourier space
(tilt range about -60° to +60°) and carry the microscope's contrast transfer
function. :func:`~skavae.datasets.simulate_subtomograms` (and the same options
of :func:`~skavae.datasets.make_proteins`) simulate all three. This example
shows a noise ladder of one protein, the wedge in its power spectrum, and how
hard-KNN accuracy on held-out subtomograms falls with the SNR for four
representations: the robust affinity-VAE recipe (band-pass, wedge-aware loss,
FSC template affinities, wedge-preserving rotation augmentation), the default
affinity-VAE, PCA and raw voxels.

The sizes are small so that the page builds in about a minute; the
benchmark ``benchmarks/bench_realistic.py`` runs the full comparison (12
classes, 2400 training subtomograms, three seeds).
"""

# %%
# A noise ladder
# --------------
# One map of ``1ake`` at 5 Å voxels, in one pose, through the forward model at
# decreasing SNR (with a ±60° wedge about the y axis and a phase-flipped CTF at
# 3 µm underfocus). Top: central z-y slices (the wedge smears density along the
# beam, axis z); middle: projections along x; bottom: the log power spectrum
# in the k_z-k_x plane, where the missing wedge is the empty double cone.
import matplotlib.pyplot as plt
import numpy as np
from scipy import fft
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import CTF, make_proteins, simulate_subtomograms
from skavae.preprocessing import BandPassFilter

clean, _ = make_proteins(
    n_samples=1, structures="1ake", size=32, voxel_size=5.0, random_state=0
)
ladder = [None, 1.0, 0.3, 0.1, 0.05]
fig, axes = plt.subplots(3, len(ladder) + 1, figsize=(12, 6))
columns = [("clean", clean)] + [
    (
        f"SNR {snr}" if snr else "wedge + CTF",
        simulate_subtomograms(
            clean,
            voxel_size=5.0,
            ctf=CTF(defocus_um=3.0),
            missing_wedge=(-60, 60),
            snr=snr,
            random_state=1,
        ),
    )
    for snr in ladder
]
for col, (title, vol) in enumerate(columns):
    v = vol[0]
    power = np.log1p(np.abs(fft.fftshift(fft.fftn(v)))[:, 16, :] ** 2)
    for row, img in enumerate([v[:, :, 16], v.sum(axis=2), power]):
        axes[row, col].imshow(img, cmap="gray")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[0, col].set_title(title)
for row, name in enumerate(["slice z-y", "projection", "power k_z-k_x"]):
    axes[row, 0].set_ylabel(name)
fig.tight_layout()

# %%
# Accuracy against SNR
# --------------------
# Six structures, random SO(3) poses, wedge and CTF at every SNR; 480 training
# and 120 test subtomograms; hard KNN (k=5) on the held-out ones. The class
# matrix is FSC between the clean templates at a 20 Å cut. The VAEs train for
# 12 epochs here (the benchmark uses 30 for the recipe).
structures = ["19hc", "1a28", "1ake", "1dx5", "1osm", "2cay"]
snrs = [1.0, 0.3, 0.1]
results = {"robust VAE": [], "default VAE": [], "PCA+KNN": [], "raw+KNN": []}
for snr in snrs:
    X, y, info, templates = make_proteins(
        n_samples=600,
        structures=structures,
        size=32,
        voxel_size=5.0,
        rotate="uniform",
        max_shift=1.0,
        missing_wedge=(-60, 60),
        ctf=True,
        snr=snr,
        return_info=True,
        random_state=0,
    )
    matrix = class_affinity_matrix(
        metric=FSCAffinity(voxel_size=5.0, resolution=20.0), templates=templates
    )
    Xtr, Xte, ytr, yte = X[:480], X[480:], y[:480], y[480:]

    def knn(Ztr, Zte, ytr=ytr, yte=yte):
        return KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte)

    flat_tr, flat_te = Xtr.reshape(480, -1), Xte.reshape(120, -1)
    results["raw+KNN"].append(knn(flat_tr, flat_te))
    pca = PCA(16, random_state=0).fit(flat_tr)  # as many dimensions as the recipe
    results["PCA+KNN"].append(knn(pca.transform(flat_tr), pca.transform(flat_te)))
    default = AffinityVAE(affinity=matrix, max_epochs=12, random_state=0)
    default.fit(Xtr, ytr)
    results["default VAE"].append(knn(default.transform(Xtr), default.transform(Xte)))
    bp = BandPassFilter(voxel_size=5.0, lowpass=15.0, normalize=False).fit(Xtr)
    robust = AffinityVAE(
        affinity=matrix,
        latent_dims=16,
        missing_wedge=(-60, 60),
        augment="d4",
        gamma=8.0,
        beta=0.1,
        max_epochs=12,
        random_state=0,
    ).fit(bp.transform(Xtr), ytr)
    results["robust VAE"].append(
        knn(robust.transform(bp.transform(Xtr)), robust.transform(bp.transform(Xte)))
    )

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, accs in results.items():
    ax.plot(snrs, accs, marker="o", label=name)
ax.set_xscale("log")
ax.set_xlabel("SNR (signal variance / noise variance)")
ax.set_ylabel("hard-KNN accuracy (held out)")
ax.set_ylim(0, 1.02)
ax.axhline(1 / len(structures), color="gray", lw=0.8, ls=":")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
for name, accs in results.items():
    print(f"{name:12s}", " ".join(f"{a:.2f}" for a in accs))
