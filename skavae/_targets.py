"""The affinity target: what the loss compares a batch's latent cosines to.

:func:`affinity_target` decides it, for ``fit`` and ``score`` alike: a lookup
in a class-level matrix by the labels (from a DataFrame, or built once per fit
from a metric and the labels), or a sample-level metric evaluated on the
objects of every batch. :class:`AffinityTarget` serves it batch by batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from skavae._losses import lookup_affinity
from skavae._validation import checked_metric
from skavae.affinity import check_affinity_matrix, class_affinity_matrix


class AffinityTarget:
    """Builds the (B, B) affinity matrix of a batch.

    Either a class-level lookup (``codes`` per sample into ``class_matrix``) or a
    sample-level metric evaluated on the batch's raw objects.
    """

    def __init__(self, codes=None, class_matrix=None, metric=None, source=None):
        self.codes = None if codes is None else torch.as_tensor(codes, dtype=torch.long)
        self.class_matrix = class_matrix
        self.metric = metric
        self.source = source

    def __call__(self, idx, device):
        if self.class_matrix is not None:
            codes = self.codes[torch.as_tensor(idx)].to(device)
            return lookup_affinity(codes, self.class_matrix.to(device))
        raw = self.source.raw(idx).reshape(len(idx), *self.source.input_shape)
        values = np.asarray(self.metric(raw), dtype=np.float32)
        return torch.from_numpy(values).to(device)


def affinity_target(affinity, gamma, X, y, source, matrix=None, *, seed=None):
    """The batch affinity target of ``fit`` (``seed`` given) or ``score``.

    Parameters
    ----------
    affinity : Affinity, callable, DataFrame or None
        The estimator's ``affinity``.
    gamma : float
        The weight of the affinity term; 0 means no term.
    X, y : the validated objects and labels (``y`` may be None).
    source : BatchSource
        Serves the raw objects of a batch to a sample-level metric.
    matrix : DataFrame or None, default=None
        The class-level matrix fitted so far (None in a first fit).
    seed : int or None, default=None
        Fitting: the seed of the members sampled for a class-level matrix,
        built from a metric and ``y`` when ``matrix`` is None. None (scoring)
        never builds a matrix: a model fitted with labels is scored on
        labels (no affinity term without them), one fitted without on the
        sample-level metric.

    Returns
    -------
    matrix : DataFrame or None
        The class-level matrix (the fitted ``affinity_matrix_``).
    target : AffinityTarget or None
        None when there is no affinity term.
    """
    if affinity is None or gamma == 0:
        return matrix, None
    fitting = seed is not None
    if y is not None and np.asarray(y).dtype.kind == "b":
        raise ValueError(
            "y holds booleans, which pandas reads as a mask, not as labels; "
            "give the classes as integers or strings (e.g. y.astype(int))."
        )
    if isinstance(affinity, pd.DataFrame):
        if y is None:
            if fitting:
                raise ValueError(
                    "affinity is a class-level DataFrame, which needs the class "
                    "labels: call fit(X, y)."
                )
            return matrix, None
        matrix = check_affinity_matrix(affinity, labels=y)
    elif fitting and y is None or not fitting and matrix is None:
        return None, AffinityTarget(metric=checked_metric(affinity), source=source)
    elif y is None:  # scoring a class-level model without labels
        return matrix, None
    elif matrix is None:
        metric = checked_metric(affinity)
        matrix = check_affinity_matrix(
            class_affinity_matrix(X, y, metric, random_state=seed)
        )
    else:
        check_affinity_matrix(matrix, labels=y)
    codes = pd.Index(matrix.index).get_indexer(pd.Index(np.asarray(y)))
    class_matrix = torch.as_tensor(matrix.to_numpy(copy=True), dtype=torch.float32)
    return matrix, AffinityTarget(codes=codes, class_matrix=class_matrix)
