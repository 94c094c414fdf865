"""Open-set classification of latent codes with a split-conformal guarantee."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from skavae._checks import SEED
from skavae._evaluation._latents import check_labels
from skavae._evaluation._nonconformity import (
    KINDS,
    NonconformityModel,
    conformal_pvalues,
    stratified_split,
    warn_small_calibration,
)
from skavae._evaluation._unknown import (
    UnknownLabelMixin,
    resolve_unknown_label,
)


class ConformalOpenSetClassifier(UnknownLabelMixin, ClassifierMixin, BaseEstimator):
    """Seen class or "unknown", with a guaranteed error rate on seen classes.

    An open-set classifier of latent codes (or any features) calibrated by
    split-conformal prediction. A *nonconformity score* ``s_k(x)`` measures
    how unusual a sample ``x`` would be as a member of class ``k``; it is
    computed against a *reference* part of the training data and compared with
    the scores of held-out *calibration* samples of the same class. The
    conformal p-value

    .. math:: p_k(x) = \\frac{1 + \\#\\{i \\in \\mathrm{cal}_k :
              s_k(x_i) \\ge s_k(x)\\}}{n_k + 1}

    is the rank of the sample among the ``n_k`` calibration samples of class
    ``k``. The prediction set ``{k : p_k(x) > alpha}`` misses the true class
    of a new sample of a seen class with probability at most ``alpha`` (for
    each class separately when ``class_conditional=True``), whatever the map
    looks like, as long as the calibration samples and the new sample are
    exchangeable (drawn the same way, not used to train the encoder).
    :meth:`predict` returns a class of the set, or ``unknown_label`` when the
    set is empty: a sample of an unseen class far from every seen class gets
    small p-values for all of them and is called unknown.

    Put it after an :class:`~skavae.AffinityVAE` in a pipeline (it takes
    latents) and calibrate it on seen objects the encoder has not been trained
    on (see Notes).

    Parameters
    ----------
    nonconformity : {"gaussian", "gaussian_shared", "knn", "knn_ratio", \
"sigma"}, default="gaussian"
        Nonconformity score of a sample for class ``k``, against the reference
        samples:

        - ``"gaussian"``: minus twice the log-density of a Gaussian fitted to
          class ``k`` (up to a constant): the squared Mahalanobis distance to
          the class mean under the class's covariance, shrunk with
          Ledoit-Wolf, plus the log-determinant of that covariance.
        - ``"gaussian_shared"``: the same with one covariance for all classes,
          estimated from the within-class residuals (as in linear
          discriminant analysis).
        - ``"knn"``: distance to the ``n_neighbors``-th nearest reference
          sample of class ``k``.
        - ``"knn_ratio"``: that distance divided by the smallest such distance
          among the other classes. Below 1 only for the nearest class, so sets
          hold at most one class whenever the calibrated threshold is below 1
          (the usual case) and :meth:`predict` errs exactly when the set
          does; but a sample far from all classes and much nearer to one
          than to the others scores low, so unseen classes are missed more
          often than with the other scores.
        - ``"sigma"``: the largest per-dimension distance to the class mean in
          units of the class's standard deviation, the statistic of the
          paper's ±2σ rule (:class:`ClusterMeanClassifier`), with a calibrated
          threshold instead of 2.

        :ref:`latent_map` compares them on tetraminos and proteins.
    alpha : float, default=0.05
        Requested error rate on seen classes, in (0, 1): the probability that
        the prediction set misses the true class of a seen sample. Used only
        at prediction time, so ``set_params(alpha=...)`` needs no refit.
    n_neighbors : int, default=5
        Neighbour rank of the ``"knn"`` and ``"knn_ratio"`` scores (capped at
        the number of reference samples of each class).
    calibration_fraction : float, default=0.25
        Fraction of each class of the training set held out by :meth:`fit`
        (stratified, at least one sample per class on each side) to calibrate
        the scores; the rest is the reference. 0 uses every training sample
        as reference: call :meth:`calibrate` before predicting.
    class_conditional : bool, default=True
        Calibrate each class on its own calibration samples (Mondrian
        conformal prediction: the error rate is at most ``alpha`` for every
        seen class), rather than on all calibration samples pooled (at most
        ``alpha`` on average over the seen classes; needs fewer calibration
        samples per class, but one threshold for all classes).
    metric : str or callable, default="euclidean"
        Distance of the nearest-neighbour scores, any metric accepted by
        :class:`~sklearn.neighbors.NearestNeighbors`.
    unknown_label : object, default="auto"
        Label predicted for samples whose prediction set is empty; it must not
        be one of the training labels. ``"auto"`` uses ``"unknown"`` for string
        or object labels and -1 (or one less than the smallest class when -1
        is a class) for numeric labels, as :class:`ClusterMeanClassifier`.
    random_state : int, RandomState instance or None, default=None
        Controls the reference/calibration split of :meth:`fit`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Seen class labels.
    unknown_label_ : object
        The label actually used for "unknown".
    class_means_ : ndarray of shape (n_classes, n_features)
        Class means of all training samples (reference and calibration).
    n_reference_ : ndarray of shape (n_classes,)
        Reference samples per class.
    calibration_scores_ : list of ndarray or None
        Sorted nonconformity scores of the calibration samples of each class
        (for class ``k``, computed for class ``k``; with
        ``class_conditional=False`` every entry holds all of them); None
        until calibrated.
    n_calibration_ : ndarray of shape (n_classes,)
        Calibration samples per class.
    n_features_in_ : int
        Number of features (latent dimensions) seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` has string column names.

    See Also
    --------
    ClusterMeanClassifier : The paper's ±2σ rule (uncalibrated).
    discover_clusters : Cluster the samples called unknown into candidate
        new classes.

    Notes
    -----
    **What is guaranteed.** If the calibration samples of a class and a new
    sample of that class are exchangeable, the prediction set misses the
    class with probability at most ``alpha``; the rate actually achieved is
    ``floor(alpha * (n_k + 1)) / (n_k + 1)`` for continuous scores, just
    below ``alpha`` for large calibration sets, and 0 for a class with fewer
    than ``1 / alpha - 1`` calibration samples, which is then never called
    unknown (a warning says so). The guarantee is on average over
    calibration sets: the rate observed with one calibration set of ``n_k``
    samples scatters around it with a standard deviation of about
    ``sqrt(alpha * (1 - alpha) / n_k)``. :meth:`predict` is wrong on a seen
    sample when its set misses the class, or holds it and another class
    chosen instead (one to two points on the latent maps measured). The
    guarantee is on seen classes; how many unseen samples are called unknown
    depends on the score and on the map.

    **Calibrate on data the encoder has not seen.** Latents of objects an
    encoder was trained on are usually tighter than latents of new objects,
    so calibrating on them understates the scores of new seen samples and the
    error exceeds ``alpha`` (on rotated tetraminos, 13 % instead of 5 %). In
    a pipeline, the classifier's :meth:`fit` receives the encoder's training
    latents; call :meth:`calibrate` with the latents of held-out seen
    objects::

        pipe = make_pipeline(
            AffinityVAE(...), ConformalOpenSetClassifier(calibration_fraction=0)
        )
        pipe.fit(X_train, y_train)
        pipe[-1].calibrate(pipe[:-1].transform(X_cal), y_cal)
        pipe.predict(X_new)  # seen class or "unknown"

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.evaluation import ConformalOpenSetClassifier
    >>> rng = np.random.RandomState(0)
    >>> Z = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    >>> y = np.repeat(["a", "b"], 200)
    >>> clf = ConformalOpenSetClassifier(alpha=0.05, random_state=0).fit(Z, y)
    >>> clf.predict([[0.0, 0.0], [8.0, 8.0], [0.0, 8.0]])
    array(['a', 'b', 'unknown'], dtype='<U7')
    >>> clf.predict_set([[0.0, 0.0], [0.0, 8.0]])
    array([[ True, False],
           [False, False]])
    >>> clf.predict_pvalues([[0.0, 0.0]]).round(2)
    array([[1.  , 0.02]])
    """

    _parameter_constraints: dict = {
        "nonconformity": [StrOptions(set(KINDS))],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "calibration_fraction": [Interval(Real, 0, 1, closed="left")],
        "class_conditional": ["boolean"],
        "metric": [str, callable],
        "unknown_label": "no_validation",
        "random_state": SEED,
    }

    def __init__(
        self,
        *,
        nonconformity="gaussian",
        alpha=0.05,
        n_neighbors=5,
        calibration_fraction=0.25,
        class_conditional=True,
        metric="euclidean",
        unknown_label="auto",
        random_state=None,
    ):
        self.nonconformity = nonconformity
        self.alpha = alpha
        self.n_neighbors = n_neighbors
        self.calibration_fraction = calibration_fraction
        self.class_conditional = class_conditional
        self.metric = metric
        self.unknown_label = unknown_label
        self.random_state = random_state

    # ------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the scores on a reference part of ``X`` and calibrate on the rest.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes of seen classes.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : ConformalOpenSetClassifier
            Fitted classifier.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.unknown_label_ = resolve_unknown_label(self.unknown_label, self.classes_)
        if np.any(self.classes_ == self.unknown_label_):
            raise ValueError(
                f"unknown_label={self.unknown_label_!r} is one of the training "
                "labels; choose another unknown_label."
            )
        n_classes = len(self.classes_)
        counts = np.bincount(codes, minlength=n_classes)
        if self.calibration_fraction > 0 and counts.min() < 2:
            small = [
                f"{c!r} ({n})"
                for c, n in zip(self.classes_.tolist(), counts.tolist())
                if n < 2
            ]
            raise ValueError(
                "With calibration_fraction > 0 every class needs at least 2 "
                "training samples (one reference, one calibration); "
                f"{len(small)} class(es) have fewer: {', '.join(small[:10])}. "
                "Pass more samples, or calibration_fraction=0 and call "
                "calibrate(X_cal, y_cal)."
            )
        self.class_means_ = np.stack(
            [X[codes == k].mean(axis=0) for k in range(n_classes)]
        )
        if self.calibration_fraction > 0:
            cal = stratified_split(
                codes, n_classes, self.calibration_fraction, self.random_state
            )
        else:
            cal = np.zeros(len(X), dtype=bool)
        self._fit_reference(X[~cal], codes[~cal], n_classes)
        if cal.any():
            self._calibrate(X[cal], codes[cal])
        else:
            self.calibration_scores_ = None
            self.n_calibration_ = np.zeros(n_classes, dtype=np.int64)
        return self

    def _fit_reference(self, X, codes, n_classes):
        self.n_reference_ = np.bincount(codes, minlength=n_classes)
        self._reference = NonconformityModel(
            self.nonconformity, metric=self.metric
        ).fit(X, codes, n_classes)

    def _check_calibration_labels(self, y):
        """Codes of calibration labels; errors for unknown or missing classes."""
        y = np.asarray(y)
        index = {c: k for k, c in enumerate(self.classes_.tolist())}
        extra = sorted({v for v in y.tolist() if v not in index}, key=str)
        if extra:
            raise ValueError(
                f"y_cal has {len(extra)} label(s) that are not training classes: "
                f"{', '.join(map(repr, extra[:10]))}. Calibrate on samples of the "
                f"{len(self.classes_)} seen classes only."
            )
        codes = np.array([index[v] for v in y.tolist()], dtype=np.int64)
        counts = np.bincount(codes, minlength=len(self.classes_))
        missing = [
            repr(c) for c, n in zip(self.classes_.tolist(), counts.tolist()) if n == 0
        ]
        if missing:
            raise ValueError(
                f"The calibration set has no sample of {len(missing)} of the "
                f"{len(self.classes_)} training classes: {', '.join(missing[:10])}; "
                "every class needs calibration samples."
            )
        return codes

    def calibrate(self, X_cal, y_cal):
        """Replace the calibration by held-out seen samples; keep the reference.

        Use latents of seen objects that neither the encoder nor :meth:`fit`
        has seen, drawn like the objects to classify.

        Parameters
        ----------
        X_cal : array-like of shape (n_samples, n_features)
            Latent codes of held-out samples of the seen classes.
        y_cal : array-like of shape (n_samples,)
            Their labels; every class of ``classes_`` must occur, and no other.

        Returns
        -------
        self : ConformalOpenSetClassifier
            The classifier, recalibrated.
        """
        check_is_fitted(self)
        X_cal = validate_data(self, X_cal, reset=False, dtype=np.float64)
        y_cal = check_labels(y_cal, len(X_cal), name="y_cal")
        codes = self._check_calibration_labels(y_cal)
        self._calibrate(X_cal, codes, stacklevel=4)
        return self

    def _calibrate(self, X, codes, stacklevel=5):
        scores = self._scores(X)[np.arange(len(X)), codes]
        n_classes = len(self.classes_)
        if self.class_conditional:
            self.calibration_scores_ = [
                np.sort(scores[codes == k]) for k in range(n_classes)
            ]
        else:
            self.calibration_scores_ = [np.sort(scores)] * n_classes
        self.n_calibration_ = np.bincount(codes, minlength=n_classes)
        self._warn_small_calibration(stacklevel)

    def _warn_small_calibration(self, stacklevel):
        warn_small_calibration(
            self._check_alpha(),
            self.classes_,
            self.n_calibration_,
            self.class_conditional,
            stacklevel + 1,
        )

    # ------------------------------------------------------------- scores
    def _scores(self, X):
        return self._reference.scores(X, n_neighbors=self.n_neighbors)

    def nonconformity_scores(self, X):
        """Nonconformity score of every sample for every seen class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes)
            ``s_k(x)`` for the classes of ``classes_``; larger is less like
            the class.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._scores(X)

    def _check_calibrated(self):
        check_is_fitted(self)
        if self.calibration_scores_ is None:
            raise ValueError(
                "This ConformalOpenSetClassifier is not calibrated "
                "(calibration_fraction=0): call calibrate(X_cal, y_cal) with "
                "held-out samples of the seen classes before predicting."
            )

    def _pvalues_and_scores(self, X):
        self._check_calibrated()
        scores = self.nonconformity_scores(X)
        return conformal_pvalues(scores, self.calibration_scores_), scores

    def predict_pvalues(self, X):
        """Conformal p-value of every sample for every seen class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        pvalues : ndarray of shape (n_samples, n_classes)
            ``p_k(x)`` in ``[1 / (n_k + 1), 1]``, columns in the order of
            ``classes_``: the fraction of the class's calibration samples (plus
            the sample itself) at least as unusual as ``x``. Not a probability
            of the class; p-values of a sample need not sum to 1.
        """
        return self._pvalues_and_scores(X)[0]

    def _check_alpha(self):
        alpha = self.alpha
        if not (isinstance(alpha, Real) and 0 < alpha < 1):
            raise ValueError(
                f"alpha must be a float in (0, 1), the requested error rate on "
                f"seen classes; got {alpha!r}."
            )
        return float(alpha)

    def predict_set(self, X):
        """Conformal prediction sets: the classes with a p-value above alpha.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype bool
            ``sets[i, k]`` is True when class ``classes_[k]`` is in the set of
            sample ``i``. A seen sample's class is missing with probability
            at most ``alpha``; an empty row is an "unknown".
        """
        alpha = self._check_alpha()
        pvalues = self.predict_pvalues(X)
        self._warn_small_calibration(stacklevel=3)
        return pvalues > alpha

    def predict(self, X):
        """Seen class of the prediction set, or ``unknown_label`` if it is empty.

        When the set holds several classes, the one of smallest nonconformity
        score wins: the most likely class under the class Gaussians for
        ``"gaussian"``, the nearest class for the nearest-neighbour scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        alpha = self._check_alpha()
        pvalues, scores = self._pvalues_and_scores(X)
        self._warn_small_calibration(stacklevel=3)
        return self._nearest_allowed(pvalues > alpha, scores)
