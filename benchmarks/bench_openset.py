"""Open-set classification on latent maps: calibrated "unknown" and discovery.

For each data set and seed, an ``AffinityVAE`` (8 latent dimensions, FSC class
affinity of the seen templates) is trained on seen classes only; then, on its
latents:

- ``ConformalOpenSetClassifier`` with every nonconformity score
  (``gaussian``, ``gaussian_shared``, ``knn``, ``knn_ratio``, ``sigma``; class-
  conditional calibration, the default) is fitted on the training
  latents and calibrated on *fresh* seen objects (generated with another seed,
  never seen by the encoder); it is evaluated at ``alpha`` on fresh seen test
  objects (another seed again) and on the unseen classes;
- the same classifiers calibrated the pipeline way, on a ``calibration_fraction``
  of the encoder's own training latents (rows "pipeline"), to show why the
  calibration must come from held-out objects;
- the paper's ±2σ rule (``ClusterMeanClassifier(n_sigma=2)``) as the baseline;
- ``discover_clusters`` on the test and unseen samples called unknown by the
  default classifier: the clusters found, their majority class and purity.

Columns: ``seen_error`` is the fraction of fresh seen test objects whose
predicted label is not their class ("unknown" counts as wrong); ``miss`` the
fraction whose prediction set misses their class (the quantity conformal
prediction bounds by ``alpha``); ``seen_unknown`` the fraction called unknown;
``unseen_unknown`` the fraction of unseen objects called unknown; ``auroc`` the
area under the ROC curve of unseen-vs-seen detection by the largest p-value
(for ±2σ: by the smallest box statistic ``min_k max_d |z_d - mu_kd| / sd_kd``).

Data sets:

- ``tetraminos``: rotated 32³ tetraminos (the paper's grid of angles), seen
  I L O S T branch, unseen EL;
- ``proteins``: 32³ maps of 5 Å voxels simulated from the shipped structures
  with uniform SO(3) rotations, noise-free, seen = ten of ``PROTEIN_IDS``,
  unseen = ``4ake`` (the open form of the seen ``1ake``) and ``2xcj``;
- ``realistic``: the target row of ``bench_realistic.py`` (SNR 0.1, ±60° wedge,
  CTF, uniform SO(3) poses, shifts; seen = the twelve ``PROTEIN_IDS``, 2400
  training maps; unseen = ``1fdo`` and ``3rer``, its unseen pair) with its
  recipe: the 15 Å band-pass, ``AffinityVAE(**ROBUST)`` and the rotation-averaged
  latents (``rotation_averaged_transform``). The calibration, test and unseen
  maps are cut from *one* fresh stack of all fourteen structures, so that seen
  and unseen maps share one noise level.

Each (data set, seed) trains one model (about 2 minutes on one core). With
``--cache DIR`` the latents are stored there and reused, so the runs can be
split::

    python benchmarks/bench_openset.py --datasets tetraminos --seeds 0 --cache C
    ...
    python benchmarks/bench_openset.py --cache C   # all cached: the tables only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import PROTEIN_IDS, make_proteins, make_tetraminos
from skavae.evaluation import (
    ClusterMeanClassifier,
    ConformalOpenSetClassifier,
    discover_clusters,
    rotation_averaged_transform,
)
from skavae.preprocessing import BandPassFilter

sys.path.insert(0, os.path.dirname(__file__))

SCORES = ("gaussian", "gaussian_shared", "knn", "knn_ratio", "sigma")
PROTEINS_UNSEEN = ["4ake", "2xcj"]
PROTEINS_SEEN = [p for p in PROTEIN_IDS if p not in PROTEINS_UNSEEN]
VOXEL = 5.0


def generate(dataset, n, seed, which, return_info=False):
    if dataset == "tetraminos":
        shapes = "seen" if which == "seen" else "unseen"
        return make_tetraminos(
            n, shapes=shapes, size=32, return_info=return_info, random_state=seed
        )
    structures = PROTEINS_SEEN if which == "seen" else PROTEINS_UNSEEN
    return make_proteins(
        n,
        structures=structures,
        size=32,
        voxel_size=VOXEL,
        rotate="uniform",
        return_info=return_info,
        random_state=seed,
    )


def realistic_latents(seed, args):
    """The bench_realistic.py recipe on seen maps; eval sets from one stack."""
    import bench_realistic as br

    base = 1000 * seed
    X, y, _, _ = br.data(0.1, True, True, base, args.n_train, br.PROTEIN_IDS)
    _, _, _, templates = br.data(None, False, False, 0, 12, br.PROTEIN_IDS)
    A = class_affinity_matrix(
        metric=FSCAffinity(voxel_size=br.VOXEL, resolution=br.MATRIX_RESOLUTION),
        templates=templates,
    )
    # one fresh stack of the 12 seen and 2 unseen structures: one noise level
    everything = list(br.PROTEIN_IDS) + list(br.UNSEEN)
    n_eval = int(np.ceil((args.n_cal + args.n_test) * len(everything) / 12))
    Xe, ye, _, _ = br.data(0.1, True, True, base + 1, n_eval, everything)
    new = np.isin(ye, br.UNSEEN)
    seen_rows, new_rows = np.flatnonzero(~new), np.flatnonzero(new)
    cal, test = seen_rows[: args.n_cal], seen_rows[args.n_cal :][: args.n_test]
    new_rows = new_rows[: args.n_unseen]
    bp = BandPassFilter(voxel_size=br.VOXEL, lowpass=br.LOWPASS, normalize=False)
    bp.fit(X)
    model = AffinityVAE(
        n_threads=None,  # torch.set_num_threads above decides
        affinity=A,
        missing_wedge=(-60, 60),
        random_state=seed,
        **br.ROBUST,
    )
    start = time.perf_counter()
    model.fit(bp.transform(X), y)
    seconds = time.perf_counter() - start
    B = bp.transform(Xe)
    return {
        "Z_train": rotation_averaged_transform(model, bp.transform(X)),
        "y_train": y,
        "Z_cal": rotation_averaged_transform(model, B[cal]),
        "y_cal": ye[cal],
        "Z_test": rotation_averaged_transform(model, B[test]),
        "y_test": ye[test],
        "Z_unseen": rotation_averaged_transform(model, B[new_rows]),
        "y_unseen": ye[new_rows],
        "fit_seconds": np.array(seconds),
    }


def latents(dataset, seed, args):
    """Train one model and encode the four sets; cached in ``args.cache``."""
    path = None
    if args.cache is not None:
        path = args.cache / f"{dataset}_seed{seed}.npz"
        if path.exists():
            return dict(np.load(path, allow_pickle=False))
    if dataset == "realistic":
        out = realistic_latents(seed, args)
        print(f"{dataset} seed {seed}: fitted in {float(out['fit_seconds']):.0f} s")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **out)
        return out
    base = 1000 * seed
    X, y, _, templates = generate(dataset, args.n_train, base, "seen", True)
    X_cal, y_cal = generate(dataset, args.n_cal, base + 1, "seen")
    X_test, y_test = generate(dataset, args.n_test, base + 2, "seen")
    X_new, y_new = generate(dataset, args.n_unseen, base + 3, "unseen")
    metric = FSCAffinity(voxel_size=VOXEL) if dataset == "proteins" else FSCAffinity()
    A = class_affinity_matrix(metric=metric, templates=templates)
    model = AffinityVAE(
        n_threads=None,  # torch.set_num_threads above decides
        latent_dims=args.latent_dims,
        affinity=A,
        filters=(8, 16, 32),
        max_epochs=args.epochs,
        random_state=seed,
    )
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    out = {
        "Z_train": model.transform(X),
        "y_train": y,
        "Z_cal": model.transform(X_cal),
        "y_cal": y_cal,
        "Z_test": model.transform(X_test),
        "y_test": y_test,
        "Z_unseen": model.transform(X_new),
        "y_unseen": y_new,
        "fit_seconds": np.array(seconds),
    }
    print(f"{dataset} seed {seed}: fitted in {seconds:.0f} s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def rates(clf, d):
    """Seen error, set miss, unknown rates and AUROC of one classifier."""
    unknown = clf.unknown_label_
    pred = clf.predict(d["Z_test"])
    sets = clf.predict_set(d["Z_test"])
    column = np.searchsorted(clf.classes_, d["y_test"])
    p_seen = clf.predict_pvalues(d["Z_test"]).max(axis=1)
    p_new = clf.predict_pvalues(d["Z_unseen"]).max(axis=1)
    is_new = np.r_[np.zeros(len(p_seen)), np.ones(len(p_new))]
    return {
        "seen_error": np.mean(pred != d["y_test"]),
        "miss": np.mean(~sets[np.arange(len(sets)), column]),
        "seen_unknown": np.mean(pred == unknown),
        "set_size": sets.sum(axis=1).mean(),
        "unseen_unknown": np.mean(clf.predict(d["Z_unseen"]) == unknown),
        "auroc": roc_auc_score(is_new, -np.r_[p_seen, p_new]),
    }


def evaluate(dataset, seed, d, args):
    rows = []
    for score in SCORES:
        for mode in ("held-out", "pipeline"):
            clf = ConformalOpenSetClassifier(
                nonconformity=score,
                alpha=args.alpha,
                calibration_fraction=0.0 if mode == "held-out" else 0.25,
                random_state=seed,
            ).fit(d["Z_train"], d["y_train"])
            if mode == "held-out":
                clf.calibrate(d["Z_cal"], d["y_cal"])
            rows.append({"score": score, "calibration": mode, **rates(clf, d)})
    box = ClusterMeanClassifier(n_sigma=2.0).fit(d["Z_train"], d["y_train"])
    stat = [
        box.standardized_distances(d[k])[0].min(axis=1) for k in ("Z_test", "Z_unseen")
    ]
    is_new = np.r_[np.zeros(len(stat[0])), np.ones(len(stat[1]))]
    rows.append(
        {
            "score": "±2σ (ClusterMean)",
            "calibration": "none",
            "seen_error": np.mean(box.predict(d["Z_test"]) != d["y_test"]),
            "miss": np.nan,
            "seen_unknown": np.mean(box.predict(d["Z_test"]) == "unknown"),
            "set_size": np.nan,
            "unseen_unknown": np.mean(box.predict(d["Z_unseen"]) == "unknown"),
            "auroc": roc_auc_score(is_new, np.r_[stat[0], stat[1]]),
        }
    )
    knn = KNeighborsClassifier(5).fit(d["Z_train"], d["y_train"])
    knn_acc = np.mean(knn.predict(d["Z_test"]) == d["y_test"])
    table = pd.DataFrame(rows).assign(dataset=dataset, seed=seed, knn_acc=knn_acc)
    return table, discovery(dataset, seed, d, args)


def discovery(dataset, seed, d, args):
    """HDBSCAN clusters of everything the default classifier calls unknown."""
    clf = ConformalOpenSetClassifier(alpha=args.alpha, calibration_fraction=0.0)
    clf.fit(d["Z_train"], d["y_train"]).calibrate(d["Z_cal"], d["y_cal"])
    Z = np.concatenate([d["Z_test"], d["Z_unseen"]])
    y = np.concatenate([d["y_test"], d["y_unseen"]])
    unknown = clf.predict(Z) == clf.unknown_label_
    per_class = ", ".join(
        f"{u} {np.mean(unknown[len(d['y_test']) :][d['y_unseen'] == u]):.1%}"
        for u in np.unique(d["y_unseen"])
    )
    print(f"{dataset} seed {seed}: unseen called unknown by structure: {per_class}")
    table, labels = discover_clusters(
        Z[unknown],
        d["Z_train"],
        d["y_train"],
        min_cluster_size=args.min_cluster_size,
        return_labels=True,
    )
    truth = pd.Series(y[unknown])
    rows = []
    for c, row in table.iterrows():
        counts = truth[labels == c].value_counts()
        rows.append(
            {
                "dataset": dataset,
                "seed": seed,
                "cluster": c,
                "size": row["size"],
                "n_seen": row["n_seen"],
                "seen_in_cluster": row["seen_in_cluster"],
                "majority": counts.index[0],
                "purity": counts.iloc[0] / counts.sum(),
                "nearest_1": row["nearest_1"],
                "nearest_2": row["nearest_2"],
            }
        )
    print(
        f"{dataset} seed {seed}: {unknown.sum()} unknown "
        f"({np.sum(unknown[len(d['y_test']) :])} unseen), {len(table)} candidate "
        f"clusters, {table.attrs['n_noise']} noise, {table.attrs['n_in_seen']} "
        "in seen-class clusters"
    )
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["tetraminos", "proteins"],
        choices=["tetraminos", "proteins", "realistic"],
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--n-train", type=int, default=None, help="1500 (realistic: 2400)"
    )
    parser.add_argument("--n-cal", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=1200)
    parser.add_argument("--n-unseen", type=int, default=300)
    parser.add_argument(
        "--epochs", type=int, default=15, help="realistic: the recipe's 45"
    )
    parser.add_argument("--latent-dims", type=int, default=8)
    parser.add_argument("--min-cluster-size", type=int, default=15)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_train = args.n_train
    pd.set_option("display.width", 160)
    pd.set_option("display.precision", 3)

    tables, clusters, fits = [], [], []
    for dataset in args.datasets:
        default_n = 2400 if dataset == "realistic" else 1500
        args.n_train = default_n if n_train is None else n_train
        for seed in args.seeds:
            d = latents(dataset, seed, args)
            fits.append((dataset, seed, float(d["fit_seconds"])))
            table, found = evaluate(dataset, seed, d, args)
            tables.append(table)
            clusters.append(found)
    table = pd.concat(tables, ignore_index=True)
    print("fit seconds:", ", ".join(f"{d} {s}: {t:.0f}" for d, s, t in fits))
    print(f"\nper seed (alpha={args.alpha}):")
    print(table.to_string(index=False))
    columns = [
        "seen_error",
        "miss",
        "seen_unknown",
        "set_size",
        "unseen_unknown",
        "auroc",
    ]
    mean = table.groupby(["dataset", "score", "calibration"], sort=False)[
        columns + ["knn_acc"]
    ].mean()
    print(f"\nmean over seeds {args.seeds}:")
    print(mean.to_string())
    print("\ndiscovered clusters among the unknowns (default classifier):")
    print(pd.concat(clusters, ignore_index=True).to_string(index=False))


if __name__ == "__main__":
    main()
