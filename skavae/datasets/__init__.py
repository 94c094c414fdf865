"""Synthetic data sets of the affinity-VAE paper and mrc folder I/O.

Generators return ``(X, y)``: ``X`` a float32 array of images or volumes and
``y`` the string class labels; with ``return_info=True`` they also return a
:class:`pandas.DataFrame` with one row per sample (rotation angles, translation,
elongation, ...) and a dict of one unrotated *template* per class, ready for
:func:`skavae.affinity.class_affinity_matrix`.

:func:`simulate_subtomograms` turns clean maps into realistic subtomograms
(random SO(3) poses, crowding, CTF, missing wedge, noise at a stated SNR), with
the :class:`CTF` and :class:`MissingWedge` models.

:func:`make_tomogram` places molecules of the shipped structures in a
tomogram (random positions and orientations, the forward model applied to the
whole volume) and returns the ground-truth particle list with it.

:func:`load_mrc_folder` and :func:`save_mrc_folder` read and write folders of
``.mrc`` files (one object per file, label in the file name), lazily and
atomically;
:func:`save_mrcs` writes a ``.mrcs`` stack of 2D images.
"""

from skavae._ctf import CTF
from skavae._wedge import MissingWedge
from skavae.datasets._alphanumeric import (
    ALPHANUMERIC_CHARACTERS,
    ALPHANUMERIC_SEEN,
    ALPHANUMERIC_UNSEEN,
    make_alphanumeric,
)
from skavae.datasets._forward import simulate_subtomograms
from skavae.datasets._mrc import MRCStack, load_mrc_folder, save_mrc_folder
from skavae.datasets._mrcs import save_mrcs
from skavae.datasets._proteins import (
    ECOLI_PROTEIN_IDS,
    PROTEIN_IDS,
    make_proteins,
)
from skavae.datasets._tetraminos import (
    TETRAMINO_SEEN,
    TETRAMINO_SHAPES,
    TETRAMINO_UNSEEN,
    make_tetraminos,
)
from skavae.datasets._tomogram import TOMOGRAM_STRUCTURES, make_tomogram

__all__ = [
    "CTF",
    "MissingWedge",
    "ALPHANUMERIC_CHARACTERS",
    "ALPHANUMERIC_SEEN",
    "ALPHANUMERIC_UNSEEN",
    "ECOLI_PROTEIN_IDS",
    "MRCStack",
    "PROTEIN_IDS",
    "TETRAMINO_SEEN",
    "TETRAMINO_SHAPES",
    "TETRAMINO_UNSEEN",
    "TOMOGRAM_STRUCTURES",
    "make_alphanumeric",
    "make_proteins",
    "load_mrc_folder",
    "make_tetraminos",
    "make_tomogram",
    "save_mrc_folder",
    "save_mrcs",
    "simulate_subtomograms",
]
