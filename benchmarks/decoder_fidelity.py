"""Does the decoder carry the object? Decoded class centres against the objects.

Trains one ``AffinityVAE`` on rotated 32³ tetraminos (``make_tetraminos``,
the paper's grid of angles, noise-free; FSC class matrix of the unrotated
templates) and measures, on 300 held-out objects:

- ``centre``: the class centre (mean training latent of the object's class)
  decoded at the object's own encoded pose, against the object itself
  (Pearson correlation over the box, mean over objects): what a decoded
  class centre shows where the pose is free to take the object's;
- ``own``: the object's own latent at its own pose (the reconstruction);
- ``traversal``: each latent dimension swept over ±2 sd of the training
  latents in 7 steps (the other dimensions and the pose at their means),
  the mean absolute change per step over the decoded dynamic range.

Settings are passed as a JSON dict of ``AffinityVAE`` parameters plus ``n``
(training objects, default 1200), ``seed`` (0) and ``threads`` (1)::

    python benchmarks/decoder_fidelity.py '{}'
    python benchmarks/decoder_fidelity.py '{"decoder": "splat", "pose_dims": 3,
        "n_splats": 64, "beta": 0.1}'
"""

import json
import sys
import time

import numpy as np
import torch

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import make_tetraminos


def correlation(a, b):
    """Pearson correlation of each pair of objects (rows of a and b)."""
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def main():
    cfg = json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}")
    n = cfg.pop("n", 1200)
    seed = cfg.pop("seed", 0)
    torch.set_num_threads(cfg.pop("threads", 1))
    X, y, _, templates = make_tetraminos(
        n_samples=n + 300, random_state=seed, return_info=True
    )
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templates)
    start = time.perf_counter()
    model = AffinityVAE(affinity=A, random_state=seed, n_threads=None, **cfg)
    model.fit(Xtr, ytr)
    fit_s = time.perf_counter() - start
    mu_tr = model.transform(Xtr)
    mu_te, _, pose_te = model.encode(Xte)
    pose_te = pose_te if pose_te.shape[1] else None
    classes = np.unique(ytr)
    centres = {c: mu_tr[ytr == c].mean(0) for c in classes}
    Zc = np.stack([centres[c] for c in yte])
    r_centre = correlation(model.inverse_transform(Zc, pose=pose_te), Xte)
    r_own = correlation(model.inverse_transform(mu_te, pose=pose_te), Xte)
    steps = np.linspace(-2, 2, 7)
    pose0 = None
    if pose_te is not None:
        pose0 = np.repeat(pose_te.mean(0, keepdims=True), 7, axis=0)
    changes = []
    for d in range(mu_tr.shape[1]):
        Z = np.repeat(mu_tr.mean(0, keepdims=True), 7, axis=0)
        Z[:, d] += steps * mu_tr[:, d].std()
        img = model.inverse_transform(Z.astype(np.float32), pose=pose0)
        changes.append(np.abs(np.diff(img, axis=0)).mean() / np.ptp(img))
    print(
        json.dumps(
            {
                "settings": cfg,
                "fit_seconds": round(fit_s),
                "centre": round(float(r_centre.mean()), 3),
                "own": round(float(r_own.mean()), 3),
                "centre_per_class": {
                    c: round(float(r_centre[yte == c].mean()), 3) for c in classes
                },
                "traversal_step_of_range": [round(float(c), 5) for c in changes],
            }
        )
    )


if __name__ == "__main__":
    main()
