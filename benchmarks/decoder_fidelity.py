"""Does the decoder carry the object? Decoded class centres against the objects.

Trains one ``AffinityVAE`` on rotated 32³ tetraminos (``make_tetraminos``,
the paper's grid of angles, noise-free; FSC class matrix of the unrotated
templates) and measures, on 300 held-out objects:

- ``centre``: the class centre (mean training latent of the object's class)
  decoded at the object's own encoded pose, against the object itself
  (Pearson correlation over the box, mean over objects): what a decoded
  class centre shows where the pose is free to take the object's;
- ``own``: the object's own latent at its own pose (the reconstruction);
- ``centre_aligned``: the issue's measure where the pose is free: each class
  centre decoded at the encoded poses of the first ``aligned_poses`` (3)
  held-out members of its class, each decoded object rotated onto the class's
  unrotated template (best of 3000 random rotations, then local search at
  10°, 4° and 1.5°; trilinear resampling), the correlation over the box,
  mean over poses and classes;
- ``traversal``: each latent dimension swept over ±2 sd of the training
  latents in 7 steps (the other dimensions and the pose at their means),
  the mean absolute change per step over the decoded dynamic range.

``"data": "proteins"`` trains on clean proteins instead: the twelve shipped
structures (``PROTEIN_IDS``), molmap at 10 Å on 32³ voxels of 5 Å, uniform
SO(3) poses, no noise, wedge or CTF, FSC class matrix of the templates at a
20 Å cut (as ``bench_realistic.py``). ``traversal_on_object`` is the same
change per step over the voxels where the traversal's mean decoded image
exceeds a tenth of its maximum (the object, not the empty box around it).

Settings are passed as a JSON dict of ``AffinityVAE`` parameters plus ``n``
(training objects, default 1200), ``seed`` (0), ``threads`` (1),
``aligned_poses`` (3) and ``data``
(``"tetraminos"``, default, or ``"proteins"``)::

    python benchmarks/decoder_fidelity.py '{}'
    python benchmarks/decoder_fidelity.py '{"decoder": "splat", "pose_dims": 3,
        "n_splats": 64, "beta": 0.1}'
    python benchmarks/decoder_fidelity.py '{"data": "proteins", "decoder": "splat",
        "pose_dims": 3, "n_splats": 64, "beta": 0.1}'
"""

import json
import sys
import time

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import PROTEIN_IDS, make_proteins, make_tetraminos
from skavae.datasets._forward import resample


def dataset(name, n, seed):
    """(X, y, class matrix) of ``n`` objects of the named data set."""
    if name == "tetraminos":
        X, y, _, templates = make_tetraminos(
            n_samples=n, random_state=seed, return_info=True
        )
        A = class_affinity_matrix(metric=FSCAffinity(), templates=templates)
        return X, y, A, templates
    if name == "proteins":
        X, y, _, templates = make_proteins(
            n_samples=n,
            structures=list(PROTEIN_IDS),
            size=32,
            voxel_size=5.0,
            rotate="uniform",
            return_info=True,
            random_state=seed,
        )
        metric = FSCAffinity(voxel_size=5.0, resolution=20.0)
        A = class_affinity_matrix(metric=metric, templates=templates)
        return X, y, A, templates
    raise SystemExit(f"unknown data {name!r}: tetraminos or proteins")


def correlation(a, b):
    """Pearson correlation of each pair of objects (rows of a and b)."""
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def aligned_correlation(volume, template, n_coarse=3000, seed=0, chunk=500):
    """Largest correlation of ``volume`` rotated about the box centre with
    ``template``: the best of ``n_coarse`` random rotations, then three rounds
    of local search (100 perturbations of the 5 best at 10°, 4°, 1.5°)."""
    rng = np.random.default_rng(seed)
    t = template.reshape(-1) - template.mean()
    t = t / np.linalg.norm(t)

    def score(R):
        out = []
        for i in range(0, len(R), chunk):
            Rc = R[i : i + chunk]
            v = resample(
                np.repeat(volume[None], len(Rc), 0), Rc, np.zeros((len(Rc), 3))
            )
            v = v.reshape(len(Rc), -1)
            v = v - v.mean(1, keepdims=True)
            out.append(v @ t / np.maximum(np.linalg.norm(v, axis=1), 1e-12))
        return np.concatenate(out)

    R = Rotation.random(n_coarse, random_state=seed).as_matrix()
    r = score(R)
    for step in np.deg2rad([10.0, 4.0, 1.5]):
        best = R[np.argsort(r)[-5:]]
        kicks = Rotation.from_rotvec(rng.normal(scale=step, size=(100, 3))).as_matrix()
        R = np.concatenate([best, (best[:, None] @ kicks[None]).reshape(-1, 3, 3)])
        r = score(R)
    return float(r.max())


def main():
    cfg = json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}")
    n = cfg.pop("n", 1200)
    seed = cfg.pop("seed", 0)
    torch.set_num_threads(cfg.pop("threads", 1))
    name = cfg.pop("data", "tetraminos")
    n_poses = cfg.pop("aligned_poses", 3)
    X, y, A, templates = dataset(name, n + 300, seed)
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
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
    # decoded class centre against the class's unrotated template, after the
    # best rotation (the pose is free): decoded at the encoded poses of the
    # first n_poses held-out members of the class
    aligned = {}
    for c in classes:
        members = np.flatnonzero(yte == c)[:n_poses]
        decoded = model.inverse_transform(
            np.repeat(centres[c][None], len(members), 0).astype(np.float32),
            pose=None if pose_te is None else pose_te[members],
        )
        aligned[c] = np.mean(
            [aligned_correlation(v, np.asarray(templates[c])) for v in decoded]
        )
    steps = np.linspace(-2, 2, 7)
    pose0 = None
    if pose_te is not None:
        pose0 = np.repeat(pose_te.mean(0, keepdims=True), 7, axis=0)
    changes, on_object = [], []
    for d in range(mu_tr.shape[1]):
        Z = np.repeat(mu_tr.mean(0, keepdims=True), 7, axis=0)
        Z[:, d] += steps * mu_tr[:, d].std()
        img = model.inverse_transform(Z.astype(np.float32), pose=pose0)
        step = np.abs(np.diff(img, axis=0))
        changes.append(step.mean() / np.ptp(img))
        mean = img.mean(0)
        support = mean > 0.1 * mean.max()
        on_object.append(step[:, support].mean() / np.ptp(img))
    print(
        json.dumps(
            {
                "data": name,
                "settings": cfg,
                "fit_seconds": round(fit_s),
                "centre": round(float(r_centre.mean()), 3),
                "own": round(float(r_own.mean()), 3),
                "centre_aligned": round(float(np.mean(list(aligned.values()))), 3),
                "centre_aligned_per_class": {
                    c: round(float(v), 3) for c, v in aligned.items()
                },
                "centre_per_class": {
                    c: round(float(r_centre[yte == c].mean()), 3) for c in classes
                },
                "traversal_step_of_range": [round(float(c), 5) for c in changes],
                "traversal_on_object": [round(float(c), 5) for c in on_object],
            }
        )
    )


if __name__ == "__main__":
    main()
