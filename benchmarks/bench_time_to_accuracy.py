"""Accuracy per second: ours (defaults) vs the reference default model.

Both models train on the same data, same batch order source, same machine, with
the same class-level affinity matrix (FSC on the unrotated class templates),
beta = 1, gamma = 2. Epochs of the two models are *interleaved* (one epoch of
ours, one of the baseline, ...) so that both see the same machine load; only
training time is counted. After every epoch, hard-KNN (k=5) accuracy on
held-out data is measured (KNN fitted on the training latents). With one torch
thread (the default) the clock is the process's CPU time, so other jobs on a
shared machine change the wall time but hardly the figures; with more threads,
wall time.

Reported per data set and seed: (a) the best accuracy each reaches within the
budget, (b) the training seconds each needs to reach a fixed accuracy
(``--target``, 0.90 by default; "never" when it is not reached in the budget) and
their ratio, and (c) how much sooner ours reaches the best accuracy the baseline
reaches in the budget (baseline's time to its best / ours' time to that
accuracy).

Data sets: rotated tetraminos (32³, 6 classes, 1600 train / 400 held out) and
the realistic protein set of ``bench_realistic.py`` (12 structures, 32³ at 5 Å,
uniform SO(3) poses, SNR 0.1, ±60° wedge, CTF, 2400 train / 600 test), both
models on the same 15 Å band-passed maps and the same FSC class matrix; ours
with the realistic recipe at a constant learning rate (a per-epoch loop has no
cosine schedule to follow), no test-time averaging for either.

Both models are warmed up on 64 samples first (one-off primitive creation).

Run: python benchmarks/bench_time_to_accuracy.py [--budget 300] [--seeds 0 1 2]
     [--only tetraminos|realistic|alphanumeric] [--target 0.9] [--quick]
     [--ours '{"learning_rate": 0.002}']   # override ours' settings
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, os.path.dirname(__file__))
from _baseline import ReferenceTrainer  # noqa: E402

from skavae import AffinityVAE  # noqa: E402
from skavae.affinity import FSCAffinity, class_affinity_matrix  # noqa: E402
from skavae.datasets import make_alphanumeric, make_tetraminos  # noqa: E402
from skavae.preprocessing import BandPassFilter  # noqa: E402


def knn_accuracy(Ztr, ytr, Zte, yte):
    return float(KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte))


def time_to(curve, accuracy):
    """First training time at which ``curve`` reaches ``accuracy`` (nan: never)."""
    return min((t for t, a in curve if a >= accuracy), default=np.nan)


def run(
    name,
    split,
    A,
    budget,
    baseline_batch,
    seed=0,
    target=0.9,
    ours_params=(),
    clock=time.perf_counter,
):
    Xtr, Xte, ytr, yte = split
    # one epoch per call (warm start keeps weights and Adam state)
    params = dict(ours_params)
    ours = AffinityVAE(
        n_threads=None,  # torch.set_num_threads above decides
        affinity=A,
        warm_start=True,
        validation_fraction=0.0,
        **{**params, "max_epochs": 1},
    )
    codes = A.index.get_indexer(ytr)
    base = ReferenceTrainer(Xtr, codes, A.to_numpy(), baseline_batch, seed=seed)
    # warm both up on a few samples (one-off oneDNN primitive creation)
    warm = AffinityVAE(
        n_threads=None,  # torch.set_num_threads above decides
        affinity=A,
        validation_fraction=0.0,
        **{**params, "max_epochs": 1},
    )
    warm.fit(Xtr[:64], ytr[:64])
    ReferenceTrainer(Xtr[:64], codes[:64], A.to_numpy(), baseline_batch).epoch()
    curves = {"ours": [(0.0, 0.0)], "baseline": [(0.0, 0.0)]}
    spent = {"ours": 0.0, "baseline": 0.0}
    epoch = 0
    while min(spent.values()) < budget:
        epoch += 1
        for who in ("ours", "baseline"):
            if spent[who] >= budget:
                continue
            t = clock()
            if who == "ours":
                ours.set_params(random_state=1000 * seed + epoch).fit(Xtr, ytr)
            else:
                base.epoch()
            spent[who] += clock() - t
            if who == "ours":
                acc = knn_accuracy(ours.transform(Xtr), ytr, ours.transform(Xte), yte)
            else:
                acc = knn_accuracy(base.transform(Xtr), ytr, base.transform(Xte), yte)
            curves[who].append((spent[who], acc))
            print(
                f"  {name} seed {seed} {who:8s} epoch {epoch:3d} "
                f"t={spent[who]:7.1f}s acc={acc:.3f}",
                flush=True,
            )
    best_base = max(a for _, a in curves["baseline"])
    t_base = time_to(curves["baseline"], best_base)
    t_ours = time_to(curves["ours"], best_base)
    best_ours = max(a for _, a in curves["ours"])
    return {
        "data": name,
        "seed": seed,
        "n_train": len(Xtr),
        "target": target,
        "t_ours_to_target": time_to(curves["ours"], target),
        "t_baseline_to_target": time_to(curves["baseline"], target),
        "best_ours": best_ours,
        "best_baseline": best_base,
        "t_baseline_to_best": t_base,
        "t_ours_to_that": t_ours,
        "sooner": t_base / t_ours if t_ours > 0 else np.nan,
        "curves": curves,
    }


def tetraminos(n, seed):
    X, y, _, templ = make_tetraminos(n_samples=n, random_state=seed, return_info=True)
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templ)
    split = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    return split, A, {}


def alphanumeric(n, seed):
    X, y, _, templ = make_alphanumeric(n_samples=n, random_state=seed, return_info=True)
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templ)
    split = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    return split, A, {}


def realistic(n, seed):
    """The bench_realistic.py target row, band-passed as its recipe does."""
    import bench_realistic as br

    n_test = n // 5
    X, y, _, _ = br.data(0.1, True, True, seed, n, br.PROTEIN_IDS)
    _, _, _, templates = br.data(None, False, False, 0, 12, br.PROTEIN_IDS)
    A = class_affinity_matrix(
        metric=FSCAffinity(voxel_size=br.VOXEL, resolution=br.MATRIX_RESOLUTION),
        templates=templates,
    )
    Xtr, Xte, ytr, yte = X[:-n_test], X[-n_test:], y[:-n_test], y[-n_test:]
    bp = BandPassFilter(voxel_size=br.VOXEL, lowpass=br.LOWPASS, normalize=False)
    bp.fit(Xtr)
    params = {
        k: v
        for k, v in br.ROBUST.items()
        if k not in ("max_epochs", "learning_rate_schedule", "validation_fraction")
    }
    params["missing_wedge"] = (-60, 60)
    return (bp.transform(Xtr), bp.transform(Xte), ytr, yte), A, params


#: name: (builder, samples (full, --quick), reference batch size)
DATASETS = {
    "tetraminos 32^3": (tetraminos, (2000, 300), 32),
    "realistic 32^3": (realistic, (3000, 300), 32),
    "alphanumeric 64^2": (alphanumeric, (3000, 400), 128),
}


def _fmt(t):
    return "never" if np.isnan(t) else f"{t:.1f}s"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--budget",
        type=float,
        nargs="+",
        default=[300.0],
        help="seconds each "
        "(one value, or one per data set in the order tetraminos realistic)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["tetraminos", "realistic", "alphanumeric"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument(
        "--ours",
        type=json.loads,
        default={},
        help="JSON dict of AffinityVAE settings that override ours' (defaults, "
        "or the realistic recipe), e.g. '{\"learning_rate\": 0.002}'",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; with 1 (the default) the budget and the times are "
        "the process's CPU seconds, robust to other jobs on the machine; "
        "otherwise wall seconds",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    results, budgets = [], []
    names = [
        n
        for n in DATASETS
        if (n.startswith(args.only) if args.only else not n.startswith("alpha"))
    ]  # alphanumeric: both models are at 1.000 after one epoch; ask for it by name
    for i, name in enumerate(names):
        build, sizes, batch = DATASETS[name]
        budget = 10.0 if args.quick else args.budget[min(i, len(args.budget) - 1)]
        budgets.append(f"{name.split()[0]} {budget:.0f} s")
        for seed in args.seeds:
            split, A, params = build(sizes[1] if args.quick else sizes[0], seed)
            params = {**params, **args.ours}
            results.append(
                run(name, split, A, budget, batch, seed, args.target, params, clock)
            )
    print(
        f"\nbudget {', '.join(budgets)} of training time each "
        f"({'CPU' if args.threads == 1 else 'wall'} seconds, {args.threads} torch "
        f"threads), hard-KNN(k=5) on held-out data; target accuracy {args.target:.2f}"
    )
    print(
        f"{'data':18s} {'seed':>4s} {'ours best':>9s} {'base best':>9s} "
        f"{'ours t->tgt':>11s} {'base t->tgt':>11s} {'tgt ratio':>9s} "
        f"{'base t->best':>12s} {'ours t->same':>12s} {'sooner':>7s}"
    )
    for r in results:
        ratio = r["t_baseline_to_target"] / r["t_ours_to_target"]
        print(
            f"{r['data']:18s} {r['seed']:4d} {r['best_ours']:9.3f} "
            f"{r['best_baseline']:9.3f} {_fmt(r['t_ours_to_target']):>11s} "
            f"{_fmt(r['t_baseline_to_target']):>11s} "
            f"{'n/a' if np.isnan(ratio) else f'{ratio:.1f}x':>9s} "
            f"{r['t_baseline_to_best']:11.1f}s {_fmt(r['t_ours_to_that']):>12s} "
            f"{r['sooner']:6.1f}x"
        )
    for r in results:
        for who, curve in r["curves"].items():
            points = " ".join(f"{t:.1f}:{a:.3f}" for t, a in curve[1:])
            print(f"curve {r['data']} seed {r['seed']} {who}: {points}")


if __name__ == "__main__":
    main()
