"""The synthetic tomogram (skavae.datasets.make_tomogram) and its ground truth."""

import mrcfile
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from skavae.datasets import TOMOGRAM_STRUCTURES, make_tomogram
from skavae.io import euler_to_matrix, extract_subtomograms


def test_tiny_tomogram_ground_truth():
    tomo, particles = make_tomogram((64, 128, 128), n_particles=30, random_state=0)
    assert tomo.shape == (64, 128, 128) and tomo.dtype == np.float32
    assert len(particles) == 30
    assert sorted(set(particles["class_name"])) == sorted(TOMOGRAM_STRUCTURES)
    assert particles["class_name"].value_counts().max() == 5
    # 1-based class numbers in the sorted order of the labels (classes_)
    number = {n: i + 1 for i, n in enumerate(sorted(TOMOGRAM_STRUCTURES))}
    assert (particles["class"] == particles["class_name"].map(number)).all()
    # no overlap, every molecule inside the tomogram
    xyz = particles[["x", "y", "z"]].to_numpy()
    r = particles["radius_px"].to_numpy()
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert (d >= r[:, None] + r[None] + 1.0 - 1e-9).all()
    assert ((xyz - r[:, None]) >= 0).all()
    assert ((xyz + r[:, None]) <= np.array([128, 128, 64]) - 1).all()
    assert (particles[["tilt_min", "tilt_max"]].to_numpy() == [-60, 60]).all()
    assert particles["defocus_um"].between(2, 5).all()
    assert particles.attrs["skavae_snr"] == 0.5


def test_same_seed_same_tomogram_and_uniform_orientations():
    a, pa = make_tomogram((32, 64, 64), n_particles=8, structures=["3rer"],
                          random_state=3)  # fmt: skip
    b, pb = make_tomogram((32, 64, 64), n_particles=8, structures=["3rer"],
                          random_state=3)  # fmt: skip
    np.testing.assert_array_equal(a, b)
    assert pa.equals(pb)
    _, many = make_tomogram((96, 256, 256), n_particles=300, structures=["3rer"],
                            ctf=False, tilt_range=None, snr=None,
                            random_state=0)  # fmt: skip
    # Haar measure: cos(tilt) is uniform on [-1, 1]
    cos_tilt = np.cos(np.radians(many["tilt"]))
    assert abs(cos_tilt.mean()) < 0.1 and abs((cos_tilt**2).mean() - 1 / 3) < 0.05


def test_snr_of_the_subtomograms():
    options = dict(shape=(48, 96, 96), n_particles=10, random_state=1)
    tomo, p = make_tomogram(snr=0.25, **options)
    noise_free, _ = make_tomogram(snr=None, **options)  # same draws, no noise
    noise = tomo - noise_free
    assert noise.std() == pytest.approx(p.attrs["skavae_noise_sd"], rel=0.01)
    assert p.attrs["skavae_signal_var"] / noise.var() == pytest.approx(0.25, rel=0.02)


def test_fiducials_and_vesicles_are_distractors_not_particles():
    options = dict(shape=(64, 160, 160), n_particles=20, snr=None, random_state=1,
                   return_templates=True)  # fmt: skip
    _, plain, _, bare = make_tomogram(**options)
    _, p, _, clean = make_tomogram(fiducials=4, vesicles=2, **options)
    assert len(p) == 20 and p.attrs["skavae_distractors"] == {
        "fiducials": 4,
        "vesicles": 2,
    }
    # the molecules are rendered as without distractors, only moved: same
    # total density, and every molecule is still clear of the others
    extra = clean - bare
    assert extra.sum() > 0.5 * bare.sum()
    # four gold beads: blobs 10x as dense as the molecules' highest density
    beads, n = ndimage.label(clean > 2 * bare.max())
    assert n == 4
    sizes = ndimage.sum_labels(np.ones_like(clean), beads, range(1, n + 1))
    volume = 4 / 3 * np.pi * 5.0**3  # 100 Å beads of 10 Å voxels
    assert np.all((sizes > 0.5 * volume) & (sizes < 1.6 * volume)), sizes
    # no molecule sits on a bead
    xyz = np.rint(p[["z", "y", "x"]].to_numpy()).astype(int)
    assert not beads[tuple(xyz.T)].any()
    # 0 of each is the plain tomogram, draw for draw
    _, same, _, again = make_tomogram(fiducials=0, vesicles=0, **options)
    np.testing.assert_array_equal(again, bare)
    assert same.equals(plain)
    with pytest.raises(ValueError, match="fiducials"):
        make_tomogram((32, 64, 64), fiducials=-1)


def test_bad_parameters():
    with pytest.raises(ValueError, match="only .* of 400 molecules fit"):
        make_tomogram((32, 64, 64), n_particles=400, random_state=0)
    with pytest.raises(ValueError, match="shape must be 3 integers"):
        make_tomogram((32, 64))
    with pytest.raises(ValueError, match="does not fit in a tomogram"):
        make_tomogram((16, 64, 64), structures=["1aon"], n_particles=1, box=8)
    with pytest.raises(ValueError, match="noise='wedge' needs"):
        make_tomogram((32, 64, 64), tilt_range=None, noise="wedge")


def test_written_zyz_angles_rotate_the_template_into_the_particle(tmp_path):
    """RELION's convention against scipy's ZYZ: a template rotated by the
    written angles (scipy Rotation, spline resampling) matches the particle."""
    box = 32
    tomo, p, templates, clean = make_tomogram(
        (48, 112, 112),
        n_particles=8,
        structures=["2kho", "1fdo"],  # asymmetric monomers
        voxel_size=6.0,
        ctf=False,
        tilt_range=None,
        snr=None,
        box=box,
        return_templates=True,
        random_state=2,
    )
    path = tmp_path / "clean.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(clean)
        mrc.voxel_size = 6.0
    stack = extract_subtomograms(path, p, box=box)
    c = np.full(3, box // 2, dtype=float)
    P = np.eye(3)[::-1]  # (x, y, z) <-> (z, y, x)
    good, bad = [], []
    for i, row in p.reset_index(drop=True).iterrows():
        angles = row[["rot", "tilt", "psi"]].to_numpy(float)
        zyx = row[["z", "y", "x"]].to_numpy(float)
        d = zyx - np.rint(zyx)  # the box is cut at the rounded centre
        particle = stack[i]
        template = templates[row["class_name"]]
        scipy_zyz = Rotation.from_euler("ZYZ", angles, degrees=True)
        right = scipy_zyz.inv().as_matrix()  # reference -> particle
        np.testing.assert_allclose(euler_to_matrix(angles), right, atol=1e-12)
        scores = []
        for R in (right, scipy_zyz.as_matrix()):  # the convention, its inverse
            M = (P @ R @ P).T  # output voxel -> template voxel, z-y-x order
            rotated = ndimage.affine_transform(
                template, M, offset=c - M @ (c + d), order=3, mode="constant"
            )
            mask = rotated > 0.05 * rotated.max()
            scores.append(np.corrcoef(rotated[mask], particle[mask])[0, 1])
        good.append(scores[0])
        bad.append(scores[1])
    good, bad = np.array(good), np.array(bad)
    print("correlation, written angles:", good.round(3), "inverse:", bad.round(3))
    assert good.min() > 0.9, good
    assert (good - bad).min() > 0.1, (good, bad)
