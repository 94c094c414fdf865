"""Tests of the affinity metrics, class-level matrices and their CSV form."""

import os

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation
from sklearn.base import clone

from skavae.affinity import (
    Affinity,
    FSCAffinity,
    MeanDifference,
    SOAPAffinity,
    check_affinity_matrix,
    class_affinity_matrix,
    read_affinity_csv,
    write_affinity_csv,
)

# --------------------------------------------------------------------------- data


def _blob_image(size=16, seed=0):
    """A smooth random 2D image (low-pass filtered noise)."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=(size, size)), 1.5)


def _box(size, *slices):
    """Binary image with the rectangles given as fractions of ``size`` set to 1."""
    img = np.zeros((size, size))
    for r0, r1, c0, c1 in slices:
        img[
            round(r0 * size) : round(r1 * size), round(c0 * size) : round(c1 * size)
        ] = 1
    return img


def _l_shape(size=24):
    return _box(size, (0.25, 0.75, 0.31, 0.47), (0.59, 0.75, 0.31, 0.69))


def _t_shape(size=24):
    return _box(size, (0.25, 0.41, 0.25, 0.75), (0.25, 0.75, 0.41, 0.56))


def _l_volume(size=18):
    v = np.zeros((size, size, size))
    v[4:14, 7:11, 7:11] = 1
    v[10:14, 7:15, 7:11] = 1
    return v


def _s_volume(size=18):
    v = np.zeros((size, size, size))
    v[4:14, 7:11, 7:11] = 1
    v[4:8, 7:15, 7:11] = 1
    v[10:14, 3:11, 7:11] = 1
    return v


def _rotate_2d(img, angle):
    return (ndimage.rotate(img, angle, reshape=False, order=1) > 0.5).astype(float)


def _rotate_3d(vol, matrix):
    c = (np.array(vol.shape) - 1) / 2
    out = ndimage.affine_transform(vol, matrix, offset=c - matrix @ c, order=1)
    return (out > 0.5).astype(float)


METRICS_2D = [FSCAffinity(), SOAPAffinity(), MeanDifference()]
METRICS_3D = [FSCAffinity(), SOAPAffinity(l_max=4, n_max=4), MeanDifference()]


def _ids(metric):
    return type(metric).__name__


# ------------------------------------------------------------------ reference FSC


def _reference_fsc(x, y, max_shell, shell_width=1.0):
    """Straightforward per-pair FSC: full complex FFTs, a Python loop over shells,
    weights = number of Fourier coefficients in each shell."""
    fx, fy = np.fft.fftn(x), np.fft.fftn(y)
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in x.shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))
    shell = np.rint(radius * min(x.shape) / shell_width).astype(int)
    total, weight = 0.0, 0
    for k in range(1, max_shell + 1):
        m = shell == k
        if not m.any():
            continue
        num = np.sum(fx[m] * np.conj(fy[m])).real
        den = np.sqrt(np.sum(np.abs(fx[m]) ** 2) * np.sum(np.abs(fy[m]) ** 2))
        total += m.sum() * num / den
        weight += m.sum()
    return total / weight


# ----------------------------------------------------------- protocol, all metrics


@pytest.mark.parametrize("metric", METRICS_2D, ids=_ids)
def test_identity_symmetry_range_2d(metric):
    rng = np.random.default_rng(0)
    X = np.stack([_blob_image(seed=s) for s in range(4)] + [_l_shape(16), _t_shape(16)])
    X += 0.01 * rng.normal(size=X.shape)
    S = metric(X)
    assert S.shape == (6, 6)
    assert S.dtype == np.float64
    np.testing.assert_array_equal(np.diag(S), 1.0)
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    assert S.min() >= -1 and S.max() <= 1
    # explicit Y = X: identical objects score 1 without the diagonal override
    np.testing.assert_allclose(np.diag(metric(X, X.copy())), 1.0, atol=1e-9)


@pytest.mark.parametrize("metric", METRICS_3D, ids=_ids)
def test_identity_symmetry_range_3d(metric):
    rng = np.random.default_rng(1)
    X = np.stack([_l_volume(), _s_volume(), _l_volume() + 0.3 * rng.random((18,) * 3)])
    S = metric(X)
    np.testing.assert_array_equal(np.diag(S), 1.0)
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    assert S.min() >= -1 and S.max() <= 1
    np.testing.assert_allclose(np.diag(metric(X, X)), 1.0, atol=1e-9)


@pytest.mark.parametrize("metric", METRICS_2D, ids=_ids)
def test_cross_matrix_and_chunking_agree(metric):
    X = np.stack([_blob_image(seed=s) for s in range(5)] + [_l_shape(16)])
    Y = X[[4, 0, 5]]
    full = metric(X)
    np.testing.assert_allclose(metric(X, Y), full[:, [4, 0, 5]], atol=1e-12)
    small = clone(metric).set_params(chunk_size=2)
    np.testing.assert_allclose(small(X), full, atol=1e-12)
    np.testing.assert_allclose(small(X, Y), full[:, [4, 0, 5]], atol=1e-12)


@pytest.mark.parametrize("metric", METRICS_2D, ids=_ids)
def test_dtypes_lists_and_memmaps(metric, tmp_path):
    X = np.stack([_l_shape(16), _t_shape(16), _blob_image(seed=3)])
    S64 = metric(X)
    np.testing.assert_allclose(metric(X.astype(np.float32)), S64, atol=1e-5)
    np.testing.assert_allclose(metric(list(X)), S64, atol=1e-12)
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="r", shape=X.shape)
    np.testing.assert_allclose(metric(ro), S64, atol=1e-5)
    binary = (X > 0.5).astype(np.uint8)
    np.testing.assert_allclose(metric(binary), metric(binary.astype(float)))


@pytest.mark.parametrize("metric", METRICS_2D, ids=_ids)
def test_bad_inputs_raise_clear_errors(metric):
    X = np.stack([_l_shape(16), _t_shape(16)])
    bad = X.copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(object 1\)"):
        metric(bad)
    with pytest.raises(ValueError, match="Y contains NaN"):
        metric(X, bad)
    bad[1, 3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        metric(bad)
    with pytest.raises(ValueError, match="same shape"):
        metric(X, np.zeros((2, 16, 15)))
    with pytest.raises(ValueError, match="empty"):
        metric(np.zeros((0, 16, 16)))
    with pytest.raises(ValueError, match="real numbers"):
        metric(np.full((2, 4, 4), "a"))
    with pytest.raises(ValueError, match="shape"):
        metric(np.zeros(5))
    with pytest.raises(ValueError, match="chunk_size"):
        clone(metric).set_params(chunk_size=0)(X)


def test_metrics_reject_unsupported_ranks():
    with pytest.raises(ValueError, match="SOAPAffinity works on objects of 2D or 3D"):
        SOAPAffinity()(np.zeros((2, 10)))
    with pytest.raises(
        ValueError, match="FSCAffinity works on objects of 1D or 2D or 3D"
    ):
        FSCAffinity()(np.zeros((2, 4, 4, 4, 4)))


def test_metrics_are_sklearn_estimators():
    for metric in (FSCAffinity(resolution=8.0, voxel_size=2.0), SOAPAffinity(zeta=2)):
        assert isinstance(metric, Affinity)
        twin = clone(metric)
        assert twin.get_params() == metric.get_params()
    assert "FSCAffinity(resolution=8.0, voxel_size=2.0)" == repr(
        FSCAffinity(resolution=8.0, voxel_size=2.0)
    )


# ---------------------------------------------------------------------------- FSC


@pytest.mark.parametrize(
    "shape", [(9,), (12, 12), (11, 11), (10, 7), (8, 8, 8), (7, 9, 6)], ids=str
)
def test_fsc_matches_per_pair_reference(shape):
    rng = np.random.default_rng(sum(shape))
    X = rng.normal(size=(4, *shape))
    Y = rng.normal(size=(3, *shape))
    nyquist = min(shape) // 2
    for max_shell in sorted({1, max(1, nyquist // 2), nyquist}):
        S = FSCAffinity(max_shell=max_shell)(X, Y)
        ref = np.array([[_reference_fsc(x, y, max_shell) for y in Y] for x in X])
        np.testing.assert_allclose(S, ref, atol=1e-6, rtol=0)


def test_fsc_matches_reference_with_wide_shells():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 12, 12, 12))
    S = FSCAffinity(max_shell=3, shell_width=2.0)(X)
    ref = np.array([[_reference_fsc(a, b, 3, shell_width=2.0) for b in X] for a in X])
    np.testing.assert_allclose(S, ref, atol=1e-6)


def test_fsc_decreases_monotonically_with_noise():
    rng = np.random.default_rng(0)
    x = ndimage.gaussian_filter(rng.normal(size=(16, 16, 16)), 1.0)
    noise = rng.normal(size=x.shape) * x.std()
    levels = [0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
    noisy = np.stack([x + s * noise for s in levels])
    fsc = FSCAffinity()(x[None], noisy)[0]
    assert fsc[0] == pytest.approx(1.0)
    assert np.all(np.diff(fsc) < 0)
    assert fsc[-1] < 0.2


def test_fsc_ignores_intensity_offset_and_scale():
    X = np.stack([_blob_image(seed=s) for s in range(3)])
    metric = FSCAffinity()
    np.testing.assert_allclose(metric(X, 3.0 * X + 2.0), metric(X, X), atol=1e-12)


def test_fsc_resolution_and_max_shell_agree():
    X = np.stack([_blob_image(size=32, seed=s) for s in range(3)])
    # 32 px, 2.5 Å/px, 10 Å resolution -> 0.25 cycles/px -> shell 8 = the default
    a = FSCAffinity(resolution=10.0, voxel_size=2.5)(X)
    np.testing.assert_allclose(a, FSCAffinity(max_shell=8)(X))
    np.testing.assert_allclose(a, FSCAffinity()(X))
    nyq = FSCAffinity(resolution=5.0, voxel_size=2.5)(X)
    np.testing.assert_allclose(nyq, FSCAffinity(max_shell=16)(X))
    assert not np.allclose(nyq, a)


def test_fsc_uniform_weighting_is_plain_mean_of_shells():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2, 10, 10))
    # per-shell correlations recovered from nested count-weighted means
    n = FSCAffinity(max_shell=3)._prepare(X, X)["counts"]
    m1 = FSCAffinity(max_shell=1)(X)[0, 1]
    m2 = FSCAffinity(max_shell=2)(X)[0, 1]
    m3 = FSCAffinity(max_shell=3)(X)[0, 1]
    c1 = m1
    c2 = (m2 * (n[0] + n[1]) - m1 * n[0]) / n[1]
    c3 = (m3 * n.sum() - m2 * (n[0] + n[1])) / n[2]
    uniform = FSCAffinity(max_shell=3, weighting="uniform")(X)[0, 1]
    assert uniform == pytest.approx((c1 + c2 + c3) / 3, abs=1e-12)


def test_fsc_center_removes_translation():
    vol = _l_volume(16)
    shifted = np.roll(vol, (2, -3, 1), axis=(0, 1, 2))
    X = np.stack([vol, shifted])
    assert FSCAffinity()(X)[0, 1] < 0.5
    assert FSCAffinity(center=True)(X)[0, 1] > 0.999


def test_fsc_depends_on_orientation():
    vol = _l_volume(16)
    X = np.stack([vol, np.rot90(vol, axes=(0, 1))])
    assert FSCAffinity()(X)[0, 1] < 0.7


def test_fsc_constant_object_has_empty_shells():
    X = np.stack([np.ones((8, 8)), _blob_image(8)])
    S = FSCAffinity()(X, X)
    assert S[0, 1] == 0.0 and S[1, 0] == 0.0
    assert S[1, 1] == pytest.approx(1.0)


def test_fsc_parameter_errors():
    X = np.zeros((2, 16, 16)) + np.arange(16)
    with pytest.raises(ValueError, match="either resolution or max_shell"):
        FSCAffinity(resolution=8.0, max_shell=3)(X)
    with pytest.raises(ValueError, match="finer than Nyquist"):
        FSCAffinity(resolution=1.0)(X)
    with pytest.raises(ValueError, match="beyond the Nyquist shell 8"):
        FSCAffinity(max_shell=9)(X)
    with pytest.raises(ValueError, match="leaves no shell"):
        FSCAffinity(resolution=100.0)(X)
    with pytest.raises(ValueError, match="'max_shell' parameter"):
        FSCAffinity(max_shell=0)(X)
    with pytest.raises(ValueError, match="voxel_size"):
        FSCAffinity(voxel_size=-1)(X)
    with pytest.raises(ValueError, match="shell_width"):
        FSCAffinity(shell_width=0)(X)
    with pytest.raises(ValueError, match="weighting"):
        FSCAffinity(weighting="mean")(X)
    with pytest.raises(ValueError, match="center"):
        FSCAffinity(center="yes")(X)


def _molecule(n_atoms, rng):
    """Pseudo-atom chain (3.8 Å steps) squeezed into a ~36 Å globule."""
    steps = rng.normal(size=(n_atoms, 3))
    steps *= 3.8 / np.linalg.norm(steps, axis=1, keepdims=True)
    pos = np.cumsum(steps, axis=0)
    pos -= pos.mean(axis=0)
    return pos * (18.0 / np.abs(pos).max())


def _hinge_variant(pos, degrees):
    """The same molecule with one half rotated about its centre (a conformer)."""
    out = pos.copy()
    domain = out[:, 0] > np.median(out[:, 0])
    hinge = out[domain].mean(axis=0)
    rot = Rotation.from_euler("z", degrees, degrees=True).as_matrix()
    out[domain] = (out[domain] - hinge) @ rot.T + hinge
    return out


def _density_map(pos, rng, size=32, voxel=2.5, resolution=10.0, noise=0.05):
    """Map at ``resolution`` Å as Chimera's molmap (sigma = 0.225 resolution),
    plus a little white noise, as a real map has."""
    grid = (np.arange(size) - (size - 1) / 2) * voxel
    sig = 0.225 * resolution
    gz, gy, gx = (
        np.exp(-((grid[:, None] - pos[:, d]) ** 2) / (2 * sig**2)) for d in range(3)
    )
    vol = np.einsum("ia,ja,ka->ijk", gz, gy, gx)
    vol /= vol.max()
    return vol + noise * rng.normal(size=vol.shape)


def test_fsc_protein_like_maps_similar_beat_dissimilar_at_default_cut():
    rng = np.random.default_rng(0)
    mols = [_molecule(150, rng) for _ in range(4)]
    X = np.stack(
        [_density_map(mols[0], rng), _density_map(_hinge_variant(mols[0], 12), rng)]
        + [_density_map(m, rng) for m in mols[1:]]
    )
    fsc = FSCAffinity(resolution=10.0, voxel_size=2.5)  # == the default cut here
    S = fsc(X)
    similar = S[0, 1]
    dissimilar = S[np.triu_indices(5, 1)][1:]  # every other pair
    assert similar > 0.5
    assert similar > dissimilar.max() + 0.3
    # up to Nyquist the noisy outer shells flatten every off-diagonal value
    S_nyq = FSCAffinity(resolution=5.0, voxel_size=2.5)(X)
    assert S_nyq[0, 1] < 0.5 * similar
    assert np.abs(S_nyq[np.triu_indices(5, 1)][1:]).max() < 0.1


# --------------------------------------------------------------------------- SOAP


def test_soap_2d_rotation_invariance_and_shape_contrast():
    L, T = _l_shape(32), _t_shape(32)
    X = np.stack(
        [L, np.rot90(L), np.rot90(L, 2), _rotate_2d(L, 33), _rotate_2d(L, -67), T]
    )
    S = SOAPAffinity()(X)
    assert S[:5, :5].min() > 0.99
    assert S[:5, 5].max() < S[:5, :5].min() - 0.03
    raw = SOAPAffinity(rescale="none")(X)
    assert raw[:5, :5].min() > 0.995


def test_soap_3d_rotation_invariance_and_shape_contrast():
    L, Z = _l_volume(), _s_volume()
    rot = Rotation.from_euler("zyx", [30, 50, 70], degrees=True).as_matrix()
    X = np.stack(
        [L, np.rot90(L, axes=(0, 2)), np.rot90(L, axes=(1, 2)), _rotate_3d(L, rot), Z]
    )
    S = SOAPAffinity(n_max=6, l_max=6)(X)
    assert S[:4, :4].min() > 0.99
    assert S[:4, 4].max() < S[:4, :4].min() - 0.02


def test_soap_translation_invariance():
    L = _l_shape(32)
    X = np.stack([L, np.roll(L, (4, -5), axis=(0, 1))])
    assert SOAPAffinity()(X, X)[0, 1] == pytest.approx(1.0, abs=1e-9)


def test_soap_2d_circular_harmonics_see_mirror_images():
    L = _l_shape(32)
    X = np.stack([L, L[:, ::-1]])
    circular = SOAPAffinity(rescale="none")(X)[0, 1]
    spherical = SOAPAffinity(rescale="none", harmonics_2d="spherical")(X)[0, 1]
    assert circular < 0.998
    assert spherical == pytest.approx(1.0, abs=1e-9)


def test_soap_rescaling():
    X = np.stack([_l_shape(32), _t_shape(32)])
    raw = SOAPAffinity(rescale="none")(X)[0, 1]
    assert 0 <= raw <= 1
    assert SOAPAffinity()(X)[0, 1] == pytest.approx(2 * raw - 1)
    assert SOAPAffinity(zeta=3)(X)[0, 1] == pytest.approx(2 * raw**3 - 1)


def test_soap_weighted_atoms_and_empty_object():
    grey = _l_shape(24) * np.linspace(0.6, 1.0, 24)[None, :]
    X = np.stack([grey, _l_shape(24), np.zeros((24, 24))])
    plain = SOAPAffinity(threshold=0.3)(X, X)
    weighted = SOAPAffinity(threshold=0.3, weighted=True)(X, X)
    assert plain[0, 1] == pytest.approx(1.0)  # same foreground
    assert weighted[0, 1] < plain[0, 1]
    assert plain[2, 2] == -1.0 and plain[0, 2] == -1.0  # no atoms: kernel 0


def test_soap_parameter_errors():
    X = np.stack([_l_shape(16), _t_shape(16)])
    for params, match in [
        ({"n_max": 0}, "n_max"),
        ({"l_max": -1}, "l_max"),
        ({"sigma": 0}, "sigma"),
        ({"cutoff": -2.0}, "cutoff"),
        ({"zeta": 0}, "zeta"),
        ({"threshold": 1.0}, "threshold"),
        ({"rescale": "minmax"}, "rescale"),
        ({"harmonics_2d": "polar"}, "harmonics_2d"),
    ]:
        with pytest.raises(ValueError, match=match):
            SOAPAffinity(**params)(X)


# ------------------------------------------------------------------ MeanDifference


def test_mean_difference_values():
    X = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(
        MeanDifference()(X), [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-12
    )
    assert MeanDifference(scale=4.0)(X)[0, 2] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="scale"):
        MeanDifference(scale=0)(X)


# -------------------------------------------------------------- class-level matrix


def test_class_affinity_matrix_from_templates():
    templates = {"t": _t_shape(16), "l": _l_shape(16), "b": _blob_image(16)}
    metric = FSCAffinity()
    A = class_affinity_matrix(metric=metric, templates=templates)
    assert list(A.index) == ["t", "l", "b"] == list(A.columns)
    S = metric(np.stack(list(templates.values())))
    np.testing.assert_allclose(A.to_numpy(), S)
    assert check_affinity_matrix(A, ["l", "t"]).equals(A)


def test_class_affinity_matrix_from_sampled_members():
    rng = np.random.default_rng(0)
    X = np.stack([_blob_image(seed=s) for s in range(9)]) + 0.1 * rng.normal(
        size=(9, 16, 16)
    )
    y = np.array(["b", "a", "b", "c", "a", "b", "c", "a", "c"])
    metric = MeanDifference(scale=1.0)
    A = class_affinity_matrix(X, y, metric, n_per_class=3)  # all members used
    assert list(A.index) == ["a", "b", "c"]
    S = metric(X)
    for p in "abc":
        for q in "abc":
            expected = 1.0 if p == q else S[np.ix_(y == p, y == q)].mean()
            assert A.loc[p, q] == pytest.approx(expected)
    # sampling: reproducible with random_state, fewer members than available
    A1 = class_affinity_matrix(X, y, metric, n_per_class=2, random_state=3)
    A2 = class_affinity_matrix(X, y, metric, n_per_class=2, random_state=3)
    pd.testing.assert_frame_equal(A1, A2)
    check_affinity_matrix(A1, y)
    with pytest.raises(ValueError, match="different lengths"):
        class_affinity_matrix(X, y[:-1], metric)
    with pytest.raises(ValueError, match="needs X and y"):
        class_affinity_matrix(X, None, metric)
    with pytest.raises(ValueError, match="n_per_class"):
        class_affinity_matrix(X, y, metric, n_per_class=0)
    with pytest.raises(ValueError, match="metric must be a callable"):
        class_affinity_matrix(X, y, "fsc")


def test_class_affinity_matrix_with_soap_orders_rotated_classes():
    L, T = _l_shape(32), _t_shape(32)
    X = np.stack(
        [L, _rotate_2d(L, 20), np.rot90(L), T, _rotate_2d(T, -30), np.rot90(T)]
    )
    y = ["L", "L", "L", "T", "T", "T"]
    A = class_affinity_matrix(X, y, SOAPAffinity(), random_state=0)
    assert A.loc["L", "T"] < 0.97
    np.testing.assert_array_equal(np.diag(A), 1.0)


# ------------------------------------------------------------------------ CSV I/O


def test_affinity_csv_round_trip(tmp_path):
    A = pd.DataFrame(
        [[1.0, 0.25, -0.5], [0.25, 1.0, 0.125], [-0.5, 0.125, 1.0]],
        index=["a", "2", "k"],
        columns=["a", "2", "k"],
    )
    path = tmp_path / "affinity.csv"
    write_affinity_csv(A, path)
    assert os.listdir(tmp_path) == ["affinity.csv"]  # no temporary file left
    with open(path) as fh:
        assert fh.readline().strip() == ",a,2,k"
    B = read_affinity_csv(path)
    pd.testing.assert_frame_equal(B, A)
    with pytest.raises(ValueError, match="not symmetric"):
        write_affinity_csv(A.T.assign(a=[1.0, 0.9, 0.0]).T, tmp_path / "bad.csv")
    assert sorted(os.listdir(tmp_path)) == ["affinity.csv"]


def test_check_affinity_matrix_errors():
    good = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["a", "b"], columns=["a", "b"])
    # columns in another order are reordered to the index
    out = check_affinity_matrix(good[["b", "a"]])
    pd.testing.assert_frame_equal(out, good)
    with pytest.raises(ValueError, match="pandas DataFrame"):
        check_affinity_matrix(good.to_numpy())
    with pytest.raises(ValueError, match="not square"):
        check_affinity_matrix(good.iloc[:1])
    with pytest.raises(ValueError, match="not symmetric"):
        check_affinity_matrix(good.where(~np.eye(2, k=1, dtype=bool), 0.1))
    with pytest.raises(ValueError, match=r"lie in \[-1, 1\]"):
        check_affinity_matrix(good * 1.5)
    with pytest.raises(ValueError, match="NaN"):
        check_affinity_matrix(good.where(~np.eye(2, dtype=bool), np.nan))
    with pytest.raises(ValueError, match=r"Labels \['c'\] are not in"):
        check_affinity_matrix(good, ["a", "c", "b"])
    with pytest.raises(ValueError, match="same labels"):
        check_affinity_matrix(good.set_axis(["a", "z"], axis=1))
    with pytest.raises(ValueError, match="empty"):
        check_affinity_matrix(pd.DataFrame())


def test_fsc_default_cut_keeps_one_shell_for_tiny_objects():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))  # e.g. a flat table of 3 features
    S = FSCAffinity()(X)
    np.testing.assert_allclose(S, FSCAffinity(max_shell=1)(X))
    with pytest.raises(ValueError, match="leaves no shell"):
        FSCAffinity()(rng.normal(size=(5, 1)))


def test_write_affinity_csv_honours_the_umask(tmp_path):
    import os
    import stat

    from skavae.affinity import read_affinity_csv, write_affinity_csv

    labels = ["a", "b"]
    matrix = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=labels, columns=labels)
    previous = os.umask(0o022)
    try:
        write_affinity_csv(matrix, tmp_path / "a.csv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]  # no temporary left
    np.testing.assert_array_equal(read_affinity_csv(tmp_path / "a.csv"), matrix)


def test_metric_parameters_use_sklearn_constraints():
    from sklearn.utils._param_validation import InvalidParameterError

    X = np.random.RandomState(0).rand(3, 8, 8)
    for metric, match in [
        (MeanDifference(scale=np.inf), "'scale' parameter of MeanDifference"),
        (MeanDifference(chunk_size=True), "'chunk_size' parameter"),
        (FSCAffinity(weighting="area"), "'weighting' parameter of FSCAffinity"),
        (FSCAffinity(voxel_size=0.0), "'voxel_size' parameter"),
        (SOAPAffinity(threshold=1.0), "'threshold' parameter of SOAPAffinity"),
        (SOAPAffinity(l_max=-1), "'l_max' parameter"),
    ]:
        with pytest.raises(InvalidParameterError, match=match):
            metric(X)
    with pytest.raises(ValueError, match="either resolution or max_shell"):
        FSCAffinity(resolution=4.0, max_shell=2)(X)
