"""RELION's Euler angles (ZYZ) and rotation matrices.

RELION, Warp/M and skavae's particle lists give orientations as three angles
``(rot, tilt, psi)`` in degrees: rotations about z, then the new y, then the
new z (intrinsic ZYZ, right-handed, positive counter-clockwise), which is
:meth:`scipy.spatial.transform.Rotation.from_euler` with ``"ZYZ"``. That
rotation maps the *particle* onto the *reference* (RELION's matrix ``A``
projects the reference along the particle's viewing direction), so the
rotation that turns the reference into the particle as it sits in the
tomogram is its inverse (transpose)::

    R_ref_to_particle = Rotation.from_euler("ZYZ", [rot, tilt, psi],
                                            degrees=True).inv().as_matrix()

A point ``r`` of the reference (``x, y, z`` about its centre) lies at
``centre + R_ref_to_particle @ r`` in the tomogram. The matrices act on
``(x, y, z)`` vectors; arrays of volumes are indexed ``(z, y, x)``.

Dynamo's ``(tdrot, tilt, narot)`` are extrinsic ZXZ angles of the same
particle-to-reference rotation: ``Rotation.from_euler("zxz", [tdrot, tilt,
narot], degrees=True)`` is the rotation of RELION's ``(rot, tilt, psi)``
(the conventions of the ``eulerangles`` package of teamtomo).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["dynamo_to_relion", "euler_to_matrix", "matrix_to_euler"]


def euler_to_matrix(angles):
    """Reference-to-particle rotation matrices of RELION Euler angles.

    Parameters
    ----------
    angles : array-like of shape (3,) or (n, 3)
        ``(rot, tilt, psi)`` in degrees (RELION's ZYZ convention).

    Returns
    -------
    R : ndarray of shape (3, 3) or (n, 3, 3)
        Matrices acting on ``(x, y, z)`` vectors that rotate the reference
        into the particle's orientation.

    See Also
    --------
    matrix_to_euler : The inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.io import euler_to_matrix
    >>> R = euler_to_matrix([90.0, 0.0, 0.0])  # rot = 90: about z
    >>> np.round(R @ [1.0, 0.0, 0.0], 6).tolist()  # the reference's x axis
    [0.0, -1.0, 0.0]
    """
    angles = np.asarray(angles, dtype=np.float64)
    R = Rotation.from_euler("ZYZ", angles, degrees=True).as_matrix()
    return np.swapaxes(R, -1, -2)


def matrix_to_euler(R):
    """RELION Euler angles ``(rot, tilt, psi)`` of reference-to-particle matrices.

    Parameters
    ----------
    R : array-like of shape (3, 3) or (n, 3, 3)
        Rotations (on ``(x, y, z)`` vectors) turning the reference into the
        particle.

    Returns
    -------
    angles : ndarray of shape (3,) or (n, 3)
        Degrees, ``tilt`` in [0, 180].

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.io import euler_to_matrix, matrix_to_euler
    >>> np.round(matrix_to_euler(euler_to_matrix([30.0, 60.0, -45.0])), 6).tolist()
    [30.0, 60.0, -45.0]
    """
    R = np.swapaxes(np.asarray(R, dtype=np.float64), -1, -2)
    with warnings.catch_warnings():
        # tilt 0 or 180 (e.g. the identity): rot + psi is all that is defined;
        # scipy then puts psi = 0, which is a valid answer, not a problem
        warnings.filterwarnings("ignore", "Gimbal lock", UserWarning)
        return Rotation.from_matrix(R).as_euler("ZYZ", degrees=True)


def dynamo_to_relion(angles):
    """RELION ``(rot, tilt, psi)`` of Dynamo ``(tdrot, tilt, narot)`` (degrees).

    Examples
    --------
    >>> import numpy as np
    >>> from skavae.io._euler import dynamo_to_relion
    >>> np.round(dynamo_to_relion([-47.273, 1.1777, -132.3]), 4).tolist()
    [137.7, 1.1777, 42.727]
    """
    angles = np.asarray(angles, dtype=np.float64)
    return Rotation.from_euler("zxz", angles, degrees=True).as_euler(
        "ZYZ", degrees=True
    )
