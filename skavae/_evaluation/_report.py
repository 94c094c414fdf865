"""``latent_map_report``: per-class summary of a latent map."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.model_selection import cross_val_predict
from sklearn.utils._param_validation import validate_params

from skavae._checks import Count, positive_real
from skavae._evaluation._classifiers import ClusterMeanClassifier
from skavae._evaluation._knn import knn_predictions, out_of_fold_knn
from skavae._evaluation._latents import check_labels, latents_of
from skavae._evaluation._metrics import separation_score

_COLUMNS = [
    "seen",
    "n_samples",
    "accuracy",
    "cluster_accuracy",
    "unknown_fraction",
    "predicted_class",
    "predicted_fraction",
    "soft_probability",
    "nearest_seen_class",
    "nearest_seen_distance",
]


def _cv_predictions(Z, y, k_hard, k_soft, cluster, cv):
    """Out-of-fold hard labels, soft probabilities and cluster labels."""
    y_hard, proba, splitter = out_of_fold_knn(Z, y, k_hard, k_soft, cv)
    y_cluster = cross_val_predict(cluster, Z, y, cv=splitter)
    return y_hard, proba, y_cluster


@validate_params(
    {
        "n_neighbors": [Count(1)],
        "n_soft_neighbors": [Count(1)],
        "n_sigma": [positive_real()],
        "cv": [Count(1)],
    },
    prefer_skip_nested_validation=True,
)
def latent_map_report(
    model,
    X_seen,
    y_seen,
    X_unseen=None,
    y_unseen=None,
    *,
    X_test=None,
    y_test=None,
    n_neighbors=5,
    n_soft_neighbors=100,
    n_sigma=2.0,
    cv=5,
):
    """Per-class summary of a latent map: KNN, cluster rule, nearest classes.

    The seen samples ``(X_seen, y_seen)`` (usually the training data) form the
    reference map on which the hard KNN (k=5), the soft KNN (k=100) and the
    ±``n_sigma`` :class:`ClusterMeanClassifier` are fitted. Seen classes are
    then evaluated on ``(X_test, y_test)`` - or, without them, by stratified
    ``cv``-fold cross-validation on the seen samples, so that a sample is never
    its own neighbour - and unseen classes on ``(X_unseen, y_unseen)``.

    Parameters
    ----------
    model : fitted transformer or None
        Encoder applied to every ``X`` (an :class:`~skavae.AffinityVAE`, a PCA,
        ...); None when the ``X`` arguments are latents already.
    X_seen : array-like
        Reference objects or latents of the seen (training) classes.
    y_seen : array-like of shape (n_seen,)
        Their labels.
    X_unseen : array-like or None, default=None
        Objects or latents of classes absent from ``y_seen``.
    y_unseen : array-like of shape (n_unseen,) or None, default=None
        Their labels.
    X_test, y_test : array-like or None, default=None
        Held-out samples of seen classes.
    n_neighbors : int, default=5
        Neighbours of the hard KNN (capped at the reference size).
    n_soft_neighbors : int, default=100
        Neighbours of the soft KNN (capped at the reference size).
    n_sigma : float, default=2.0
        Box half-width of the cluster rule.
    cv : int, default=5
        Folds used when ``X_test`` is None.

    Returns
    -------
    report : pandas.DataFrame
        One row per class (index ``label``; seen classes first), columns:

        - ``seen``: whether the class is in ``y_seen``;
        - ``n_samples``: evaluated samples of the class;
        - ``accuracy``: hard-KNN accuracy (NaN for unseen classes);
        - ``cluster_accuracy``: fraction the cluster rule assigns to the true
          class (NaN for unseen classes);
        - ``unknown_fraction``: fraction the cluster rule calls unknown (high
          is good for unseen classes);
        - ``predicted_class``, ``predicted_fraction``: the most frequent
          hard-KNN prediction and its frequency (for an unseen class: the seen
          class it is read as, the paper's "2 → z");
        - ``soft_probability``: mean soft-KNN probability of
          ``predicted_class``;
        - ``nearest_seen_class``, ``nearest_seen_distance``: the seen class
          whose reference centre is closest to this class's centre (its own
          excluded) and the Euclidean distance between them.

        ``report.attrs`` holds ``"accuracy"`` (hard-KNN accuracy over all
        evaluated seen samples) and ``"separation_score"`` (of the reference
        map, see :func:`separation_score`).

    See Also
    --------
    hard_knn_predict, soft_knn_proba, ClusterMeanClassifier, proximity_matrix

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import latent_map_report
    >>> rng = np.random.RandomState(0)
    >>> centres = {"a": [0, 0], "b": [10, 0], "c": [9, 1]}
    >>> Z = {k: rng.normal(c, 1.0, size=(30, 2)) for k, c in centres.items()}
    >>> report = latent_map_report(
    ...     None, np.vstack([Z["a"], Z["b"]]), np.repeat(["a", "b"], 30),
    ...     Z["c"], np.repeat("c", 30))
    >>> report[["seen", "accuracy", "predicted_class", "nearest_seen_class"]]
    ... # doctest: +NORMALIZE_WHITESPACE
            seen  accuracy predicted_class nearest_seen_class
    label
    a       True       1.0               a                  b
    b       True       1.0               b                  a
    c      False       NaN               b                  b
    """
    k_hard, k_soft = n_neighbors, n_soft_neighbors
    Z_ref = latents_of(X_seen, model, name="X_seen")
    y_ref = check_labels(y_seen, len(Z_ref), name="y_seen")
    cluster = ClusterMeanClassifier(n_sigma=n_sigma)
    seen_classes = np.unique(y_ref)
    if len(seen_classes) < 2:
        raise ValueError("y_seen must hold at least two classes.")

    parts = []  # (latents, labels, hard, proba, cluster labels)
    if (X_test is None) != (y_test is None):
        raise ValueError("Pass both X_test and y_test, or neither.")
    if X_test is None:
        y_hard, proba, y_clu = _cv_predictions(
            Z_ref, y_ref, k_hard, k_soft, cluster, cv
        )
        parts.append((Z_ref, y_ref, y_hard, proba, y_clu))
    cluster.fit(Z_ref, y_ref)
    for X, y, name in ((X_test, y_test, "X_test"), (X_unseen, y_unseen, "X_unseen")):
        if X is None and y is None:
            continue
        if X is None or y is None:
            raise ValueError(f"Pass both {name} and its labels, or neither.")
        Z = latents_of(X, model, name=name)
        y = check_labels(y, len(Z), name="y" + name[1:])
        if name == "X_test" and not np.isin(y, seen_classes).all():
            raise ValueError("y_test holds classes that are not in y_seen.")
        if name == "X_unseen" and np.isin(y, seen_classes).any():
            raise ValueError("y_unseen holds classes that are in y_seen.")
        y_hard, proba = knn_predictions(
            Z_ref, y_ref, Z, n_neighbors=k_hard, n_soft_neighbors=k_soft
        )
        parts.append((Z, y, y_hard, proba.to_numpy(), cluster.predict(Z)))

    Z = np.vstack([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    y_hard = np.concatenate([p[2] for p in parts])
    proba = np.vstack([p[3] for p in parts])
    y_clu = np.concatenate([p[4] for p in parts])

    samples = pd.DataFrame({"label": labels, "hard": y_hard})
    samples["correct"] = y_hard == labels
    samples["cluster_correct"] = y_clu == labels
    samples["unknown"] = y_clu == cluster.unknown_label_
    groups = samples.groupby("label", sort=False)
    predicted = groups["hard"].agg(lambda s: s.value_counts().index[0])
    predicted_fraction = groups["hard"].agg(lambda s: s.value_counts().iloc[0] / len(s))

    codes = pd.Index(seen_classes).get_indexer(predicted.reindex(labels).to_numpy())
    samples["p_predicted"] = proba[np.arange(len(labels)), codes]

    classes = list(seen_classes[np.isin(seen_classes, labels)]) + sorted(
        set(labels) - set(seen_classes)
    )
    report = pd.DataFrame(index=pd.Index(classes, name="label"))
    report["seen"] = report.index.isin(seen_classes)
    report["n_samples"] = groups.size()
    seen_rows = report["seen"].to_numpy()
    report["accuracy"] = groups["correct"].mean().where(seen_rows)
    report["cluster_accuracy"] = groups["cluster_correct"].mean().where(seen_rows)
    report["unknown_fraction"] = groups["unknown"].mean()
    report["predicted_class"] = predicted
    report["predicted_fraction"] = predicted_fraction
    report["soft_probability"] = groups["p_predicted"].mean()

    ref_centres = cluster.means_
    own = pd.Index(seen_classes).get_indexer(classes)
    eval_centres = np.vstack(
        [
            ref_centres[i] if i >= 0 else Z[labels == c].mean(axis=0)
            for c, i in zip(classes, own)
        ]
    )
    dist = cdist(eval_centres, ref_centres)
    dist[np.flatnonzero(own >= 0), own[own >= 0]] = np.inf
    nearest = dist.argmin(axis=1)
    report["nearest_seen_class"] = seen_classes[nearest]
    report["nearest_seen_distance"] = dist[np.arange(len(classes)), nearest]
    report = report[_COLUMNS]
    seen_mask = np.isin(labels, seen_classes)
    report.attrs["accuracy"] = float(samples["correct"][seen_mask].mean())
    report.attrs["separation_score"] = separation_score(Z_ref, y_ref)
    return report
