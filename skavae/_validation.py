"""Checks of the estimator's parameters, labels and affinity metrics.

The objects ``X`` are checked in :mod:`skavae._data`.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np

from skavae._checks import Count  # noqa: F401  (re-exported for the estimator)
from skavae._splat import splat_pose_dims


def class_labels(y):
    """Sorted unique labels; a clear error for labels of mixed types."""
    try:
        return np.unique(y)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in np.asarray(y, dtype=object)})
        raise ValueError(
            f"y mixes labels of different types ({', '.join(kinds)}); use one type, "
            "e.g. all strings."
        ) from None


def checked_metric(metric):
    """Wrap a user metric so that a malformed result is a clear error."""
    from skavae.affinity._matrix import check_metric, check_similarities

    check_metric(metric, "affinity")
    name = getattr(metric, "__name__", type(metric).__name__)

    def checked(A, B=None):
        values = np.asarray(metric(A, B) if B is not None else metric(A))
        shape = (len(A), len(A if B is None else B))
        if values.shape != shape:
            raise ValueError(
                f"The affinity metric {name} returned an array of shape "
                f"{values.shape}; expected {shape}."
            )
        return check_similarities(values, f"The result of the affinity metric {name}")

    return checked


def check_filters(filters):
    """The encoder channels as a tuple of positive ints, or a ValueError."""
    checked = tuple(filters)
    if not checked or not all(
        isinstance(f, Integral) and not isinstance(f, bool) and f > 0 for f in checked
    ):
        raise ValueError(
            "filters must be a non-empty sequence of positive integers; "
            f"got {filters!r}."
        )
    return checked


def check_options(estimator, ndim, y):
    """Refuse a splat pose of the wrong size; warn of unused gamma and y."""
    sizes, words = splat_pose_dims(ndim)
    if estimator.decoder == "splat" and estimator.pose_dims not in sizes:
        raise ValueError(
            f"decoder='splat' on {ndim}D data needs pose_dims in {sizes}: "
            f"{words}; got pose_dims={estimator.pose_dims}."
        )
    if estimator.affinity is not None:
        return
    unused = []
    if y is not None:
        unused.append(
            "the labels y do not shape the latent space (they are only "
            "recorded in classes_)"
        )
    if estimator.gamma != type(estimator).__init__.__kwdefaults__["gamma"]:
        unused.append("gamma is not used")
    if unused:
        warnings.warn(
            "AffinityVAE(affinity=None) has no affinity term: "
            f"{' and '.join(unused)}; pass an affinity (e.g. "
            "skavae.affinity.FSCAffinity()) to organise the latent space by "
            "similarity.",
            UserWarning,
            stacklevel=5,
        )
