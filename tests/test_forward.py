"""The cryo-ET forward model: wedge, CTF, noise, poses, crowding."""

import numpy as np
import pytest
import scipy.fft
import torch

from skavae._ctf import ctf_1d, electron_wavelength, radial_frequency
from skavae._losses import masked_reconstruction_loss, reconstruction_loss
from skavae._wedge import elevation_angles, wedge_mask
from skavae.datasets import (
    CTF,
    MissingWedge,
    make_proteins,
    make_tetraminos,
    simulate_subtomograms,
)


@pytest.fixture(scope="module")
def maps():
    X, _ = make_proteins(
        n_samples=12,
        structures=["1ake", "2xcj"],
        size=24,
        voxel_size=5.0,
        random_state=0,
    )
    return X


def _power(X):
    F = scipy.fft.rfftn(X, axes=(1, 2, 3))
    return F.real**2 + F.imag**2


def test_wedge_removes_exactly_the_wedge(maps):
    out = simulate_subtomograms(maps, missing_wedge=(-60, 60), random_state=0)
    mask = wedge_mask(maps.shape[1:], (-60, 60))
    power_in, power_out = _power(out), _power(maps)
    # nothing left inside the wedge, everything kept outside it
    assert power_in[:, ~mask].max() <= 1e-8 * power_out.max()
    np.testing.assert_allclose(
        power_in[:, mask], power_out[:, mask], rtol=1e-4, atol=1e-6 * power_out.max()
    )
    # the wedge of a +-60 tilt is the elevation band beyond 60 degrees
    alpha = elevation_angles(maps.shape[1:])
    assert np.all(mask[np.abs(alpha) < 59.9]) and not np.any(mask[np.abs(alpha) > 60.1])


def test_wedge_geometry_and_tilt_increment():
    m = wedge_mask((32, 32, 32), (-60, 60))
    assert m[0, 0, 0] and m[0, 5, 0]  # DC and the tilt (y) axis are measured
    assert not m[8, 0, 1]  # steep elevation: missing
    assert m[1, 0, 8]  # shallow elevation: measured
    # a tilt about x moves the wedge to the (z, y) plane
    mx = wedge_mask((32, 32, 32), (-60, 60), tilt_axis=2)
    assert not mx[8, 1, 0] and mx[1, 8, 0]
    # discrete tilts: slices a half voxel thick; the union fills the low
    # frequencies and keeps nothing beyond the highest tilt's neighbourhood
    stepped = MissingWedge(tilt_step=3).mask((32, 32, 32))
    alpha = elevation_angles((32, 32, 32))
    assert not np.any(stepped[np.abs(alpha) > 75])
    assert stepped[0, 0, 0] and stepped[1, 0, 1]


def test_ctf_zeros_are_where_the_formula_puts_them():
    defocus, lam, cs, w = 30000.0, electron_wavelength(300.0), 2.7e7, 0.07
    phase = np.arctan(w / np.sqrt(1 - w * w))
    # chi(s) + phase = n pi  <=>  pi lam df s^2 - pi/2 cs lam^3 s^4 = n pi - phase
    for n in (1, 2, 3):
        a, b, c = -0.5 * cs * lam**3, lam * defocus, -(n - phase / np.pi)
        s2 = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
        s = np.sqrt(s2 if s2 > 0 else (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a))
        assert abs(ctf_1d(s, defocus)) < 1e-9
        before, after = ctf_1d(s * 0.99, defocus), ctf_1d(s * 1.01, defocus)
        assert before * after < 0  # a real zero: the sign changes
    assert ctf_1d(0.0, defocus) == pytest.approx(-w)
    assert electron_wavelength(300.0) == pytest.approx(0.019687, rel=1e-4)


def test_ctf_transfer_is_phase_flipped_and_per_particle():
    ctf = CTF(defocus_um=(2.0, 5.0))
    t = ctf.transfer((16, 16, 16), 5.0, [2.0, 5.0])
    assert t.shape == (2, 16, 16, 9) and t.min() >= 0
    assert not np.allclose(t[0], t[1])
    signed = CTF(phase_flip=False).transfer((16, 16, 16), 5.0, [2.0])
    np.testing.assert_allclose(np.abs(signed), t[:1])
    s = radial_frequency((16, 16, 16), 5.0)
    assert s[0, 0, 8] == pytest.approx(0.5 / 5.0)  # Nyquist of a 5 Å voxel


@pytest.mark.parametrize("mode", ["stack", "particle"])
@pytest.mark.parametrize("noise", ["white", "wedge"])
@pytest.mark.parametrize("snr", [1.0, 0.1])
def test_measured_snr_matches_the_request(maps, snr, noise, mode):
    kw = dict(voxel_size=5.0, ctf=True, missing_wedge=(-60, 60), random_state=1)
    clean = simulate_subtomograms(maps, **kw)
    noisy, info = simulate_subtomograms(
        maps, snr=snr, noise=noise, snr_mode=mode, return_info=True, **kw
    )
    signal = clean.reshape(len(maps), -1).var(1)
    noise_var = (noisy - clean).reshape(len(maps), -1).var(1)
    if mode == "particle":
        np.testing.assert_allclose(signal / noise_var, snr, rtol=0.05)
    else:  # one noise level for the stack; the stack's mean SNR is the request
        np.testing.assert_allclose(noise_var, noise_var.mean(), rtol=0.05)
        assert signal.mean() / noise_var.mean() == pytest.approx(snr, rel=0.05)
    np.testing.assert_allclose(info["snr"], signal / info["noise_sd"] ** 2, rtol=1e-4)
    assert info["defocus_um"].between(2.0, 5.0).all()
    assert (info["tilt_min"] == -60).all() and (info["tilt_max"] == 60).all()


def test_per_sample_tilt_ranges_and_info(maps):
    ranges = np.tile([-60.0, 60.0], (len(maps), 1))
    ranges[::2] = [-45.0, 50.0]
    out, info = simulate_subtomograms(
        maps, tilt_ranges=ranges, return_info=True, random_state=0
    )
    np.testing.assert_array_equal(info[["tilt_min", "tilt_max"]].to_numpy(), ranges)
    narrow = wedge_mask(maps.shape[1:], (-45, 50))
    assert _power(out[:1])[:, ~narrow].max() <= 1e-8 * _power(maps[:1]).max()


def test_uniform_rotations_and_shifts(maps):
    out, info = simulate_subtomograms(
        maps, rotate=True, max_shift=1.5, return_info=True, random_state=0
    )
    assert {"angle_0", "angle_1", "angle_2", "shift_0"} <= set(info.columns)
    assert info[["shift_0", "shift_1", "shift_2"]].abs().max().max() <= 1.5
    # mass is kept (the molecule stays inside the box) but the maps changed
    np.testing.assert_allclose(out.sum((1, 2, 3)), maps.sum((1, 2, 3)), rtol=0.05)
    assert not np.allclose(out, maps, atol=1e-3)
    # Haar measure: cos of the rotation angle about axis 0 (the z-axis column)
    # is uniform in [-1, 1] for uniform rotations
    R = simulate_subtomograms(np.zeros((1, 8, 8, 8)), rotate=True, random_state=0)
    assert R.shape == (1, 8, 8, 8)


def test_crowding_adds_density_at_the_faces(maps):
    out = simulate_subtomograms(maps, crowding=2, random_state=0)
    face = np.zeros(maps.shape[1:], dtype=bool)
    face[:2], face[-2:], face[:, :2], face[:, -2:] = True, True, True, True
    assert out[:, face].sum() > maps[:, face].sum() + 1e-3


def test_generators_take_the_forward_options():
    X, y, info, _ = make_tetraminos(
        n_samples=12,
        size=16,
        rotate="uniform",
        missing_wedge=(-60, 60),
        snr=0.5,
        return_info=True,
        random_state=0,
    )
    assert X.shape == (12, 16, 16, 16)
    assert info["snr"].mean() == pytest.approx(0.5, rel=0.05)
    assert (info["tilt_max"] == 60).all()
    # off by default: the generator's output is unchanged
    a, _ = make_tetraminos(n_samples=4, size=16, random_state=3)
    b, _ = make_tetraminos(n_samples=4, size=16, random_state=3, snr=None)
    np.testing.assert_array_equal(a, b)


def test_masked_loss_equals_plain_loss_without_wedge():
    g = torch.Generator().manual_seed(0)
    for shape in [(8, 8, 8), (7, 9, 10)]:
        x = torch.randn(3, 1, *shape, generator=g)
        x_hat = torch.randn(3, 1, *shape, generator=g)
        full = torch.ones(3, *shape[:-1], shape[-1] // 2 + 1)
        assert masked_reconstruction_loss(x, x_hat, full).item() == pytest.approx(
            reconstruction_loss(x, x_hat).item(), rel=1e-5
        )
    # a residual confined to the wedge costs nothing
    mask = torch.as_tensor(wedge_mask((8, 8, 8), (-60, 60)))[None]
    F = torch.fft.rfftn(torch.randn(1, 1, 8, 8, 8, generator=g), dim=(2, 3, 4))
    in_wedge = torch.fft.irfftn(F * (~mask[:, None]), s=(8, 8, 8), dim=(2, 3, 4))
    zero = torch.zeros_like(in_wedge)
    assert masked_reconstruction_loss(zero, in_wedge, mask).item() < 1e-10
    assert reconstruction_loss(zero, in_wedge).item() > 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(snr=0), "snr"),
        (dict(snr=-1), "snr"),
        (dict(missing_wedge=(60, -60)), "reversed"),
        (dict(missing_wedge=(-100, 60)), r"\[-90, 90\]"),
        (dict(ctf=CTF(defocus_um=0.0), voxel_size=5.0), "defocus_um"),
        (dict(ctf=CTF(defocus_um=-2.0), voxel_size=5.0), "defocus_um"),
        (dict(ctf=True), "voxel_size"),
        (dict(noise="pink"), "noise"),
        (dict(snr=1.0, snr_mode="box"), "snr_mode"),
        (dict(crowding=-1), "crowding"),
        (dict(tilt_ranges=np.zeros((3, 2))), "tilt_ranges"),
    ],
)
def test_bad_input_names_the_parameter(maps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_subtomograms(maps, **kwargs)


def test_wedge_on_2d_images_is_refused():
    with pytest.raises(ValueError, match="missing_wedge"):
        simulate_subtomograms(np.zeros((2, 16, 16)), missing_wedge=(-60, 60))
    out = simulate_subtomograms(
        np.random.RandomState(0).rand(2, 16, 16),
        ctf=True,
        voxel_size=4.0,
        snr=1.0,
        random_state=0,
    )
    assert out.shape == (2, 16, 16)


def test_estimator_wedge_aware_loss():
    from skavae import AffinityVAE

    X = make_tetraminos(n_samples=24, size=16, random_state=0)[0]
    plain = AffinityVAE(max_epochs=1, random_state=0).fit(X)
    wedged = AffinityVAE(max_epochs=1, random_state=0, missing_wedge=(-90, 90)).fit(X)
    # a wedge that removes nothing gives the plain loss
    np.testing.assert_allclose(
        plain.history_["recon"], wedged.history_["recon"], rtol=1e-4
    )
    with pytest.raises(ValueError, match="3D"):
        AffinityVAE(max_epochs=1, missing_wedge=(-60, 60)).fit(np.zeros((8, 8, 8)))
    with pytest.raises(ValueError, match="tilt_ranges"):
        AffinityVAE(max_epochs=1).fit(X, tilt_ranges=np.zeros((3, 2)))


def test_wedge_compensated_fsc(maps):
    from skavae.affinity import FSCAffinity

    a = simulate_subtomograms(maps[:1], missing_wedge=(-60, 60))
    b = simulate_subtomograms(maps[:1], missing_wedge=(-40, 50))
    fsc = FSCAffinity(voxel_size=5.0, resolution=20.0)
    assert fsc(a, b)[0, 0] < 0.95  # plain FSC is hurt by the different wedges
    compensated = fsc(a, b, tilt_ranges=[[-60, 60]], tilt_ranges_y=[[-40, 50]])
    assert compensated[0, 0] == pytest.approx(1.0, abs=1e-9)
    # a common wedge: the fast path equals the per-object path
    common = FSCAffinity(voxel_size=5.0, resolution=20.0, missing_wedge=(-60, 60))
    per_object = fsc(maps, tilt_ranges=np.tile([-60.0, 60.0], (len(maps), 1)))
    np.testing.assert_allclose(common(maps), per_object, atol=1e-9)
    with pytest.raises(ValueError, match="tilt_ranges"):
        fsc(maps, tilt_ranges=np.zeros((2, 2)))


def test_uninformative_class_matrix_warns():
    from skavae.affinity import FSCAffinity, SOAPAffinity, class_affinity_matrix

    X, y = make_tetraminos(
        n_samples=60, size=16, rotate="uniform", snr=0.1, random_state=0
    )
    with pytest.warns(UserWarning, match="little information"):
        class_affinity_matrix(X, y, FSCAffinity(), random_state=0)
    _, _, _, templates = make_tetraminos(n_samples=6, size=16, return_info=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        class_affinity_matrix(metric=FSCAffinity(), templates=templates)
    # SOAP of clean tetraminos at 16^3 spans 0.92-1: said too
    with pytest.warns(UserWarning, match="0.9"):
        class_affinity_matrix(metric=SOAPAffinity(), templates=templates)
