"""Preprocessing of subtomograms before the affinity-VAE.

:class:`BandPassFilter` band-passes objects in Å and normalises each one, a
scikit-learn transformer to put first in a Pipeline (it keeps the objects'
shape, so :class:`~skavae.AffinityVAE` still sees volumes).
"""

from skavae.preprocessing._bandpass import BandPassFilter

__all__ = ["BandPassFilter"]
