"""Per-object hard and soft KNN against a reference latent map."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils._param_validation import validate_params

from skavae._checks import Count
from skavae._evaluation._latents import check_labels, latents_of

__all__ = ["knn_predictions", "out_of_fold_knn", "stratified_folds"]


def stratified_folds(y, cv):
    """The stratified, shuffled folds (seed 0) used for out-of-fold predictions."""
    n_splits = min(cv, int(pd.Series(y).value_counts().min()))
    if n_splits < 2:
        raise ValueError(
            "Without X_test, seen classes are evaluated by cross-validation, which "
            "needs at least 2 samples per seen class; pass X_test and y_test."
        )
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=0)


def out_of_fold_knn(Z, y, k_hard, k_soft, cv=5):
    """Out-of-fold hard-KNN labels and soft-KNN class fractions of ``Z``.

    Every sample is classified by neighbours from the other folds, so it is
    never its own neighbour; ``k`` is capped at the size of a training fold.
    Returns ``(y_hard, proba, splitter)``.
    """
    splitter = stratified_folds(y, cv)
    n_fit = len(Z) - int(np.ceil(len(Z) / splitter.n_splits))
    hard = KNeighborsClassifier(n_neighbors=min(k_hard, n_fit))
    soft = KNeighborsClassifier(n_neighbors=min(k_soft, n_fit))
    y_hard = cross_val_predict(hard, Z, y, cv=splitter)
    proba = cross_val_predict(soft, Z, y, cv=splitter, method="predict_proba")
    return y_hard, proba, splitter


@validate_params(
    {
        "X_ref": ["array-like"],
        "y_ref": ["array-like"],
        "X": ["array-like"],
        "model": "no_validation",
        "reference_rows": [None, "array-like"],
        "n_neighbors": [Count(1)],
        "n_soft_neighbors": [Count(1)],
        "cv": [Count(2)],
    },
    prefer_skip_nested_validation=True,
)
def knn_predictions(
    X_ref,
    y_ref,
    X,
    *,
    model=None,
    reference_rows=None,
    n_neighbors=5,
    n_soft_neighbors=100,
    cv=5,
):
    """Hard-KNN label and soft-KNN class fractions of every object of ``X``.

    What ``skavae evaluate`` writes per object (``latents.csv`` and
    ``soft_knn.csv``) and :func:`latent_map_report` summarises per class.
    Objects that are themselves part of the reference map (``reference_rows``)
    are classified out of fold, by neighbours from the other folds of a
    stratified ``cv``-fold split (shuffled, seed 0), so that no object is its
    own neighbour; the others by the whole reference.

    Parameters
    ----------
    X_ref : array-like
        Reference objects or latents (usually the training data).
    y_ref : array-like of shape (n_ref,)
        Their labels.
    X : array-like
        Objects or latents to classify.
    model : fitted transformer or None, default=None
        Encoder applied to ``X_ref`` and ``X``; None when they are latents.
    reference_rows : array-like of int of shape (n_samples,), default=None
        Row of ``X_ref`` that each object of ``X`` is (-1: not in the
        reference). None: no object of ``X`` is in the reference.
    n_neighbors : int, default=5
        Neighbours of the hard KNN (capped at the reference size).
    n_soft_neighbors : int, default=100
        Neighbours of the soft KNN (capped at the reference size).
    cv : int, default=5
        Folds for the out-of-fold predictions (capped at the smallest class).

    Returns
    -------
    hard : ndarray of shape (n_samples,)
        Hard-KNN labels (the label type of ``y_ref``).
    soft : pandas.DataFrame of shape (n_samples, n_classes)
        Soft-KNN class fractions, one column per reference class (sorted).

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import knn_predictions
    >>> Z_ref = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> y_ref = np.array(["a", "a", "a", "b", "b", "b"])
    >>> hard, soft = knn_predictions(Z_ref, y_ref, [[0.05], [4.9]],
    ...                              n_neighbors=3, n_soft_neighbors=4)
    >>> hard.tolist(), soft.round(2).values.tolist()
    (['a', 'b'], [[0.75, 0.25], [0.25, 0.75]])
    """
    Z_ref = latents_of(X_ref, model, name="X_ref")
    y_ref = check_labels(y_ref, len(Z_ref), name="y_ref")
    Z = latents_of(X, model, name="X")
    if Z.shape[1] != Z_ref.shape[1]:
        raise ValueError(
            f"X has {Z.shape[1]} latent dimensions but X_ref has {Z_ref.shape[1]}."
        )
    rows = np.full(len(Z), -1, dtype=np.int64)
    if reference_rows is not None:
        rows = np.asarray(reference_rows)
        if rows.shape != (len(Z),) or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(
                f"reference_rows must be {len(Z)} integers (one per object of X); "
                f"got {rows.dtype} of shape {rows.shape}."
            )
        if rows.max(initial=-1) >= len(Z_ref) or rows.min(initial=0) < -1:
            raise ValueError(
                f"reference_rows must lie in [-1, {len(Z_ref) - 1}] (-1: not in X_ref)."
            )
    classes = np.unique(y_ref)
    hard = np.empty(len(Z), dtype=y_ref.dtype)
    soft = np.zeros((len(Z), len(classes)))
    outside, inside = rows < 0, rows >= 0
    if outside.any():
        k = min(n_neighbors, len(Z_ref))
        hard[outside] = (
            KNeighborsClassifier(n_neighbors=k).fit(Z_ref, y_ref).predict(Z[outside])
        )
        k = min(n_soft_neighbors, len(Z_ref))
        soft_knn = KNeighborsClassifier(n_neighbors=k).fit(Z_ref, y_ref)
        soft[outside] = soft_knn.predict_proba(Z[outside])
    if inside.any():
        oof_hard, oof_soft, _ = out_of_fold_knn(
            Z_ref, y_ref, n_neighbors, n_soft_neighbors, cv
        )
        hard[inside] = oof_hard[rows[inside]]
        soft[inside] = oof_soft[rows[inside]]
    return hard, pd.DataFrame(soft, columns=pd.Index(classes))
