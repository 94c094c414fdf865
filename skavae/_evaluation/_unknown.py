"""The label of "unknown" samples and what follows from it, shared by the
open-set classifiers."""

from __future__ import annotations

import numpy as np

from skavae._evaluation._latents import check_labels


def resolve_unknown_label(unknown_label, classes):
    """``unknown_label``, with ``"auto"`` resolved.

    ``"auto"`` is -1 for numeric classes (one below the lowest class when -1 is a
    class), ``"unknown"`` otherwise.
    """
    if not (isinstance(unknown_label, str) and unknown_label == "auto"):
        return unknown_label
    if classes.dtype.kind in "iuf":
        lowest = classes.min()
        value = -1 if lowest > -1 or -1 not in classes else lowest - 1
        return classes.dtype.type(value)
    return "unknown"


def output_dtype(classes, unknown_label):
    """dtype of ``classes`` when ``unknown_label`` fits in it, else object."""
    kind = classes.dtype.kind
    label = np.asarray(unknown_label)
    if (kind in "US" and label.dtype.kind in "US") or (
        kind in "iuf" and label.dtype.kind in "iuf"
    ):
        return np.result_type(classes.dtype, label.dtype)
    return object


class UnknownLabelMixin:
    """``predict`` and ``score`` of a classifier that may answer "unknown".

    The classifier sets ``classes_`` and ``unknown_label_`` in ``fit``.
    """

    def _nearest_allowed(self, allowed, cost):
        """Per sample the allowed class of least ``cost``, or ``unknown_label_``
        where no class is allowed (both arrays (n_samples, n_classes))."""
        best = np.argmin(np.where(allowed, cost, np.inf), axis=1)
        y_pred = self.classes_[best].astype(
            output_dtype(self.classes_, self.unknown_label_)
        )
        y_pred[~allowed.any(axis=1)] = self.unknown_label_
        return y_pred

    def score(self, X, y, sample_weight=None):
        """Accuracy; a sample predicted ``unknown_label`` counts as wrong.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Latent codes.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Weighted fraction of correctly labelled samples.
        """
        y_pred = self.predict(X)
        y = check_labels(y, len(y_pred))
        correct = np.asarray(y_pred == y, dtype=np.float64)
        return float(np.average(correct, weights=sample_weight))
