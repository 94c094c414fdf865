"""Particle lists in and out, and subtomograms cut from tomograms.

:func:`read_particles` reads RELION 4/5 and Warp/M ``.star`` files (with the
``starfile`` package), Dynamo ``.tbl`` tables and CSV/TSV coordinate tables
into one :class:`pandas.DataFrame` with normalised columns (``tomo_name``,
``x``, ``y``, ``z`` in tomogram pixels, ``class``, ``rot``, ``tilt``, ``psi``,
...) next to the file's own.

:func:`extract_subtomograms` returns a lazy :class:`SubtomogramStack` that
cuts boxes from memory-mapped tomograms only when indexed, with the metadata
the wedge-aware fit needs (``stack.tilt_ranges``).

:func:`write_particles` writes the rows back as a RELION STAR file with the
predicted class (``rlnClassNumber``, ``skavaeClassName``), its probability, an
unknown flag and the latents, leaving the input's other columns untouched.

:func:`euler_to_matrix` and :func:`matrix_to_euler` convert RELION's ZYZ Euler
angles. The user guide page "Working with tomograms" describes the
conventions.

:func:`write_volume` writes one volume as ``.mrc`` with its voxel size (decoded
class centres, reconstructions), next to the PNG slices of a run.
"""

from skavae.io._euler import euler_to_matrix, matrix_to_euler
from skavae.io._extract import SubtomogramStack, extract_subtomograms
from skavae.io._mrcout import write_volume
from skavae.io._particles import read_particles, write_particles

__all__ = [
    "SubtomogramStack",
    "euler_to_matrix",
    "extract_subtomograms",
    "matrix_to_euler",
    "read_particles",
    "write_particles",
    "write_volume",
]
