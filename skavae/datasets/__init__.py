"""Synthetic data sets of the affinity-VAE paper and mrc folder I/O.

Generators return ``(X, y)``: ``X`` a float32 array of images or volumes and
``y`` the string class labels; with ``return_info=True`` they also return a
:class:`pandas.DataFrame` with one row per sample (rotation angles, translation,
elongation, ...) and a dict of one unrotated *template* per class, ready for
:func:`skavae.affinity.class_affinity_matrix`.
"""

from skavae.datasets._alphanumeric import (
    ALPHANUMERIC_CHARACTERS,
    ALPHANUMERIC_SEEN,
    ALPHANUMERIC_UNSEEN,
    make_alphanumeric,
)
from skavae.datasets._proteins import PROTEIN_IDS, make_proteins
from skavae.datasets._tetraminos import (
    TETRAMINO_SEEN,
    TETRAMINO_SHAPES,
    TETRAMINO_UNSEEN,
    make_tetraminos,
)

__all__ = [
    "ALPHANUMERIC_CHARACTERS",
    "ALPHANUMERIC_SEEN",
    "ALPHANUMERIC_UNSEEN",
    "PROTEIN_IDS",
    "TETRAMINO_SEEN",
    "TETRAMINO_SHAPES",
    "TETRAMINO_UNSEEN",
    "make_alphanumeric",
    "make_proteins",
    "make_tetraminos",
]
