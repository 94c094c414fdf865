"""Classifiers of latent codes: hard/soft KNN and the ±nσ cluster rule."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from skavae._checks import check_int
from skavae._evaluation._latents import check_labels, latents_of
from skavae._evaluation._unknown import UnknownLabelMixin, resolve_unknown_label


def _fit_knn(X_ref, y_ref, model, n_neighbors):
    n_neighbors = check_int(n_neighbors, "n_neighbors")
    Z_ref = latents_of(X_ref, model, name="X_ref")
    y_ref = check_labels(y_ref, len(Z_ref), name="y_ref")
    knn = KNeighborsClassifier(n_neighbors=min(int(n_neighbors), len(Z_ref)))
    return knn.fit(Z_ref, y_ref)


def hard_knn_predict(X_ref, y_ref, X, *, model=None, n_neighbors=5):
    """Label latents by majority vote of their nearest reference latents.

    The paper's *hard KNN*: a :class:`~sklearn.neighbors.KNeighborsClassifier`
    with ``k=5`` (Euclidean distance, uniform weights) fitted on the reference
    map (usually the training latents of the seen classes).

    Parameters
    ----------
    X_ref : array-like
        Reference objects (encoded with ``model``) or latents of shape
        (n_ref, n_dims) when ``model`` is None.
    y_ref : array-like of shape (n_ref,)
        Labels of the reference samples.
    X : array-like
        Objects or latents to label.
    model : fitted transformer or None, default=None
        Encoder of ``X_ref`` and ``X`` (an :class:`~skavae.AffinityVAE`, a PCA,
        ...); None when both are latents already.
    n_neighbors : int, default=5
        Number of neighbours, capped at the number of reference samples.

    Returns
    -------
    y_pred : ndarray of shape (n_samples,)
        Predicted labels (always one of the reference classes).

    See Also
    --------
    soft_knn_proba : Class fractions among the 100 nearest neighbours.
    ClusterMeanClassifier : Cluster rule with an "unknown" class.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import hard_knn_predict
    >>> Z_ref = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> hard_knn_predict(Z_ref, ["a", "a", "b", "b"], [[4.8, 5.2]], n_neighbors=1)
    array(['b'], dtype='<U1')
    """
    knn = _fit_knn(X_ref, y_ref, model, n_neighbors)
    return knn.predict(latents_of(X, model))


def soft_knn_proba(X_ref, y_ref, X, *, model=None, n_neighbors=100):
    """Fraction of each class among the nearest reference latents.

    The paper's *soft KNN*: ``predict_proba`` of a
    :class:`~sklearn.neighbors.KNeighborsClassifier` with ``k=100`` and uniform
    weights, i.e. for each sample the fraction of its 100 nearest reference
    latents that belong to each class. Spread-out fractions flag a sample that
    lies between clusters (an unseen class, an ambiguous object).

    Parameters
    ----------
    X_ref : array-like
        Reference objects (encoded with ``model``) or latents of shape
        (n_ref, n_dims) when ``model`` is None.
    y_ref : array-like of shape (n_ref,)
        Labels of the reference samples.
    X : array-like
        Objects or latents to score.
    model : fitted transformer or None, default=None
        Encoder of ``X_ref`` and ``X``; None when both are latents already.
    n_neighbors : int, default=100
        Number of neighbours, capped at the number of reference samples.

    Returns
    -------
    proba : pandas.DataFrame of shape (n_samples, n_classes)
        Class fractions; columns are the sorted reference classes, rows sum
        to 1.

    See Also
    --------
    hard_knn_predict : Majority vote of the 5 nearest neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import soft_knn_proba
    >>> Z_ref = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> soft_knn_proba(Z_ref, ["a", "a", "b", "b"], [[0.5]], n_neighbors=4)
         a    b
    0  0.5  0.5
    """
    knn = _fit_knn(X_ref, y_ref, model, n_neighbors)
    proba = knn.predict_proba(latents_of(X, model))
    return pd.DataFrame(proba, columns=pd.Index(knn.classes_))


class ClusterMeanClassifier(UnknownLabelMixin, ClassifierMixin, BaseEstimator):
    """Assign a sample to a class when it lies within ±n_sigma of its mean.

    The paper's cluster rule on the latent map: each class is summarised by the
    mean and the per-dimension standard deviation of its training latents; a
    sample belongs to a class when, in *every* dimension, it is within
    ``n_sigma`` standard deviations of that class's mean (an axis-aligned box),
    and is labelled ``unknown_label`` when it is inside no class's box. Unlike
    KNN, the rule can say "none of the known classes", which is how objects of
    unseen classes are detected.

    Parameters
    ----------
    n_sigma : float, default=2.0
        Half-width of the acceptance box in standard deviations.
    unknown_label : object, default="auto"
        Label predicted for samples outside every class's box; it must not be
        one of the training labels. ``"auto"`` uses ``"unknown"`` for string or
        object labels and, for numeric labels, -1 (or one less than the smallest
        class when -1 is a class), like the noise label of
        :class:`~sklearn.cluster.DBSCAN`.
    var_smoothing : float, default=1e-9
        Fraction of the largest per-dimension variance of the training data
        added to every class variance, so that classes with a single sample or
        a constant dimension keep a non-zero width (as in
        :class:`~sklearn.naive_bayes.GaussianNB`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    means_ : ndarray of shape (n_classes, n_features)
        Class means (cluster centres).
    stds_ : ndarray of shape (n_classes, n_features)
        Per-dimension standard deviations (population, ``ddof=0``) after
        smoothing.
    unknown_label_ : object
        The label actually used for samples outside every box.
    class_count_ : ndarray of shape (n_classes,)
        Training samples per class.
    epsilon_ : float
        Variance added to every class variance.
    n_features_in_ : int
        Number of latent dimensions.

    See Also
    --------
    hard_knn_predict : KNN labels (never "unknown").
    proximity_matrix : Distances between the class means.

    Notes
    -----
    **Overlaps.** A sample inside the boxes of several classes is given to the
    class with the smallest standardised distance
    ``sum_d ((z_d - mean_kd) / std_kd) ** 2`` (a diagonal Mahalanobis
    distance); remaining exact ties go to the class that comes first in
    ``classes_``. With ``d`` independent Gaussian dimensions, about
    ``0.954 ** d`` of a class's own samples fall inside its ±2σ box (0.83 for
    d=4, 0.69 for d=8), so the rate of "unknown" on seen classes grows with the
    latent size; raise ``n_sigma`` for large latent spaces.

    The output dtype is that of ``classes_`` when ``unknown_label_`` fits in it
    (strings with a string, numbers with a number), otherwise ``object``.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import ClusterMeanClassifier
    >>> rng = np.random.RandomState(0)
    >>> Z = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(10, 1, (50, 2))])
    >>> y = np.repeat(["a", "b"], 50)
    >>> clf = ClusterMeanClassifier().fit(Z, y)
    >>> clf.predict([[0.0, 0.0], [10.0, 10.0], [5.0, 5.0]])
    array(['a', 'b', 'unknown'], dtype='<U7')
    """

    _parameter_constraints: dict = {
        "n_sigma": [Interval(Real, 0, None, closed="neither")],
        "unknown_label": "no_validation",
        "var_smoothing": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, n_sigma=2.0, unknown_label="auto", var_smoothing=1e-9):
        self.n_sigma = n_sigma
        self.unknown_label = unknown_label
        self.var_smoothing = var_smoothing

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Compute the class means and per-dimension spreads.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : ClusterMeanClassifier
            Fitted classifier.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.unknown_label_ = self._resolve_unknown_label()
        if np.any(self.classes_ == self.unknown_label_):
            raise ValueError(
                f"unknown_label={self.unknown_label_!r} is one of the training "
                "labels; choose another unknown_label."
            )
        n_classes = len(self.classes_)
        self.class_count_ = np.bincount(codes, minlength=n_classes)
        onehot = np.zeros((len(X), n_classes))
        onehot[np.arange(len(X)), codes] = 1.0
        self.means_ = (onehot.T @ X) / self.class_count_[:, None]
        centred = X - self.means_[codes]
        var = (onehot.T @ centred**2) / self.class_count_[:, None]
        self.epsilon_ = float(self.var_smoothing * X.var(axis=0).max())
        self.stds_ = np.sqrt(var + self.epsilon_)
        return self

    def _resolve_unknown_label(self):
        return resolve_unknown_label(self.unknown_label, self.classes_)

    def standardized_distances(self, X):
        """Per-class distances of samples in units of the class spread.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        max_abs : ndarray of shape (n_samples, n_classes)
            Largest ``|z_d - mean_kd| / std_kd`` over dimensions: the sample is
            inside class ``k``'s box when this is at most ``n_sigma``.
        sq_dist : ndarray of shape (n_samples, n_classes)
            ``sum_d ((z_d - mean_kd) / std_kd) ** 2``, used to resolve overlaps.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        n_classes = len(self.classes_)
        max_abs = np.empty((len(X), n_classes))
        sq_dist = np.empty((len(X), n_classes))
        tiny = np.finfo(np.float64).tiny
        for k in range(n_classes):  # loop over classes, vectorised over samples
            d = np.abs(X - self.means_[k]) / np.maximum(self.stds_[k], tiny)
            max_abs[:, k] = d.max(axis=1)
            sq_dist[:, k] = (d**2).sum(axis=1)
        return max_abs, sq_dist

    def predict(self, X):
        """Class of each sample, or ``unknown_label`` outside every box.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        max_abs, sq_dist = self.standardized_distances(X)
        return self._nearest_allowed(max_abs <= self.n_sigma, sq_dist)
