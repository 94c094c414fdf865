"""Affinity (similarity) metrics and class-level affinity matrices.

Every metric follows one protocol: ``metric(X, Y=None)`` returns the
``(n_x, n_y)`` similarity matrix with values in [-1, 1], 1 meaning identical.
"""

from skavae.affinity._base import Affinity
from skavae.affinity._fsc import FSCAffinity
from skavae.affinity._matrix import (
    check_affinity_matrix,
    class_affinity_matrix,
    read_affinity_csv,
    write_affinity_csv,
)
from skavae.affinity._simple import MeanDifference
from skavae.affinity._soap import SOAPAffinity

__all__ = [
    "Affinity",
    "FSCAffinity",
    "MeanDifference",
    "SOAPAffinity",
    "check_affinity_matrix",
    "class_affinity_matrix",
    "read_affinity_csv",
    "write_affinity_csv",
]
