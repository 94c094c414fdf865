"""Accuracy per second: ours (defaults) vs the reference default model.

Both models train on the same data, same batch order source, same 2 cores, with
the same class-level affinity matrix (FSC on the unrotated class templates),
beta = 1, gamma = 2. Epochs of the two models are *interleaved* (one epoch of
ours, one of the baseline, ...) so that both see the same machine load; only
training time is counted. After every epoch, hard-KNN (k=5) accuracy on
held-out data is measured (KNN fitted on the training latents).

Reported per data set: (a) the best accuracy each reaches within the budget and
(b) how much sooner ours reaches the best accuracy the baseline reaches in the
budget (baseline's time to its best / ours' time to that accuracy).

Both models are warmed up on 64 samples first (one-off primitive creation).

Run: python benchmarks/bench_time_to_accuracy.py [--budget 300] [--quick]
"""

import argparse
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


def knn_accuracy(Ztr, ytr, Zte, yte):
    return float(KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte))


def run(name, X, y, templates, budget, baseline_batch):
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templates)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    # defaults, one epoch per call (warm start keeps weights and Adam state)
    ours = AffinityVAE(
        affinity=A, warm_start=True, validation_fraction=0.0, max_epochs=1
    )
    codes = A.index.get_indexer(ytr)
    base = ReferenceTrainer(Xtr, codes, A.to_numpy(), baseline_batch, seed=0)
    # warm both up on a few samples (one-off oneDNN primitive creation)
    warm = AffinityVAE(affinity=A, max_epochs=1, validation_fraction=0.0)
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
            t = time.perf_counter()
            if who == "ours":
                ours.set_params(random_state=epoch).fit(Xtr, ytr)
            else:
                base.epoch()
            spent[who] += time.perf_counter() - t
            if who == "ours":
                acc = knn_accuracy(ours.transform(Xtr), ytr, ours.transform(Xte), yte)
            else:
                acc = knn_accuracy(base.transform(Xtr), ytr, base.transform(Xte), yte)
            curves[who].append((spent[who], acc))
            print(
                f"  {name} {who:8s} epoch {epoch:3d} "
                f"t={spent[who]:7.1f}s acc={acc:.3f}",
                flush=True,
            )
    best_base = max(a for _, a in curves["baseline"])
    t_base = min(t for t, a in curves["baseline"] if a == best_base)
    t_ours = min((t for t, a in curves["ours"] if a >= best_base), default=np.nan)
    best_ours = max(a for _, a in curves["ours"])
    return {
        "data": name,
        "n_train": len(Xtr),
        "best_ours": best_ours,
        "best_baseline": best_base,
        "t_baseline_to_best": t_base,
        "t_ours_to_that": t_ours,
        "sooner": t_base / t_ours if t_ours > 0 else np.inf,
        "curves": curves,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=300.0, help="seconds each")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["tetraminos", "alphanumeric"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    n_tet, n_alpha = (300, 400) if args.quick else (2000, 3000)
    budget = 10.0 if args.quick else args.budget
    results = []
    if args.only in (None, "tetraminos"):
        X, y, _, templ = make_tetraminos(
            n_samples=n_tet, random_state=0, return_info=True
        )
        results.append(run("tetraminos 32^3", X, y, templ, budget, 32))
    if args.only in (None, "alphanumeric"):
        X, y, _, templ = make_alphanumeric(
            n_samples=n_alpha, random_state=0, return_info=True
        )
        results.append(run("alphanumeric 64^2", X, y, templ, budget, 128))
    print(
        f"\nbudget {budget:.0f} s of training time each, hard-KNN(k=5) on 20% held out"
    )
    print(
        f"{'data':18s} {'n_train':>7s} {'ours best':>9s} {'base best':>9s} "
        f"{'base t->best':>12s} {'ours t->same':>12s} {'sooner':>7s}"
    )
    for r in results:
        print(
            f"{r['data']:18s} {r['n_train']:7d} {r['best_ours']:9.3f} "
            f"{r['best_baseline']:9.3f} {r['t_baseline_to_best']:11.1f}s "
            f"{r['t_ours_to_that']:11.1f}s {r['sooner']:6.1f}x"
        )


if __name__ == "__main__":
    main()
