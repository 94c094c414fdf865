"""Tests of the synthetic data set generators in skavae.datasets."""

import numpy as np
import pandas as pd
import pytest

from skavae.datasets import (
    ALPHANUMERIC_CHARACTERS,
    ALPHANUMERIC_SEEN,
    ALPHANUMERIC_UNSEEN,
    TETRAMINO_SEEN,
    TETRAMINO_SHAPES,
    TETRAMINO_UNSEEN,
    make_alphanumeric,
    make_tetraminos,
)

# --------------------------------------------------------------------------
# make_alphanumeric


def test_alphanumeric_shapes_dtypes_labels():
    X, y = make_alphanumeric(n_samples=20, size=16, random_state=0)
    assert X.shape == (20, 16, 16)
    assert X.dtype == np.float32
    assert y.shape == (20,)
    assert set(y) <= set(ALPHANUMERIC_SEEN)
    assert 0.0 <= X.min() and X.max() <= 1.0
    # balanced classes: counts differ by at most one
    counts = pd.Series(y).value_counts()
    assert counts.max() - counts.min() <= 1
    assert all(img.sum() > 0 for img in X)


def test_alphanumeric_character_sets():
    _, y = make_alphanumeric(n_samples=9, characters="unseen", size=16, random_state=0)
    assert sorted(set(y)) == sorted(ALPHANUMERIC_UNSEEN)
    _, y = make_alphanumeric(n_samples=24, characters="all", size=16, random_state=0)
    assert sorted(set(y)) == sorted(ALPHANUMERIC_CHARACTERS)
    _, y = make_alphanumeric(n_samples=4, characters="u2", size=16, random_state=0)
    assert sorted(set(y)) == ["2", "u"]


def test_alphanumeric_deterministic():
    a = make_alphanumeric(n_samples=10, size=16, random_state=3)
    b = make_alphanumeric(n_samples=10, size=16, random_state=3)
    c = make_alphanumeric(n_samples=10, size=16, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_alphanumeric_info_and_templates():
    X, y, info, templates = make_alphanumeric(
        n_samples=30, size=16, test_size=0.2, return_info=True, random_state=0
    )
    assert list(info.columns) == ["label", "angle", "seen", "split"]
    assert len(info) == 30
    np.testing.assert_array_equal(info["label"].to_numpy(), y)
    assert info["angle"].between(-45, 45).all()
    assert info["seen"].all()
    assert set(info["split"]) == {"train", "test"}
    assert list(templates) == list(ALPHANUMERIC_SEEN)
    for label, img in templates.items():
        assert img.shape == (16, 16) and img.dtype == np.float32
        # an unrotated sample equals its class template
        for i in np.flatnonzero((y == label) & (info["angle"].to_numpy() == 0)):
            np.testing.assert_array_equal(X[i], img)


def test_alphanumeric_no_rotation_equals_templates():
    X, y, info, templates = make_alphanumeric(
        n_samples=8, size=16, max_angle=0, return_info=True, random_state=0
    )
    assert (info["angle"] == 0).all()
    for img, label in zip(X, y):
        np.testing.assert_array_equal(img, templates[label])


def test_alphanumeric_rotation_moves_pixels():
    X, _, info, templates = make_alphanumeric(
        n_samples=16, characters="k", size=32, return_info=True, random_state=0
    )
    i = int(np.argmax(info["angle"].abs().to_numpy()))
    assert abs(info["angle"][i]) > 10
    assert np.abs(X[i] - templates["k"]).sum() > 10


def test_alphanumeric_binarize():
    X, _ = make_alphanumeric(n_samples=5, size=16, binarize=True, random_state=0)
    assert set(np.unique(X).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"size": 4}, "size"),
        ({"characters": "aq"}, "Unknown characters"),
        ({"characters": []}, "empty"),
        ({"characters": "aa"}, "duplicates"),
        ({"max_angle": 200}, "max_angle"),
        ({"max_angle": 2.5}, "max_angle"),
        ({"threshold": 1.5}, "threshold"),
        ({"test_size": 1.5}, "test_size"),
        ({"font": "/nonexistent/font.ttf"}, "does not exist"),
    ],
)
def test_alphanumeric_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_alphanumeric(**{"n_samples": 2, "size": 16, **kwargs})


def test_alphanumeric_missing_font_gives_clear_error(monkeypatch):
    import matplotlib
    from matplotlib import font_manager

    def no_font(*args, **kwargs):
        raise ValueError("Failed to find font")

    monkeypatch.setattr(font_manager, "findfont", no_font)
    monkeypatch.setattr(matplotlib, "get_data_path", lambda: "/nonexistent")
    with pytest.raises(RuntimeError, match="No TrueType font found"):
        make_alphanumeric(n_samples=2, size=16)


# --------------------------------------------------------------------------
# make_tetraminos


def test_tetraminos_shapes_dtypes_labels():
    X, y = make_tetraminos(n_samples=12, size=16, random_state=0)
    assert X.shape == (12, 16, 16, 16)
    assert X.dtype == np.float32
    assert sorted(set(y)) == sorted(TETRAMINO_SEEN)
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_tetraminos_deterministic():
    a = make_tetraminos(n_samples=6, size=12, random_state=1)
    b = make_tetraminos(n_samples=6, size=12, random_state=1)
    c = make_tetraminos(n_samples=6, size=12, random_state=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_tetraminos_templates_have_exactly_four_cubes():
    cube = 3
    _, _, info, templates = make_tetraminos(
        n_samples=9,
        shapes="all",
        size=16,
        cube_size=cube,
        return_info=True,
        random_state=0,
    )
    assert list(templates) == list(TETRAMINO_SHAPES)
    for name, vol in templates.items():
        n_cubes = len(TETRAMINO_SHAPES[name])
        assert n_cubes == (5 if name in TETRAMINO_UNSEEN else 4)
        assert set(np.unique(vol).tolist()) == {0.0, 1.0}
        assert int(vol.sum()) == n_cubes * cube**3


def test_tetraminos_shapes_are_distinct_under_rotation():
    # no shape is a proper rotation of another (the two screws are mirror
    # images, which rotations cannot superpose)
    import itertools

    rotations = [
        np.eye(3)[list(p)] * np.array(signs)[:, None]
        for p in itertools.permutations(range(3))
        for signs in itertools.product((-1, 1), repeat=3)
    ]
    rotations = [r for r in rotations if np.isclose(np.linalg.det(r), 1)]
    assert len(rotations) == 24

    def canonical(cubes):
        forms = []
        for r in rotations:
            c = np.asarray(cubes) @ r.T
            c = c - c.min(axis=0)
            forms.append(tuple(sorted(map(tuple, c.astype(int).tolist()))))
        return min(forms)

    forms = {name: canonical(c) for name, c in TETRAMINO_SHAPES.items()}
    assert len(set(forms.values())) == len(forms)


def test_tetraminos_360_degrees_is_identity():
    X, y, info, templates = make_tetraminos(
        n_samples=9,
        shapes="all",
        size=16,
        angle_step=360,
        return_info=True,
        random_state=0,
    )
    assert (info[["angle_0", "angle_1", "angle_2"]].to_numpy() == 360).all()
    for vol, name in zip(X, y):
        np.testing.assert_array_equal(vol, templates[name])


def test_tetraminos_rotation_preserves_volume():
    cube = 3
    X, y, info, _ = make_tetraminos(
        n_samples=12, size=20, cube_size=cube, return_info=True, random_state=0
    )
    assert (info[["angle_0", "angle_1", "angle_2"]].to_numpy() % 10 == 0).all()
    np.testing.assert_allclose(X.sum(axis=(1, 2, 3)), 4 * cube**3, rtol=0.08)


def test_tetraminos_right_angle_rotation_keeps_exact_volume():
    # right angles map cube faces onto voxel or half-voxel planes, which the
    # 2x2x2 sampling resolves exactly
    X, y = make_tetraminos(n_samples=6, size=16, angle_step=90, random_state=0)
    np.testing.assert_array_equal(X.sum(axis=(1, 2, 3)), 4 * 2**3)


def test_tetraminos_info_shift_elongation():
    X, y, info, templates = make_tetraminos(
        n_samples=10,
        size=20,
        cube_size=2,
        max_shift=2.0,
        elongation=0.5,
        test_size=0.2,
        return_info=True,
        random_state=0,
    )
    expected = ["label"] + [f"angle_{d}" for d in range(3)]
    expected += [f"shift_{d}" for d in range(3)] + ["elongation", "seen", "split"]
    assert list(info.columns) == expected
    shifts = info[["shift_0", "shift_1", "shift_2"]].to_numpy()
    assert np.abs(shifts).max() <= 2.0 and np.abs(shifts).max() > 0
    assert info["elongation"].between(1.0, 1.5).all()
    # elongation scales the volume of the shape
    np.testing.assert_allclose(
        X.sum(axis=(1, 2, 3)), 4 * 2**3 * info["elongation"], rtol=0.15
    )


def test_tetraminos_shift_moves_centre_of_mass():
    X, y, info, templates = make_tetraminos(
        n_samples=4,
        shapes="O",
        size=20,
        cube_size=2,
        rotate=False,
        max_shift=3.0,
        return_info=True,
        random_state=0,
    )
    grid = np.indices(X.shape[1:]).reshape(3, -1) + 0.5
    t = templates["O"].ravel()
    com_t = grid @ t / t.sum()
    for vol, (_, row) in zip(X, info.iterrows()):
        v = vol.ravel()
        com = grid @ v / v.sum()
        shift = row[["shift_0", "shift_1", "shift_2"]].to_numpy(float)
        # positions are resolved to the 2x2x2 sampling: half a voxel
        np.testing.assert_allclose(com - com_t, shift, atol=0.26)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"size": 2}, "size"),
        ({"shapes": ["Q"]}, "Unknown tetramino"),
        ({"shapes": []}, "empty"),
        ({"cube_size": 5}, "too large"),
        ({"angle_step": 7}, "divide 360"),
        ({"max_shift": -1}, "max_shift"),
        ({"elongation": -0.1}, "elongation"),
        ({"rotate": "yes"}, "rotate"),
    ],
)
def test_tetraminos_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_tetraminos(**{"n_samples": 2, "size": 16, **kwargs})


@pytest.mark.slow
def test_generators_at_default_sizes():
    X, y = make_alphanumeric(n_samples=2000, characters="all", random_state=0)
    assert X.shape == (2000, 64, 64) and len(set(y)) == 12
    X, y, info, templates = make_tetraminos(
        n_samples=200,
        shapes="all",
        max_shift=2.0,
        elongation=0.2,
        return_info=True,
        random_state=0,
    )
    assert X.shape == (200, 32, 32, 32)
    # nothing is cropped at the defaults: volume = cubes x elongation
    n_cubes = np.array([len(TETRAMINO_SHAPES[lab]) for lab in y])
    np.testing.assert_allclose(
        X.sum(axis=(1, 2, 3)), n_cubes * 5**3 * info["elongation"], rtol=0.05
    )
