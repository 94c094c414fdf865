"""Latent-map evidence: does the affinity term (γ > 0) organise the map?

Fits two AffinityVAEs that differ only in ``gamma`` (same β, same pose
channel, same seed) on the paper's alphanumeric split - seen a b d e i j z k,
unseen 2 x p - and reports, for each:

- the separation score of the seen test latents (mean distance between class
  centres over mean cluster radius; see ``skavae.evaluation.separation_score``);
- the hard-KNN (k=5) accuracy on seen test data, KNN fitted on the training
  latents;
- the linear fit of the encoded pose against the rotation angle, per seen
  class on the test data (median R² and slope over classes; Figure 6);
- the nearest seen class of each unseen class, both as the majority KNN
  prediction (the paper's confusion-matrix reading, "2 -> z") and as the
  nearest class centre.

The affinity matrix is computed on one unrotated template per class
(``make_alphanumeric(..., return_info=True)``) with the chosen metric.

Usage::

    python benchmarks/latent_map_evidence.py            # defaults below
    python benchmarks/latent_map_evidence.py --out figs # also write figures

Takes about 5 minutes of one CPU core with the defaults.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skavae import AffinityVAE
from skavae.affinity import (
    FSCAffinity,
    MeanDifference,
    SOAPAffinity,
    class_affinity_matrix,
)
from skavae.datasets import make_alphanumeric
from skavae.evaluation import (
    hard_knn_predict,
    latent_map_report,
    pose_angle_fit,
    proximity_matrix,
    separation_score,
)

METRICS = {"fsc": FSCAffinity, "soap": SOAPAffinity, "mean": MeanDifference}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seen", type=int, default=3000)
    parser.add_argument("--n-unseen", type=int, default=300)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--latent-dims", type=int, default=8)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=8.0)
    parser.add_argument("--affinity", choices=sorted(METRICS), default="fsc")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for figures")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pd.set_option("display.width", 120)
    pd.set_option("display.precision", 3)

    X, y, info, templates = make_alphanumeric(
        args.n_seen,
        characters="seen",
        size=args.size,
        test_size=0.2,
        return_info=True,
        random_state=args.seed,
    )
    train = (info["split"] == "train").to_numpy()
    X_unseen, y_unseen = make_alphanumeric(
        args.n_unseen, characters="unseen", size=args.size, random_state=args.seed + 1
    )
    matrix = class_affinity_matrix(metric=METRICS[args.affinity](), templates=templates)
    print(f"affinity matrix ({args.affinity} on templates):\n{matrix}\n")

    results, models = [], {}
    for gamma in (0.0, args.gamma):
        model = AffinityVAE(
            n_threads=None,  # torch.set_num_threads above decides
            latent_dims=args.latent_dims,
            pose_dims=1,
            beta=args.beta,
            gamma=gamma,
            affinity=matrix if gamma > 0 else None,
            filters=(8, 16, 32),
            max_epochs=args.epochs,
            batch_size=64,
            random_state=args.seed,
        )
        start = time.perf_counter()
        model.fit(X[train], y[train])
        seconds = time.perf_counter() - start
        Z_train, Z_test = model.transform(X[train]), model.transform(X[~train])
        Z_unseen = model.transform(X_unseen)
        report = latent_map_report(
            None,
            Z_train,
            y[train],
            Z_unseen,
            y_unseen,
            X_test=Z_test,
            y_test=y[~train],
        )
        pose = model.encode(X[~train])[2]
        angles = info["angle"].to_numpy()[~train]
        labels = y[~train]
        pose_fits = [
            pose_angle_fit(pose[labels == c], angles[labels == c])
            for c in np.unique(labels)
        ]
        unseen = report[~report["seen"]]
        results.append(
            {
                "gamma": gamma,
                "beta": args.beta,
                "fit_seconds": round(seconds, 1),
                "final_recon": model.history_["recon"].iloc[-1],
                "separation_test": separation_score(Z_test, y[~train]),
                "knn_accuracy_test": np.mean(
                    hard_knn_predict(Z_train, y[train], Z_test) == y[~train]
                ),
                "pose_r2_median": np.median([f.r2 for f in pose_fits]),
                "pose_slope_median": np.median([f.slope for f in pose_fits]),
                **{
                    f"{c}->knn": f"{r.predicted_class} ({r.predicted_fraction:.2f})"
                    for c, r in unseen.iterrows()
                },
                **{f"{c}->centre": r.nearest_seen_class for c, r in unseen.iterrows()},
            }
        )
        print(f"gamma={gamma}: fitted in {seconds:.1f} s")
        print(report.to_string(), "\n")
        print("proximity matrix (test latents, 0-100):")
        print(proximity_matrix(Z_test, y[~train]).round(0).to_string(), "\n")
        models[gamma] = (model, Z_train)

    print(pd.DataFrame(results).set_index("gamma").T.to_string())
    # figures last, so that UMAP (numba threads) cannot disturb the timed fits
    if args.out is not None:
        for gamma, (model, Z_train) in models.items():
            _figures(args.out, gamma, model, X, y, train, X_unseen, y_unseen, Z_train)


def _figures(out, gamma, model, X, y, train, X_unseen, y_unseen, Z_train):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skavae.plotting import (
        plot_confusion_matrix,
        plot_embedding,
        plot_history,
        plot_proximity_matrix,
        plot_traversals,
    )

    out.mkdir(parents=True, exist_ok=True)
    X_all = np.concatenate([X[~train], X_unseen])
    y_all = np.concatenate([y[~train], y_unseen])
    y_pred = hard_knn_predict(Z_train, y[train], model.transform(X_all))
    figs = {
        "embedding": plot_embedding(
            np.concatenate([X, X_unseen]),
            np.concatenate([y, y_unseen]),
            model=model,
            seen_classes=np.unique(y),
            split=np.concatenate(
                [np.where(train, "train", "test"), ["test"] * len(y_unseen)]
            ),
            thumbnails=True,
        ),
        "confusion": plot_confusion_matrix(y_all, y_pred, seen_classes=np.unique(y)),
        "proximity": plot_proximity_matrix(X[~train], y[~train], model=model),
        "traversals": plot_traversals(model, X[0]),
        "history": plot_history(model),
    }
    for name, fig in figs.items():
        fig.savefig(out / f"gamma{gamma:g}_{name}.png", dpi=80, bbox_inches="tight")
        plt.close(fig)


if __name__ == "__main__":
    main()
