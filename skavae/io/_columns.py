"""Column names and checks shared by the particle-list readers and writer."""

from __future__ import annotations

import os
from numbers import Real

import numpy as np
import pandas as pd

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
