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
import re
from numbers import Real

import numpy as np
import pandas as pd

from skavae._files import atomic_path
from skavae.io._euler import dynamo_to_relion

__all__ = ["read_particles", "write_particles"]

NORMALISED = (
    "tomo_name",
    "x",
    "y",
    "z",
    "class",
    "class_name",
    "rot",
    "tilt",
    "psi",
    "pixel_size",
    "tilt_min",
    "tilt_max",
    "defocus_um",
)

#: Dynamo table columns (1-based numbers of the Dynamo documentation)
DYNAMO_COLUMNS = {
    "tag": 1,
    "dx": 4,
    "dy": 5,
    "dz": 6,
    "tdrot": 7,
    "tilt": 8,
    "narot": 9,
    "tomo": 20,
    "class": 22,
    "x": 24,
    "y": 25,
    "z": 26,
}
DYNAMO_MIN_COLUMNS = 26

_AXES = ("X", "Y", "Z")
_STAR_PIXEL = [f"rlnCoordinate{a}" for a in _AXES]
_STAR_CENTRED = [f"rlnCenteredCoordinate{a}Angst" for a in _AXES]
_STAR_ORIGIN_A = [f"rlnOrigin{a}Angst" for a in _AXES]
_STAR_ORIGIN_PX = [f"rlnOrigin{a}" for a in _AXES]
_STAR_ANGLES = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
#: input columns that predictions replace, and where they are kept
_KEPT_INPUT = {
    "rlnClassNumber": "skavaeInputClassNumber",
    "skavaeClassName": "skavaeInputClassName",
}
_TOMO_SUFFIXES = (".tomostar", ".mrc", ".rec", ".map", ".st", ".mrcs", ".ali")


# ------------------------------------------------------------------ reading
def _check_binning(binning):
    if isinstance(binning, bool) or not isinstance(binning, Real):
        raise ValueError(f"binning must be a positive number; got {binning!r}.")
    if not (np.isfinite(binning) and binning > 0):
        raise ValueError(f"binning must be a positive number; got {binning!r}.")
    return float(binning)


def _check_pixel_size(pixel_size):
    if pixel_size is None:
        return None
    if isinstance(pixel_size, bool) or not isinstance(pixel_size, Real):
        raise ValueError(
            f"pixel_size must be a positive number of Å; got {pixel_size!r}."
        )
    if not (np.isfinite(pixel_size) and pixel_size > 0):
        raise ValueError(
            f"pixel_size must be a positive number of Å; got {pixel_size!r}."
        )
    return float(pixel_size)


def tomo_stem(name):
    """``TS_01`` of ``path/TS_01.tomostar`` (folder and one known suffix off)."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return None
    text = os.path.basename(str(name).strip())
    if text.endswith(":mrc"):
        text = text[:-4]
    for suffix in _TOMO_SUFFIXES:
        if text.lower().endswith(suffix):
            return text[: -len(suffix)]
    return text


def _numeric(frame, column, path):
    """A column as float64; a ValueError naming the file, row and column."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}: row {row + 1} of column {column!r} is "
            f"{frame[column].iloc[row]!r}, not a finite number."
        )
    return values


def _star_blocks(path):
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure names the file
        raise ValueError(
            f"{path}: not a readable STAR file ({' '.join(str(exc).split())})."
        ) from None
    if not blocks:
        raise ValueError(
            f"{path}: not a STAR file (no data_ block with a loop of columns)."
        )
    return blocks


def _particle_block(blocks, path):
    frames = {k: v for k, v in blocks.items() if isinstance(v, pd.DataFrame)}
    for name in ["particles", *frames]:
        frame = frames.get(name)
        if frame is None:
            continue
        columns = set(frame.columns)
        if columns & set(_STAR_PIXEL + _STAR_CENTRED):
            return name, frame
    seen = "; ".join(
        f"data_{name}: {', '.join(map(str, f.columns[:8]))}"
        + (", ..." if len(f.columns) > 8 else "")
        for name, f in frames.items()
    )
    raise ValueError(
        f"{path}: no coordinate columns (rlnCoordinateX/Y/Z in pixels or "
        f"rlnCenteredCoordinateX/Y/ZAngst in Å) in any block ({seen or 'no loop'})."
    )


def _star_pixel_size(frame, blocks):
    """Pixel size of the coordinates from the file, per row (NaN if unknown)."""
    n = len(frame)
    for column in ("rlnTomoTiltSeriesPixelSize", "rlnPixelSize"):
        if column in frame.columns:
            return pd.to_numeric(frame[column], errors="coerce").to_numpy(float)
    if {"rlnDetectorPixelSize", "rlnMagnification"} <= set(frame.columns):
        det = pd.to_numeric(frame["rlnDetectorPixelSize"], errors="coerce")
        mag = pd.to_numeric(frame["rlnMagnification"], errors="coerce")
        return (det * 1e4 / mag).to_numpy(float)
    optics = blocks.get("optics")
    if isinstance(optics, pd.DataFrame):
        for column in ("rlnTomoTiltSeriesPixelSize", "rlnMicrographOriginalPixelSize"):
            if column not in optics.columns:
                continue
            sizes = pd.to_numeric(optics[column], errors="coerce")
            if "rlnOpticsGroup" in optics.columns and "rlnOpticsGroup" in frame:
                table = dict(zip(optics["rlnOpticsGroup"], sizes))
                return frame["rlnOpticsGroup"].map(table).to_numpy(float)
            if len(optics) == 1:
                return np.full(n, float(sizes.iloc[0]))
    return np.full(n, np.nan)


def _shape_of(tomogram_shape, names, path, column):
    """Per-row (nz, ny, nx) tomogram shapes from a tuple or a dict name -> shape."""
    if tomogram_shape is None:
        raise ValueError(
            f"{path}: column {column!r} holds RELION 5 coordinates in Å from the "
            "tomogram's centre; give tomogram_shape=(nz, ny, nx) (or a dict "
            "tomo_name -> shape) in tomogram pixels, or read them with "
            "extract_subtomograms, which takes the shape from the tomograms."
        )
    if callable(tomogram_shape):
        table = {}
        for name in dict.fromkeys(names):
            shape = tomogram_shape(name)
            if shape is None:
                raise ValueError(
                    f"{path}: no tomogram for {name!r}, whose shape the centred "
                    f"coordinates of {column!r} need."
                )
            table[name] = tuple(shape)
        shapes = np.array([table[n] for n in names], dtype=np.float64)
    elif isinstance(tomogram_shape, dict):
        table = {str(k): tuple(v) for k, v in tomogram_shape.items()}
        missing = sorted({n for n in names if n not in table}, key=str)
        if missing:
            raise ValueError(
                f"{path}: tomogram_shape has no entry for tomogram {missing[0]!r}."
            )
        shapes = np.array([table[n] for n in names], dtype=np.float64)
    else:
        shape = np.asarray(tomogram_shape, dtype=np.float64)
        if shape.shape != (3,):
            raise ValueError(
                f"tomogram_shape must be (nz, ny, nx); got {tomogram_shape!r}."
            )
        shapes = np.tile(shape, (len(names), 1))
    return shapes


def _from_star(path, pixel_size, binning, tomogram_shape):
    blocks = _star_blocks(path)
    block, frame = _particle_block(blocks, path)
    frame = frame.reset_index(drop=True)
    n = len(frame)
    columns = set(frame.columns)
    if "rlnTomoName" in columns:
        names = [tomo_stem(v) for v in frame["rlnTomoName"]]
    elif "rlnMicrographName" in columns:
        names = [tomo_stem(v) for v in frame["rlnMicrographName"]]
    else:
        names = [None] * n
    ps_rows = (
        np.full(n, pixel_size)
        if pixel_size is not None
        else _star_pixel_size(frame, blocks)
    )
    if set(_STAR_PIXEL) <= columns:
        pos = np.stack([_numeric(frame, c, path) for c in _STAR_PIXEL], axis=1)
    elif set(_STAR_CENTRED) <= columns:
        centred = np.stack([_numeric(frame, c, path) for c in _STAR_CENTRED], axis=1)
        _need_pixel_size(ps_rows, _STAR_CENTRED[0], path)
        shapes = _shape_of(tomogram_shape, names, path, _STAR_CENTRED[0])
        size_xyz = shapes[:, ::-1] * binning  # unbinned (x, y, z) widths
        pos = centred / ps_rows[:, None] + size_xyz / 2.0
    else:
        have = set(_STAR_PIXEL + _STAR_CENTRED) & columns
        group = _STAR_PIXEL if have & set(_STAR_PIXEL) else _STAR_CENTRED
        missing = [c for c in group if c not in columns]
        raise ValueError(f"{path}: the coordinate column {missing[0]!r} is missing.")
    if set(_STAR_ORIGIN_A) & columns:
        origin = np.stack(
            [
                _numeric(frame, c, path) if c in columns else np.zeros(n)
                for c in _STAR_ORIGIN_A
            ],
            axis=1,
        )
        if np.any(origin != 0):
            column = next(c for c in _STAR_ORIGIN_A if c in columns)
            _need_pixel_size(ps_rows, column, path)
            pos = pos - origin / ps_rows[:, None]
    elif set(_STAR_ORIGIN_PX) & columns:
        origin = np.stack(
            [
                _numeric(frame, c, path) if c in columns else np.zeros(n)
                for c in _STAR_ORIGIN_PX
            ],
            axis=1,
        )
        pos = pos - origin
    out = {"tomo_name": names, "x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2]}
    if "rlnClassNumber" in columns:
        out["class"] = frame["rlnClassNumber"].to_numpy()
    if "skavaeClassName" in columns:
        out["class_name"] = frame["skavaeClassName"].astype(str).to_numpy()
    if set(_STAR_ANGLES) <= columns:
        for key, column in zip(("rot", "tilt", "psi"), _STAR_ANGLES):
            out[key] = _numeric(frame, column, path)
    out["pixel_size_coordinates"] = ps_rows
    if {"skavaeTiltMin", "skavaeTiltMax"} <= columns:
        out["tilt_min"] = _numeric(frame, "skavaeTiltMin", path)
        out["tilt_max"] = _numeric(frame, "skavaeTiltMax", path)
    if "rlnDefocusU" in columns:
        out["defocus_um"] = _numeric(frame, "rlnDefocusU", path) / 1e4
    others = [(k, "pair" if isinstance(v, dict) else "loop", _payload(v))
              for k, v in blocks.items() if k != block]  # fmt: skip
    star = {
        "particle_block": block,
        "columns": [str(c) for c in frame.columns],
        "blocks": others,
        "order": [str(k) for k in blocks],
    }
    return out, frame, "star", star


def _payload(block):
    if isinstance(block, dict):
        return {str(k): _plain(v) for k, v in block.items()}
    return {str(c): [_plain(v) for v in block[c].tolist()] for c in block.columns}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _need_pixel_size(ps_rows, column, path):
    bad = ~(np.isfinite(ps_rows) & (ps_rows > 0))
    if bad.any():
        raise ValueError(
            f"{path}: column {column!r} is in Å but the pixel size is unknown "
            f"(row {int(np.flatnonzero(bad)[0]) + 1}); give pixel_size=... (Å per "
            "pixel of the coordinates; command line: --pixel-size)."
        )


def _from_dynamo(path, pixel_size):
    rows = []
    width = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields or fields[0].startswith(("#", "%")):
                continue
            if width is None:
                width = len(fields)
                if width < DYNAMO_MIN_COLUMNS:
                    raise ValueError(
                        f"{path}: row {number} has {width} columns; a Dynamo table "
                        f"has at least {DYNAMO_MIN_COLUMNS} (x, y, z are columns "
                        "24-26)."
                    )
            elif len(fields) != width:
                raise ValueError(
                    f"{path}: row {number} has {len(fields)} columns but row 1 "
                    f"has {width}; every row of a Dynamo table has the same count."
                )
            rows.append(fields)
    if not rows:
        raise ValueError(f"{path}: the Dynamo table holds no particle.")
    try:
        table = np.asarray(rows, dtype=np.float64)
    except ValueError:
        for k, fields in enumerate(rows):
            try:
                np.asarray(fields, dtype=np.float64)
            except ValueError:
                raise ValueError(
                    f"{path}: particle {k + 1} holds a value that is not a number: "
                    f"{' '.join(fields)[:80]!r}."
                ) from None
        raise
    bad = ~np.isfinite(table).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: particle {int(np.argmax(bad)) + 1} is not finite.")
    frame = pd.DataFrame(
        table, columns=[f"dynamo{c:02d}" for c in range(1, table.shape[1] + 1)]
    )
    col = {k: table[:, v - 1] for k, v in DYNAMO_COLUMNS.items()}
    pos = np.stack(
        [col["x"] + col["dx"], col["y"] + col["dy"], col["z"] + col["dz"]], axis=1
    )
    pos = pos - 1.0  # MATLAB's 1-based positions
    angles = dynamo_to_relion(np.stack([col["tdrot"], col["tilt"], col["narot"]], 1))
    out = {
        "tomo_name": [
            str(int(v)) if float(v).is_integer() else str(v) for v in col["tomo"]
        ],  # fmt: skip
        "x": pos[:, 0],
        "y": pos[:, 1],
        "z": pos[:, 2],
        "class": col["class"].astype(np.int64),
        "rot": angles[:, 0],
        "tilt": angles[:, 1],
        "psi": angles[:, 2],
        "pixel_size_coordinates": np.full(
            len(frame), np.nan if pixel_size is None else pixel_size
        ),
    }
    return out, frame, "dynamo", None


def _find(columns, *candidates):
    lower = {str(c).lower(): c for c in columns}
    for name in candidates:
        if name in lower:
            return lower[name]
    return None


def _from_table(path, pixel_size, units):
    try:
        frame = pd.read_csv(path, sep=None, engine="python")
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            f"{path}: not a readable CSV/TSV table ({' '.join(str(exc).split())})."
        ) from None
    cols = list(frame.columns)
    xyz = [_find(cols, a) for a in ("x", "y", "z")]
    angst = [_find(cols, f"{a}_angst", f"{a}_a") for a in ("x", "y", "z")]
    if all(c is not None for c in angst) and not all(c is not None for c in xyz):
        xyz, units = angst, "angstrom"
    if any(c is None for c in xyz):
        missing = [a for a, c in zip("xyz", xyz) if c is None]
        raise ValueError(
            f"{path}: no coordinate column {missing[0]!r} (a table needs x, y, z "
            f"columns; found {', '.join(map(str, cols[:10])) or 'none'})."
        )
    pos = np.stack([_numeric(frame, c, path) for c in xyz], axis=1)
    n = len(frame)
    ps_rows = np.full(n, np.nan if pixel_size is None else pixel_size)
    if units == "angstrom":
        _need_pixel_size(ps_rows, str(xyz[0]), path)
        pos = pos / ps_rows[:, None]
    tomo = _find(cols, "tomo_name", "tomogram", "tomo", "rlntomoname")
    out = {
        "tomo_name": [tomo_stem(v) for v in frame[tomo]] if tomo else [None] * n,
        "x": pos[:, 0],
        "y": pos[:, 1],
        "z": pos[:, 2],
    }
    cls = _find(cols, "class", "class_number", "rlnclassnumber")
    if cls is not None:
        out["class"] = frame[cls].to_numpy()
    name = _find(cols, "class_name", "label", "name")
    if name is not None:
        out["class_name"] = frame[name].astype(str).to_numpy()
    angles = [_find(cols, a) for a in ("rot", "tilt", "psi")]
    if all(a is not None for a in angles):
        for key, c in zip(("rot", "tilt", "psi"), angles):
            out[key] = _numeric(frame, c, path)
    for key in ("tilt_min", "tilt_max", "defocus_um"):
        c = _find(cols, key)
        if c is not None:
            out[key] = _numeric(frame, c, path)
    out["pixel_size_coordinates"] = ps_rows
    used = {c for c in [*xyz, tomo, cls, name, *angles] if c is not None}
    frame = frame.drop(columns=[c for c in frame.columns if c in used])
    return out, frame, "table", None


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


# ------------------------------------------------------------------ writing
def _safe_name(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "class"


def _base_columns(particles):
    """The rows as they will be written: the source's columns or RELION's."""
    star = particles.attrs.get("skavae_star")
    if star and all(c in particles.columns for c in star["columns"]):
        return particles[star["columns"]].copy(), star
    binning = float(particles.attrs.get("skavae_binning", 1.0))
    out = pd.DataFrame(index=particles.index)
    names = particles.get("tomo_name")
    if names is not None and names.notna().any():
        out["rlnTomoName"] = names.astype(str).to_numpy()
    for axis in "xyz":
        if axis not in particles.columns:
            raise ValueError(f"the particle table has no {axis!r} column to write.")
        out[f"rlnCoordinate{axis.upper()}"] = particles[axis].to_numpy(float) * binning
    if {"rot", "tilt", "psi"} <= set(particles.columns):
        for key, column in zip(("rot", "tilt", "psi"), _STAR_ANGLES):
            out[column] = particles[key].to_numpy(float)
    if "class" in particles.columns:
        out["rlnClassNumber"] = particles["class"].to_numpy()
    if "class_name" in particles.columns:
        out["skavaeClassName"] = particles["class_name"].astype(str).to_numpy()
    for key, column in (("tilt_min", "skavaeTiltMin"), ("tilt_max", "skavaeTiltMax")):
        if key in particles.columns:
            out[column] = particles[key].to_numpy(float)
    if "defocus_um" in particles.columns:
        out["rlnDefocusU"] = particles["defocus_um"].to_numpy(float) * 1e4  # Å
    if "pixel_size" in particles.columns:
        ps = particles["pixel_size"].to_numpy(float) / binning
        if np.isfinite(ps).all():  # the coordinates' pixel size, as RELION 4
            out["rlnTomoTiltSeriesPixelSize"] = ps
    skip = set(NORMALISED) | {"tomogram"}
    for column in particles.columns:
        if column in skip or column in out.columns:
            continue
        name = re.sub(r"\s+", "_", str(column))
        out[name] = particles[column].to_numpy()
    return out, None


def _per_row(values, n, name):
    arr = np.asarray(values)
    if arr.shape[:1] != (n,):
        raise ValueError(
            f"{name} has {arr.shape[0] if arr.ndim else 1} rows but there are {n} "
            "particles."
        )
    return arr


def write_particles(
    path,
    particles,
    *,
    predictions=None,
    classes=None,
    probabilities=None,
    unknown=None,
    latents=None,
    poses=None,
    columns=None,
    split_by_class=False,
    overwrite=False,
):
    """Write particle rows with classification results as a RELION STAR file.

    The rows are written with the columns they were read with (STAR input:
    unchanged, other blocks such as ``optics`` too; other inputs: RELION
    columns ``rlnTomoName``, ``rlnCoordinateX/Y/Z`` (tomogram pixels times the
    binning they were read with), ``rlnAngleRot/Tilt/Psi``), followed by

    ``rlnClassNumber``
        The predicted class, 1-based: ``1 + classes.index(prediction)``. An
        input ``rlnClassNumber`` is kept as ``skavaeInputClassNumber`` (and an
        input ``skavaeClassName`` as ``skavaeInputClassName``).
    ``skavaeClassName``
        The predicted class label.
    ``skavaeProbability``
        Soft-KNN probability of the prediction.
    ``skavaeUnknown``
        1 for particles flagged as unknown (unseen classes), else 0; their
        ``rlnClassNumber`` is still the nearest seen class.
    ``skavaeLatent01``, ``skavaeLatent02``, ... and ``skavaePose01``, ...
        Latent means and pose channels.

    Files are written atomically (a temporary file renamed into place); RELION
    and :func:`starfile.read` read them.

    Parameters
    ----------
    path : str or path-like
        Output ``.star`` file.
    particles : pandas.DataFrame or path-like
        Rows from :func:`read_particles` (or ``SubtomogramStack.particles``),
        or a particle list to read.
    predictions : array-like of shape (n,), default=None
        Predicted class labels.
    classes : sequence, default=None
        The class labels in the order that numbers them (a model's
        ``classes_``); default: the sorted predicted labels.
    probabilities : array-like of shape (n,), default=None
    unknown : array-like of bool, shape (n,), default=None
    latents : array-like of shape (n, d), default=None
    poses : array-like of shape (n, p), default=None
    columns : dict of str to array-like, default=None
        More columns to append (name -> one value per row).
    split_by_class : bool, default=False
        Also write one file per predicted class, ``<stem>_<class>.star``.
    overwrite : bool, default=False
        Replace existing files. The particle list the rows were read from is
        never overwritten.

    Returns
    -------
    paths : list of str
        The files written, the complete list first.

    Raises
    ------
    ValueError
        For results whose length differs from the rows, a path equal to the
        input or an existing file without ``overwrite``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd, starfile
    >>> from skavae.io import read_particles, write_particles
    >>> tmp = tempfile.mkdtemp()
    >>> src = os.path.join(tmp, "in.star")
    >>> starfile.write({"particles": pd.DataFrame({
    ...     "rlnTomoName": ["TS_01"] * 3, "rlnCoordinateX": [10.0, 20.0, 30.0],
    ...     "rlnCoordinateY": [5.0] * 3, "rlnCoordinateZ": [8.0] * 3,
    ...     "myScore": [0.5, 0.7, 0.9]})}, src)
    >>> p = read_particles(src)
    >>> out = os.path.join(tmp, "out.star")
    >>> write_particles(out, p, predictions=["ribo", "proteasome", "ribo"],
    ...                 probabilities=[0.9, 0.8, 0.6], unknown=[False, False, True],
    ...                 latents=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])[0] == out
    True
    >>> back = starfile.read(out)
    >>> back[["myScore", "rlnClassNumber", "skavaeClassName", "skavaeUnknown"]]
       myScore  rlnClassNumber skavaeClassName  skavaeUnknown
    0      0.5               2            ribo              0
    1      0.7               1      proteasome              0
    2      0.9               2            ribo              1
    >>> back.columns[-2:].tolist()
    ['skavaeLatent01', 'skavaeLatent02']
    """
    import starfile

    if not isinstance(particles, pd.DataFrame):
        particles = read_particles(particles)
    path = os.fspath(path)
    source = particles.attrs.get("skavae_source")
    if source and os.path.realpath(path) == os.path.realpath(source):
        raise ValueError(
            f"{path}: the output would overwrite the particle list it was read "
            "from; choose another file name."
        )
    n = len(particles)
    out, star = _base_columns(particles)
    out = out.reset_index(drop=True)
    labels = None
    if predictions is not None:
        labels = np.asarray([str(v) for v in _per_row(predictions, n, "predictions")])
        order = (
            [str(c) for c in classes]
            if classes is not None
            else sorted(set(labels.tolist()))
        )
        number = {c: i + 1 for i, c in enumerate(order)}
        missing = sorted(set(labels.tolist()) - set(number))
        if missing:
            raise ValueError(f"prediction {missing[0]!r} is not one of classes.")
        for column, kept in _KEPT_INPUT.items():
            if column in out.columns:
                if kept not in out.columns:
                    out[kept] = out[column].to_numpy()
                out = out.drop(columns=column)
        out["rlnClassNumber"] = np.array([number[v] for v in labels], dtype=np.int64)
        out["skavaeClassName"] = labels
    if probabilities is not None:
        out["skavaeProbability"] = _per_row(probabilities, n, "probabilities").astype(
            float
        )
    if unknown is not None:
        out["skavaeUnknown"] = _per_row(unknown, n, "unknown").astype(bool).astype(int)
    for values, prefix in ((latents, "skavaeLatent"), (poses, "skavaePose")):
        if values is None:
            continue
        arr = np.asarray(_per_row(values, n, prefix), dtype=np.float64).reshape(n, -1)
        for d in range(arr.shape[1]):
            out[f"{prefix}{d + 1:02d}"] = arr[:, d]
    for name, values in (columns or {}).items():
        out[str(name)] = _per_row(values, n, str(name))
    targets = [(path, np.ones(n, dtype=bool))]
    if split_by_class:
        if labels is None:
            if "skavaeClassName" not in out.columns:
                raise ValueError("split_by_class needs predictions (or class names).")
            labels = out["skavaeClassName"].astype(str).to_numpy()
        stem = path[:-5] if path.lower().endswith(".star") else path
        for label in sorted(set(labels.tolist())):
            targets.append((f"{stem}_{_safe_name(label)}.star", labels == label))
    if not overwrite:
        existing = [t for t, _ in targets if os.path.exists(t)]
        if existing:
            raise ValueError(
                f"{existing[0]}: already exists; pass overwrite=True (command "
                "line: --overwrite) to replace it."
            )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{path}: the folder {folder} does not exist.")
    written = []
    for target, mask in targets:
        blocks = _blocks(out[mask].reset_index(drop=True), star)
        with atomic_path(target, suffix=".star") as tmp:
            starfile.write(blocks, tmp)
        written.append(target)
    return written


def _blocks(frame, star):
    if not star:
        return {"particles": frame}
    stored = {name: (kind, payload) for name, kind, payload in star["blocks"]}
    blocks = {}
    for name in star["order"]:
        if name == star["particle_block"]:
            blocks[name] = frame
        elif name in stored:
            kind, payload = stored[name]
            blocks[name] = dict(payload) if kind == "pair" else pd.DataFrame(payload)
    return blocks
