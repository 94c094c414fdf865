"""The format readers behind :func:`skavae.io.read_particles`.

One function per format (RELION/Warp STAR, Dynamo ``.tbl``, CSV/TSV), each
returning the normalised columns, the file's remaining columns, the format name
and the STAR blocks to keep.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from skavae.io._columns import (
    _STAR_ANGLES,
    _STAR_CENTRED,
    _STAR_ORIGIN_A,
    _STAR_ORIGIN_PX,
    _STAR_PIXEL,
    DYNAMO_COLUMNS,
    DYNAMO_MIN_COLUMNS,
    _numeric,
    tomo_stem,
)
from skavae.io._euler import dynamo_to_relion


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
