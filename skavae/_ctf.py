"""The contrast transfer function (CTF) of a transmission electron microscope.

For spatial frequency ``s`` (1/Å), underfocus ``df`` (Å, positive =
underfocus), spherical aberration ``Cs`` (Å) and electron wavelength
``lambda`` (Å), the phase aberration is

.. math::

    \\chi(s) = \\pi \\lambda\\, df\\, s^2 - \\frac{\\pi}{2} C_s \\lambda^3 s^4

and, with amplitude contrast fraction ``w``, the CTF (RELION's sign
convention, negative at low frequency for underfocus) is

.. math::

    CTF(s) = -\\left(\\sqrt{1 - w^2} \\sin\\chi(s) + w \\cos\\chi(s)\\right)
           \\cdot \\exp(-B s^2 / 4)

with an optional B-factor envelope ``B`` (Å²) standing for dose, drift and
partial coherence. Its zeros are where ``chi(s) + arctan(w / sqrt(1 - w^2))``
is a multiple of pi.

For a subtomogram the 3D CTF is that function of ``|k|`` on every measured
central slice (a point of a central slice has in-plane frequency ``|k|``);
astigmatism and the defocus gradient across a tilted image are ignored.
Subtomogram pipelines correct the phase of the CTF (phase flipping), after
which the transfer is ``|CTF|``.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from skavae._wedge import frequency_grids

__all__ = ["CTF", "ctf_1d", "electron_wavelength", "radial_frequency"]


def electron_wavelength(voltage_kv):
    """Relativistic electron wavelength in Å for an accelerating voltage in kV.

    Examples
    --------
    >>> round(electron_wavelength(300.0), 5)
    0.01969
    """
    v = float(voltage_kv) * 1e3
    return float(12.2643247 / np.sqrt(v * (1.0 + 0.978466e-6 * v)))


def ctf_1d(
    s,
    defocus,
    *,
    voltage=300.0,
    spherical_aberration=2.7,
    amplitude_contrast=0.07,
    bfactor=0.0,
):
    """CTF at spatial frequencies ``s`` (1/Å).

    Parameters
    ----------
    s : array-like
        Spatial frequency magnitudes in 1/Å.
    defocus : float or array-like
        Underfocus in Å (positive = underfocus), broadcast against ``s``.
    voltage : float, default=300.0
        Accelerating voltage, kV.
    spherical_aberration : float, default=2.7
        Cs, mm.
    amplitude_contrast : float, default=0.07
        Amplitude contrast fraction in [0, 1).
    bfactor : float, default=0.0
        B-factor of the envelope ``exp(-B s^2 / 4)``, Å².

    Returns
    -------
    ctf : ndarray
        Values in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> float(np.round(ctf_1d(0.0, 20000.0), 3))
    -0.07
    """
    s = np.asarray(s, dtype=np.float64)
    lam = electron_wavelength(voltage)
    cs = float(spherical_aberration) * 1e7  # mm -> Å
    s2 = s * s
    chi = np.pi * lam * np.asarray(defocus, dtype=np.float64) * s2
    chi = chi - 0.5 * np.pi * cs * lam**3 * s2 * s2
    w = float(amplitude_contrast)
    ctf = -(np.sqrt(1.0 - w * w) * np.sin(chi) + w * np.cos(chi))
    if bfactor:
        ctf = ctf * np.exp(-float(bfactor) * s2 / 4.0)
    return ctf


def radial_frequency(shape, voxel_size):
    """``|k|`` in 1/Å of every coefficient of an rfftn half spectrum."""
    grids = frequency_grids(shape)
    return np.sqrt(sum(g * g for g in grids)) / float(voxel_size)


class CTF(BaseEstimator):
    """Contrast transfer function of the forward model (phase-flipped by default).

    Parameters
    ----------
    defocus_um : float or (float, float), default=(2.0, 5.0)
        Underfocus in micrometres: one value for every particle, or a range
        from which each particle's defocus is drawn uniformly.
    voltage : float, default=300.0
        Accelerating voltage, kV.
    spherical_aberration : float, default=2.7
        Cs, mm.
    amplitude_contrast : float, default=0.07
        Amplitude contrast fraction in [0, 1).
    bfactor : float, default=0.0
        B-factor envelope ``exp(-B s^2 / 4)`` in Å² (dose, drift, coherence);
        0 means none.
    phase_flip : bool, default=True
        Apply ``|CTF|`` (the data after phase flipping, as subtomogram pipelines
        correct them) instead of the CTF itself.

    Examples
    --------
    >>> from skavae.datasets import CTF
    >>> ctf = CTF(defocus_um=3.0)
    >>> t = ctf.transfer((8, 8, 8), voxel_size=5.0, defocus_um=[3.0])
    >>> t.shape, bool((t >= 0).all())
    ((1, 8, 8, 5), True)
    """

    _parameter_constraints: dict = {
        "defocus_um": [Real, "array-like"],
        "voltage": [Interval(Real, 0, None, closed="neither")],
        "spherical_aberration": [Interval(Real, 0, None, closed="left")],
        "amplitude_contrast": [Interval(Real, 0, 1, closed="left")],
        "bfactor": [Interval(Real, 0, None, closed="left")],
        "phase_flip": ["boolean"],
    }

    def __init__(
        self,
        *,
        defocus_um=(2.0, 5.0),
        voltage=300.0,
        spherical_aberration=2.7,
        amplitude_contrast=0.07,
        bfactor=0.0,
        phase_flip=True,
    ):
        self.defocus_um = defocus_um
        self.voltage = voltage
        self.spherical_aberration = spherical_aberration
        self.amplitude_contrast = amplitude_contrast
        self.bfactor = bfactor
        self.phase_flip = phase_flip

    def defocus_range(self):
        """Validated ``(low, high)`` underfocus in micrometres."""
        self._validate_params()
        values = np.atleast_1d(np.asarray(self.defocus_um, dtype=np.float64))
        if values.shape not in ((1,), (2,)) or not np.isfinite(values).all():
            raise ValueError(
                "defocus_um must be a positive number or a (low, high) range in "
                f"micrometres; got {self.defocus_um!r}."
            )
        lo, hi = float(values.min()), float(values.max())
        if values[0] > values[-1]:
            raise ValueError(
                f"defocus_um is reversed: {values[0]:g} > {values[-1]:g}; give "
                "(low, high)."
            )
        if lo <= 0:
            raise ValueError(
                f"defocus_um must be > 0 (underfocus, micrometres); got "
                f"{self.defocus_um!r}."
            )
        return lo, hi

    def sample_defocus(self, n, rng):
        """Per-particle underfocus in micrometres."""
        lo, hi = self.defocus_range()
        return rng.uniform(lo, hi, size=n) if hi > lo else np.full(n, lo)

    def transfer(self, shape, voxel_size, defocus_um):
        """Per-particle transfer on an rfftn half spectrum of ``shape``.

        Returns a float32 array of shape ``(len(defocus_um), *half_shape)``:
        ``|CTF|`` with ``phase_flip`` (the default), the CTF otherwise.
        """
        self.defocus_range()
        s = radial_frequency(shape, voxel_size)
        df = np.asarray(defocus_um, dtype=np.float64).reshape(-1, *(1,) * len(shape))
        ctf = ctf_1d(
            s[None],
            df * 1e4,
            voltage=self.voltage,
            spherical_aberration=self.spherical_aberration,
            amplitude_contrast=self.amplitude_contrast,
            bfactor=self.bfactor,
        )
        return (np.abs(ctf) if self.phase_flip else ctf).astype(np.float32)
