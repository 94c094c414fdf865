"""Per-class nonconformity scores of latent codes and their conformal p-values.

A :class:`NonconformityModel` is fitted on the reference samples of the seen
classes and scores any code against every class: ``s_k(x)``, larger is less
like class ``k``. :class:`~skavae.evaluation.ConformalOpenSetClassifier`
calibrates these scores into p-values.

Scores (``kind``):

* ``"knn"``: distance to the ``n_neighbors``-th nearest reference of the class;
* ``"knn_ratio"``: that distance over the same distance to the nearest *other*
  class;
* ``"gaussian"`` / ``"gaussian_shared"``: squared Mahalanobis distance to the
  class mean plus the log-determinant of the (Ledoit-Wolf) covariance, per
  class or pooled;
* ``"sigma"``: the largest per-dimension deviation from the class mean in units
  of the class's standard deviation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

KINDS = ("knn_ratio", "knn", "gaussian", "gaussian_shared", "sigma")


class NonconformityModel:
    """Nonconformity scores of codes against the reference samples of each class.

    Parameters
    ----------
    kind : {"knn_ratio", "knn", "gaussian", "gaussian_shared", "sigma"}
        The score (see the module docstring).
    metric : str, default="euclidean"
        Distance of the nearest-neighbour scores (any of
        :class:`~sklearn.neighbors.NearestNeighbors`).
    """

    def __init__(self, kind, *, metric="euclidean"):
        self.kind = kind
        self.metric = metric

    def fit(self, X, codes, n_classes):
        """Fit on reference codes ``X`` of classes ``codes`` in ``0..n_classes-1``."""
        self.counts = np.bincount(codes, minlength=n_classes)
        self.neighbors = None
        if self.kind in ("knn_ratio", "knn"):
            self.neighbors = [
                NearestNeighbors(metric=self.metric).fit(X[codes == k])
                for k in range(n_classes)
            ]
        means = np.stack([X[codes == k].mean(axis=0) for k in range(n_classes)])
        self.means = means
        residuals = X - means[codes]
        scale = float(X.var(axis=0).max()) if len(X) > 1 else 1.0
        ridge = 1e-9 * (scale if scale > 0 else 1.0)
        if self.kind in ("gaussian", "gaussian_shared"):
            d = X.shape[1]
            if self.kind == "gaussian":
                groups = [residuals[codes == k] for k in range(n_classes)]
            else:
                groups = [residuals]
            covs = [
                LedoitWolf(assume_centered=True).fit(r).covariance_
                if len(r) > 1 and np.any(r)
                else np.zeros((d, d))
                for r in groups
            ]
            covs = np.stack(covs) + ridge * np.eye(d)
            covs = np.broadcast_to(covs, (n_classes, d, d))
            self.precisions = np.linalg.inv(covs)
            self.logdets = np.linalg.slogdet(covs)[1]
        if self.kind == "sigma":
            var = np.stack(
                [(residuals[codes == k] ** 2).mean(axis=0) for k in range(n_classes)]
            )
            self.stds = np.sqrt(var + ridge)
        return self

    def knn_distances(self, X, n_neighbors):
        """Distance of each code to the ``n_neighbors``-th reference of each class."""
        distances = np.empty((len(X), len(self.counts)))
        for k, nn in enumerate(self.neighbors):
            m = min(n_neighbors, self.counts[k])
            distances[:, k] = nn.kneighbors(X, n_neighbors=m)[0][:, -1]
        return distances

    def scores(self, X, *, n_neighbors=5):
        """Scores ``(n_samples, n_classes)`` of the codes ``X``."""
        n_classes = len(self.counts)
        if self.kind in ("knn_ratio", "knn"):
            d = self.knn_distances(X, n_neighbors)
            if self.kind == "knn" or n_classes == 1:
                return d
            # smallest distance among the *other* classes: the row's minimum,
            # except at the minimum itself, where it is the second smallest
            part = np.partition(d, 1, axis=1)
            first, second = part[:, :1], part[:, 1:2]
            other = np.where(d == first, second, first)
            tiny = np.finfo(np.float64).tiny
            return (d + tiny) / (other + tiny)
        diff = X[:, None, :] - self.means[None, :, :]
        if self.kind in ("gaussian", "gaussian_shared"):
            mahalanobis = np.einsum("nkd,kde,nke->nk", diff, self.precisions, diff)
            return mahalanobis + self.logdets
        return np.max(np.abs(diff) / self.stds[None, :, :], axis=2)


def conformal_pvalues(scores, calibration):
    """Split-conformal p-values ``(1 + #{cal >= s}) / (n + 1)`` per class.

    ``scores`` is ``(n_samples, n_classes)``; ``calibration[k]`` the sorted
    calibration scores of class ``k``.
    """
    pvalues = np.empty_like(scores)
    for k, cal in enumerate(calibration):
        n_at_least = len(cal) - np.searchsorted(cal, scores[:, k], side="left")
        pvalues[:, k] = (1.0 + n_at_least) / (len(cal) + 1.0)
    return pvalues


def stratified_split(codes, n_classes, fraction, random_state):
    """Boolean mask of the calibration samples: ``fraction`` of every class.

    Every class keeps at least one reference and one calibration sample.
    """
    rng = check_random_state(random_state)
    calibration = np.zeros(len(codes), dtype=bool)
    for k in range(n_classes):
        members = np.flatnonzero(codes == k)
        n_cal = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        calibration[rng.permutation(members)[:n_cal]] = True
    return calibration


def warn_small_calibration(
    alpha, classes, n_calibration, class_conditional, stacklevel
):
    """Warn when a class (or the pool) has too few calibration samples to reject."""
    needed = math.ceil(1 / alpha - 1 - 1e-9)
    if class_conditional:
        small = [
            (c, n)
            for c, n in zip(classes.tolist(), n_calibration.tolist())
            if (n + 1) * alpha < 1
        ]
        if small:
            listed = ", ".join(f"{c!r} ({n})" for c, n in small[:10])
            warnings.warn(
                f"With alpha={alpha:g} a class needs at least {needed} "
                f"calibration samples to ever be rejected (p-values cannot "
                f"go below 1/(n + 1)); {len(small)} class(es) have fewer: "
                f"{listed}. Their samples are never called unknown. Use "
                "more calibration samples, a larger alpha or "
                "class_conditional=False.",
                UserWarning,
                stacklevel=stacklevel,
            )
    else:
        n = int(n_calibration.sum())
        if (n + 1) * alpha < 1:
            warnings.warn(
                f"With alpha={alpha:g} at least {needed} calibration samples "
                f"are needed for any sample to be called unknown; there are "
                f"{n}. Use more calibration samples or a larger alpha.",
                UserWarning,
                stacklevel=stacklevel,
            )
