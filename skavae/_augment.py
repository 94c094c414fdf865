"""Training-time augmentation by exact rotations that keep the missing wedge.

Rotating a subtomogram rotates its missing wedge, so augmentation with
arbitrary rotations would need a rotated mask per sample. The 180° rotations
about the array axes are exact (index flips, no interpolation) and, for the
geometry of :mod:`skavae._wedge` (beam along axis 0), leave the wedge where it
is: the 180° rotation about the tilt axis maps ``(k_z, k_p)`` to
``(-k_z, -k_p)``, which has the same elevation, for any tilt range; the 180°
rotations about the two other axes map the elevation ``a`` to ``-a``, so they
keep only a symmetric range (``lo == -hi``). Mirrors are not used: molecules
are chiral.

Group used per spatial rank (a rotation is drawn uniformly per sample):

* 3D, no wedge or a symmetric one: the four elements of D2 (identity and the
  180° rotations about axes 0, 1 and 2);
* 3D, an asymmetric wedge: identity and the 180° rotation about the tilt axis;
* 2D: the four rotations by multiples of 90° (square images) or identity and
  180° otherwise;
* 1D: reversal is a mirror, so no augmentation.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["apply_rotation", "augment_batch", "rotation_group"]


def rotation_group(spatial_shape, wedge=None):
    """The rotations as lists of (kind, dims) operations on a (B, C, ...) batch.

    ``dims`` count the batch and channel axes (spatial axes start at 2);
    :func:`apply_rotation` applies an element to a batch or to a plain stack.
    """
    ndim = len(spatial_shape)
    if ndim == 3:
        flips = {0: (3, 4), 1: (2, 4), 2: (2, 3)}  # 180° about axis a flips the others
        if wedge is None:
            axes = [0, 1, 2]
        else:
            lo, hi = wedge.validate()
            axes = [0, 1, 2] if abs(lo + hi) < 1e-9 else [int(wedge.tilt_axis)]
        return [()] + [(("flip", flips[a]),) for a in axes]
    if ndim == 2:
        if spatial_shape[0] == spatial_shape[1]:
            return [()] + [(("rot90", k),) for k in (1, 2, 3)]
        return [(), (("flip", (2, 3)),)]
    return [()]


def augment_batch(x, group, generator):
    """One rotation of ``group`` per sample of ``x``, drawn with ``generator``."""
    if len(group) < 2:
        return x
    codes = torch.randint(len(group), (x.shape[0],), generator=generator)
    out = x.clone()
    for code in range(1, len(group)):
        sel = torch.nonzero(codes == code).flatten().to(x.device)
        if len(sel) == 0:
            continue
        out.index_copy_(0, sel, apply_rotation(x.index_select(0, sel), group[code]))
    return out


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
            axes = (first_spatial, first_spatial + 1)
            x = np.rot90(x, arg, axes=axes) if is_numpy else torch.rot90(x, arg, axes)
    return np.ascontiguousarray(x) if is_numpy else x
