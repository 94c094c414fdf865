"""The splat decoder's explicit 3D pose written as RELION Euler angles.

The decoded object at a pose must equal the object at pose 0 rotated by the
angles written to the STAR file, read back with scipy's ZYZ (the reference
implementation of the convention, through ``euler_to_matrix``).
"""

import numpy as np
import pandas as pd
import starfile
from scipy import ndimage

from skavae import AffinityVAE
from skavae._cli._tomo import pose_rotations
from skavae.io import euler_to_matrix, write_particles


def _corr(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_written_angles_rotate_the_decoded_object_into_its_pose(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.rand(16, 16, 16, 16).astype(np.float32)
    model = AffinityVAE(
        decoder="splat", pose_dims=3, latent_dims=2, filters=(4,), n_splats=6,
        max_epochs=1, random_state=0,
    ).fit(X)  # fmt: skip
    pose = np.array([[0.0, 0.0, 0.0], [0.9, -0.6, 1.2], [-1.5, 0.4, 0.3]])
    z = np.zeros((3, 2))
    decoded = model.inverse_transform(z, pose=pose)
    particles = pd.DataFrame(
        {"tomo_name": ["t"] * 3, "x": [1.0, 2, 3], "y": 4.0, "z": 5.0}
    ).assign(rot=7.0, tilt=8.0, psi=9.0)
    path = write_particles(
        tmp_path / "p.star", particles, rotations=pose_rotations(model, pose)
    )[0]
    back = starfile.read(path, always_dict=True)["particles"]
    assert back["skavaeInputAngleRot"].tolist() == [7.0] * 3  # input kept
    angles = back[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    np.testing.assert_allclose(angles[0], 0.0, atol=1e-6)  # pose 0: identity
    centre = (np.array(X.shape[1:]) - 1) / 2
    # inside a ball of radius 6 voxels: what the corners of a rotated box lose
    # (filled by mode="nearest") is left out
    ball = ((np.indices(X.shape[1:]).T - centre) ** 2).sum(-1).T <= 36
    for k in (1, 2):
        R = euler_to_matrix(angles[k])[::-1, ::-1]  # (x, y, z) -> array axes
        # output voxel o shows the reference at R^T (o - c) + c
        turned = ndimage.affine_transform(
            decoded[0], R.T, offset=centre - R.T @ centre, order=1, mode="nearest"
        )
        assert _corr(turned[ball], decoded[k][ball]) > 0.99
        assert _corr(decoded[0][ball], decoded[k][ball]) < 0.9  # a real rotation


def test_no_angles_for_the_conv_decoder():
    X = np.random.RandomState(0).rand(8, 8, 8, 8).astype(np.float32)
    model = AffinityVAE(latent_dims=2, filters=(4,), max_epochs=1, random_state=0)
    assert pose_rotations(model.fit(X), np.zeros((2, 1))) is None
