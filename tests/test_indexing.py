"""Indexing of the lazy stacks (MRCStack, SubtomogramStack) as numpy does."""

import numpy as np
import pytest

from skavae._indexing import sample_index


@pytest.mark.parametrize(
    "key",
    [3, -2, slice(1, 5, 2), [0, -1, 2], np.array([[1, 2], [3, 4]]), [], None],
)
def test_sample_numbers_are_numpy_s(key):
    ref = np.arange(6)
    idx, rest = sample_index(key if key is not None else (), 6, items="x", owner="s")
    expected = ref[key] if key is not None else ref
    np.testing.assert_array_equal(idx, expected)
    assert rest == ()


def test_mask_and_rest_of_the_key():
    mask = np.array([True, False, True, False])
    idx, rest = sample_index((mask, 0, slice(None)), 4, items="x", owner="s")
    assert idx.tolist() == [0, 2] and rest == (0, slice(None))


@pytest.mark.parametrize(
    "key, message",
    [
        (6, "index 6 is out of range for 6 files"),
        (-7, "index -7 is out of range for 6 files"),
        ([0, 6], "index out of range for 6 files"),
        (np.ones(3, bool), r"boolean index of shape \(3,\) does not match 6 files"),
        ([0.5], "cannot index an MRCStack with"),
    ],
)
def test_bad_keys_name_the_count_and_the_stack(key, message):
    with pytest.raises(IndexError, match=message):
        sample_index(key, 6, items="files", owner="an MRCStack")
