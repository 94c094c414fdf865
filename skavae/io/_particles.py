"""Particle lists: RELION 4/5 and Warp/M STAR files, Dynamo tables, CSV/TSV.

:func:`read_particles` returns one :class:`pandas.DataFrame` row per particle
with *normalised* columns first and the file's own columns after them:

``tomo_name``
    Tomogram of the particle (``rlnTomoName``; else ``rlnMicrographName``
    without folder and suffix, as Warp writes ``TS_01.tomostar``; Dynamo's
    tomogram number as text; None when the list names no tomogram).
``x``, ``y``, ``z``
    Position in **pixels of the tomogram** the particles are cut from,
    0-based (the centre of the first voxel is 0): the file's coordinates minus
    its origin shifts, divided by ``binning``.
``class``, ``class_name``
    ``rlnClassNumber`` (Dynamo column 22, CSV ``class``) and a readable name
    (``skavaeClassName``, CSV ``class_name``/``label``); missing when absent.
``rot``, ``tilt``, ``psi``
    Euler angles in degrees, RELION's ZYZ convention (:mod:`skavae.io._euler`);
    Dynamo's angles are converted.
``pixel_size``
    Pixel size of the tomogram in Å (the coordinates' pixel size times
    ``binning``), NaN when unknown.
``tilt_min``, ``tilt_max``, ``defocus_um``
    Only when the file has them (``skavaeTiltMin``/``skavaeTiltMax``,
    ``rlnDefocusU`` in Å).

The original columns follow, untouched (for CSV files the normalised columns
replace those of the same name). :func:`write_particles` writes them back
with the results of a classification; the other blocks of a STAR file (such
as ``optics``) are kept in ``frame.attrs`` and written back as they were.

Coordinates and pixel sizes
---------------------------
``pixel_size`` is the pixel size (Å) of the grid the file's coordinates count
in, ``binning`` how many of those pixels make one pixel of the tomogram.
RELION 4 writes coordinates in pixels of the unbinned tilt series
(``rlnTomoTiltSeriesPixelSize``), so for a tomogram reconstructed at bin 4 give
``binning=4``. RELION 5's ``rlnCenteredCoordinateX/Y/ZAngst`` are Å from the
tomogram's centre: ``x_unbinned = x_angst / pixel_size + size_x / 2`` with
``size_x`` the unbinned width (``tomogram_shape`` times ``binning``).
Positions are ``coordinate - origin``: ``rlnOriginX/Y/ZAngst`` divided by the
pixel size (``rlnOriginX/Y/Z`` of RELION 3 are pixels already). Dynamo's
``x + dx`` (columns 24 + 4, ...) are 1-based MATLAB positions: 1 is
subtracted.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from skavae.io._columns import (
    _check_binning,
    _check_pixel_size,
)
from skavae.io._readers import _from_dynamo, _from_star, _from_table
from skavae.io._writer import write_particles

__all__ = ["particle_labels", "read_particles", "write_particles"]


def _kind(path):
    lower = path.lower()
    if lower.endswith(".star"):
        return "star"
    if lower.endswith(".tbl"):
        return "dynamo"
    if lower.endswith((".csv", ".tsv", ".txt")):
        return "table"
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"data_" in head and b"_rln" in head:
        return "star"
    raise ValueError(
        f"{path}: unknown particle list format; give a .star (RELION, Warp/M), "
        ".tbl (Dynamo) or .csv/.tsv file."
    )


def read_particles(
    path,
    *,
    pixel_size=None,
    binning=1,
    units="pixel",
    tomogram_shape=None,
):
    """Read a particle list into a DataFrame with normalised columns.

    Parameters
    ----------
    path : str or path-like
        A RELION 4/5 or Warp/M ``.star`` file (read with the ``starfile``
        package), a Dynamo ``.tbl`` table or a ``.csv``/``.tsv`` table with
        ``x``, ``y``, ``z`` columns (optional ``tomo_name``, ``class``,
        ``class_name``, ``rot``, ``tilt``, ``psi``).
    pixel_size : float, default=None
        Å per pixel of the file's coordinates (for RELION 4, the unbinned
        tilt-series pixel size). Needed for coordinates or origin shifts in Å;
        by default taken from the file (``rlnTomoTiltSeriesPixelSize``,
        ``rlnPixelSize``, ``rlnDetectorPixelSize`` / ``rlnMagnification``, or
        the ``optics`` block).
    binning : float, default=1
        Coordinate pixels per tomogram pixel: positions are divided by it.
    units : {"pixel", "angstrom"}, default="pixel"
        Units of the ``x``, ``y``, ``z`` columns of CSV/TSV tables (columns
        named ``x_angst``, ... are always Å). STAR and Dynamo files say their
        units themselves.
    tomogram_shape : tuple of 3 ints, dict or callable, default=None
        ``(nz, ny, nx)`` of the tomograms in tomogram pixels, a dict
        ``tomo_name -> shape`` or a function of the name; needed only for
        RELION 5's coordinates relative to the tomogram centre.

    Returns
    -------
    particles : pandas.DataFrame
        The normalised columns (see :mod:`skavae.io._particles`: ``tomo_name``,
        ``x``, ``y``, ``z`` in tomogram pixels, ``class``, ``class_name``,
        ``rot``, ``tilt``, ``psi``, ``pixel_size``, ...) followed by the file's
        own columns. ``particles.attrs`` records the source file, format,
        binning and (for STAR files) the other blocks, for
        :func:`write_particles`.

    Raises
    ------
    ValueError
        For a file that is not a particle list, missing coordinate columns,
        values that are not numbers, Å coordinates without pixel size or a
        Dynamo table with a wrong column count; the message names the file,
        row and column.

    See Also
    --------
    write_particles : Write the rows back with classification results.
    extract_subtomograms : Cut the particles out of their tomograms.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd, starfile
    >>> from skavae.io import read_particles
    >>> tmp = tempfile.mkdtemp()
    >>> path = os.path.join(tmp, "particles.star")
    >>> starfile.write({"particles": pd.DataFrame({
    ...     "rlnTomoName": ["TS_01", "TS_01"],
    ...     "rlnCoordinateX": [400.0, 120.0], "rlnCoordinateY": [80.0, 96.0],
    ...     "rlnCoordinateZ": [40.0, 60.0], "rlnOriginXAngst": [13.5, 0.0],
    ...     "rlnOriginYAngst": [0.0, 0.0], "rlnOriginZAngst": [0.0, 0.0],
    ...     "rlnClassNumber": [1, 2]})}, path)
    >>> p = read_particles(path, pixel_size=1.35, binning=4)
    >>> p[["tomo_name", "x", "y", "z", "class", "pixel_size"]]
      tomo_name     x     y     z  class  pixel_size
    0     TS_01  97.5  20.0  10.0      1         5.4
    1     TS_01  30.0  24.0  15.0      2         5.4
    >>> "rlnOriginXAngst" in p.columns       # the file's columns are kept
    True
    """
    pixel_size = _check_pixel_size(pixel_size)
    binning = _check_binning(binning)
    if units not in ("pixel", "angstrom"):
        raise ValueError(f"units must be 'pixel' or 'angstrom'; got {units!r}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such particle list.")
    kind = _kind(path)
    if kind == "star":
        out, frame, fmt, star = _from_star(path, pixel_size, binning, tomogram_shape)
    elif kind == "dynamo":
        out, frame, fmt, star = _from_dynamo(path, pixel_size)
    else:
        out, frame, fmt, star = _from_table(path, pixel_size, units)
    if not len(frame):
        raise ValueError(f"{path}: the particle list is empty.")
    ps = np.asarray(out.pop("pixel_size_coordinates"), dtype=np.float64)
    normal = pd.DataFrame(
        {
            "tomo_name": pd.Series(out["tomo_name"], dtype=object),
            **{k: np.asarray(out[k], dtype=np.float64) / binning for k in "xyz"},
        }
    )
    for key in ("class", "class_name", "rot", "tilt", "psi"):
        if key in out:
            normal[key] = out[key]
    normal["pixel_size"] = ps * binning
    for key in ("tilt_min", "tilt_max", "defocus_um"):
        if key in out:
            normal[key] = out[key]
    rest = frame.drop(columns=[c for c in frame.columns if c in normal.columns])
    result = pd.concat([normal, rest.reset_index(drop=True)], axis=1)
    result.attrs = {
        "skavae_source": os.path.abspath(path),
        "skavae_format": fmt,
        "skavae_binning": binning,
        "skavae_star": star,
    }
    return result


def particle_labels(particles, column=None):
    """Class labels (strings) of a particle table, or None without any.

    ``column`` names any column; by default ``class_name`` if present, else
    ``class``.
    """
    if column is not None:
        if column not in particles.columns:
            raise ValueError(
                f"the particle list has no column {column!r} for the labels "
                f"(columns: {', '.join(map(str, particles.columns[:12]))}, ...)."
            )
        values = particles[column]
    elif "class_name" in particles.columns:
        values = particles["class_name"]
    elif "class" in particles.columns:
        values = particles["class"]
    else:
        return None
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(f"the label column {values.name!r} is empty in row {row + 1}.")
    return np.asarray([str(v) for v in values])
