"""The label of "unknown" samples, shared by the open-set classifiers."""

from __future__ import annotations

import numpy as np


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
