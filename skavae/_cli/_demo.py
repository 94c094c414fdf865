"""``skavae demo``: rotated characters, seen and unseen, end to end."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

import skavae
from skavae._cli._args import (
    non_negative_float,
    positive_int,
    seed,
)
from skavae._cli._common import (
    latents_frame,
    make_dir,
    use_agg_backend,
    write_json,
    write_table,
)
from skavae._cli._report import (
    evaluate_map,
    print_summary,
    unseen_placement,
    write_figures,
    write_tables,
)

HELP = (
    "train on generated rotated characters and report accuracy",
    "Generate rotated characters (seen: a b d e i j z k; unseen: 2 x p), "
    "train an affinity-VAE with a KNN classifier on its latent space, report "
    "hard-KNN accuracy on held-out seen characters and where the unseen "
    "characters land; with --out, write figures and metrics.",
)

EXAMPLES = """examples:
  skavae demo                        # about 20 s on 2 CPU cores (README.rst)
  skavae demo --out skavae-demo      # also write figures and metrics
  skavae demo --epochs 5 --n-samples 1000 --size 32   # a quicker look"""


def add_arguments(p):
    """The options of ``skavae demo``."""
    from skavae._cli._report import EMBEDDINGS

    p.add_argument("--out", metavar="DIR", help="write figures and metrics here")
    p.add_argument("--n-samples", type=positive_int, default=4000, metavar="N")
    p.add_argument("--size", type=positive_int, default=64, help="image size")
    p.add_argument("--epochs", type=positive_int, default=15)
    p.add_argument("--beta", type=non_negative_float, default=1.0)
    p.add_argument("--gamma", type=non_negative_float, default=2.0)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--embedding",
        choices=EMBEDDINGS,
        default="pca",
        help="2D embedding of the latent map figure (default: pca, fast; umap "
        "and tsne take about a minute more)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch CPU threads (default 1: fastest for this small model, and "
        "unaffected by other processes on a busy machine)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="progress bar")


def run(args):
    """Train an AffinityVAE + KNN pipeline on generated characters and report."""
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    from skavae import AffinityVAE
    from skavae.affinity import MeanDifference, class_affinity_matrix
    from skavae.datasets import (
        ALPHANUMERIC_SEEN,
        ALPHANUMERIC_UNSEEN,
        make_alphanumeric,
    )

    if args.out:
        make_dir(args.out)
    start = time.perf_counter()
    X, y, _, templates = make_alphanumeric(
        n_samples=args.n_samples,
        characters=ALPHANUMERIC_SEEN,
        size=args.size,
        random_state=args.seed,
        return_info=True,
    )
    X_unseen, y_unseen = make_alphanumeric(
        n_samples=max(args.n_samples // 10, 3 * len(ALPHANUMERIC_UNSEEN)),
        characters=ALPHANUMERIC_UNSEEN,
        size=args.size,
        random_state=args.seed + 1,
    )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=args.seed
    )
    affinity = class_affinity_matrix(metric=MeanDifference(), templates=templates)
    print(
        f"skavae {skavae.__version__} demo: {len(X_train)} training and {len(X_test)} "
        f"test images of the characters {' '.join(ALPHANUMERIC_SEEN)} "
        f"({args.size}x{args.size}, rotated by -45..45 degrees); unseen "
        f"characters: {' '.join(ALPHANUMERIC_UNSEEN)}."
    )
    vae = AffinityVAE(
        latent_dims=8,
        pose_dims=1,
        beta=args.beta,
        gamma=args.gamma,
        affinity=affinity,
        max_epochs=args.epochs,
        random_state=args.seed,
        n_threads=args.threads,
        verbose=int(args.verbose),
    )
    pipe = make_pipeline(vae, KNeighborsClassifier(n_neighbors=5))
    pipe.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    accuracy = float(pipe.score(X_test, y_test))

    # the latent map: seen test images and unseen characters against the
    # training latents (nearest class centre, KNN majority)
    Z_train = vae.transform(X_train)
    X_eval = np.concatenate([X_test, X_unseen])
    y_eval = np.concatenate([y_test, y_unseen])
    Z_eval = vae.transform(X_eval)
    res = evaluate_map(Z_train, y_train, Z_eval, y_eval, np.full(len(y_eval), -1))
    placement = unseen_placement(res["report"])
    seconds = time.perf_counter() - start

    history = vae.history_
    cols = ["epoch", "loss", "recon", "kl", "affinity", "val_loss", "seconds"]
    with pd.option_context("display.float_format", "{:.4f}".format):
        print(history[cols].to_string(index=False))
    print()
    print_summary(accuracy, placement, what="seen characters")
    print(f"Wall time: {seconds:.1f} s (data and training {fit_seconds:.1f} s).")
    if not args.out:
        print("Run `skavae demo --out DIR` to also write figures and metrics.")
        return 0

    from skavae.evaluation import seen_unseen_confusion

    out = args.out
    seen = res["seen"]
    names = [f"test_{i:05d}" for i in range(len(y_test))] + [
        f"unseen_{i:05d}" for i in range(len(y_unseen))
    ]
    mu, _, pose = vae.encode(X_eval)
    latents = latents_frame(names, y_eval, mu, pose).drop(columns=["path"])
    latents.insert(2, "seen", seen)
    latents["knn_prediction"] = res["hard"]
    soft = res["soft"].copy()
    soft.insert(0, "file", names)
    soft.insert(1, "label", y_eval)
    confusion = seen_unseen_confusion(
        y_eval, res["hard"], seen_classes=list(res["classes"]), normalize=False
    )
    written = write_tables(out, res["report"], confusion, latents, soft)
    use_agg_backend()
    written += write_figures(
        out,
        model=vae,
        Z_map=np.vstack([Z_train, Z_eval]),
        y_map=np.concatenate([y_train, y_eval]),
        split=["train"] * len(Z_train) + ["test"] * len(Z_eval),
        seen_classes=list(res["classes"]),
        y_true=y_eval,
        y_pred=res["hard"],
        x_traverse=X_test[:1],
        embedding=args.embedding,
        random_state=args.seed,
    )
    write_table(os.path.join(out, "history.csv"), history)
    from skavae.affinity import write_affinity_csv

    write_affinity_csv(affinity, os.path.join(out, "affinity.csv"))
    metrics = {
        "skavae_version": skavae.__version__,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "n_unseen": len(X_unseen),
        "knn_accuracy_seen": accuracy,
        "separation_score": res["report"].attrs.get("separation_score"),
        "unseen": placement,
        "epochs": int(vae.n_iter_),
        "fit_seconds": fit_seconds,
        "wall_seconds": time.perf_counter() - start,
        "params": {k: v for k, v in vae.get_params().items() if k != "affinity"},
    }
    write_json(os.path.join(out, "metrics.json"), metrics)
    written += ["history.csv", "affinity.csv", "metrics.json"]
    print(f"Wrote {', '.join(written)} to {out}")
    return 0
