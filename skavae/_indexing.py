"""numpy-style indexing of lazy stacks: one key, checked, as sample numbers."""

from __future__ import annotations

from numbers import Integral

import numpy as np


def sample_index(key, n, *, items, owner):
    """Split ``key`` into sample numbers and the index of the rest.

    Parameters
    ----------
    key : int, slice, array-like of int or bool, or a tuple of those
        What ``stack[key]`` was given; the first item selects samples, the
        others index inside each sample.
    n : int
        Number of samples.
    items : str
        What a sample is, for the messages ("files", "particles").
    owner : str
        The stack's class name, for the messages.

    Returns
    -------
    idx : int or ndarray of intp
        One sample number in ``range(n)`` (an integer key) or an array of
        them (negative numbers wrapped), in the shape of the key.
    rest : tuple
        The index to apply inside each sample (empty for none).

    Raises
    ------
    IndexError
        Out-of-range numbers, a boolean mask of the wrong length, or a key of
        another kind, each message naming ``n`` and ``items``.
    """
    rest = ()
    if isinstance(key, tuple):
        key, rest = (key[0], key[1:]) if key else (slice(None), ())
    if isinstance(key, (Integral, np.integer)):
        i = int(key)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for {n} {items}.")
        return i % n, rest
    if isinstance(key, slice):
        return np.arange(n)[key], rest
    idx = np.asarray(key)
    if idx.size == 0:
        return idx.astype(np.intp), rest
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise IndexError(
                f"boolean index of shape {idx.shape} does not match {n} {items}."
            )
        return np.flatnonzero(idx), rest
    if idx.dtype.kind not in "iu":
        raise IndexError(f"cannot index {owner} with {key!r}.")
    if idx.max() >= n or idx.min() < -n:
        raise IndexError(f"index out of range for {n} {items}.")
    return idx % n, rest
