"""Parameter checks and bookkeeping shared by the dataset generators."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from skavae._checks import check_real  # re-exported for the generators


def check_positive_int(value, name, *, minimum=1):
    """Return ``value`` as an int ``>= minimum``, or raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def balanced_labels(n_samples, n_classes, rng):
    """Class indices with counts differing by at most one, in random order."""
    return rng.permutation(np.arange(n_samples) % n_classes)


def check_test_size(test_size):
    """Validate the optional held-out fraction used for the ``split`` column."""
    if test_size is None:
        return None
    return check_real(test_size, "test_size", low=0.0, high=1.0, low_inclusive=False)


def assign_split(class_index, test_size, rng):
    """Stratified ``"train"``/``"test"`` assignment, or None without a test size.

    In each class, ``round(test_size * n_class)`` randomly chosen samples are
    marked ``"test"`` and the others ``"train"``.
    """
    if test_size is None:
        return None
    split = np.full(len(class_index), "train", dtype=object)
    for k in np.unique(class_index):
        members = np.flatnonzero(class_index == k)
        n_test = int(round(test_size * len(members)))
        split[rng.permutation(members)[:n_test]] = "test"
    return split


def check_angle_step(angle_step):
    """Validate the step of the rotation angles {step, 2 step, ..., 360}."""
    step = check_real(
        angle_step, "angle_step", low=0.0, high=360.0, low_inclusive=False
    )
    n = 360.0 / step
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"angle_step must divide 360 degrees; got {angle_step!r}.")
    return step
