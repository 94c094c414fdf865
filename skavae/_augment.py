"""Training-time augmentation by exact rotations that keep the missing wedge.

Rotating a subtomogram rotates its missing wedge, so augmentation with
arbitrary rotations would need a rotated mask per sample. The rotations used
here are exact (index flips and 90° turns, no interpolation) and, for the
geometry of :mod:`skavae._wedge` (beam along axis 0), either leave the wedge
where it is or move it to the other tilt axis:

* the 180° rotation about the tilt axis maps ``(k_z, k_p)`` to
  ``(-k_z, -k_p)``, which has the same elevation, for any tilt range;
* the 180° rotations about the two other axes map the elevation ``a`` to
  ``-a``, so they keep only a symmetric range (``lo == -hi``, and with a tilt
  increment one that divides the range, so that the sampled tilts are
  symmetric too);
* a 90° turn about the beam axis (``augment="d4"``, volumes square in y and x)
  swaps y and x: a symmetric wedge about y becomes the same wedge about x. The
  training loop then compares those samples over the turned wedge's measured
  coefficients (:func:`swaps_tilt_axis` tells which).

Mirrors are not used: molecules are chiral.

Group used per spatial rank (a rotation is drawn uniformly per sample):

* 3D, no wedge or a symmetric one: the four elements of D2 (identity and the
  180° rotations about axes 0, 1 and 2), and with ``turns`` the eight of D4
  about the beam axis (D2 and its compositions with a 90° turn about axis 0);
* 3D, an asymmetric wedge: identity and the 180° rotation about the tilt axis;
* 2D: the four rotations by multiples of 90° (square images) or identity and
  180° otherwise;
* 1D: reversal is a mirror, so no augmentation.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "apply_rotation",
    "augment_batch",
    "rotation_group",
    "swaps_tilt_axis",
    "symmetric_wedge",
]


def symmetric_wedge(wedge, tilt_ranges=None):
    """Whether every sample's wedge is symmetric about the beam (``lo == -hi``).

    ``wedge`` is a :class:`~skavae._wedge.MissingWedge` (or None: nothing is
    missing, so any rotation keeps the data's support); ``tilt_ranges`` the
    per-sample (n, 2) ranges of ``fit(..., tilt_ranges=...)``, which override
    the wedge's own range. With a tilt increment the range must also be a
    whole number of increments, so that the sampled tilts are symmetric.
    """
    if wedge is None and tilt_ranges is None:
        return True
    if tilt_ranges is None:
        ranges = np.asarray([wedge.validate()], dtype=np.float64)
    else:
        ranges = np.asarray(tilt_ranges, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.abs(ranges.sum(axis=1)) < 1e-9):
        return False
    step = None if wedge is None else wedge.tilt_step
    if step is not None:
        steps = (ranges[:, 1] - ranges[:, 0]) / float(step)
        return bool(np.all(np.abs(steps - np.round(steps)) < 1e-9))
    return True


def rotation_group(spatial_shape, wedge=None, *, tilt_ranges=None, turns=False):
    """The rotations as lists of (kind, arg) operations on a (B, C, ...) batch.

    ``("flip", dims)`` reverses ``dims``, which count the batch and channel
    axes (spatial axes start at 2); ``("rot90", k)`` turns the last two
    spatial axes by ``k`` quarter turns. :func:`apply_rotation` applies an
    element to a batch or to a plain stack. ``turns`` adds the 90° turns about
    the beam axis in 3D (D4), where the volumes are square in y and x and
    the wedge is symmetric; otherwise it is ignored.
    """
    ndim = len(spatial_shape)
    if ndim == 3:
        flips = {0: (3, 4), 1: (2, 4), 2: (2, 3)}  # 180° about axis a flips the others
        if not symmetric_wedge(wedge, tilt_ranges):
            # per-sample ranges without a MissingWedge: its default axis (y)
            axis = 1 if wedge is None else int(wedge.tilt_axis)
            return [(), (("flip", flips[axis]),)]
        d2 = [()] + [(("flip", flips[a]),) for a in (0, 1, 2)]
        if not turns or spatial_shape[1] != spatial_shape[2]:
            return d2
        return d2 + [(("rot90", 1),) + ops for ops in d2]
    if ndim == 2:
        if spatial_shape[0] == spatial_shape[1]:
            return [()] + [(("rot90", k),) for k in (1, 2, 3)]
        return [(), (("flip", (2, 3)),)]
    return [()]


def swaps_tilt_axis(ops):
    """Whether a 3D group element turns the tilt axis from y to x (or back)."""
    return sum(arg for kind, arg in ops if kind == "rot90") % 2 == 1


def augment_batch(x, group, generator):
    """One rotation of ``group`` per sample of ``x``, drawn with ``generator``.

    Returns ``(x, swapped)``: the rotated batch and, where the group holds
    90° turns about the beam axis of volumes, a boolean tensor marking the
    samples whose tilt axis moved (None otherwise).
    """
    if len(group) < 2:
        return x, None
    codes = torch.randint(len(group), (x.shape[0],), generator=generator)
    return rotate_by_codes(x, group, codes)


def rotate_by_codes(x, group, codes):
    """Rotate sample ``i`` of ``x`` by ``group[codes[i]]`` (see augment_batch)."""
    out = x.clone()
    for code in range(1, len(group)):
        sel = torch.nonzero(codes == code).flatten().to(x.device)
        if len(sel) == 0:
            continue
        out.index_copy_(0, sel, apply_rotation(x.index_select(0, sel), group[code]))
    swapping = [c for c, ops in enumerate(group) if swaps_tilt_axis(ops)]
    if x.ndim != 5 or not swapping:
        return out, None
    swapped = torch.isin(codes, torch.tensor(swapping)).to(x.device)
    return out, swapped


def apply_rotation(x, ops, first_spatial=2):
    """One element of :func:`rotation_group` applied to ``x``.

    ``x`` is a torch batch (B, C, ...) (``first_spatial=2``) or a numpy stack
    (n, ...) (``first_spatial=1``, the result made contiguous).
    """
    shift = first_spatial - 2
    is_numpy = isinstance(x, np.ndarray)
    for kind, arg in ops:
        if kind == "flip":
            axes = tuple(d + shift for d in arg)
            x = np.flip(x, axes) if is_numpy else x.flip(axes)
        else:
            axes = (x.ndim - 2, x.ndim - 1)
            x = np.rot90(x, arg, axes=axes) if is_numpy else torch.rot90(x, arg, axes)
    return np.ascontiguousarray(x) if is_numpy else x
