"""Classification under real cryo-ET conditions: noise, missing wedge, CTF.

Twelve seen classes of real structures (the shipped ``PROTEIN_IDS``), maps of
32³ at 5 Å/voxel (molmap at 10 Å), uniform random SO(3) poses and sub-voxel
shifts (<= 1 voxel), 200 training and 50 test subtomograms per class
(2400 / 600). Conditions (rows): SNR x wedge x CTF, from
:func:`skavae.datasets.make_proteins` with the forward-model options (noise is
white, the SNR per sample is signal variance in the box over noise variance;
wedge -60..60 degrees about y; CTF 300 kV, Cs 2.7 mm, 7 % amplitude contrast,
2-5 µm underfocus per particle, phase-flipped).

Columns, each a hard-KNN (k=5) accuracy on the held-out seen subtomograms,
KNN fitted on the training representations:

* ``robust``  -- the recipe of the "real subtomograms" user guide:
  ``BandPassFilter(lowpass=15 Å, normalize=False)`` then
  ``AffinityVAE(missing_wedge=..., **ROBUST)`` (16 latent dimensions,
  ``augment="d4"``) with the class matrix of FSC between the clean templates
  (20 Å cut);
* ``robust+TTA`` -- the same model, latents averaged over the eight rotations
  of its training augmentation (test-time augmentation);
* ``default`` -- ``AffinityVAE()`` defaults (8 latent dimensions, 15 epochs)
  on the raw data, same class matrix;
* ``beta-VAE`` -- the default network with ``gamma=0, pose_dims=0`` (raw data);
* ``PCA(8)+KNN``, ``PCA(16)+KNN`` -- PCA on the raw voxels, with the default's
  and the recipe's latent dimensions;
* ``raw+KNN`` -- KNN on the raw voxels;
* ``PCA(bp)`` -- PCA on the *band-passed* voxels (the robust recipe's input),
  so that the gain of the preprocessing and of the model can be told apart.

The last row block places two unseen structures (``UNSEEN``) on the robust
model's latent map: the seen classes their test members' nearest neighbours
belong to, against the ranking of FSC between their clean template and the
seen templates.

Run: python benchmarks/bench_realistic.py [--seeds 0 1 2] [--rows target|all]
     [--skip default,beta]
     python benchmarks/bench_realistic.py --ablation [--seeds 0] [--variants 4 5 6]
Each fit is timed (wall seconds on this machine, for the <= 10 minutes budget).
"""

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import PROTEIN_IDS, make_proteins
from skavae.evaluation import rotation_averaged_transform
from skavae.preprocessing import BandPassFilter

SIZE, VOXEL, N_TRAIN, N_TEST = 32, 5.0, 2400, 600
UNSEEN = ("1fdo", "3rer")
LATENT = 16
#: The robust recipe (see doc/user_guide/real_subtomograms.rst).
LOWPASS = 15.0
#: FSC cut of the class matrix (between the clean templates).
MATRIX_RESOLUTION = 20.0
ROBUST = dict(
    latent_dims=LATENT,
    gamma=8.0,
    beta=0.1,
    augment="d4",
    max_epochs=45,
    learning_rate_schedule="cosine",
    validation_fraction=0.0,  # all 2400 maps train; the KNN is scored on the test split
)
#: Today's defaults (latent_dims=8), 15 epochs.
DEFAULT = dict(max_epochs=15)

ROWS = {
    "target": [(0.1, True, True)],
    "all": [
        (None, False, False),
        (None, True, True),
        (1.0, True, True),
        (0.3, True, True),
        (0.1, False, False),
        (0.1, True, False),
        (0.1, True, True),
        (0.05, True, True),
    ],
}


def data(snr, wedge, ctf, seed, n, structures):
    return make_proteins(
        n_samples=n,
        structures=list(structures),
        size=SIZE,
        voxel_size=VOXEL,
        rotate="uniform",
        max_shift=1.0,
        snr=snr,
        missing_wedge=(-60, 60) if wedge else None,
        ctf=True if ctf else None,
        return_info=True,
        random_state=seed,
    )


def averaged(model, X):
    """Latents averaged over the rotations the model trained with (TTA)."""
    return rotation_averaged_transform(model, X)


def knn(Ztr, ytr, Zte, yte):
    return float(KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte))


def flat(A):
    return A.reshape(len(A), -1)


def run_row(snr, wedge, ctf, seed, skip, matrix):
    X, y, _, _ = data(snr, wedge, ctf, seed, N_TRAIN + N_TEST, PROTEIN_IDS)
    Xtr, Xte, ytr, yte = X[:N_TRAIN], X[N_TRAIN:], y[:N_TRAIN], y[N_TRAIN:]
    out = {}
    out["raw+KNN"] = knn(flat(Xtr), ytr, flat(Xte), yte)
    for dims in sorted({8, LATENT}):
        pca = PCA(dims, random_state=seed).fit(flat(Xtr))
        out[f"PCA({dims})+KNN"] = knn(
            pca.transform(flat(Xtr)), ytr, pca.transform(flat(Xte)), yte
        )
    bp = BandPassFilter(voxel_size=VOXEL, lowpass=LOWPASS, normalize=False).fit(Xtr)
    Btr, Bte = bp.transform(Xtr), bp.transform(Xte)
    pca = PCA(LATENT, random_state=seed).fit(flat(Btr))
    out["PCA(bp)"] = knn(pca.transform(flat(Btr)), ytr, pca.transform(flat(Bte)), yte)
    start = time.perf_counter()
    robust = AffinityVAE(
        n_threads=None,  # torch.set_num_threads above decides
        affinity=matrix,
        missing_wedge=(-60, 60) if wedge else None,
        random_state=seed,
        **ROBUST,
    ).fit(Btr, ytr)
    out["robust"] = knn(robust.transform(Btr), ytr, robust.transform(Bte), yte)
    out["robust s"] = time.perf_counter() - start
    out["robust+TTA"] = knn(averaged(robust, Btr), ytr, averaged(robust, Bte), yte)
    if "default" not in skip:
        start = time.perf_counter()
        model = AffinityVAE(
            n_threads=None, affinity=matrix, random_state=seed, **DEFAULT
        ).fit(Xtr, ytr)
        out["default"] = knn(model.transform(Xtr), ytr, model.transform(Xte), yte)
        out["default s"] = time.perf_counter() - start
    if "beta" not in skip:
        model = AffinityVAE(
            n_threads=None, gamma=0.0, pose_dims=0, random_state=seed, **DEFAULT
        ).fit(Xtr, ytr)
        out["beta-VAE"] = knn(model.transform(Xtr), ytr, model.transform(Xte), yte)
    return out, robust, bp, Btr, ytr


def unseen_report(robust, bp, Btr, ytr, snr, wedge, ctf, seed, templates):
    Xu, yu, _, tu = data(snr, wedge, ctf, seed + 100, 100, UNSEEN)
    fsc = FSCAffinity(voxel_size=VOXEL, resolution=MATRIX_RESOLUTION)
    seen = list(PROTEIN_IDS)
    clf = KNeighborsClassifier(5).fit(averaged(robust, Btr), ytr)
    pred = clf.predict(averaged(robust, bp.transform(Xu)))
    lines = []
    for label in UNSEEN:
        ranks = fsc(tu[label][None], np.stack([templates[s] for s in seen]))[0]
        order = [seen[i] for i in np.argsort(-ranks)]
        counts = pd.Series(pred[yu == label]).value_counts(normalize=True)
        top = ", ".join(f"{k} {v:.0%}" for k, v in counts.head(3).items())
        rank = {c: order.index(c) + 1 for c in counts.index[:3]}
        lines.append(
            f"  {label}: nearest seen classes {top}; their FSC ranks among the 12 "
            f"templates: {rank}; FSC top 3: {order[:3]}"
        )
    return lines


#: ``--ablation``: the recipe with one ingredient changed at a time
#: (name, band-pass lowpass in Å, AffinityVAE changes, class-matrix FSC cut).
ABLATION = [
    ("recipe", LOWPASS, {}, MATRIX_RESOLUTION),
    (
        "30 epochs, constant rate, 10 % validation (the earlier recipe)",
        LOWPASS,
        {
            "max_epochs": 30,
            "learning_rate_schedule": "constant",
            "validation_fraction": 0.1,
        },
        None,
    ),
    ("augment='d2' (180° rotations only)", LOWPASS, {"augment": "d2"}, None),
    ("latent_dims=8", LOWPASS, {"latent_dims": 8}, None),
    ("lowpass 20 Å", 20.0, {}, None),
    ("lowpass 12 Å", 12.0, {}, None),
    ("class matrix: FSC to 10 Å", LOWPASS, {}, 10.0),
]


def ablation(seed, templates, only=None):
    """Hard-KNN (plain and TTA) of each ABLATION variant on the target row.

    ``only``: indices into ABLATION to run (all when None).
    """
    X, y, _, _ = data(0.1, True, True, seed, N_TRAIN + N_TEST, PROTEIN_IDS)
    Xtr, Xte, ytr, yte = X[:N_TRAIN], X[N_TRAIN:], y[:N_TRAIN], y[N_TRAIN:]
    rows = []
    variants = ABLATION if only is None else [ABLATION[i] for i in only]
    for name, lowpass, changes, cut in variants:
        metric = FSCAffinity(voxel_size=VOXEL, resolution=cut or MATRIX_RESOLUTION)
        matrix = class_affinity_matrix(metric=metric, templates=templates)
        bp = BandPassFilter(voxel_size=VOXEL, lowpass=lowpass, normalize=False)
        Btr = bp.fit(Xtr).transform(Xtr)
        Bte = bp.transform(Xte)
        start = time.perf_counter()
        model = AffinityVAE(
            n_threads=None,  # torch.set_num_threads above decides
            affinity=matrix,
            missing_wedge=(-60, 60),
            random_state=seed,
            **{**ROBUST, **changes},
        ).fit(Btr, ytr)
        seconds = time.perf_counter() - start
        row = {
            "variant": name,
            "robust": knn(model.transform(Btr), ytr, model.transform(Bte), yte),
            "robust+TTA": knn(averaged(model, Btr), ytr, averaged(model, Bte), yte),
            "fit s": seconds,
        }
        rows.append(row)
        print(pd.DataFrame([row]).round(3).to_string(index=False), flush=True)
    print(f"\nablation, seed {seed} (SNR 0.1, ±60° wedge, CTF):")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", choices=sorted(ROWS), default="target")
    parser.add_argument("--skip", default="", help="comma list: default,beta")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="the recipe with one ingredient changed at a time, first seed only",
    )
    parser.add_argument(
        "--variants",
        type=int,
        nargs="+",
        default=None,
        help="with --ablation: indices of the variants to run (default all)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    _, _, _, templates = data(None, False, False, 0, 12, PROTEIN_IDS)
    if args.ablation:
        return ablation(args.seeds[0], templates, args.variants)
    matrix = class_affinity_matrix(
        metric=FSCAffinity(voxel_size=VOXEL, resolution=MATRIX_RESOLUTION),
        templates=templates,
    )
    records, notes = [], []
    for snr, wedge, ctf in ROWS[args.rows]:
        for seed in args.seeds:
            out, robust, bp, Btr, ytr = run_row(snr, wedge, ctf, seed, skip, matrix)
            row = {"snr": snr or np.inf, "wedge": wedge, "ctf": ctf, "seed": seed}
            records.append({**row, **out})
            print(pd.DataFrame([records[-1]]).round(3).to_string(index=False))
            if snr == 0.1 and wedge and ctf and seed == args.seeds[0]:
                notes = unseen_report(
                    robust, bp, Btr, ytr, snr, wedge, ctf, seed, templates
                )
    table = pd.DataFrame(records)
    accs = [
        c
        for c in (
            "robust",
            "robust+TTA",
            "default",
            "beta-VAE",
            "PCA(8)+KNN",
            f"PCA({LATENT})+KNN",
            "raw+KNN",
            "PCA(bp)",
        )
        if c in table
    ]
    summary = table.groupby(["snr", "wedge", "ctf"], sort=False)[accs].agg(
        lambda v: f"{np.mean(v):.3f} ± {np.std(v):.3f}"
    )
    baselines = [c for c in table if c.startswith("PCA(") and "+KNN" in c]
    gap = table["robust+TTA"] - table[[*baselines, "raw+KNN"]].max(axis=1)
    table["gap"] = gap
    summary["robust+TTA - best(PCA, raw)"] = table.groupby(
        ["snr", "wedge", "ctf"], sort=False
    )["gap"].agg(lambda v: f"{np.mean(v):+.3f} ± {np.std(v):.3f}")
    print("\nmean ± sd over seeds", args.seeds)
    print(summary.to_string())
    print(f"robust fit wall s: {table['robust s'].mean():.0f} (mean)")
    if notes:
        print("\nUnseen structures on the robust latent map (SNR 0.1, wedge, CTF):")
        print("\n".join(notes))


if __name__ == "__main__":
    main()
