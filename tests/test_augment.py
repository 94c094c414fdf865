"""Augmentation by exact rotations that keep the missing wedge in place."""

import numpy as np
import pytest
import torch

from skavae import AffinityVAE
from skavae._augment import augment_batch, rotation_group
from skavae._wedge import MissingWedge, wedge_mask
from skavae.datasets import make_tetraminos, simulate_subtomograms


def _outside_power(x, mask):
    F = torch.fft.rfftn(x[:, 0], dim=(1, 2, 3))
    return (F.real**2 + F.imag**2)[:, ~mask].max().item()


@pytest.mark.parametrize("tilt_range", [(-60, 60), (-45, 60)])
def test_rotations_keep_the_wedge(tilt_range):
    X = make_tetraminos(n_samples=16, size=16, random_state=0)[0]
    wedge = MissingWedge(tilt_range=tilt_range)
    v = torch.from_numpy(simulate_subtomograms(X, missing_wedge=wedge))[:, None]
    group = rotation_group((16, 16, 16), wedge)
    assert len(group) == (4 if tilt_range[0] == -tilt_range[1] else 2)
    out = augment_batch(v, group, torch.Generator().manual_seed(0))
    mask = torch.as_tensor(wedge_mask((16, 16, 16), tilt_range))
    scale = _outside_power(torch.from_numpy(X)[:, None], mask)
    assert _outside_power(out, mask) < 1e-9 * scale
    # rotations, not mirrors: every output is one of the proper rotations
    assert not torch.equal(out, v)
    np.testing.assert_allclose(out.sum((1, 2, 3, 4)), v.sum((1, 2, 3, 4)), rtol=1e-5)
    # the full D2 group would move an asymmetric wedge
    if tilt_range[0] != -tilt_range[1]:
        moved = augment_batch(
            v, rotation_group((16, 16, 16)), torch.Generator().manual_seed(0)
        )
        assert _outside_power(moved, mask) > 1e-3 * scale


def test_2d_group_and_estimator_option():
    assert len(rotation_group((8, 8))) == 4
    assert len(rotation_group((8, 6))) == 2
    assert rotation_group((8,)) == [()]
    X = np.random.RandomState(0).rand(40, 8, 8).astype(np.float32)
    a = AffinityVAE(max_epochs=2, augment=True, random_state=0).fit(X)
    b = AffinityVAE(max_epochs=2, augment=True, random_state=0).fit(X)
    c = AffinityVAE(max_epochs=2, random_state=0).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))  # seeded
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_rotation_averaged_transform_matches_the_benchmarks_flips():
    from skavae.evaluation import rotation_averaged_transform

    X = make_tetraminos(n_samples=20, size=16, random_state=0)[0]
    model = AffinityVAE(max_epochs=1, augment=True, random_state=0).fit(X)
    flips = [None, (2, 3), (1, 3), (1, 2)]  # identity, 180 deg about axes 0, 1, 2
    expected = np.mean(
        [
            model.transform(X if f is None else np.ascontiguousarray(np.flip(X, f)))
            for f in flips
        ],
        axis=0,
    )
    np.testing.assert_allclose(rotation_averaged_transform(model, X), expected)
    # an asymmetric wedge: identity and the rotation about the tilt axis only
    asym = rotation_averaged_transform(model, X, missing_wedge=(-40, 60))
    np.testing.assert_allclose(
        asym, (model.transform(X) + model.transform(np.flip(X, (1, 3)).copy())) / 2
    )
    with pytest.raises(ValueError, match="stack"):
        rotation_averaged_transform(model, X.reshape(20, -1))
