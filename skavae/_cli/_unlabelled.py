"""``skavae evaluate --unlabelled``: cluster the latents of a folder without labels.

Without labels there is no accuracy to measure: the latent means are grouped
by k-means (``--n-clusters``, by default the number of classes the model was
trained on; ten restarts, seed 0) and the results say how the clusters look:
their sizes, the silhouette score of the latents, and, when the model has a
labelled reference map (the training latents of ``skavae fit``), the seen
class each file is read as (hard KNN) and the majority of each cluster.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

import skavae
from skavae._cli._common import (
    UsageError,
    latents_frame,
    use_agg_backend,
    write_json,
    write_table,
    write_text,
)
from skavae._cli._folders import output_folder


def n_clusters_of(args, model, n_files):
    """``--n-clusters``, else the model's number of classes; usage errors."""
    k = args.n_clusters
    if k is None:
        classes = getattr(model, "classes_", None)
        if classes is None or len(classes) < 2:
            raise UsageError(
                f"--unlabelled: {args.model!r} was trained without labels (or on "
                "one class), so the number of clusters is unknown; give "
                "--n-clusters K."
            )
        k = len(classes)
    if k > n_files:
        raise UsageError(
            f"--n-clusters {k} is more than the {n_files} files of {args.data_dir!r}."
        )
    return int(k)


def cluster_latents(Z, n_clusters, *, random_state=0):
    """k-means labels, centres and silhouette score (None for one cluster)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state).fit(Z)
    labels = km.labels_
    n_found = len(np.unique(labels))
    score = float(silhouette_score(Z, labels)) if 1 < n_found < len(Z) else None
    return labels, km.cluster_centers_, score


def evaluate_unlabelled(
    args, model, X, paths, mu, pose, *, source, reference, start, owned, readme
):
    """Cluster, write the results folder, print the summary; return 0.

    ``reference`` is ``(Z_ref, y_ref, description)`` of a labelled reference
    map, or None; ``owned`` and ``readme`` are ``evaluate``'s rule of the
    files it replaces with ``--overwrite`` and its README text.
    """
    from skavae._cli._report import write_figures
    from skavae._cli._volumes import summarise, write_volumes

    k = n_clusters_of(args, model, len(mu))
    codes, centres, silhouette = cluster_latents(mu.astype(np.float64), k)
    width = len(str(k - 1))
    names = np.array([f"cluster{c:0{width}d}" for c in range(k)])
    cluster = names[codes]
    latents = latents_frame(paths, None, mu, pose).drop(columns="label")
    latents.insert(2, "cluster", cluster)
    sizes = pd.Series(cluster).value_counts().reindex(names, fill_value=0)
    table = pd.DataFrame({"cluster": names, "n_files": sizes.to_numpy()})
    for d in range(centres.shape[1]):
        table[latents.columns[3 + d]] = centres[:, d]
    if reference is not None:
        from sklearn.neighbors import KNeighborsClassifier

        Z_ref, y_ref, _ = reference
        knn = KNeighborsClassifier(n_neighbors=min(args.n_neighbors, len(Z_ref)))
        latents["knn_prediction"] = knn.fit(Z_ref, y_ref).predict(mu)
        majority = latents.groupby("cluster")["knn_prediction"].agg(
            lambda s: s.value_counts().index[0]
        )
        share = latents.groupby("cluster")["knn_prediction"].agg(
            lambda s: s.value_counts(normalize=True).iloc[0]
        )
        table.insert(2, "knn_majority", majority.reindex(names).to_numpy())
        table.insert(3, "knn_fraction", share.reindex(names).to_numpy())
    fmt = args.format
    metrics = {
        "skavae_version": skavae.__version__,
        "model": os.path.abspath(args.model),
        "data_dir": os.path.abspath(source),
        "n_files": len(mu),
        "evaluation": "clustering (unlabelled)",
        "knn_accuracy_seen": None,
        "clustering": "k-means on the latent means (10 restarts, seed 0)",
        "n_clusters": k,
        "cluster_sizes": {n: int(v) for n, v in sizes.items()},
        "silhouette_score": silhouette,
        "reference": None if reference is None else reference[2],
    }
    with output_folder(args.out, overwrite=True, option="--out", owned=owned) as tmp:
        write_table(os.path.join(tmp, f"latents.{fmt}"), latents)
        write_table(os.path.join(tmp, "clusters.csv"), table)
        written = [f"latents.{fmt}", "clusters.csv"]
        if not args.no_figures:
            use_agg_backend()
            written += write_figures(
                tmp,
                model=model,
                Z_map=mu.astype(np.float64),
                y_map=cluster,
                split=None,
                seen_classes=list(names),
                y_true=[],
                y_pred=[],
                x_traverse=X[[0]],
                embedding=args.embedding,
            )
            if len(model.input_shape_) == 3:
                written += summarise(
                    write_volumes(
                        tmp,
                        model,
                        X,
                        cluster,
                        dict(zip(names, centres)),
                        voxel_size=getattr(X, "voxel_size", None),
                        quiet=args.quiet,
                    )
                )
        metrics["wall_seconds"] = round(time.perf_counter() - start, 2)
        write_json(os.path.join(tmp, "metrics.json"), metrics)
        write_text(os.path.join(tmp, "README.txt"), readme + README_UNLABELLED)
        written += ["metrics.json", "README.txt"]
    score = "-" if silhouette is None else f"{silhouette:.3f}"
    print(
        f"Clustered {len(mu)} files of {source} into {k} clusters (k-means on the "
        f"latents; no labels, so no accuracy): sizes "
        f"{' '.join(str(int(v)) for v in sizes)}; silhouette {score}."
    )
    print(f"Wrote {', '.join(written)} to {args.out}", file=sys.stdout)
    return 0


README_UNLABELLED = """
With --unlabelled (this run) there are no labels, hence no accuracy,
metrics.csv, confusion.csv or soft_knn.csv: latents.csv has a column cluster
(k-means on the latents) instead of label, seen and knn_correct, and
clusters.csv one row per cluster: n_files, knn_majority/knn_fraction (the seen
class most of its files are read as, when the model has a labelled reference
map) and the cluster centre's latents.
"""
