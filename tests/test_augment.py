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
    out, swapped = augment_batch(v, group, torch.Generator().manual_seed(0))
    assert swapped is None
    mask = torch.as_tensor(wedge_mask((16, 16, 16), tilt_range))
    scale = _outside_power(torch.from_numpy(X)[:, None], mask)
    assert _outside_power(out, mask) < 1e-9 * scale
    # rotations, not mirrors: every output is one of the proper rotations
    assert not torch.equal(out, v)
    np.testing.assert_allclose(out.sum((1, 2, 3, 4)), v.sum((1, 2, 3, 4)), rtol=1e-5)
    # the full D2 group would move an asymmetric wedge
    if tilt_range[0] != -tilt_range[1]:
        moved, _ = augment_batch(
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


def test_d4_turns_move_the_wedge_to_the_other_tilt_axis():
    X = make_tetraminos(n_samples=32, size=16, random_state=0)[0]
    wedge = MissingWedge(tilt_range=(-60, 60))
    v = torch.from_numpy(simulate_subtomograms(X, missing_wedge=wedge))[:, None]
    group = rotation_group((16, 16, 16), wedge, turns=True)
    assert len(group) == 8
    out, swapped = augment_batch(v, group, torch.Generator().manual_seed(1))
    assert 0 < int(swapped.sum()) < len(v)
    about_y = torch.as_tensor(wedge_mask((16, 16, 16), (-60, 60), tilt_axis=1))
    about_x = torch.as_tensor(wedge_mask((16, 16, 16), (-60, 60), tilt_axis=2))
    scale = _outside_power(torch.from_numpy(X)[:, None], about_y)
    # the turned samples' power lies inside the x wedge, not the y one
    assert _outside_power(out[swapped], about_x) < 1e-9 * scale
    assert _outside_power(out[swapped], about_y) > 1e-3 * scale
    assert _outside_power(out[~swapped], about_y) < 1e-9 * scale
    # proper rotations: 90-degree turns about z of a turned sample recover it
    for i in torch.nonzero(swapped).flatten()[:3]:
        back = [torch.rot90(out[i], k, (2, 3)) for k in (1, 3)]
        flips = [b.flip(d) for b in back for d in [(), (1, 2), (1, 3), (2, 3)]]
        assert any(torch.equal(f, v[i]) for f in flips)


def test_d4_needs_a_square_section_and_a_symmetric_wedge():
    assert len(rotation_group((16, 16, 8), turns=True)) == 4
    assert (
        len(
            rotation_group((16, 16, 16), MissingWedge(tilt_range=(-40, 60)), turns=True)
        )
        == 2
    )
    # a tilt increment that does not divide the range samples asymmetric tilts
    odd = MissingWedge(tilt_range=(-60, 60), tilt_step=7)
    assert len(rotation_group((16, 16, 16), odd, turns=True)) == 2
    even = MissingWedge(tilt_range=(-60, 60), tilt_step=3)
    assert len(rotation_group((16, 16, 16), even, turns=True)) == 8
    # per-sample ranges: one asymmetric range restricts the group for all
    ranges = np.array([[-60, 60], [-50, 60]])
    wedge = MissingWedge()
    assert len(rotation_group((16,) * 3, wedge, tilt_ranges=ranges)) == 2
    assert len(rotation_group((16,) * 3, wedge, tilt_ranges=ranges[:1])) == 4
    # per-sample ranges with no missing_wedge: the default tilt axis (y)
    assert rotation_group((16,) * 3, None, tilt_ranges=ranges) == [
        (),
        (("flip", (2, 4)),),
    ]
    X = np.random.RandomState(0).rand(8, 8, 8, 8).astype(np.float32)
    model = AffinityVAE(max_epochs=1, augment=True, random_state=0)
    model.fit(X, tilt_ranges=np.tile([[-50, 60]], (8, 1)))
    assert model.transform(X).shape == (8, 8)


def test_d4_fit_uses_the_turned_wedge_in_the_loss():
    from skavae._data import BatchSource, measured_support

    support = measured_support((-60, 60), (8, 8, 8), 3, turns=True)
    source = BatchSource(np.zeros((3, 8, 8, 8)), (8, 8, 8), 0.0, 1.0, wedge=support)
    swapped = torch.tensor([False, True, False])
    masks = source.support([0, 1, 2], "cpu", swapped)
    np.testing.assert_array_equal(masks[0], wedge_mask((8, 8, 8), (-60, 60)))
    np.testing.assert_array_equal(
        masks[1], wedge_mask((8, 8, 8), (-60, 60), tilt_axis=2)
    )
    X = simulate_subtomograms(
        make_tetraminos(n_samples=24, size=8, random_state=0)[0],
        missing_wedge=(-60, 60),
    )
    kw = dict(max_epochs=2, missing_wedge=(-60, 60), random_state=0)
    a = AffinityVAE(augment="d4", **kw).fit(X)
    b = AffinityVAE(augment="d4", **kw).fit(X)
    c = AffinityVAE(augment="d2", **kw).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.array_equal(a.transform(X), c.transform(X))
    # test-time averaging over the eight rotations of D4
    from skavae.evaluation import rotation_averaged_transform

    group = rotation_group((8, 8, 8), MissingWedge(), turns=True)
    from skavae._augment import apply_rotation

    expected = np.mean(
        [a.transform(apply_rotation(X, ops, first_spatial=1)) for ops in group], axis=0
    )
    np.testing.assert_allclose(rotation_averaged_transform(a, X), expected)
    with pytest.raises(ValueError, match="augment"):
        AffinityVAE(augment="d8").fit(X)
