"""Latent-map metrics: proximity of class centres, separation, pose fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.utils import Bunch

from skavae._evaluation._latents import check_labels, latents_of, pose_of


def _centres(X, y, model):
    Z = latents_of(X, model)
    y = check_labels(y, len(Z))
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes, minlength=len(classes))
    onehot = np.zeros((len(Z), len(classes)))
    onehot[np.arange(len(Z)), codes] = 1.0
    centres = (onehot.T @ Z) / counts[:, None]
    return Z, classes, codes, centres


def proximity_matrix(X, y, *, model=None, normalize=True):
    """Euclidean distances between the class centres of the latent map.

    The paper's Figure 8 (bottom): the centre of a class is the mean of its
    latents; entry ``(i, j)`` is the distance between the centres of classes
    ``i`` and ``j``. Normalised to 0-100 (the largest distance becomes 100) so
    that maps of different models can be compared side by side.

    Parameters
    ----------
    X : array-like
        Latents of shape (n_samples, n_dims), or objects encoded with
        ``model``.
    y : array-like of shape (n_samples,)
        Class labels.
    model : fitted transformer or None, default=None
        Encoder of ``X`` (an :class:`~skavae.AffinityVAE`, a PCA, ...).
    normalize : bool, default=True
        Scale distances so that the largest is 100.

    Returns
    -------
    proximity : pandas.DataFrame of shape (n_classes, n_classes)
        Symmetric, zero on the diagonal; index and columns are the sorted
        class labels.

    See Also
    --------
    separation_score : One-number summary of the same geometry.
    skavae.plotting.plot_proximity_matrix : Heat map of this matrix.

    Examples
    --------
    >>> from skavae.evaluation import proximity_matrix
    >>> Z = [[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]
    >>> proximity_matrix(Z, ["a", "a", "b", "c"])
           a     b      c
    a    0.0  50.0  100.0
    b   50.0   0.0   50.0
    c  100.0  50.0    0.0
    """
    _, classes, _, centres = _centres(X, y, model)
    dist = cdist(centres, centres)
    if normalize and dist.max() > 0:
        dist = 100.0 * dist / dist.max()
    labels = pd.Index(classes)
    return pd.DataFrame(dist, index=labels, columns=labels)


def separation_score(X, y, *, model=None):
    """Mean distance between class centres over the mean class spread.

    ``score = mean_{i<j} ||c_i - c_j|| / mean_k s_k`` where ``c_k`` is the mean
    latent of class ``k`` and ``s_k = sqrt(mean ||z - c_k||^2)`` over the members
    of ``k`` (the root-mean-square radius of the cluster). Higher means tighter,
    better separated clusters; the value does not change when all latents are
    scaled by a constant, so latent spaces of different models (γ = 0 vs γ > 0,
    a PCA) can be compared with one number.

    Parameters
    ----------
    X : array-like
        Latents of shape (n_samples, n_dims), or objects encoded with
        ``model``.
    y : array-like of shape (n_samples,)
        Class labels (at least two classes).
    model : fitted transformer or None, default=None
        Encoder of ``X``.

    Returns
    -------
    score : float
        Non-negative; ``inf`` when every class is a single point.

    See Also
    --------
    proximity_matrix : The inter-centre distances themselves.
    sklearn.metrics.silhouette_score : A sample-level alternative.

    Examples
    --------
    >>> from skavae.evaluation import separation_score
    >>> Z = [[-1.0, 0.0], [1.0, 0.0], [9.0, 0.0], [11.0, 0.0]]
    >>> float(separation_score(Z, ["a", "a", "b", "b"]))
    10.0
    """
    Z, classes, codes, centres = _centres(X, y, model)
    if len(classes) < 2:
        raise ValueError(
            f"separation_score needs at least two classes; got {len(classes)}."
        )
    inter = cdist(centres, centres)[np.triu_indices(len(classes), k=1)].mean()
    sq = ((Z - centres[codes]) ** 2).sum(axis=1)
    spread = np.sqrt(np.bincount(codes, weights=sq) / np.bincount(codes)).mean()
    if spread == 0:
        return float("inf") if inter > 0 else float("nan")
    return float(inter / spread)


def pose_angle_fit(pose, angles, *, model=None):
    """Linear fit of the encoded pose against the known rotation angle.

    The paper's Figure 6: ``pose = slope * angle + intercept``, fitted by least
    squares. With several pose dimensions, the one whose squared correlation
    with the angle is largest is used.

    Parameters
    ----------
    pose : array-like of shape (n_samples,) or (n_samples, pose_dims)
        Pose codes, or objects encoded with ``model`` (``model.encode(X)[2]``).
    angles : array-like of shape (n_samples,)
        Known angles (any unit; the slope is in pose units per angle unit).
    model : fitted AffinityVAE or None, default=None
        Encoder with a pose channel.

    Returns
    -------
    fit : sklearn.utils.Bunch
        ``slope``, ``intercept``, ``r2`` (coefficient of determination of the
        fit), ``dimension`` (the pose dimension used) and ``r2_per_dimension``
        (ndarray of shape (pose_dims,)).

    See Also
    --------
    skavae.plotting.plot_pose_sweep : Draws the fit and decoded pose sweeps.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import pose_angle_fit
    >>> angles = np.linspace(-45, 45, 10)
    >>> fit = pose_angle_fit(0.02 * angles + 1.0, angles)
    >>> round(fit.slope, 6), round(fit.intercept, 6), round(fit.r2, 6)
    (0.02, 1.0, 1.0)
    """
    P = pose_of(pose, model)
    a = np.asarray(angles, dtype=np.float64)
    if a.ndim != 1 or len(a) != len(P):
        raise ValueError(
            f"angles must be 1D with one angle per sample ({len(P)}); got shape "
            f"{a.shape}."
        )
    if not np.isfinite(a).all():
        raise ValueError("angles must be finite.")
    a_c = a - a.mean()
    var_a = (a_c**2).mean()
    if var_a == 0:
        raise ValueError("angles are all equal; a slope cannot be fitted.")
    P_c = P - P.mean(axis=0)
    cov = (a_c[:, None] * P_c).mean(axis=0)
    var_p = (P_c**2).mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(var_p > 0, cov**2 / (var_a * var_p), 0.0)
    dim = int(np.argmax(r2))
    slope = float(cov[dim] / var_a)
    intercept = float(P[:, dim].mean() - slope * a.mean())
    return Bunch(
        slope=slope,
        intercept=intercept,
        r2=float(r2[dim]),
        dimension=dim,
        r2_per_dimension=r2,
    )


def seen_unseen_confusion(y_true, y_pred, *, seen_classes=None, normalize=True):
    """Confusion table of true classes (seen, then unseen) vs predicted classes.

    Rows are every true class: the seen ones first, then the unseen ones, whose
    rows show which seen class each unseen class is mistaken for (the paper's
    Figure 3, right). Columns are the predicted labels: the seen classes, then
    any other predicted label (e.g. ``"unknown"`` from
    :class:`ClusterMeanClassifier`).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, seen and unseen.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    seen_classes : array-like or None, default=None
        Classes the classifier was trained on, in display order. None takes the
        sorted true labels that also occur among the predictions.
    normalize : bool, default=True
        Divide each row by its count (fractions of the true class).

    Returns
    -------
    confusion : pandas.DataFrame
        Index: true classes (name ``"true"``); columns: predicted labels
        (name ``"predicted"``). ``attrs["n_seen"]`` is the number of seen rows.

    See Also
    --------
    skavae.plotting.plot_confusion_matrix : Draws this table.

    Examples
    --------
    >>> from skavae.evaluation import seen_unseen_confusion
    >>> seen_unseen_confusion(["a", "a", "z", "2", "2"], ["a", "a", "z", "z", "z"],
    ...                       seen_classes=["a", "z"], normalize=False)
    ... # doctest: +NORMALIZE_WHITESPACE
    predicted  a  z
    true
    a          2  0
    z          0  1
    2          0  2
    """
    y_true = np.asarray(y_true)
    y_pred = check_labels(y_pred, len(y_true), name="y_pred")
    true_labels = pd.unique(pd.Series(y_true))
    pred_labels = pd.unique(pd.Series(y_pred))
    if seen_classes is None:
        seen = sorted(set(true_labels) & set(pred_labels))
    else:
        seen = list(pd.unique(pd.Series(np.asarray(seen_classes))))
    unseen = sorted(set(true_labels) - set(seen))
    other = sorted(set(pred_labels) - set(seen), key=str)
    table = pd.crosstab(
        pd.Series(y_true, name="true"), pd.Series(y_pred, name="predicted")
    )
    rows = [c for c in seen if c in set(true_labels)] + unseen
    table = table.reindex(index=rows, columns=seen + other, fill_value=0)
    if normalize:
        table = table.div(table.sum(axis=1).replace(0, 1), axis=0)
    table.index.name, table.columns.name = "true", "predicted"
    table.attrs["n_seen"] = len(rows) - len(unseen)
    return table
