"""Tests of the synthetic data set generators in skavae.datasets."""

import numpy as np
import pandas as pd
import pytest

from skavae.datasets import (
    ALPHANUMERIC_CHARACTERS,
    ALPHANUMERIC_SEEN,
    ALPHANUMERIC_UNSEEN,
    make_alphanumeric,
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
