"""BandPassFilter: what it keeps, what it removes, what it refuses."""

import numpy as np
import pytest
import scipy.fft

from skavae.preprocessing import BandPassFilter
from skavae.preprocessing._bandpass import bandpass_weights


def test_lowpass_removes_high_frequencies_and_keeps_low_ones():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(6, 16, 16, 16))
    out = BandPassFilter(voxel_size=5.0, lowpass=20.0, normalize=False).fit_transform(X)
    F_in = scipy.fft.rfftn(X, axes=(1, 2, 3))
    F_out = scipy.fft.rfftn(out, axes=(1, 2, 3))
    w = bandpass_weights((16, 16, 16), 5.0, 20.0, None, 2.0)
    np.testing.assert_allclose(F_out, F_in * w, atol=1e-8)
    f = w  # weights are 1 inside 1/20 Å^-1 and 0 beyond the 2-voxel edge
    assert f[0, 0, 0] == 1.0 and f[0, 0, 4] == 1.0 and f[0, 0, 8] == 0.0
    # white noise: the filter keeps the fraction of the spectrum it passes
    kept = out.var() / X.var()
    assert 0.03 < kept < 0.2


def test_normalisation_and_dtype():
    X = np.random.RandomState(1).rand(5, 8, 8).astype(np.float32) * 1e4 + 3e5
    out = BandPassFilter(voxel_size=2.0, lowpass=8.0).fit_transform(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out.reshape(5, -1).mean(1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.reshape(5, -1).std(1), 1.0, rtol=1e-4)
    unfiltered = BandPassFilter(normalize=False).fit_transform(X.astype(np.float64))
    np.testing.assert_array_equal(unfiltered, X.astype(np.float64))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(voxel_size=5.0, lowpass=20.0, highpass=10.0), "highpass"),
        (dict(voxel_size=5.0, lowpass=8.0), "Nyquist"),
        (dict(voxel_size=0.0), "voxel_size"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BandPassFilter(**kwargs).fit(np.zeros((2, 8, 8)))


def test_shape_mismatch_on_transform():
    f = BandPassFilter().fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="shape"):
        f.transform(np.zeros((2, 8, 4, 2)))
