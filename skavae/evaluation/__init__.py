"""Latent-map evaluation: classify, compare and measure latent spaces.

The affinity-VAE paper (Mirecka et al., sections 2.3-2.4 and 3) reads a trained
model as a *latent map*: seen classes are embedded, and new objects - including
classes never seen in training - are placed on the map and classified. Every
function accepts either latents (an array of shape (n_samples, n_dims)) or
objects plus a fitted encoder (``model=``: an :class:`~skavae.AffinityVAE`, or
any fitted transformer such as a PCA, so that maps can be compared).

Classification
    :func:`hard_knn_predict` (k=5), :func:`soft_knn_proba` (k=100, class
    fractions), :func:`knn_predictions` (both per object, out of fold for
    objects of the reference map), :class:`ClusterMeanClassifier` (±2σ boxes,
    "unknown" outside),
    :func:`latent_map_report` (per-class summary),
    :func:`seen_unseen_confusion` (seen and unseen rows, predicted columns).
Open-set classification and discovery
    :class:`ConformalOpenSetClassifier` (seen class or "unknown" at a chosen
    error rate on seen classes, split-conformal p-values and prediction sets),
    :func:`discover_clusters` (HDBSCAN clusters of the unknowns, each with its
    size and nearest seen classes).
Geometry
    :func:`proximity_matrix` (class-centre distances, 0-100),
    :func:`separation_score` (inter-centre distance over cluster spread).
Pose
    :func:`pose_angle_fit` (linear fit of pose against rotation angle).
"""

from skavae._evaluation._classifiers import (
    ClusterMeanClassifier,
    hard_knn_predict,
    soft_knn_proba,
)
from skavae._evaluation._discovery import discover_clusters
from skavae._evaluation._knn import knn_predictions
from skavae._evaluation._metrics import (
    pose_angle_fit,
    proximity_matrix,
    seen_unseen_confusion,
    separation_score,
)
from skavae._evaluation._openset import ConformalOpenSetClassifier
from skavae._evaluation._report import latent_map_report
from skavae._evaluation._tta import rotation_averaged_transform

__all__ = [
    "ClusterMeanClassifier",
    "ConformalOpenSetClassifier",
    "discover_clusters",
    "hard_knn_predict",
    "knn_predictions",
    "latent_map_report",
    "pose_angle_fit",
    "proximity_matrix",
    "rotation_averaged_transform",
    "seen_unseen_confusion",
    "separation_score",
    "soft_knn_proba",
]
